#!/usr/bin/env python
"""Measure signaltrace's overhead as ratios against plain Django, in one process.

Run from the repository root::

    python benchmarks/bench_overhead.py              # ~3 minutes
    python benchmarks/bench_overhead.py --quick      # ~10 seconds, smoke test
    python benchmarks/bench_overhead.py --json out.json --rounds 60

Five modes are measured side by side in the same process, alternating every
round (the hook is installed/uninstalled between them):

``plain``
    signaltrace uninstalled: ``Signal.send`` is Django's own function.
``idle``
    installed, nothing capturing, ``METRICS`` off.
``metrics``
    installed, nothing capturing, ``METRICS`` on: every receiver call is timed
    and counted (``signaltrace.metrics``), no trace is recorded.
``capture``
    installed, inside a fresh ``signaltrace.capture(max_events=10**9)`` per
    sample, with ``RECORD_ORIGIN`` on and ``RECORD_DB`` off (what production
    settings record: ``RECORD_DB`` follows ``DEBUG``); the trace is closed and
    discarded after the sample.
``capture_db``
    as ``capture``, with ``RECORD_DB`` on (what ``DEBUG`` records: per-receiver
    queries, ``atomic`` state and ``on_commit`` callbacks, and, as
    ``RECORD_SQL`` follows ``DEBUG``, on in the test settings, each receiver's
    statements).

Each figure is the **minimum** over the rounds of the per-operation time of
one sample, which is the estimator least disturbed by a noisy, shared machine.
See ``benchmarks/README.md`` for the method.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import models  # noqa: E402
from django.db.models.signals import post_save  # noqa: E402
from django.dispatch import Signal  # noqa: E402
from django.test import override_settings  # noqa: E402

import signaltrace  # noqa: E402
from tests.testapp.models import Backup  # noqa: E402

MODES = ("plain", "idle", "metrics", "capture", "capture_db")
#: The settings of each mode (``plain`` uninstalls the hook: its settings do not matter).
SETTINGS: dict[str, dict[str, Any]] = {
    "plain": {"ENABLED": True},
    "idle": {"ENABLED": True},
    "metrics": {"ENABLED": True, "METRICS": True},
    "capture": {"ENABLED": True, "RECORD_ORIGIN": True, "RECORD_DB": False},
    "capture_db": {"ENABLED": True, "RECORD_ORIGIN": True, "RECORD_DB": True},
}
CAPTURING = ("capture", "capture_db")
#: Column titles.
TITLES = {
    "plain": "plain",
    "idle": "idle",
    "metrics": "metrics",
    "capture": "capture",
    "capture_db": "capture + DB",
}


def _check(condition: bool, message: str) -> None:
    """Sanity checks that survive ``python -O`` (unlike ``assert``)."""
    if not condition:
        raise RuntimeError(f"benchmark sanity check failed: {message}")


BIG = 10**9  # max_events for benchmark captures: never hit the cap

# django.setup() ran signaltrace's AppConfig.ready(), which installs the hook
# (tests.settings enables it); take it out to find Django's own function.
signaltrace.uninstall()
_django_send = Signal.__dict__["send"]
_check(
    _django_send.__module__ == "django.dispatch.dispatcher", f"not Django's send: {_django_send}"
)

# -- benchmark-only senders and receivers ------------------------------------
# Dedicated model classes, used by nothing else, so post_save's per-sender
# receiver cache (post_save uses caching) holds exactly the receivers below.
# Unmanaged, in an app label that is not installed: no table, no migration.


class BenchOne(models.Model):  # noqa: DJ008 - never rendered
    class Meta:
        app_label = "signaltrace_bench"
        managed = False


class BenchFive(models.Model):  # noqa: DJ008 - never rendered
    class Meta:
        app_label = "signaltrace_bench"
        managed = False


class BenchNone(models.Model):  # noqa: DJ008 - never rendered
    """No receivers: post_save takes its cached NO_RECEIVERS exit."""

    class Meta:
        app_label = "signaltrace_bench"
        managed = False


def _make_receiver(i: int) -> Callable[..., None]:
    def receiver(sender: Any, **kwargs: Any) -> None:
        return None

    receiver.__qualname__ = f"bench_receiver_{i}"
    return receiver


RECEIVERS = [_make_receiver(i) for i in range(6)]
post_save.connect(RECEIVERS[0], sender=BenchOne, weak=False, dispatch_uid="bench-one-0")
for _i in range(1, 6):
    post_save.connect(RECEIVERS[_i], sender=BenchFive, weak=False, dispatch_uid=f"bench-five-{_i}")


def set_mode(mode: str) -> None:
    if mode == "plain":
        signaltrace.uninstall()
        _check(Signal.__dict__["send"] is _django_send, "uninstall() did not restore Django")
    else:
        signaltrace.install()
        _check(Signal.__dict__["send"] is not _django_send, "install() did not hook send")


# -- workloads ----------------------------------------------------------------


class Workload:
    """One thing to time: ``loop(n)`` runs it ``n`` times."""

    name: str
    #: recorded events (dispatches + receiver calls) per iteration, or None
    #: when not known exactly up front.
    events_per_iter: int | None = None

    def loop(self, n: int) -> None:
        raise NotImplementedError

    def after_sample(self) -> None:
        """Housekeeping outside the timed region."""


class Dispatch(Workload):
    def __init__(self, sender: type, receivers: int) -> None:
        self.sender = sender
        self.instance = sender(pk=1)
        self.receivers = receivers
        if receivers:
            self.name = f"post_save.send, {receivers} receiver{'s' if receivers > 1 else ''}"
            self.events_per_iter = 1 + receivers
        else:  # not recorded: RECORD_EMPTY is off
            self.name = "post_save.send, no receivers for the sender"
            self.events_per_iter = 0
        live = post_save._live_receivers(sender)  # type: ignore[attr-defined]
        _check(len(live[0]) == receivers, f"expected {receivers} receivers, got {live}")
        _check(not live[1], f"unexpected async receivers: {live}")

    def loop(self, n: int) -> None:
        send = post_save.send  # looked up once per sample: the mode is fixed
        sender = self.sender
        instance = self.instance
        for _ in itertools.repeat(None, n):
            send(
                sender=sender,
                instance=instance,
                created=True,
                update_fields=None,
                raw=False,
                using="default",
            )


class UserCycle(Workload):
    name = "User create + save + delete (SQLite)"

    def __init__(self) -> None:
        self.counter = itertools.count()

    def loop(self, n: int) -> None:
        names = self.counter
        create = User.objects.create
        for _ in itertools.repeat(None, n):
            user = create(username=f"bench{next(names)}")
            user.save()
            user.delete()

    def after_sample(self) -> None:
        Backup.objects.all().delete()


def run_sample(workload: Workload, mode: str, n: int) -> float:
    """ns per iteration of one sample of ``n`` iterations in ``mode``."""
    set_mode(mode)
    with override_settings(SIGNALTRACE=SETTINGS[mode]):
        gc.collect()
        if mode in CAPTURING:
            with signaltrace.capture(max_events=BIG) as trace:
                t0 = time.perf_counter_ns()
                workload.loop(n)
                elapsed = time.perf_counter_ns() - t0
            _check(trace.dropped == 0, f"trace hit its cap: {trace!r}")
            if workload.events_per_iter is not None:
                _check(
                    trace.events == n * workload.events_per_iter,
                    f"{trace!r}, expected {n} iterations",
                )
            else:
                _check(trace.events > 0, f"nothing recorded: {trace!r}")
            del trace  # discard: nothing piles up across rounds
        else:
            t0 = time.perf_counter_ns()
            workload.loop(n)
            elapsed = time.perf_counter_ns() - t0
    workload.after_sample()
    return elapsed / n


def calibrate(workload: Workload, target_s: float) -> int:
    """Iterations per sample so that one ``plain`` sample takes ~``target_s``.

    Each trial is the fastest of three, so one preempted sample on a loaded
    machine does not shrink the samples.
    """
    n = 10
    while True:
        per_op = min(run_sample(workload, "plain", n) for _ in range(3))
        if per_op * n >= target_s * 1e9 * 0.2 or n >= 10**7:
            return max(1, int(target_s * 1e9 / per_op))
        n *= 10


def bench_timing(
    workloads: list[tuple[Workload, float]], rounds: int, progress: bool
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    plan = []
    for workload, target_s in workloads:
        n = calibrate(workload, target_s)
        for mode in MODES:  # warm-up: caches, code paths, SQLite pages
            run_sample(workload, mode, max(1, n // 10))
        plan.append((workload, n))
        results[workload.name] = {"iterations_per_sample": n, "samples": {m: [] for m in MODES}}
    for r in range(rounds):
        # Rotate the mode order every round so that no mode always runs first
        # (or right after a capture's garbage was freed).
        order = MODES[r % len(MODES) :] + MODES[: r % len(MODES)]
        for workload, n in plan:
            for mode in order:
                results[workload.name]["samples"][mode].append(run_sample(workload, mode, n))
        if progress:
            print(f"\r  round {r + 1}/{rounds}", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    for entry in results.values():
        samples = entry["samples"]
        best = {m: min(samples[m]) for m in MODES}
        medians = {m: statistics.median(samples[m]) for m in MODES}
        entry["min_ns"] = best
        entry["median_ns"] = medians
        entry["ratio"] = {m: best[m] / best["plain"] for m in MODES}
        entry["median_ratio"] = {m: medians[m] / medians["plain"] for m in MODES}
    return results


# -- memory -------------------------------------------------------------------


def _traced_bytes(
    workload: Dispatch, dispatches: int, materialise: bool
) -> tuple[int, int, list[tuple[str, int]]]:
    """Bytes retained by one open trace holding ``dispatches`` dispatches.

    Returns (raw bytes while recording, extra bytes once ``trace.calls`` is
    read, top allocation sites of the raw records).
    """
    set_mode("idle")
    gc.collect()
    tracemalloc.start()
    try:
        flt = [tracemalloc.Filter(False, tracemalloc.__file__)]
        with signaltrace.capture(max_events=BIG) as trace:
            gc.collect()
            before = tracemalloc.take_snapshot().filter_traces(flt)
            workload.loop(dispatches)
            gc.collect()
            after = tracemalloc.take_snapshot().filter_traces(flt)
        _check(trace.dropped == 0, f"trace hit its cap: {trace!r}")
        _check(trace.events == dispatches * (1 + workload.receivers), f"unexpected {trace!r}")
        stats = after.compare_to(before, "lineno")
        raw = sum(s.size_diff for s in stats)
        top = [
            (f"{Path(s.traceback[0].filename).name}:{s.traceback[0].lineno}", s.size_diff)
            for s in stats[:6]
        ]
        extra = 0
        if materialise:
            del before, stats
            gc.collect()
            mid = tracemalloc.get_traced_memory()[0]
            calls = trace.calls
            _check(len(calls) == dispatches * workload.receivers, f"{len(calls)} calls read")
            gc.collect()
            extra = tracemalloc.get_traced_memory()[0] - mid
            del calls
        del trace
    finally:
        tracemalloc.stop()
    return raw, extra, top


def bench_memory(one: Dispatch, five: Dispatch, calls: int) -> dict[str, Any]:
    # Warm the caches (receiver descriptions, origin code cache, ...) first.
    set_mode("idle")
    with signaltrace.capture(max_events=BIG):
        one.loop(10)
        five.loop(10)
    d5 = calls // 5
    d1 = calls
    raw5, mat5, top5 = _traced_bytes(five, d5, materialise=True)
    raw1, _, _ = _traced_bytes(one, d1, materialise=False)
    per_disp_5 = raw5 / d5  # one dispatch + 5 calls
    per_disp_1 = raw1 / d1  # one dispatch + 1 call
    marginal_call = (per_disp_5 - per_disp_1) / 4
    marginal_dispatch = per_disp_1 - marginal_call
    return {
        "receiver_calls": d5 * 5,
        "dispatches": d5,
        "raw_bytes_total": raw5,
        "bytes_per_call": raw5 / (d5 * 5),
        "bytes_per_dispatch": per_disp_5,
        "marginal_bytes_per_call": marginal_call,
        "marginal_bytes_per_dispatch": marginal_dispatch,
        "materialised_extra_bytes_per_call": mat5 / (d5 * 5),
        "one_receiver": {
            "dispatches": d1,
            "raw_bytes_total": raw1,
            "bytes_per_dispatch": per_disp_1,
        },
        "top_sites": top5,
    }


# -- report -------------------------------------------------------------------

#: workload -> {mode: highest ratio to plain}; printed with PASS/FAIL.
TARGETS: dict[str, dict[str, float]] = {
    "post_save.send, no receivers for the sender": {"idle": 1.02},
    "post_save.send, 1 receiver": {"idle": 1.02},
    "post_save.send, 5 receivers": {
        "idle": 1.02,
        "metrics": 1.4,
        "capture": 1.8,
        "capture_db": 2.3,
    },
    # The save workload's target is for the settings of the dispatch targets
    # (RECORD_DB off); capture + DB (DEBUG's RECORD_DB and RECORD_SQL) is shown.
    "User create + save + delete (SQLite)": {"idle": 1.02, "capture": 1.04},
}


def _ns(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:,.2f} ms"
    if value >= 1e4:
        return f"{value / 1e3:,.1f} µs"
    return f"{value:,.0f} ns"


def _verdicts(name: str, ratios: dict[str, float]) -> str:
    parts = []
    for mode, target in TARGETS.get(name, {}).items():
        ok = ratios[mode] <= target
        parts.append(f"{TITLES[mode]} ≤ {target:.2f}× {'PASS' if ok else '**FAIL**'}")
    return "; ".join(parts) or "—"


def render(
    timing: dict[str, dict[str, Any]], memory: dict[str, Any] | None, meta: dict[str, Any]
) -> str:
    shown = MODES[1:]
    lines = [
        f"signaltrace overhead: {meta['rounds']} rounds, minimum per mode "
        f"(Python {meta['python']}, Django {meta['django']}, signaltrace {meta['signaltrace']}"
        f"{', git ' + meta['git'] if meta['git'] else ''})",
        "",
        "Ratio to plain Django: minimum / minimum, and [median / median]:",
        "",
        "| workload | plain | " + " | ".join(TITLES[m] for m in shown) + " | target |",
        "|---|---:|" + "---:|" * len(shown) + "---|",
    ]
    for name, entry in timing.items():
        ratio, median = entry["ratio"], entry["median_ratio"]
        cells = [f"{ratio[m]:.3f}× [{median[m]:.2f}×]" for m in shown]
        lines.append(
            f"| {name} | {_ns(entry['min_ns']['plain'])} | {' | '.join(cells)} "
            f"| {_verdicts(name, ratio)} |"
        )
    lines += [
        "",
        "Time per iteration (minimum over the rounds):",
        "",
        "| workload | " + " | ".join(TITLES[m] for m in MODES) + " | iterations per sample |",
        "|---|" + "---:|" * (len(MODES) + 1),
    ]
    for name, entry in timing.items():
        best = entry["min_ns"]
        lines.append(
            f"| {name} | {' | '.join(_ns(best[m]) for m in MODES)} "
            f"| {entry['iterations_per_sample']:,} |"
        )
    if memory is not None:
        lines += [
            "",
            "| memory (one open trace, tracemalloc) | bytes |",
            "|---|---:|",
            f"| per recorded receiver call ({memory['receiver_calls']:,} calls in "
            f"{memory['dispatches']:,} 5-receiver dispatches: total / calls) "
            f"| {memory['bytes_per_call']:,.0f} |",
            f"| per dispatch (same trace: total / dispatches, includes its 5 calls) "
            f"| {memory['bytes_per_dispatch']:,.0f} |",
            f"| marginal per receiver call (5- vs 1-receiver traces) "
            f"| {memory['marginal_bytes_per_call']:,.0f} |",
            f"| marginal per dispatch, without its calls "
            f"| {memory['marginal_bytes_per_dispatch']:,.0f} |",
            f"| extra per call once `trace.calls` is read (materialised records) "
            f"| {memory['materialised_extra_bytes_per_call']:,.0f} |",
            "",
            "Largest allocation sites of the raw records (5-receiver trace): "
            + ", ".join(
                f"{site} {size / memory['receiver_calls']:,.0f} B/call"
                for site, size in memory["top_sites"]
            ),
        ]
    return "\n".join(lines)


def _git_revision() -> str | None:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head}{'+dirty src' if dirty else ''}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds per workload (default 150, quick 6)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="short samples, few rounds (smoke test)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the numbers to PATH as JSON")
    parser.add_argument(
        "--memory-calls", type=int, default=20_000, help="receiver calls for the memory test"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc measurement")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)

    rounds = args.rounds or (6 if args.quick else 150)
    scale = 0.2 if args.quick else 1.0
    started = time.perf_counter()

    call_command("migrate", verbosity=0, interactive=False)
    one = Dispatch(BenchOne, 1)
    five = Dispatch(BenchFive, 5)
    workloads: list[tuple[Workload, float]] = [
        # Target seconds per plain sample: short samples, many rounds, so that every
        # mode gets its share of the quiet moments of a shared machine.
        (Dispatch(BenchNone, 0), 0.01 * scale),
        (one, 0.02 * scale),
        (five, 0.02 * scale),
        (UserCycle(), 0.05 * scale),
    ]
    if not args.quiet:
        print(
            f"timing {len(workloads)} workloads x {len(MODES)} modes x {rounds} rounds",
            file=sys.stderr,
        )
    timing = bench_timing(workloads, rounds, progress=not args.quiet)
    memory = None
    if not args.no_memory:
        if not args.quiet:
            print("memory ...", file=sys.stderr)
        memory = bench_memory(one, five, args.memory_calls)
    set_mode("plain")

    meta = {
        "rounds": rounds,
        "quick": args.quick,
        "python": platform.python_version(),
        "django": django.get_version(),
        "signaltrace": signaltrace.__version__,
        "git": _git_revision(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "seconds": round(time.perf_counter() - started, 1),
        "estimator": "min over rounds of ns per iteration",
        "targets": TARGETS,
    }
    print(render(timing, memory, meta))
    if not args.quiet:
        print(f"\n({meta['seconds']} s)", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"meta": meta, "timing": timing, "memory": memory}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
