#!/usr/bin/env python
"""Measure what ``SignalTraceMiddleware`` costs per request, as a ratio, in one process.

Run from the repository root::

    python benchmarks/bench_request.py              # about two minutes
    python benchmarks/bench_request.py --quick      # a few seconds, smoke test
    python benchmarks/bench_request.py --json out.json --rounds 60

The request is a Django test-client ``GET`` whose view saves a new ``User``;
the seed's receivers run (``post_save`` creates and saves the ``Profile``).
Three stacks are timed side by side, alternating every round, each with its
own test client (its handler loads its middleware once):

``django``
    signaltrace uninstalled, no middleware: Django alone.
``idle``
    the hook installed (as ``INSTALLED_APPS`` does), no middleware.
``middleware``
    the hook plus ``SignalTraceMiddleware`` with its default sinks: the ring
    buffer and the ``signaltrace.request`` structlog event, rendered as JSON
    to ``os.devnull`` (a production-like structlog configuration).

Each is measured under four settings profiles:

``development``
    the defaults with ``DEBUG`` on and the client in ``INTERNAL_IPS``: every
    request traced, with ``RECORD_DB`` query counting, the ``Server-Timing`` and
    ``X-Signaltrace-Id`` headers and the ``signaltrace.request`` event;
``production``
    the production profile of ``docs/how-to/production.md``: ``DEBUG`` off,
    ``METRICS`` on (every receiver call timed and counted), full traces for
    1 % of the requests (``SAMPLE_RATE`` 0.01), no log event (``LOG_LEVEL``
    None), ``CONSOLE`` off, and the traces kept in a shared ``CacheStore``
    (here on a ``LocMemCache``: the store is written on the sink worker, never
    in the request, so the request pays the same as with Redis);
``production, every request traced``
    ``DEBUG`` off and ``ENABLED`` on, the rest left to the defaults: every
    request traced, its event rendered;
``production, every request traced, no log event``
    as above with ``LOG_LEVEL`` None: the trace is still kept in the ring
    buffer for the viewer, but no structlog event is built.

The sampled profile draws from ``random`` with the same seed in every sample,
so each sample traces the same requests (2 of 200: the 1 % it asks for; the
report says how many).

Each figure is the **minimum** over the rounds of the mean time per request of
one sample, the estimator least disturbed by a noisy, shared machine. The
headline is ``middleware / idle``: what adding the middleware costs.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

import django  # noqa: E402

django.setup()

import structlog  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

import signaltrace  # noqa: E402
from signaltrace import metrics  # noqa: E402
from signaltrace._stats import stats  # noqa: E402
from signaltrace.conf import get_config  # noqa: E402
from signaltrace.sinks.memory import buffer  # noqa: E402

MIDDLEWARE = "signaltrace.middleware.SignalTraceMiddleware"
STACKS = ("django", "idle", "middleware")
#: Where the production profile keeps its traces (see the module docstring).
STORE_CACHE = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "bench"}
PROFILES: dict[str, dict[str, Any]] = {
    "development": {"DEBUG": True, "SIGNALTRACE": {"ENABLED": True}},
    "production": {
        "DEBUG": False,
        "CACHES": {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "signaltrace": STORE_CACHE,
        },
        "SIGNALTRACE": {
            "ENABLED": True,
            "METRICS": True,
            "SAMPLE_RATE": 0.01,
            "LOG_LEVEL": None,
            "CONSOLE": None,
            "STORE": "signaltrace.stores.CacheStore",
            "STORE_OPTIONS": {"CACHE": "signaltrace"},
        },
    },
    "production, every request traced": {"DEBUG": False, "SIGNALTRACE": {"ENABLED": True}},
    "production, every request traced, no log event": {
        "DEBUG": False,
        "SIGNALTRACE": {"ENABLED": True, "LOG_LEVEL": None},
    },
}
#: The highest ``+ middleware / Django alone`` ratio of a profile, printed with PASS/FAIL.
TARGETS = {"production": 1.10}
#: Seed of ``random`` at the start of every sample (what SAMPLE_RATE draws): with it,
#: 2 of a sample's 200 requests are traced, the 1 % SAMPLE_RATE 0.01 asks for.
SEED = 7
_names = itertools.count()


def save_user(request: Any) -> HttpResponse:
    """The benchmarked view: one User saved, the seed's two post_save receivers run."""
    User.objects.create(username=f"bench{next(_names)}")
    return HttpResponse("ok")


urlpatterns = [path("save-user/", save_user)]
URLCONF = __name__


def configure_structlog() -> None:
    """JSON lines to /dev/null: structlog does its full work, nothing is printed."""
    devnull = open(os.devnull, "w")  # noqa: SIM115 - open for the whole run
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(file=devnull),
        cache_logger_on_first_use=True,  # as structlog recommends for production
    )


class Stack:
    """One test client whose handler holds one middleware chain."""

    def __init__(self, name: str, profile: dict[str, Any]) -> None:
        self.name = name
        self.settings = {
            **profile,
            "ROOT_URLCONF": URLCONF,
            "MIDDLEWARE": [MIDDLEWARE] if name == "middleware" else [],
        }
        self.client = Client()
        with override_settings(**self.settings):
            self.set_hook()
            self.get()  # loads the middleware chain once

    def set_hook(self) -> None:
        if self.name == "django":
            signaltrace.uninstall()
        else:
            signaltrace.install()

    def get(self) -> None:
        response = self.client.get("/save-user/")
        if response.status_code != 200:
            raise SystemExit(f"{self.name}: status {response.status_code}")

    def sample(self, n: int) -> float:
        """Mean ns per request over ``n`` requests."""
        with override_settings(**self.settings):
            self.set_hook()
            gc.collect()
            random.seed(SEED)
            t0 = time.perf_counter_ns()
            for _ in itertools.repeat(None, n):
                self.get()
            elapsed = time.perf_counter_ns() - t0
        return elapsed / n

    def check(self, profile_name: str) -> None:
        """The middleware stack really traced (a trace per request, the receivers in it),
        or, sampled, counted the receivers (METRICS)."""
        if self.name != "middleware":
            return
        expected = [
            "tests.testapp.signals.create_user_profile",
            "tests.testapp.signals.save_user_profile",
        ]
        buffer().clear()
        with override_settings(**self.settings):
            self.set_hook()
            config = get_config()
            if config["SAMPLE_RATE"] < 1:
                metrics.reset()
                self.get()
                counted = [row["receiver"] for row in metrics.snapshot()]
                if not set(expected) <= set(counted):
                    raise SystemExit(f"{profile_name}: receivers not counted: {counted}")
                return
            response = self.client.get("/save-user/")
        (trace,) = buffer().traces()
        names = [call.receiver_name for call in trace.calls]
        if names != expected:
            raise SystemExit(f"unexpected receivers in the trace: {names}")
        shown = "X-Signaltrace-Id" in response.headers
        if shown != (profile_name == "development"):
            raise SystemExit(f"{profile_name}: headers shown={shown}")

    def traced(self, n: int) -> int:
        """How many of a sample's ``n`` requests are traced (the same in every sample)."""
        with override_settings(**self.settings):
            self.set_hook()
            before = stats()["traces"]
            random.seed(SEED)
            for _ in itertools.repeat(None, n):
                self.get()
            return stats()["traces"] - before


def bench(profile_name: str, rounds: int, n: int, quiet: bool) -> dict[str, Any]:
    profile = PROFILES[profile_name]
    stacks = [Stack(name, profile) for name in STACKS]
    for stack in stacks:
        stack.check(profile_name)
    samples: dict[str, list[float]] = {name: [] for name in STACKS}
    for round_no in range(rounds):
        order = stacks if round_no % 2 == 0 else stacks[::-1]
        for stack in order:
            samples[stack.name].append(stack.sample(n))
        buffer().clear()
        if not quiet:
            print(f"  {profile_name}: round {round_no + 1}/{rounds}", file=sys.stderr, end="\r")
    if not quiet:
        print(file=sys.stderr)
    best = {name: min(values) for name, values in samples.items()}
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "profile": profile_name,
        "requests_per_sample": n,
        "traced_per_sample": stacks[-1].traced(n),
        "rounds": rounds,
        "min_ns": best,
        "median_ns": medians,
        "ratio_middleware_vs_idle": best["middleware"] / best["idle"],
        "ratio_middleware_vs_django": best["middleware"] / best["django"],
        "median_ratio_middleware_vs_idle": medians["middleware"] / medians["idle"],
        "median_ratio_middleware_vs_django": medians["middleware"] / medians["django"],
        "samples_ns": samples,
    }


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "| profile | traced | Django alone | hook installed | + middleware | middleware / hook "
        "| middleware / Django | (medians: / hook, / Django) | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        best = result["min_ns"]
        ratio = result["ratio_middleware_vs_django"]
        target = TARGETS.get(result["profile"])
        verdict = "—"
        if target is not None:
            verdict = f"≤ {target:.2f}× {'PASS' if ratio <= target else '**FAIL**'}"
        lines.append(
            f"| {result['profile']} | {result['traced_per_sample']} of {result['requests_per_sample']} "
            f"| {best['django'] / 1000:.1f} µs | {best['idle'] / 1000:.1f} µs "
            f"| {best['middleware'] / 1000:.1f} µs | {result['ratio_middleware_vs_idle']:.3f}× "
            f"| {ratio:.3f}× "
            f"| {result['median_ratio_middleware_vs_idle']:.3f}×, "
            f"{result['median_ratio_middleware_vs_django']:.3f}× | {verdict} |"
        )
    lines.append("")
    lines.append(
        f"Python {platform.python_version()}, Django {django.get_version()}, "
        f"min over {results[0]['rounds']} rounds of {results[0]['requests_per_sample']} "
        "requests (GET, view saves a User, 2 receivers)."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 40; 4 quick)")
    parser.add_argument("--requests", type=int, default=None, help="requests per sample")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--json", type=Path, help="write every figure and sample here")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    rounds = args.rounds or (4 if args.quick else 40)
    n = args.requests or (20 if args.quick else 200)
    call_command("migrate", verbosity=0)
    configure_structlog()
    results = [bench(name, rounds, n, args.quiet) for name in PROFILES]
    signaltrace.install()
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
