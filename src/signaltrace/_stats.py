"""signaltrace's own counters: what it dropped, what failed, what is still open.

Read them with :func:`signaltrace.stats` (this module's :func:`stats`). The
counts are kept here by the layers that see the events (the sinks count
traces, dropped events and their own failures and drops), and two values
are read where they already live: :data:`signaltrace.context.CAPTURING` and
:data:`signaltrace.context.FAILURES`. A higher layer that has a current value
to report (the sink queue's length) registers a reader with :func:`gauge`, so
this module imports nothing above :mod:`signaltrace.context`.

The module is private because its public function has the same name: an
import of a submodule ``signaltrace.stats`` would replace the package's
``stats`` function with the module.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Final

from . import context

__all__ = ["KEYS", "count", "gauge", "stats"]

#: The keys of :func:`stats`, in order.
KEYS: Final = (
    "traces",
    "dropped_events",
    "internal_failures",
    "sink_failures",
    "sink_overruns",
    "sink_skipped",
    "queue_dropped",
    "store_failures",
    "queued",
    "open_captures",
)

#: The keys counted here (the others are read from where they live).
COUNTED: Final = (
    "traces",
    "dropped_events",
    "sink_failures",
    "sink_overruns",
    "sink_skipped",
    "queue_dropped",
    "store_failures",
)

_lock = threading.Lock()
_counts: dict[str, int] = dict.fromkeys(COUNTED, 0)
_gauges: dict[str, Callable[[], int]] = {}


def count(key: str, n: int = 1) -> None:
    """Add ``n`` to the counter ``key`` (one of :data:`COUNTED`)."""
    with _lock:
        _counts[key] += n


def gauge(key: str, read: Callable[[], int]) -> None:
    """Report ``read()`` as ``key`` in :func:`stats` (0 until a reader is registered)."""
    _gauges[key] = read


def _read(key: str) -> int:
    read = _gauges.get(key)
    if read is None:
        return 0
    try:
        return int(read())
    except Exception:  # a counter must never be the thing that fails
        return 0


def stats() -> dict[str, int]:
    """signaltrace's own counters in this process, as a new dict of ints.

    - ``traces``: finished request traces handed to the sinks.
    - ``dropped_events``: events those traces did not record because they
      reached :setting:`MAX_EVENTS` (the sum of their
      :attr:`Trace.dropped <signaltrace.Trace.dropped>`).
    - ``internal_failures``: failures signaltrace caught and kept away from
      your code, each one counted (each *place* is logged once, on the
      ``signaltrace`` logger): a sink or a receiver of signaltrace's signals
      that raised, a failing ``SHOW_CALLBACK``, a trace the viewer could not
      show, and its own bugs.
    - ``sink_failures``: calls of a sink's ``emit()`` (or of signaltrace's
      announcements) that raised; also counted in ``internal_failures``.
    - ``sink_overruns``: calls of a sink's ``emit()`` that took longer than
      :setting:`SINK_TIMEOUT_MS`.
    - ``sink_skipped``: traces a sink was not given because it was cooling
      down after an overrun.
    - ``queue_dropped``: traces that never reached the background sinks
      because their queue was full (:setting:`SINK_QUEUE_SIZE`) or the worker
      thread could not be started.
    - ``store_failures``: calls of the trace store (:setting:`STORE`) that
      failed: saving a trace (Redis down, the table missing) or reading one
      for the viewer; also counted in ``internal_failures``.
    - ``queued``: traces waiting for the background sinks now.
    - ``open_captures``: captures open now, in any thread (request traces
      included).

    Counts start at zero when the process starts, and again in a forked child.

    .. versionadded:: 0.1.0
    """
    with _lock:
        counts = dict(_counts)
    counts["internal_failures"] = context.FAILURES
    counts["queued"] = _read("queued")
    counts["open_captures"] = context.CAPTURING
    return {key: counts[key] for key in KEYS}


def _after_fork() -> None:
    """In a forked child: its own counts, under a fresh lock."""
    global _lock, _counts
    _lock = threading.Lock()
    _counts = dict.fromkeys(COUNTED, 0)


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork)
