"""The in-memory ring buffer of recent request traces, read by the trace viewer.

One buffer per process (``buffer()``), holding the last ``BUFFER_SIZE``
finished traces, newest first. Nothing is written to a database; with several
worker processes, each has its own buffer.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING

from signaltrace.conf import get_config

if TYPE_CHECKING:
    from signaltrace.traces import Trace

__all__ = ["RingBufferSink", "buffer"]


class RingBufferSink:
    """A thread-safe, bounded map of trace id to :class:`~signaltrace.Trace`.

    :param size: how many traces to keep; the oldest is dropped first.

    .. versionadded:: 0.1.0
    """

    def __init__(self, size: int = 100) -> None:
        self._lock = threading.Lock()
        self._traces: OrderedDict[str, Trace] = OrderedDict()
        self.size = size

    @property
    def size(self) -> int:
        """How many traces the buffer keeps (setting it drops the oldest extras)."""
        return self._size

    @size.setter
    def size(self, size: int) -> None:
        if type(size) is not int or size < 0:
            raise ValueError(f"size must be an int >= 0, got {size!r}")
        with self._lock:
            self._size = size
            self._trim()

    def _trim(self) -> None:
        while len(self._traces) > self._size:
            self._traces.popitem(last=False)

    def emit(self, trace: Trace) -> None:
        """Keep ``trace`` under ``trace.meta["id"]`` (a new uuid4 hex if it has none)."""
        trace_id = trace.meta.get("id")
        if not isinstance(trace_id, str):
            trace_id = trace.meta["id"] = uuid.uuid4().hex
        with self._lock:
            self._traces[trace_id] = trace
            self._traces.move_to_end(trace_id)
            self._trim()

    def get(self, trace_id: str) -> Trace | None:
        """The trace with this id, or ``None`` if it was never kept or has been dropped."""
        with self._lock:
            return self._traces.get(trace_id)

    def traces(self) -> list[Trace]:
        """The kept traces, newest first."""
        with self._lock:
            return list(reversed(self._traces.values()))

    def clear(self) -> None:
        """Forget every kept trace."""
        with self._lock:
            self._traces.clear()

    def __len__(self) -> int:
        return len(self._traces)


_buffer = RingBufferSink(100)


def buffer() -> RingBufferSink:
    """The process-wide buffer the middleware fills and the viewer reads.

    Its size follows ``BUFFER_SIZE`` (resized, keeping the newest, when the
    setting changes).

    .. versionadded:: 0.1.0
    """
    size = get_config()["BUFFER_SIZE"]
    if size != _buffer.size and type(size) is int and size >= 0:  # else: left to the checks
        _buffer.size = size
    return _buffer
