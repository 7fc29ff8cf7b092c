"""Receiver metrics: what each receiver cost in this process, since it started (``METRICS``).

.. code-block:: python

    SIGNALTRACE = {"ENABLED": True, "METRICS": True}

    from signaltrace import metrics

    for row in metrics.snapshot()[:5]:          # ranked by total time
        print(row["receiver"], row["calls"], row["p95_ms"])

With :setting:`METRICS` on, every receiver call of the process is counted,
traced or not (see ``signaltrace._metrics`` for the hot path): calls,
errors, total time, a histogram of durations and, for calls recorded with
:setting:`RECORD_DB`, the statements they ran. :func:`snapshot` reads them,
:func:`reset` starts over.

**Percentiles.** Durations are counted in power-of-two buckets (bucket *b*
holds the calls that took from 2\\ :sup:`b-1` up to 2\\ :sup:`b` ns). A
percentile is found in its bucket, then interpolated linearly inside it: the
calls of a bucket are taken to be spread evenly over part of it, placed so that
all the calls add up to their exact total time (calls spread over whole
buckets make it plain linear interpolation; a single call's percentiles are its
duration). The true value lies in the same bucket as the estimate, so the
estimate is within a factor of two of it (its error is less than the bucket's
width, which is its lower bound): ``p50_ms = 0.75`` means somewhere from 0.52
to 1.05 ms, usually much closer. Totals, counts and errors are exact.

**Processes.** The aggregates are per process. With a shared
:class:`~signaltrace.stores.CacheStore` (:setting:`STORE`), each process writes
its aggregates into the cache every 10 seconds (``FLUSH_INTERVAL_S``, on a
thread of its own, started by the app when ``METRICS`` is on), and
:func:`merged` adds up those of every process that wrote in the last 5 minutes
(``STALE_AFTER_S``); the viewer's Receivers page shows that. With any
other store, :func:`merged` is this process only.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from . import _metrics
from .conf import get_config
from .context import log_failure
from .stores import CacheStore, Store, failed, get_store
from .stores.base import dumps, loads

__all__ = [
    "FLUSH_INTERVAL_S",
    "SORTS",
    "STALE_AFTER_S",
    "Merged",
    "flush",
    "merged",
    "percentile",
    "process",
    "reset",
    "since",
    "snapshot",
    "start",
    "stop",
]

#: Seconds between two writes of this process's aggregates to a shared store.
FLUSH_INTERVAL_S: float = 10.0
#: Seconds a process's aggregates stay in the shared store without a new write
#: (the cache entry's timeout): a process that stopped drops out after that.
STALE_AFTER_S: Final = 300
#: How many process entries :func:`merged` reads at most (the newest numbers).
MAX_PROCESSES: Final = 256
#: The JSON a process writes to the shared store.
SCHEMA: Final = "signaltrace.metrics/1"
PREFIX: Final = "signaltrace:metrics"

#: ``?sort=`` values: how :func:`snapshot` can rank the receivers.
SORTS: Final = {
    "total": "total time",
    "calls": "calls",
    "errors": "error rate",
    "p95": "p95",
}

_NS_PER_MS: Final = 1_000_000
#: Identifies this process's entry in the shared store (a new one after a fork).
_token = [os.getpid(), uuid.uuid4().hex]


def process() -> dict[str, Any]:
    """This process: ``{"pid": ..., "host": ...}``.

    .. versionadded:: 0.1.0
    """
    return {"pid": os.getpid(), "host": socket.gethostname()}


def since() -> datetime | None:
    """When the aggregates started (``METRICS`` first on) or were last :func:`reset`.

    ``None`` while ``METRICS`` has never been on in this process.

    .. versionadded:: 0.1.0
    """
    return _datetime(_metrics.since())


def _datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)


def reset() -> None:
    """Forget every aggregate of this process; :func:`since` is now.

    .. versionadded:: 0.1.0
    """
    _metrics.reset()


def percentile(histogram: Sequence[int], q: float, total_ns: int | None = None) -> float | None:
    """The ``q`` quantile (``0 < q <= 1``) of a duration histogram, in ns; ``None`` if empty.

    Found in its power-of-two bucket and interpolated linearly inside it; with
    ``total_ns``, the calls' exact total, the calls of each bucket are placed so
    that they add up to it (see the module's documentation for the accuracy).

    .. versionadded:: 0.1.0
    """
    count = sum(histogram)
    if not count:
        return None
    fraction, spread = 0.5, 1.0
    if total_ns is not None:
        if count == 1:
            return float(total_ns)  # the one call's own duration
        fraction, spread = _metrics.placement(enumerate(histogram), total_ns)
    rank = q * count
    seen = 0
    for bucket, in_bucket in enumerate(histogram):
        if in_bucket and seen + in_bucket >= rank:
            low, width = _metrics.bucket_bounds(bucket)
            position = (rank - seen) / in_bucket  # how far into the bucket's calls, (0, 1]
            return low + width * (fraction + (position - 0.5) * spread)
        seen += in_bucket
    # q > 1: the top of the highest bucket holding a call.
    low, width = _metrics.bucket_bounds(max(b for b, n in enumerate(histogram) if n))
    return float(low + width)


def _ms(ns: float | None) -> float | None:
    return None if ns is None else round(ns / _NS_PER_MS, 4)


def _sum_lists(into: list[int], other: Sequence[int]) -> None:
    if len(into) < len(other):
        into.extend([0] * (len(other) - len(into)))
    for i, value in enumerate(other):
        into[i] += value


def _merge(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Rows of :func:`signaltrace._metrics.collect` (any processes), added up per
    (receiver, signal)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["receiver"], row["signal"])
        into = merged.get(key)
        if into is None:
            merged[key] = {
                **row,
                "histogram": list(row["histogram"]),
                "error_histogram": list(row["error_histogram"]),
            }
            continue
        for name in ("calls", "errors", "total_ns", "queried_calls", "error_total_ns"):
            into[name] += row[name]
        if row["queries"] is not None:
            into["queries"] = (into["queries"] or 0) + row["queries"]
        into["location"] = into["location"] or row["location"]
        _sum_lists(into["histogram"], row["histogram"])
        _sum_lists(into["error_histogram"], row["error_histogram"])
    return merged


def _receivers(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per receiver (its signals added up), as :func:`snapshot` returns them, unsorted."""
    by_receiver: dict[str, dict[str, Any]] = {}
    for row in _merge(rows).values():
        into = by_receiver.get(row["receiver"])
        if into is None:
            by_receiver[row["receiver"]] = into = {
                "receiver": row["receiver"],
                "location": row["location"],
                "signals": set(),
                "calls": 0,
                "errors": 0,
                "total_ns": 0,
                "queries": None,
                "queried_calls": 0,
                "histogram": [],
            }
        into["signals"].add(row["signal"])
        into["location"] = into["location"] or row["location"]
        for name in ("calls", "errors", "total_ns", "queried_calls"):
            into[name] += row[name]
        if row["queries"] is not None:
            into["queries"] = (into["queries"] or 0) + row["queries"]
        _sum_lists(into["histogram"], row["histogram"])
    result = []
    for into in by_receiver.values():
        histogram = into["histogram"]
        calls = into["calls"]
        result.append(
            {
                "receiver": into["receiver"],
                "location": into["location"],
                "signals": sorted(into["signals"]),
                "calls": calls,
                "errors": into["errors"],
                "total_ms": _ms(into["total_ns"]),
                "mean_ms": _ms(into["total_ns"] / calls) if calls else None,
                "p50_ms": _ms(percentile(histogram, 0.50, into["total_ns"])),
                "p95_ms": _ms(percentile(histogram, 0.95, into["total_ns"])),
                "p99_ms": _ms(percentile(histogram, 0.99, into["total_ns"])),
                "queries": into["queries"],
                "queried_calls": into["queried_calls"],
            }
        )
    return result


def _sort_key(sort: str) -> Any:
    if sort == "calls":
        return lambda row: (-row["calls"], -row["total_ms"], row["receiver"])
    if sort == "errors":
        return lambda row: (
            -(row["errors"] / row["calls"] if row["calls"] else 0),
            -row["errors"],
            -row["total_ms"],
            row["receiver"],
        )
    if sort == "p95":
        return lambda row: (-(row["p95_ms"] or 0), -row["total_ms"], row["receiver"])
    return lambda row: (-row["total_ms"], -row["calls"], row["receiver"])


def _ranked(rows: Iterable[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
    return sorted(_receivers(rows), key=_sort_key(sort))


def snapshot(sort: str = "total") -> list[dict[str, Any]]:
    """This process's receivers, one dict each, ranked (by total time, by default).

    Each has ``receiver`` (the dotted name), ``location`` (``"file:line"`` or
    ``None``), ``signals`` (the names of the signals it received, sorted),
    ``calls``, ``errors`` (calls that raised, also inside ``send_robust()``),
    ``total_ms``, ``mean_ms``, ``p50_ms``, ``p95_ms`` and ``p99_ms`` (see the
    module's documentation for their accuracy), and ``queries``: the statements
    run by the ``queried_calls`` calls recorded with :setting:`RECORD_DB` (calls
    made while a trace was recording, or sent with ``asend()``, to async
    receivers or by blinker), ``None`` when no call was.

    :param sort: ``"total"`` (total time), ``"calls"``, ``"errors"`` (error rate)
        or ``"p95"``; highest first.
    :raises ValueError: for another ``sort``.

    .. versionadded:: 0.1.0
    """
    get_config()  # a SIGNALTRACE dict assigned since turns METRICS on or off (conf.ON_CHANGE)
    return _ranked(_metrics.collect(), sort)


# -- processes: the shared store ---------------------------------------------------


class _Cache:
    """The cache of a :class:`~signaltrace.stores.CacheStore`, as the metrics use it.

    Through Django's cache API, except on Django's Redis backend (``RedisCache``),
    where it talks to the backend's own redis client, as the store does: text is
    written as bytes and read back as bytes, never unpickled.
    """

    def __init__(self, alias: str) -> None:
        self.cache = caches[alias]
        self.redis = isinstance(self.cache, RedisCache)

    def _client(self, key: str, write: bool = False) -> Any:
        return self.cache._cache.get_client(key, write=write)  # type: ignore[attr-defined]

    def incr(self, key: str) -> int:
        """Add one to the counter ``key`` (created at 0, never expiring); its new value."""
        if self.redis:
            made = self.cache.make_and_validate_key(key)
            return int(self._client(made, write=True).incr(made))
        self.cache.add(key, 0, timeout=None)
        return int(self.cache.incr(key))

    def get_many(self, keys: list[str]) -> list[object]:
        """The values of ``keys`` (at least one), ``None`` for each missing."""
        if self.redis:
            made = [self.cache.make_and_validate_key(key) for key in keys]
            return list(self._client(made[0]).mget(made))
        found = self.cache.get_many(keys)
        return [found.get(key) for key in keys]

    def set(self, key: str, text: str) -> None:
        """Write ``text`` under ``key`` for ``STALE_AFTER_S`` seconds."""
        if self.redis:
            made = self.cache.make_and_validate_key(key)
            self._client(made, write=True).set(made, text.encode("utf-8"), ex=STALE_AFTER_S)
        else:
            self.cache.set(key, text, timeout=STALE_AFTER_S)

    def delete_many(self, keys: list[str]) -> None:
        """Delete ``keys`` (at least one)."""
        if self.redis:
            made = [self.cache.make_and_validate_key(key) for key in keys]
            self._client(made[0], write=True).delete(*made)
        else:
            self.cache.delete_many(keys)


def _backend(store: Store | None) -> _Cache | None:
    """Where a shared store can hold every process's aggregates, or ``None``.

    Only a :class:`~signaltrace.stores.CacheStore` can: in its cache, next to
    the traces (a process's entry expires ``STALE_AFTER_S`` seconds after
    its last write).
    """
    if isinstance(store, CacheStore) and store.size:
        return _Cache(store.alias)
    return None


def shared(store: Store | None = None) -> bool:
    """Whether :func:`merged` adds up several processes with this store (the configured one).

    .. versionadded:: 0.1.0
    """
    return _backend(store if store is not None else get_store()) is not None


def _document() -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "token": _own_token(),
        "process": process(),
        "since": _metrics.since(),
        "flushed_at": time.time(),
        "rows": _metrics.collect(),
    }


def _own_token() -> str:
    if _token[0] != os.getpid():
        _token[:] = [os.getpid(), uuid.uuid4().hex]
    return str(_token[1])


#: ``[pid, token, slot number]`` of this process's entry in the shared store.
_slot: list[Any] = [None, None, 0]


def _counter(value: object) -> int:
    """A counter read back from the cache (an int, or bytes from Redis); 0 if unset."""
    if value is None:
        return 0
    if isinstance(value, bytes):
        value = value.decode("ascii")
    if isinstance(value, (int, str)):
        return int(value)
    raise ValueError(f"the metrics counter must be a number, got {type(value).__name__}")


def _token_of(value: object) -> str | None:
    """The token of the document stored in a slot, if it can be read."""
    try:
        return str(loads(value)["token"])
    except Exception:
        return None


def _slot_key(backend: _Cache) -> str:
    """This process's key: a number taken from the store's counter once per process,
    and again if its slot is not its own any more (the cache was cleared, and the
    counter handed the number to another process)."""
    token = _own_token()
    number = _slot[2]
    if _slot[1] == token and number:
        seq, held = backend.get_many([f"{PREFIX}:seq", f"{PREFIX}:process:{number}"])
        if _counter(seq) < number or (held is not None and _token_of(held) != token):
            number = 0
    else:
        number = 0
    if not number:
        number = backend.incr(f"{PREFIX}:seq")
        _slot[:] = [os.getpid(), token, number]
    return f"{PREFIX}:process:{number}"


def flush(store: Store | None = None) -> bool:
    """Write this process's aggregates to the shared store now; whether it could.

    The app does it every 10 seconds (``FLUSH_INTERVAL_S``) while ``METRICS`` is
    on (and it is what :func:`merged` reads). ``False`` when the store is not
    a :class:`~signaltrace.stores.CacheStore`; a failing cache is counted as
    ``store_failures`` and logged once.

    .. versionadded:: 0.1.0
    """
    backend = _backend(store if store is not None else get_store())
    if backend is None:
        return False
    try:
        backend.set(_slot_key(backend), dumps(_document()))
    except Exception as err:
        failed("metrics write", err)
        return False
    return True


def _valid_rows(rows: Any) -> list[dict[str, Any]]:
    """The rows of a stored document, each checked; :exc:`ValueError` if one is wrong."""
    if type(rows) is not list:
        raise ValueError("rows must be a list")
    checked = []
    for row in rows:
        if type(row) is not dict:
            raise ValueError("a row must be an object")
        for name in ("receiver", "signal"):
            if type(row.get(name)) is not str:
                raise ValueError(f"a row's {name} must be a string")
        if row.get("location") is not None and type(row["location"]) is not str:
            raise ValueError("a row's location must be a string or null")
        for name in ("calls", "errors", "total_ns", "queried_calls", "error_total_ns"):
            if type(row.get(name)) is not int or row[name] < 0:
                raise ValueError(f"a row's {name} must be an int >= 0")
        if row.get("queries") is not None and type(row["queries"]) is not int:
            raise ValueError("a row's queries must be an int or null")
        for name in ("histogram", "error_histogram"):
            histogram = row.get(name)
            if (
                type(histogram) is not list
                or len(histogram) > _metrics.BUCKETS
                or not all(type(n) is int and n >= 0 for n in histogram)
            ):
                raise ValueError(f"a row's {name} must be a list of ints >= 0")
        checked.append(row)
    return checked


def _number(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) else None


def _read_document(text: object) -> dict[str, Any]:
    data = loads(text)
    if type(data) is not dict or data.get("schema") != SCHEMA:
        raise ValueError(f"not a {SCHEMA} document")
    proc = data.get("process")
    if type(proc) is not dict or type(proc.get("pid")) is not int:
        raise ValueError("a document's process must have a pid")
    return {
        "token": str(data.get("token")),
        "process": {"pid": proc["pid"], "host": str(proc.get("host", ""))},
        "since": _number(data.get("since")),
        "flushed_at": _number(data.get("flushed_at")),
        "rows": _valid_rows(data.get("rows")),
    }


def _documents(backend: _Cache) -> list[dict[str, Any]]:
    """Every process's document in the shared store (unreadable ones counted and skipped)."""
    (seq,) = backend.get_many([f"{PREFIX}:seq"])
    last = _counter(seq)
    keys = [f"{PREFIX}:process:{n}" for n in range(max(1, last - MAX_PROCESSES + 1), last + 1)]
    documents = []
    for value in backend.get_many(keys) if keys else []:
        if value is None:
            continue
        try:
            documents.append(_read_document(value))
        except Exception as err:
            failed("metrics read", err)
    return documents


class Merged(dict[str, Any]):
    """What :func:`merged` returns: a dict with ``receivers`` (as :func:`snapshot`),
    ``since`` (the earliest of the processes', a datetime or ``None``),
    ``process`` (the process answering), ``processes`` (each merged process:
    ``pid``, ``host``, ``since``, ``flushed_at``, ``current``), ``shared``
    (whether other processes were read) and ``error`` (why they could not be, or
    ``None``).

    .. versionadded:: 0.1.0
    """


def merged(sort: str = "total", store: Store | None = None) -> Merged:
    """Every process's receivers added up (with a shared :class:`~signaltrace.stores.CacheStore`),
    or this process's: see :class:`Merged`.

    This process's figures are read live; the others' as they last wrote them.

    :raises ValueError: for an unknown ``sort``.

    .. versionadded:: 0.1.0
    """
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
    own = _metrics.collect()
    own_since = _metrics.since()
    processes: list[dict[str, Any]] = [
        {**process(), "since": _datetime(own_since), "flushed_at": None, "current": True}
    ]
    rows = list(own)
    starts = [own_since] if own_since is not None else []
    error = None
    backend = _backend(store if store is not None else get_store())
    if backend is not None:
        try:
            documents = _documents(backend)
        except Exception as err:
            failed("metrics read", err)
            documents, error = [], f"{type(err).__name__}: {err}"
        token = _own_token()
        for document in documents:
            if document["token"] == token:
                continue  # this process: read live above
            rows.extend(document["rows"])
            if document["since"] is not None:
                starts.append(document["since"])
            processes.append(
                {
                    **document["process"],
                    "since": _datetime(document["since"]),
                    "flushed_at": _datetime(document["flushed_at"]),
                    "current": False,
                }
            )
    return Merged(
        receivers=_ranked(rows, sort),
        since=_datetime(min(starts)) if starts else None,
        process=process(),
        processes=processes,
        shared=backend is not None,
        error=error,
    )


# -- starting and stopping: the flush thread and OpenTelemetry -------------------------


class _Flusher:
    """The thread that writes this process's aggregates to the shared store."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self.wanted = False

    def start(self) -> None:
        with self.lock:
            self.wanted = True
            if self.thread is not None and self.thread.is_alive():
                return
            self.stopping = threading.Event()
            thread = threading.Thread(
                target=self.run, args=(self.stopping,), name="signaltrace-metrics", daemon=True
            )
            try:
                thread.start()
            except Exception as err:  # "can't start new thread", interpreter shutdown
                log_failure("metrics flush thread", err)
                return
            self.thread = thread

    def stop(self) -> None:
        with self.lock:
            self.wanted = False
            self.stopping.set()
            self.thread = None

    def run(self, stopping: threading.Event) -> None:
        while not stopping.wait(FLUSH_INTERVAL_S):
            try:
                if get_config().get("METRICS"):
                    flush()
            except Exception as err:
                log_failure("metrics flush", err)

    def after_fork_in_child(self) -> None:
        self.lock = threading.Lock()
        self.thread = None
        if self.wanted:
            self.start()


_flusher: Final = _Flusher()
if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_flusher.after_fork_in_child)


def start() -> None:
    """Start what ``METRICS`` runs besides the counting: the thread that writes the
    aggregates to a shared store, and, with :setting:`OTEL` on, the OpenTelemetry
    instruments (:mod:`signaltrace.sinks.otel_metrics`). Idempotent; the app
    calls it when it installs the hook with ``METRICS`` on.

    .. versionadded:: 0.1.0
    """
    _flusher.start()
    if get_config().get("OTEL"):
        # Imported here, as the OpenTelemetry sink is: nothing of OTel loads while it is off.
        from .sinks import otel_metrics

        try:
            otel_metrics.install()
        except ImportError as err:  # the otel extra is missing (check signaltrace.E002)
            log_failure("OTEL metrics", err)


def stop() -> None:
    """Stop the flush thread and the OpenTelemetry export. Idempotent.

    .. versionadded:: 0.1.0
    """
    _flusher.stop()
    otel_metrics = sys.modules.get("signaltrace.sinks.otel_metrics")
    if otel_metrics is not None:  # it was started
        otel_metrics.uninstall()
