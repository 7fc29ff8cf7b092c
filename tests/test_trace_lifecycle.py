"""An atomic trace lifecycle: nothing lands in a trace after it closed.

The bug: a dispatch checked that its trace was open, built its labels, and only
then appended itself; a ``capture(all_threads=True)`` closing in between got a
dispatch after close, whose signal was never resolved, and reading the trace
raised ``TypeError`` (6 runs in 2,000). :meth:`Trace.admit` and
:meth:`Trace.close` now share one lock.

The stress test passes deterministically with that fix (every assertion is an
invariant, none a timing); it catches the old race only with some probability.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from typing import Any

import pytest
from django.dispatch import Signal

import signaltrace
from signaltrace import _hotpath, context
from signaltrace.records import SkippedDispatch
from signaltrace.traces import Trace

busy = Signal()
nested = Signal()
STOP = threading.Event()


def on_busy(sender: Any, **kwargs: Any) -> None:
    nested.send(sender=sender, depth=1)


def on_nested(sender: Any, **kwargs: Any) -> None:
    pass


def fails(sender: Any, **kwargs: Any) -> None:
    raise ValueError("swallowed")


def dispatch_until_stopped(robust: bool) -> None:
    n = 0
    while not STOP.is_set():
        n += 1
        if robust:
            busy.send_robust(sender="robust", n=n)
            continue
        with contextlib.suppress(ValueError):  # the failing receiver stops send()
            busy.send(sender="plain", n=n)


def check_consistent(trace: Trace) -> None:
    """Reading never raises; a finished dispatch has only finished calls."""
    dispatches = trace.dispatches
    assert len(dispatches) == len(trace.raw)
    for dispatch in dispatches:
        assert isinstance(dispatch.signal_name, str)
        if dispatch.duration_ns is not None:
            assert all(call.outcome != "running" for call in dispatch.calls), dispatch
    for call in trace.calls:
        if call.outcome == "running":
            assert call.dispatch.duration_ns is None
    assert trace.render()
    json.dumps(trace.to_dict())


@pytest.fixture
def dispatching_threads():
    log = logging.getLogger("django.dispatch")  # send_robust logs every failure
    log.disabled = True
    # Switch threads every microsecond instead of every 5 ms: interleavings a
    # race needs (between checking a trace is open and appending to it) become
    # likely. The assertions do not depend on it.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    busy.connect(on_busy)
    busy.connect(fails)
    nested.connect(on_nested)
    STOP.clear()
    threads = [
        threading.Thread(target=dispatch_until_stopped, args=(i % 2 == 1,), daemon=True)
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    try:
        yield threads
    finally:
        STOP.set()
        for thread in threads:
            thread.join(timeout=10)
        busy.disconnect(on_busy)
        busy.disconnect(fails)
        nested.disconnect(on_nested)
        log.disabled = False
        sys.setswitchinterval(interval)


def test_nothing_lands_after_close(dispatching_threads):
    """Many short all-threads captures while other threads dispatch all the time."""
    closed: list[tuple[Trace, int, int, int, int]] = []
    runs = 0
    recorded = False
    # A fixed number of runs, not a time budget: a loaded machine runs the same
    # test, only slower. Past the minimum, go on until some dispatch landed.
    while runs < 300 or (not recorded and runs < 50_000):
        runs += 1
        with signaltrace.capture(all_threads=True, max_events=50 + runs % 200) as trace:
            if runs % 3:
                time.sleep(0)  # let the other threads in while it is open
        frozen = (len(trace.raw), len(trace.skipped), trace.events, trace.dropped)
        time.sleep(0)  # and right after it closed
        assert (len(trace.raw), len(trace.skipped), trace.events, trace.dropped) == frozen
        check_consistent(trace)
        closed.append((trace, *frozen))
        recorded = recorded or frozen[0] > 0
    assert recorded, "no dispatch recorded at all"

    STOP.set()
    for thread in dispatching_threads:
        thread.join(timeout=10)
        assert not thread.is_alive()
    for trace, raw, skipped, events, dropped in closed:
        # Everything admitted has finished now, and nothing was added since close.
        assert (len(trace.raw), len(trace.skipped), trace.events, trace.dropped) == (
            raw,
            skipped,
            events,
            dropped,
        )
        check_consistent(trace)
        assert all(dispatch.duration_ns is not None for dispatch in trace.dispatches)
        assert all(call.outcome != "running" for call in trace.calls)


def test_a_closed_trace_refuses_every_append():
    """After close, admit() refuses dispatches and skipped operations, and counts nothing."""
    nested.connect(on_nested)
    try:
        with signaltrace.capture(max_events=3) as trace:
            cursor = context.CURSOR.get()
            nested.send(sender="x")
    finally:
        nested.disconnect(on_nested)
    assert trace.closed
    assert len(trace.raw) == 1
    frozen = (list(trace.raw), list(trace.skipped), trace.events, trace.dropped)
    skipped = SkippedDispatch("update", "auth.User", ("post_save",), ("r",), None, 0)

    assert trace.admit([], 1) is False
    assert trace.admit(skipped, 1, skipped=True) is False
    assert trace.admit([], 10_000) is False  # would have been a drop while open
    assert _hotpath.admit((trace,), 1, []) == ()
    assert _hotpath.admit((trace, trace), 1, []) == ()
    # A flow that still holds the cursor from before close (another thread, a task).
    assert _hotpath.open_dispatch(busy, "x", {"n": 1}, "send", cursor, 1) is None
    nested.send(sender="after")
    assert (list(trace.raw), list(trace.skipped), trace.events, trace.dropped) == frozen
    assert trace.truncated is False

    trace.close()  # closing again changes nothing either
    assert (list(trace.raw), list(trace.skipped), trace.events, trace.dropped) == frozen


def test_a_truncated_closed_trace_stops_counting_drops():
    nested.connect(on_nested)
    try:
        with signaltrace.capture(max_events=2) as trace:
            cursor = context.CURSOR.get()
            nested.send(sender="x")  # 1 dispatch + 1 call: fits
            nested.send(sender="x")  # dropped: the trace is truncated
    finally:
        nested.disconnect(on_nested)
    assert trace.truncated
    dropped, truncation = trace.dropped, trace.truncated_at
    assert truncation is not None
    assert _hotpath.open_dispatch(busy, "x", {}, "send", cursor, 0) is None
    assert trace.admit([], 1) is False
    assert (trace.dropped, trace.truncated_at) == (dropped, truncation)
