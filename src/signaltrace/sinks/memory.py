"""The memory store as a sink: the last ``BUFFER_SIZE`` request traces of this process.

Kept for code written before stores existed: :func:`buffer` is the
process-wide :class:`~signaltrace.stores.MemoryStore` (the default store),
whatever ``STORE`` says, and :class:`RingBufferSink` is that class. The viewer
reads the configured store (:func:`signaltrace.stores.get_store`).
"""

from __future__ import annotations

from signaltrace.conf import get_config
from signaltrace.stores import MemoryStore, memory_store

__all__ = ["RingBufferSink", "buffer"]

#: The memory store's class, under its name from before stores.
RingBufferSink = MemoryStore

_buffer = memory_store()


def buffer() -> MemoryStore:
    """The process-wide memory store (the default store), which the middleware fills.

    Its size follows ``BUFFER_SIZE`` (resized, keeping the newest, when the
    setting changes).

    .. versionadded:: 0.1.0
    """
    return memory_store(get_config()["BUFFER_SIZE"])
