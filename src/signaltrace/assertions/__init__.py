"""The assertion engine behind ``Trace.assert_*`` and :mod:`signaltrace.testing`.

- :mod:`.engine`: the assertions and :exc:`SignalTraceAssertionError`;
- :mod:`.matching`: how recorded kwargs compare with what a test expects;
- :mod:`.text`: the numbered tree and the phrases of a failure message;
- :mod:`.hints`: near-miss hints (another sender, a receiver not connected);
- :mod:`.lookup`: what is connected and what a dotted path names, for the hints.
"""

from __future__ import annotations

from .engine import (
    SignalTraceAssertionError,
    assert_called,
    assert_called_once,
    assert_no_errors,
    assert_no_skipped,
    assert_not_called,
    assert_not_sent,
    assert_order,
    assert_sent,
    calls_of,
)

__all__ = [
    "SignalTraceAssertionError",
    "assert_called",
    "assert_called_once",
    "assert_no_errors",
    "assert_no_skipped",
    "assert_not_called",
    "assert_not_sent",
    "assert_order",
    "assert_sent",
    "calls_of",
]
