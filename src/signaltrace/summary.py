"""Aggregates of a request trace, shared by the headers, the log event and the viewer."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, NamedTuple

from signaltrace.records import ReceiverCall

if TYPE_CHECKING:
    from signaltrace.traces import Trace

__all__ = ["Summary", "summarize"]

#: How many of the slowest receiver calls a summary names.
SLOWEST: int = 3

_cache: weakref.WeakKeyDictionary[Trace, tuple[float, Summary]] = weakref.WeakKeyDictionary()


class Summary(NamedTuple):
    """Counts, time in receivers, the slowest and failed calls of one trace."""

    dispatches: int
    calls: int
    receiver_time_ns: int
    slowest: list[ReceiverCall]
    slow: list[ReceiverCall]
    errors: list[ReceiverCall]
    receivers: list[str]
    signals: list[str]
    dropped: int

    @property
    def problem(self) -> bool:
        """Whether a receiver raised or was slower than ``SLOW_MS``."""
        return bool(self.errors or self.slow)


def _duration(call: ReceiverCall) -> int:
    return call.duration_ns or 0


def summarize(trace: Trace, slow_ms: float) -> Summary:
    """Summarise ``trace`` (cached once it is closed); calls of ``slow_ms`` or more are slow."""
    cached = _cache.get(trace)
    if cached is not None and cached[0] == slow_ms:
        return cached[1]
    calls = trace.calls
    dispatches = trace.dispatches
    slow_ns = slow_ms * 1_000_000
    slow = []
    errors = []
    receivers: dict[str, None] = {}
    for call in calls:
        if slow_ns and (call.duration_ns or 0) >= slow_ns:
            slow.append(call)
        if call.error is not None:
            errors.append(call)
        receivers[call.receiver_name] = None
    summary = Summary(
        len(dispatches),
        len(calls),
        trace.receiver_time_ns,
        sorted(calls, key=_duration, reverse=True)[:SLOWEST],
        slow,
        errors,
        list(receivers),
        list(dict.fromkeys(dispatch.signal_name for dispatch in dispatches)),
        trace.dropped,
    )
    if trace.closed:
        _cache[trace] = (slow_ms, summary)
    return summary
