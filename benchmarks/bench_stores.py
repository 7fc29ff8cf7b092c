#!/usr/bin/env python
"""Measure what each store (``STORE``) costs per request, and what it costs its sink worker.

Run from the repository root (Debian's ``redis-server`` must be installed; the
script starts its own on a free port, and uses a SQLite file in a temporary
directory)::

    python benchmarks/bench_stores.py              # about a minute
    python benchmarks/bench_stores.py --quick      # a few seconds, smoke test
    python benchmarks/bench_stores.py --json out.json --rounds 40

The request is a Django test-client ``GET`` whose view sends a signal whose
receiver sends another (two dispatches, two receiver calls), in the
``production`` profile (``DEBUG`` off, ``ENABLED`` on, no structlog event, so
the store is the only sink). Four stacks, alternating every round:

``idle``
    the hook installed, no middleware: the baseline.
``memory``
    ``SignalTraceMiddleware`` with the default ``MemoryStore``: the trace is
    kept in the request (a dict insertion).
``cache (Redis)``
    ``CacheStore`` on Django's ``RedisCache`` and a real ``redis-server``.
``database (SQLite)``
    ``DatabaseStore`` on a SQLite file.

For each stack two things are timed:

*request path*
    the mean time per request while the sink worker is held (a job at the head
    of its queue waits for a gate): what the request itself pays, enqueueing
    the trace included, with nothing else competing for the GIL.
*worker per trace*
    once the gate opens, the time the worker takes to write the queued traces,
    divided by their number: JSON, listing and the store's I/O, off the request.

A third figure, *request with the worker running*, times requests while the
worker writes the previous ones in the same process (it competes for the GIL:
the realistic case on a busy single-process server).

Each figure is the **minimum** over the rounds of the sample means.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
_TMP = tempfile.TemporaryDirectory(prefix="signaltrace-bench-")

import django  # noqa: E402
from django.conf import settings  # noqa: E402

# A SQLite file, not the test settings' in-memory database: the sink worker's
# own connection must see the same database as the request's.
settings.DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(Path(_TMP.name) / "bench.sqlite3"),
        "OPTIONS": {"timeout": 20},
    }
}
django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

import signaltrace  # noqa: E402
from signaltrace import sinks, stores  # noqa: E402
from signaltrace.conf import get_config  # noqa: E402
from tests.services import redis_server  # noqa: E402

MIDDLEWARE = "signaltrace.middleware.SignalTraceMiddleware"
URL = "/signal/bench/"
BASE = {"DEBUG": False}
TRACING = {"ENABLED": True, "LOG_LEVEL": None, "SINK_QUEUE_SIZE": 100_000}


class Gate:
    """A sink that holds the worker until :meth:`open` (the request path alone is timed)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.entered = threading.Event()

    def emit(self, trace: signaltrace.Trace) -> None:
        self.entered.set()
        self.event.wait(60)


class Stack:
    """One test client (its handler loads its middleware once) and one store."""

    def __init__(self, name: str, signaltrace_settings: dict[str, Any] | None) -> None:
        self.name = name
        self.settings: dict[str, Any] = {
            **BASE,
            "MIDDLEWARE": [MIDDLEWARE] if signaltrace_settings is not None else [],
        }
        if signaltrace_settings is not None:
            self.settings["SIGNALTRACE"] = {**TRACING, **signaltrace_settings}
        self.client = Client()
        with override_settings(**self.settings):
            self.get()
            self.check()

    def get(self) -> None:
        response = self.client.get(URL)
        if response.status_code != 200:
            raise SystemExit(f"{self.name}: status {response.status_code}")

    def check(self) -> None:
        """The stack really keeps the traces where it says (idle: none)."""
        if "SIGNALTRACE" not in self.settings:
            return
        store = stores.get_store()
        sinks.flush(30)  # the warm-up request's trace first
        store.clear()
        self.get()
        if not sinks.flush(30):
            raise SystemExit(f"{self.name}: the sink worker did not drain")
        entries = store.recent()
        if len(entries) != 1 or entries[0].calls != 2:
            raise SystemExit(f"{self.name}: the store kept {entries}")
        if signaltrace.stats()["store_failures"]:
            raise SystemExit(f"{self.name}: store failures {signaltrace.stats()}")
        store.clear()

    def timed(self, n: int) -> float:
        gc.collect()
        t0 = time.perf_counter_ns()
        for _ in itertools.repeat(None, n):
            self.get()
        return (time.perf_counter_ns() - t0) / n

    def sample(self, n: int) -> tuple[float, float, float]:
        """``(request path, worker per trace, request with the worker running)`` in ns."""
        with override_settings(**self.settings):
            gate = Gate()
            if "SIGNALTRACE" in self.settings:
                sinks._enqueue(sample_trace(), get_config(), (("gate", gate),), announce=False)
                gate.entered.wait(10)
            request_path = self.timed(n)
            t0 = time.perf_counter_ns()
            gate.event.set()
            if not sinks.flush(120):
                raise SystemExit(f"{self.name}: the sink worker did not drain")
            worker = (time.perf_counter_ns() - t0) / n if "SIGNALTRACE" in self.settings else 0.0
            running = self.timed(n)
            sinks.flush(120)
        return request_path, worker, running


def sample_trace() -> signaltrace.Trace:
    with signaltrace.capture() as trace:
        pass
    return trace


def bench(rounds: int, n: int, redis_url: str, quiet: bool) -> dict[str, Any]:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    }
    stacks = [
        Stack("idle", None),
        Stack("memory", {}),
        Stack("cache (Redis)", {"STORE": "signaltrace.stores.CacheStore"}),
        Stack("database (SQLite)", {"STORE": "signaltrace.stores.DatabaseStore"}),
    ]
    samples: dict[str, list[tuple[float, float, float]]] = {s.name: [] for s in stacks}
    for round_no in range(rounds):
        for stack in stacks if round_no % 2 == 0 else stacks[::-1]:
            samples[stack.name].append(stack.sample(n))
        if not quiet:
            print(f"  round {round_no + 1}/{rounds}", file=sys.stderr, end="\r")
    if not quiet:
        print(file=sys.stderr)
    figures = {}
    for name, values in samples.items():
        columns = list(zip(*values, strict=True))
        figures[name] = {
            "request_path_ns": min(columns[0]),
            "worker_per_trace_ns": min(columns[1]),
            "request_with_worker_ns": min(columns[2]),
            "median_request_path_ns": statistics.median(columns[0]),
        }
    return {
        "python": platform.python_version(),
        "django": django.get_version(),
        "rounds": rounds,
        "requests_per_sample": n,
        "figures": figures,
        "samples_ns": samples,
    }


def report(result: dict[str, Any]) -> str:
    figures = result["figures"]
    idle = figures["idle"]["request_path_ns"]
    memory = figures["memory"]["request_path_ns"]
    lines = [
        "| stack | request path | vs memory | request, worker running | worker per trace |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, figure in figures.items():
        path = figure["request_path_ns"]
        lines.append(
            f"| {name} | {path / 1000:.1f} µs (+{(path - idle) / 1000:.1f}) "
            f"| {path / memory:.3f}× "
            f"| {figure['request_with_worker_ns'] / 1000:.1f} µs "
            f"| {figure['worker_per_trace_ns'] / 1000:.1f} µs |"
        )
    lines.append("")
    lines.append(
        f"Python {result['python']}, Django {result['django']}, min over {result['rounds']} "
        f"rounds of {result['requests_per_sample']} requests (GET, 2 dispatches, 2 receiver "
        "calls; production profile, no log event). `+x` is the cost over `idle`."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 20; 3 quick)")
    parser.add_argument("--requests", type=int, default=None, help="requests per sample")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--json", type=Path, help="write every figure and sample here")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 20)
    n = args.requests or (20 if args.quick else 200)
    call_command("migrate", verbosity=0)
    signaltrace.install()
    with redis_server(Path(_TMP.name)) as url:
        result = bench(rounds, n, url, args.quiet)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
