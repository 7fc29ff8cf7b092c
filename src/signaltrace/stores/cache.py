"""``CacheStore``: traces kept in a Django cache, shared by every process that uses it.

.. code-block:: python

    SIGNALTRACE = {
        "STORE": "signaltrace.stores.CacheStore",
        "STORE_OPTIONS": {"CACHE": "default"},   # an alias of CACHES
    }

The store is a ring of ``BUFFER_SIZE`` slots. Saving a trace takes the next
number of a counter (``cache.incr()``), writes the trace JSON under its id and
a small listing (what the viewer's list shows) into slot *number* modulo
``BUFFER_SIZE``, and deletes the trace the slot held before. Listing reads the
slots with one ``get_many()``; nothing is read-modified-written, so processes
writing at once do not lose each other's traces, provided the counter is
atomic (Redis and Memcached; see the how-to for the database and file caches).

Only text is written, and on Django's Redis backend (``RedisCache``) only
bytes are read back: the store talks to the backend's own redis client, so
whatever is stored under its keys is parsed as JSON or refused, and never
unpickled. Django's other backends unpickle every value they read before
the store sees it (see ``docs/how-to/processes.md``, "What a store trusts").
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.cache.backends.redis import RedisCache

from signaltrace.render import trace_to_dict

from .base import (
    ID,
    Listing,
    StoredTrace,
    dumps,
    listing_from_dict,
    listing_of,
    listing_to_dict,
    loads,
    option_errors,
    valid_id,
)

if TYPE_CHECKING:
    from signaltrace.traces import Trace

__all__ = ["CacheStore"]

#: What every key of the store starts with (then Django's KEY_PREFIX and VERSION apply).
PREFIX: Final = "signaltrace"


def _alias_problem(value: Any) -> str | None:
    if type(value) is not str:
        return f"must be the alias of a cache in CACHES, got {type(value).__name__}: {value!r}."
    aliases = list(getattr(settings, "CACHES", {}) or {})
    if value not in aliases:
        return f"{value!r} is not an alias in CACHES (aliases: {', '.join(aliases) or 'none'})."
    return None


def _timeout_problem(value: Any) -> str | None:
    if value is None or (type(value) in (int, float) and value > 0):
        return None
    return f"must be None (keep until replaced) or a number of seconds > 0, got {value!r}."


_OPTIONS: Final = {"CACHE": _alias_problem, "TIMEOUT": _timeout_problem}
#: Given the trace's number, its slot: ``(key, JSON text)``.
_Slot = Callable[[int], tuple[str, str]]


class _DjangoBackend:
    """The cache through Django's API, values as ``str``."""

    def __init__(self, cache: BaseCache, timeout: float | None) -> None:
        self.cache = cache
        self.timeout = timeout

    def put(self, seq_key: str, trace_key: str, data: str, slot: _Slot) -> object:
        """Take the next number, write the trace and its slot; what the slot held."""
        self.cache.add(seq_key, 0, timeout=None)
        slot_key, value = slot(int(self.cache.incr(seq_key)))
        old = self.cache.get(slot_key)
        self.cache.set_many({trace_key: data, slot_key: value}, timeout=self.timeout)
        return old

    def get_many(self, keys: list[str]) -> list[object]:
        found = self.cache.get_many(keys)
        return [found.get(key) for key in keys]

    def delete_many(self, keys: list[str]) -> None:
        self.cache.delete_many(keys)


class _RedisBackend:
    """Django's ``RedisCache`` through its own redis client, values as bytes (never pickled)."""

    def __init__(self, cache: RedisCache, timeout: float | None) -> None:
        self.cache = cache
        self.timeout = None if timeout is None else max(int(timeout), 1)
        self._clients: dict[bool, Any] = {}

    def client_of(self, key: str, *, write: bool = False) -> Any:
        """The backend's redis client (for writing: its first server), made once."""
        client = self._clients.get(write)
        if client is None:
            client = self._clients[write] = self.cache._cache.get_client(key, write=write)
        return client

    def key(self, key: str) -> str:
        return self.cache.make_and_validate_key(key)

    def put(self, seq_key: str, trace_key: str, data: str, slot: _Slot) -> object:
        """As :meth:`_DjangoBackend.put`, in two round trips: ``INCR``, then a pipeline."""
        seq = self.key(seq_key)
        client = self.client_of(seq, write=True)
        slot_key, value = slot(int(client.incr(seq)))
        pipe = client.pipeline(transaction=False)
        pipe.get(self.key(slot_key))
        pipe.set(self.key(trace_key), data.encode("utf-8"), ex=self.timeout)
        pipe.set(self.key(slot_key), value.encode("utf-8"), ex=self.timeout)
        old, _done, _done_too = pipe.execute()
        return old

    def get_many(self, keys: list[str]) -> list[object]:
        if not keys:
            return []
        made = [self.key(key) for key in keys]
        return list(self.client_of(made[0]).mget(made))

    def delete_many(self, keys: list[str]) -> None:
        made = [self.key(key) for key in keys]  # never empty: the store always names one
        self.client_of(made[0], write=True).delete(*made)


_Backend = _DjangoBackend | _RedisBackend


class CacheStore:
    """The last ``BUFFER_SIZE`` traces in a Django cache, as JSON.

    :param size: how many traces to keep (``BUFFER_SIZE``).
    :param options: ``CACHE``, the alias of the cache in ``CACHES`` (default
        ``"default"``); ``TIMEOUT``, seconds a trace is kept at most (default
        ``None``: until a newer trace takes its slot).

    .. versionadded:: 0.1.0
    """

    in_process: ClassVar[bool] = False

    def __init__(self, size: int = 100, options: Mapping[str, Any] | None = None) -> None:
        options = dict(options or {})
        self.size = size
        self.alias: str = options.get("CACHE", "default")
        self.timeout: float | None = options.get("TIMEOUT")
        self._local = threading.local()

    @classmethod
    def option_errors(cls, options: Mapping[str, Any]) -> list[str]:
        """What is wrong with ``STORE_OPTIONS``: unknown keys, a missing cache alias."""
        return option_errors(options, _OPTIONS)

    @property
    def backend(self) -> _Backend:
        """The cache, as the store uses it: a cache object of the store's own per thread.

        Not ``caches[alias]``: Django keeps those per context, and the sink worker
        runs each trace in a copy of its request's context, so it would get a new
        cache object (and connection) per trace, or the request thread's one (a
        Memcached client is not thread-safe).
        """
        backend: _Backend | None = getattr(self._local, "backend", None)
        if backend is None:
            cache = caches.create_connection(self.alias)
            if isinstance(cache, RedisCache):
                backend = _RedisBackend(cache, self.timeout)
            else:
                backend = _DjangoBackend(cache, self.timeout)
            self._local.backend = backend
        return backend

    @staticmethod
    def _trace_key(trace_id: str) -> str:
        return f"{PREFIX}:trace:{trace_id}"

    def _slot_keys(self) -> list[str]:
        return [f"{PREFIX}:slot:{i}" for i in range(self.size)]

    def save(self, trace: Trace) -> None:
        """Write the trace and its listing, replacing the oldest trace's slot."""
        if not self.size:
            return
        backend = self.backend
        data = dumps(trace_to_dict(trace))
        listing = listing_to_dict(listing_of(trace))

        def slot(seq: int) -> tuple[str, str]:
            return f"{PREFIX}:slot:{seq % self.size}", dumps({"seq": seq, "listing": listing})

        old = backend.put(f"{PREFIX}:seq", self._trace_key(trace.trace_id), data, slot)
        old_id = _slot_trace_id(old)
        if old_id is not None and old_id != trace.trace_id:
            backend.delete_many([self._trace_key(old_id)])

    def get(self, trace_id: str) -> StoredTrace | None:
        """The trace read back from its JSON, or ``None`` if it is not kept.

        :raises ValueError: if what is stored under its key is not trace JSON.
        """
        if type(trace_id) is not str or not ID.fullmatch(trace_id):
            return None
        (text,) = self.backend.get_many([self._trace_key(trace_id)])
        if text is None:
            return None
        return StoredTrace(loads(text))

    def _slots(self) -> list[tuple[int, Listing]]:
        """``(seq, listing)`` per filled slot; an unreadable slot is a listing with ``error``."""
        entries = []
        for value in self.backend.get_many(self._slot_keys()):
            if value is None:
                continue
            try:
                slot = loads(value)
                seq = slot["seq"]
                if type(seq) is not int:
                    raise ValueError("a slot's seq must be an int")
                entries.append((seq, listing_from_dict(slot["listing"])))
            except Exception as err:
                entries.append((-1, Listing(_slot_trace_id(value) or "", error=err)))
        return entries

    def recent(self, *, kind: str | None = None) -> list[Listing]:
        """The kept traces, newest first (by the counter), only ``kind`` if given."""
        entries = sorted(self._slots(), key=lambda entry: entry[0], reverse=True)
        return [
            listing
            for _seq, listing in entries
            if kind is None or (listing.error is None and listing.kind == kind)
        ]

    def clear(self) -> None:
        """Delete every slot, every trace they hold and the counter."""
        backend = self.backend
        keys = self._slot_keys()
        ids = [_slot_trace_id(value) for value in backend.get_many(keys)]
        backend.delete_many(
            [*keys, *(self._trace_key(i) for i in ids if i is not None), f"{PREFIX}:seq"]
        )


def _slot_trace_id(value: object) -> str | None:
    """The trace id a slot's JSON names, if it can be read (``None`` otherwise)."""
    try:
        trace_id = valid_id(loads(value)["listing"]["trace_id"])
    except Exception:
        return None
    return trace_id or None
