"""Stores: where finished traces are kept for the trace viewer.

``SIGNALTRACE["STORE"]`` names the store class, ``SIGNALTRACE["STORE_OPTIONS"]``
its options; each keeps the newest ``BUFFER_SIZE`` traces:

- :class:`MemoryStore` (the default): in this process, as live traces.
- :class:`CacheStore`: in a Django cache (Redis, Memcached, the database or
  file cache), as JSON; every process using the cache sees every trace.
- :class:`DatabaseStore`: in a table of the ``signaltrace`` app, as JSON.

The middleware, ``signaltrace_run`` and ``TRACE_COMMANDS`` hand finished
traces to the store through :mod:`signaltrace.sinks` (:func:`~signaltrace.sinks.keep`):
the memory store in the request (a dict insertion), any other store on the
sink worker thread, never in the request. The viewer reads the store
(:func:`get_store`). A store that fails (Redis down, the table missing) never
reaches your code: the failure is counted (``stats()["store_failures"]``),
logged once, and shown in the viewer's footer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from django.utils.module_loading import import_string

from signaltrace.conf import get_config

from .base import Listing, Store, StoredTrace, contained, failed, listing_of
from .cache import CacheStore
from .database import DatabaseStore
from .memory import MemoryStore

if TYPE_CHECKING:
    from signaltrace.traces import Trace

__all__ = [
    "DEFAULT",
    "CacheStore",
    "DatabaseStore",
    "Listing",
    "MemoryStore",
    "Store",
    "StoreSink",
    "StoredTrace",
    "contained",
    "failed",
    "get_store",
    "is_in_process",
    "listing_of",
    "load_store",
    "memory_store",
]

#: The default ``STORE``.
DEFAULT: Final = "signaltrace.stores.MemoryStore"

#: The process-wide memory store (the default store; ``sinks.memory.buffer()``).
_memory: Final = MemoryStore(100)


def memory_store(size: int | None = None) -> MemoryStore:
    """The process-wide :class:`MemoryStore`, resized to ``size`` if given and valid."""
    if size is not None and size != _memory.size and type(size) is int and size >= 0:
        _memory.size = size
    return _memory


def load_store(path: str, size: int, options: Mapping[str, Any]) -> Store:
    """The store class at ``path``, instantiated with ``(size, options)``.

    :class:`MemoryStore` gives the process-wide store (resized to ``size``).

    :raises ImportError: if ``path`` does not import.
    :raises TypeError: if it does not name a store class.
    """
    cls = import_string(path)
    if cls is MemoryStore:
        return memory_store(size)
    if not isinstance(cls, type):
        raise TypeError(f"{path} is not a store class")
    store = cls(size, options)
    if not isinstance(store, Store):
        raise TypeError(f"{path} is not a store: it needs save, get, recent and clear methods")
    return store


class _Broken:
    """The store that could not be loaded: every call raises what loading raised."""

    in_process: Final = False

    def __init__(self, path: str, err: Exception) -> None:
        self.path = path
        self.err = err

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"the store {self.path} could not be loaded") from self.err

    save = get = recent = clear = _fail


class _Resolved(NamedTuple):
    config: object
    store: Store | None


_cache: _Resolved | None = None


def get_store(config: dict[str, Any] | None = None) -> Store | None:
    """The configured store (``STORE``, ``STORE_OPTIONS``, ``BUFFER_SIZE``), or ``None``.

    ``None`` when ``BUFFER_SIZE`` is 0: nothing is kept. Resolved once per
    settings dict. A store that cannot be loaded is one whose every method
    raises (its callers count and log that as ``store_failures``).

    :param config: the settings from ``signaltrace.conf.get_config()``, if at hand.

    .. versionadded:: 0.1.0
    """
    global _cache
    if config is None:
        config = get_config()
    cached = _cache
    if cached is not None and cached.config is config:
        if type(cached.store) is MemoryStore:
            memory_store(config["BUFFER_SIZE"])
        return cached.store
    size = config["BUFFER_SIZE"]
    store: Store | None = None
    if size:
        path = config.get("STORE", DEFAULT)
        try:
            store = load_store(path, size, config.get("STORE_OPTIONS") or {})
        except Exception as err:
            failed(f"loading {path}", err)
            store = _Broken(str(path), err)
    _cache = _Resolved(config, store)
    return store


def is_in_process(store: object) -> bool:
    """Whether ``store`` is written in the request (its ``in_process`` is true)."""
    return getattr(store, "in_process", False) is True


class StoreSink:
    """The sink that saves traces into a store; a failure is counted and logged once.

    .. versionadded:: 0.1.0
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def emit(self, trace: Trace) -> None:
        """``store.save(trace)``, contained (``stats()["store_failures"]``)."""
        contained("save", self.store.save, trace)
