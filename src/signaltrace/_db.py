"""Per-receiver database facts: queries run, atomic block, ``on_commit`` callbacks.

Enabled by ``RECORD_DB`` (default: ``DEBUG``). While signaltrace is installed,
``CursorWrapper._execute``/``_executemany`` count statements in a thread-local
counter (only while some capture is open); the hook reads it before and after
each sync receiver. Async receivers run their queries in other threads, so
their counts are not recorded.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorWrapper

from . import context as _ctx
from .context import log_failure
from .records import C_ATOMIC, C_ON_COMMIT, C_QUERIES

__all__ = ["delta", "install", "probe", "record", "snapshot", "uninstall"]


class _Counter(threading.local):
    n = 0


QUERIES: Final = _Counter()
_originals: dict[str, Any] = {}


def _counting(name: str) -> Any:
    original = CursorWrapper.__dict__[name]

    def counted(self: CursorWrapper, *args: Any) -> Any:
        if _ctx.CAPTURING:
            QUERIES.n += 1
        return original(self, *args)

    counted.__name__ = counted.__qualname__ = name
    return counted


def install() -> None:
    """Count statements per thread; idempotent."""
    for name in ("_execute", "_executemany"):
        if name not in _originals:
            _originals[name] = CursorWrapper.__dict__[name]
            setattr(CursorWrapper, name, _counting(name))


def uninstall() -> None:
    """Put Django's cursor methods back."""
    for name, original in list(_originals.items()):
        setattr(CursorWrapper, name, original)
        del _originals[name]


class _Connections(threading.local):
    container: Any = None
    by_alias: dict[str, Any] | None = None


_CONNECTIONS: Final = _Connections()


def probe(named: dict[str, Any]) -> Any:
    """The connection a dispatch is about (``using=``, else default), or None.

    ``connections[alias]`` goes through asgiref's ``Local`` (about a
    microsecond); database connections are per thread, so they are cached per
    thread for as long as Django keeps the same connection container.
    """
    alias = named.get("using", DEFAULT_DB_ALIAS)
    if type(alias) is not str:
        alias = DEFAULT_DB_ALIAS
    cache = _CONNECTIONS
    container = connections.__dict__.get("_connections")
    by_alias = cache.by_alias
    if cache.container is not container or by_alias is None:
        by_alias = cache.by_alias = {}
        cache.container = container
    connection = by_alias.get(alias)
    if connection is not None:
        return connection
    try:
        connection = by_alias[alias] = connections[alias]
    except Exception as err:
        log_failure("RECORD_DB connection lookup", err)
        return None
    return connection


def snapshot(connection: Any) -> tuple[int, int, bool]:
    """Before a receiver runs: statements so far, ``on_commit`` callbacks, in ``atomic``."""
    return QUERIES.n, len(connection.run_on_commit), connection.in_atomic_block


def delta(connection: Any, before: tuple[int, int, bool]) -> tuple[int, bool, int]:
    """After it ran: ``(statements it ran, whether it ran in atomic, on_commit added)``."""
    return (
        QUERIES.n - before[0],
        before[2],
        max(len(connection.run_on_commit) - before[1], 0),
    )


def record(connection: Any, call: list[Any], before: tuple[int, int, bool]) -> None:
    """:func:`delta` into a raw call list (the one-list-per-call loops)."""
    call[C_QUERIES], call[C_ATOMIC], call[C_ON_COMMIT] = delta(connection, before)
