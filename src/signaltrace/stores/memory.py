"""``MemoryStore``: the last ``BUFFER_SIZE`` traces, kept in this process (the default).

The traces are kept as they are, live :class:`~signaltrace.Trace` objects:
nothing is serialised and nothing is written anywhere, so saving costs a dict
insertion and is done in the request. With several worker processes each has
its own store, and the viewer shows the traces of the process that answers
it; a shared store (:class:`~signaltrace.stores.CacheStore`,
:class:`~signaltrace.stores.DatabaseStore`) shows every process's.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .base import Listing, listing_of, option_errors, valid_id

if TYPE_CHECKING:
    from signaltrace.traces import Trace

__all__ = ["MemoryStore"]


class MemoryStore:
    """A thread-safe, bounded map of trace id to :class:`~signaltrace.Trace`, in this process.

    It is also a sink (``emit`` is :meth:`save`): the one the middleware
    fills in the request when it is the configured store.

    :param size: how many traces to keep; the oldest is dropped first.
    :param options: none are accepted (``STORE_OPTIONS`` must be empty).

    .. versionadded:: 0.1.0
    """

    #: Written in the request: saving is a dict insertion, no I/O.
    in_process: ClassVar[bool] = True

    def __init__(self, size: int = 100, options: Mapping[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._traces: OrderedDict[str, Trace] = OrderedDict()
        self.size = size

    @classmethod
    def option_errors(cls, options: Mapping[str, Any]) -> list[str]:
        """What is wrong with ``STORE_OPTIONS`` for this store: it takes none."""
        return option_errors(options, {})

    @property
    def size(self) -> int:
        """How many traces the store keeps (setting it drops the oldest extras)."""
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

    def save(self, trace: Trace) -> None:
        """Keep ``trace`` under ``trace.trace_id``, dropping the oldest past :attr:`size`."""
        trace_id = trace.trace_id
        with self._lock:
            self._traces[trace_id] = trace
            self._traces.move_to_end(trace_id)
            self._trim()

    def emit(self, trace: Trace) -> None:
        """As a sink: :meth:`save` (the middleware hands it every finished request trace)."""
        self.save(trace)

    def get(self, trace_id: str) -> Trace | None:
        """The trace with this id, or ``None`` if it was never kept or has been dropped."""
        with self._lock:
            return self._traces.get(trace_id)

    def traces(self) -> list[Trace]:
        """The kept traces themselves, newest first."""
        with self._lock:
            return list(reversed(self._traces.values()))

    def recent(self, *, kind: str | None = None) -> list[Listing]:
        """The kept traces, newest first, as list entries; only those of ``kind`` if given.

        A trace whose entry cannot be worked out (its records are broken) is
        an entry with ``error`` set, so the viewer can say so.
        """
        return [_listing(trace) for trace in self.traces() if kind is None or trace.kind == kind]

    def clear(self) -> None:
        """Forget every kept trace."""
        with self._lock:
            self._traces.clear()

    def __len__(self) -> int:
        return len(self._traces)


def _listing(trace: Trace) -> Listing:
    try:
        return listing_of(trace)
    except Exception as err:
        trace_id = valid_id(getattr(trace, "trace_id", None))
        try:
            return Listing(trace_id, started_at=trace.started_at, error=err)
        except Exception:
            return Listing(trace_id, error=err)
