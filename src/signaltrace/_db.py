"""Per-receiver database facts: queries run, atomic block, ``on_commit`` callbacks.

Enabled by ``RECORD_DB`` (default: ``DEBUG``). While signaltrace is installed,
``CursorWrapper._execute``/``_executemany`` count statements in a thread-local
counter (only while some open capture records ``RECORD_DB``); the hook reads it before and after
each sync receiver. Async receivers run their queries in other threads, so
their counts are not recorded.

With ``RECORD_SQL`` (per capture, see :func:`open_sql`) the same wrappers also
keep the statements: while a traced sync loop that records them runs in a
thread, each statement is appended to that thread's list of entries
``[sql, count, params]``, the text cut at :data:`~signaltrace.records.SQL_CHARS`
characters, parameters only as labels (``RECORD_SQL_PARAMS``, redacted like
kwargs), never the objects. A statement that the running receiver call already
ran adds to its entry's count; a call keeps at most
:data:`~signaltrace.records.MAX_STATEMENTS` entries and only counts the rest, so
memory stays bounded by the number of recorded calls.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Final

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorWrapper

from . import context as _ctx
from . import naming
from .context import log_failure
from .records import (
    C_ATOMIC,
    C_EXTRA,
    C_ON_COMMIT,
    C_QUERIES,
    D_SQL,
    MAX_PARAM_SETS,
    MAX_PARAMS,
    MAX_STATEMENTS,
    REDACTED,
    SQL_CHARS,
)

__all__ = [
    "close_sql",
    "delta",
    "install",
    "note",
    "open_sql",
    "param_labels",
    "probe",
    "record",
    "record_sql",
    "snapshot",
    "uninstall",
]


class _Counter(threading.local):
    n = 0
    #: ``RECORD_SQL``: ``[entries, floor, options]`` while a traced sync loop that
    #: records statements runs in this thread (nested loops share it), else None.
    #: ``entries`` are its ``[sql, count, params]`` lists; ``floor`` is their number
    #: where the receiver call running now began (or went on after a dispatch it
    #: sent): it adds to its own entries from there only; ``options`` are the
    #: :class:`~signaltrace.context.Options` whose ``REDACT`` labels parameters
    #: (``RECORD_SQL_PARAMS``), or None: parameters are not recorded.
    sql: list[Any] | None = None


#: Slots of ``_Counter.sql``.
S_ENTRIES: Final = 0
S_FLOOR: Final = 1
S_PARAMS: Final = 2


QUERIES: Final = _Counter()
_originals: dict[str, Any] = {}


def _counting(name: str) -> Any:
    original = CursorWrapper.__dict__[name]
    many = name == "_executemany"

    def counted(self: CursorWrapper, *args: Any) -> Any:
        if _ctx.DB_WATCHERS:
            counter = QUERIES
            counter.n += 1
            state = counter.sql
            if state is not None:
                note(state, args, many)
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


# -- RECORD_SQL ---------------------------------------------------------------------


_OUTERMOST: Final[Any] = object()


def open_sql(options: Any) -> tuple[list[Any], Any]:
    """Record this thread's statements for a traced sync loop (``RECORD_SQL``).

    Returns the thread's ``[entries, floor, options]`` state (the one an
    enclosing loop in this thread already records into, else a new one) and
    what :func:`close_sql` restores when the loop ends. Before each receiver the
    loop sets the floor to the number of entries, and keeps that number: call i
    ran ``entries[m_i:m_(i+1)]``. No thread-local is touched in between.
    """
    state = QUERIES.sql
    params = options if options.record_sql_params else None
    if state is None:
        state = QUERIES.sql = [[], 0, params]
        return state, _OUTERMOST
    saved = state[S_PARAMS]
    state[S_PARAMS] = params
    return state, saved


#: The ``D_SQL`` of a flat loop whose receivers ran no statement (one shared list:
#: nothing to keep per dispatch).
NO_STATEMENTS: Final[list[Any]] = [[]]


def close_sql(state: list[Any], saved: Any, dispatch: list[Any] | None = None) -> None:
    """The loop of :func:`open_sql` ended: restore what it replaced.

    An enclosing loop's receiver goes on with a fresh region of its own (its
    entries before the dispatch stay its own; those of the dispatch's receivers
    are theirs); the outermost loop lets go of the state (its dispatches keep the
    entries). A flat loop's ``D_SQL`` (of ``dispatch``) whose receivers ran
    nothing becomes :data:`NO_STATEMENTS`.
    """
    if saved is _OUTERMOST:
        QUERIES.sql = None
    else:
        state[S_PARAMS] = saved
        state[S_FLOOR] = len(state[S_ENTRIES])
    if dispatch is not None:
        sql = dispatch[D_SQL]
        if sql is not None and len(sql) > 1 and sql[1] == sql[-1]:
            dispatch[D_SQL] = NO_STATEMENTS


def record_sql(call: list[Any], entries: list[list[Any]], start: int) -> None:
    """The entries of a call of the one-list-per-call loops, into its ``C_EXTRA``."""
    facts = call[C_EXTRA]
    if facts is None:
        facts = call[C_EXTRA] = {}
    facts["sql"] = entries[start:]


def note(state: list[Any], args: tuple[Any, ...], many: bool) -> None:
    """Add the statement ``CursorWrapper._execute(*args)`` runs to ``state`` (``_Counter.sql``).

    Never raises (a failure is logged once) and runs no user code: the text is
    read only if it is a ``str``, parameters are labelled by
    :func:`param_labels`.
    """
    try:
        entries, floor, options = state
        sql = args[0] if args else None
        if type(sql) is str:
            text = sql if len(sql) <= SQL_CHARS else sql[: SQL_CHARS - 1] + "…"
        else:  # a str subclass, or a driver's SQL object (psycopg's sql.Composed)
            text = naming.clip_text(sql, SQL_CHARS) or str(naming.kwarg_value(sql))
        for i in range(len(entries) - 1, floor - 1, -1):  # the running call's, newest first
            entry = entries[i]
            if entry[0] == text:
                entry[1] += 1
                if options is not None and len(entry[2]) < MAX_PARAM_SETS:
                    entry[2].append(_params(sql, text, args, many, options))
                return
        if len(entries) - floor < MAX_STATEMENTS:
            entries.append(
                [text, 1, None if options is None else [_params(sql, text, args, many, options)]]
            )
    except Exception as err:
        log_failure("RECORD_SQL", err)


def _params(sql: Any, text: str, args: tuple[Any, ...], many: bool, options: Any) -> Any:
    return param_labels(
        sql if type(sql) is str else text, args[1] if len(args) > 1 else None, many, options
    )


#: ``INSERT INTO table (columns) VALUES|SELECT``: parameters follow the columns, row by row.
_INSERT: Final = re.compile(
    r"\s*INSERT\s+(?:OR\s+\w+\s+)?INTO\s+[^(]*\(([^()]*)\)\s*(?:VALUES|SELECT)\b",
    re.IGNORECASE,
)
#: The first row of values after ``VALUES``/``SELECT``, when it holds placeholders only.
_ROW: Final = re.compile(r"\s*\(?\s*%s(?:\s*,\s*%s)*\s*(?:\)|$|UNION\b)", re.IGNORECASE)
#: A placeholder (``%s``), or a literal percent sign (``%%``), which is not one.
_PLACEHOLDER: Final = re.compile(r"%%|%s")
#: Where the text naming a placeholder's column starts: after a comma or a keyword.
_CLAUSE: Final = re.compile(
    r",|\b(?:WHERE|AND|OR|NOT|SET|ON|HAVING|WHEN|THEN|ELSE|VALUES|BY)\b", re.IGNORECASE
)
_WORD: Final = re.compile(r"[A-Za-z_]")
#: What separates the values of one list: ``IN (%s, %s)``.
_BETWEEN: Final = re.compile(r"[\s,()]*")


#: :func:`_hidden` per ``(sql, count, pattern)``: an app runs the same statements
#: over and over (its texts, not their values), and the regexes cost microseconds.
_HIDDEN: dict[tuple[str, int, re.Pattern[str]], list[bool] | None] = {}
_UNKNOWN: Final[Any] = object()
#: Longer statements (a bulk insert's) are not kept as keys.
_CACHED_SQL: Final = 2000


def _hidden(sql: str, count: int, redact: re.Pattern[str]) -> list[bool] | None:
    """For the first ``count`` placeholders of ``sql``: whether each one's value is a secret.

    ``None`` when the placeholders cannot be matched with the parameters (then
    every parameter is redacted). A placeholder's column is named by the text
    before it since the previous placeholder, from its last comma or keyword
    (``WHERE "django_session"."session_key" = %s``); with no name there, by that
    whole text, or, when it only separates values (``IN (%s, %s)``), it goes
    with the placeholder before it. In ``INSERT INTO t (a, b) VALUES (%s, %s), ...``
    each value goes with its column. A name matches as a kwarg's name does.
    """
    insert = _INSERT.match(sql)
    if insert is not None:
        columns = [redact.search(column) is not None for column in insert.group(1).split(",")]
        if not any(columns):
            return [False] * count
        row = _ROW.match(sql, insert.end())
        if row is None or row.group().count("%s") != len(columns):
            return None  # DEFAULT or an expression among the values: no safe mapping
        return [columns[i % len(columns)] for i in range(count)]
    hidden: list[bool] = []
    start = 0
    for match in _PLACEHOLDER.finditer(sql):
        if len(hidden) == count:
            break
        if match.group() == "%%":
            continue
        segment = sql[start : match.start()]
        start = match.end()
        tail = _CLAUSE.split(segment)[-1]
        if _WORD.search(tail) is not None:
            hidden.append(redact.search(tail) is not None)
        elif _BETWEEN.fullmatch(segment) is not None:  # the next value of a list
            hidden.append(bool(hidden and hidden[-1]))
        else:
            hidden.append(redact.search(segment) is not None)
    return hidden if len(hidden) == count else None


def param_labels(sql: str, params: Any, many: bool, options: Any) -> Any:
    """The parameters of a statement as labels (``RECORD_SQL_PARAMS``); never user code.

    A list or tuple becomes a list of :func:`naming.kwarg_value` labels, a dict
    (named parameters) a dict; a value whose column (or name) matches
    :setting:`REDACT` is ``"[redacted]"``. At most
    :data:`~signaltrace.records.MAX_PARAMS` are kept (then ``"<N more>"``).
    ``executemany()``'s parameter sets are not read, only counted; anything else
    is ``"<module.Type>"``.
    """
    if params is None:
        return None
    cls = type(params)
    if many:
        if cls is list or cls is tuple:
            return f"<{len(params)} parameter sets>"
        return f"<{naming.type_label(cls)}>"
    redact = options.redact
    if cls is dict:
        named: dict[str, Any] = {}
        for key, value in params.items():
            if len(named) == MAX_PARAMS:
                named["…"] = f"<{len(params) - MAX_PARAMS} more>"
                break
            name = key if type(key) is str else naming.kwarg_key(key)
            secret = redact is not None and redact.search(name) is not None
            named[name] = REDACTED if secret else naming.kwarg_value(value)
        return named
    if cls is not list and cls is not tuple:
        return f"<{naming.type_label(cls)}>"
    size = len(params)
    shown = min(size, MAX_PARAMS)
    if redact is None:
        hidden: list[bool] | None = [False] * shown
    else:
        key = (sql, shown, redact)
        hidden = _HIDDEN.get(key, _UNKNOWN)
        if hidden is _UNKNOWN:
            hidden = _hidden(sql, shown, redact)
            if len(sql) <= _CACHED_SQL:
                if len(_HIDDEN) >= 1000:  # bounded: the statements of an app are few
                    _HIDDEN.clear()
                _HIDDEN[key] = hidden
    labels: list[Any] = [
        REDACTED if hidden is None or hidden[i] else naming.kwarg_value(params[i])
        for i in range(shown)
    ]
    if size > shown:
        labels.append(f"<{size - shown} more>")
    return labels
