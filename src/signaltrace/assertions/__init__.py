"""The assertion engine behind ``Trace.assert_*`` and :mod:`signaltrace.testing`.

- :mod:`.engine`: the assertions and :exc:`SignalTraceAssertionError`;
- :mod:`.matching`: how recorded kwargs compare with what a test expects;
- :mod:`.text`: the numbered tree and the phrases of a failure message;
- :mod:`.hints`: near-miss hints (another sender, a receiver not connected);
- :mod:`.lookup`: what is connected and what a dotted path names, for the hints;
- :mod:`.snapshot`: ``assert_matches_snapshot`` and the snapshot files.
"""

from __future__ import annotations

from .engine import (
    SignalTraceAssertionError,
    assert_called,
    assert_called_once,
    assert_max_queries,
    assert_no_errors,
    assert_no_skipped,
    assert_no_task_before_commit,
    assert_not_called,
    assert_not_sent,
    assert_order,
    assert_sent,
    calls_of,
)
from .snapshot import assert_matches_snapshot

__all__ = [
    "SignalTraceAssertionError",
    "assert_called",
    "assert_called_once",
    "assert_matches_snapshot",
    "assert_max_queries",
    "assert_no_errors",
    "assert_no_skipped",
    "assert_no_task_before_commit",
    "assert_not_called",
    "assert_not_sent",
    "assert_order",
    "assert_sent",
    "calls_of",
]
