"""Context-local collection: which traces the current thread or task feeds.

One :class:`~contextvars.ContextVar` holds a *cursor*, a small list
``[traces, parent_call, options, owner]``:

- ``traces``: the tuple of open :class:`~signaltrace.Trace` objects this flow
  records into (nested ``capture()`` blocks all see the same records);
- ``parent_call``: the raw receiver call that new dispatches nest under, or
  ``None`` at the top; a ``dict`` maps asyncio tasks to their call where
  Django 6.1 runs sibling receivers in one shared context;
- ``options``: the :class:`Options` of the innermost trace;
- ``owner``: the :func:`threading.get_ident` of the thread that made it, or
  ``None`` for a cursor no thread may change in place.

A traced dispatch nests what its receivers send under itself by pointing
``parent_call`` at itself while they run. In the thread that owns the cursor,
``send()``/``send_robust()`` do that in place and put the old value back when
the loop ends, unless an event loop runs in that thread: a sync loop runs
start to end on one thread's stack (no other task of that thread runs
meanwhile), so the changes nest strictly, and only the flows of an event loop
(its tasks, and the threads ``asyncio.to_thread()`` starts with a copy of a
task's context) share a cursor while one of them changes it. Everywhere else
(in an event loop's thread, another thread that shares the cursor through a
copied context, async receivers, blinker) the dispatch sets a fresh cursor of
its own for the duration of its receivers (see ``explanation/architecture``). Traces opened
with ``all_threads=True`` are also fed by flows that have no cursor of their
own.

It also keeps the process-wide flags the send replacements read first:
:data:`ACTIVE` (a capture is open anywhere, or ``METRICS`` is on; while it is
``False`` each send method costs one global read), :data:`CAPTURING` (open
captures anywhere) and :data:`EMPTY_WATCHERS`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
import threading
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from django.utils.module_loading import import_string

from .conf import get_config

__all__ = [
    "ACTIVE",
    "CAPTURING",
    "CURSOR",
    "DB_WATCHERS",
    "EMPTY_WATCHERS",
    "K_CALL",
    "K_OPTIONS",
    "K_OWNER",
    "K_TRACES",
    "Options",
    "TraceTarget",
    "active_traces",
    "current_options",
    "current_parent",
    "log_failure",
    "recording",
    "wants_empty",
    "watch_captures",
    "watch_db",
    "watch_empty",
    "watch_metrics",
    "with_global",
]

logger: Final = logging.getLogger("signaltrace")

CURSOR: Final[ContextVar[list[Any] | None]] = ContextVar("signaltrace_cursor", default=None)

# Cursor layout.
K_TRACES: Final = 0
K_CALL: Final = 1
K_OPTIONS: Final = 2
K_OWNER: Final = 3

#: How many captures are open (any thread). While zero, dispatch skips the
#: context lookup.
CAPTURING = 0

#: Whether ``METRICS`` is on (set by :func:`signaltrace._metrics.refresh`).
METRICS = False

#: ``CAPTURING or METRICS``: whether the send replacements have anything to do.
#: While ``False`` they run Django's (or blinker's) loop after one global read.
ACTIVE = False

#: Guards :data:`ACTIVE`'s two inputs (captures and metrics change it from any thread).
_active_lock = threading.Lock()

#: How many open captures record dispatches without receivers (RECORD_EMPTY);
#: checked on Django's no-receivers fast exit, which otherwise stays untouched.
EMPTY_WATCHERS = 0

#: How many open captures count each receiver's statements (RECORD_DB): while
#: none does, the cursor wrappers of :mod:`signaltrace._db` count nothing.
DB_WATCHERS = 0


class TraceTarget(Protocol):
    """What the hot path needs of a :class:`~signaltrace.Trace` it records into."""

    closed: bool
    events: int
    dropped: int
    max_events: int
    options: Options
    # What open_dispatch() reads and changes when it inlines admit() for an open
    # trace (Trace's own; a target that is always closed never needs them).
    raw: list[Any]
    _lock: threading.Lock
    _truncated_raw: Any

    def admit(self, item: Any, cost: int, skipped: bool = False) -> bool: ...


#: Traces opened with ``capture(all_threads=True)``; replaced, never mutated.
GLOBAL_TRACES: tuple[Any, ...] = ()


def watch_captures(delta: int) -> None:
    """Count open captures (called by ``capture()``, under its lock)."""
    global CAPTURING, ACTIVE
    with _active_lock:
        CAPTURING += delta
        ACTIVE = bool(CAPTURING) or METRICS


def watch_db(delta: int) -> None:
    """Count captures that record statements (see ``RECORD_DB``)."""
    global DB_WATCHERS
    DB_WATCHERS += delta


def watch_metrics(on: bool) -> None:
    """Record whether ``METRICS`` is on (called whenever the setting is read)."""
    global METRICS, ACTIVE
    with _active_lock:
        METRICS = on
        ACTIVE = bool(CAPTURING) or on


def watch_empty(delta: int) -> None:
    """Count captures that want empty dispatches recorded (see ``RECORD_EMPTY``)."""
    global EMPTY_WATCHERS
    EMPTY_WATCHERS += delta


_logged: set[str] = set()


@dataclass(frozen=True, slots=True)
class Options:
    """What to record, resolved from settings once per ``capture()``."""

    ignored: frozenset[object]
    record_empty: bool | str  # False, True or "nested"
    record_origin: bool
    record_db: bool
    redact: re.Pattern[str] | None
    max_events: int
    #: Record the statements of each sync receiver call (``RECORD_SQL``, with ``RECORD_DB``).
    record_sql: bool = False
    #: Record their parameters too, redacted (``RECORD_SQL_PARAMS``).
    record_sql_params: bool = False
    #: Per-key cache of the redaction decision (keys are a small, finite set).
    redacted_keys: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)
    #: The keys of :attr:`redacted_keys` that are not redacted (exact ``str``\ s, at
    #: most 200 characters): the hot path's test of a kwarg name.
    plain_keys: set[str] = field(default_factory=set, compare=False, repr=False)


def current_parent(cursor: list[Any]) -> Any:
    """The raw receiver call a new dispatch nests under, for this task, when the
    cursor's ``parent_call`` maps tasks to calls (Django 6.1's shared TaskGroup
    context; callers check that first, the common case being a call or None)."""
    call = cursor[K_CALL]
    try:
        task = asyncio.current_task()
    except RuntimeError:  # a thread, e.g. sync_to_async inside a receiver
        task = None
    found = call.get(task)
    if found is None and len(call) == 1:
        # Not one of the receiver tasks (a thread or a sub-task it started);
        # with a single receiver running, it is still the parent.
        return next(iter(call.values()))
    return found


def wants_empty(cursor: list[Any]) -> bool:
    """Whether a dispatch without receivers is recorded here (``RECORD_EMPTY``)."""
    mode = cursor[K_OPTIONS].record_empty
    if mode is True:
        return True
    return bool(mode) and cursor[K_CALL] is not None


def global_cursor() -> list[Any] | None:
    """A cursor for a flow with none, if an ``all_threads`` capture is open."""
    traces = GLOBAL_TRACES
    if not traces:
        return None
    # Made for one dispatch and not installed in the context: never changed in place.
    return [traces, None, traces[-1].options, None]


def add_global(trace: TraceTarget) -> None:
    global GLOBAL_TRACES
    GLOBAL_TRACES = (*GLOBAL_TRACES, trace)


def remove_global(trace: TraceTarget) -> None:
    global GLOBAL_TRACES
    GLOBAL_TRACES = tuple(t for t in GLOBAL_TRACES if t is not trace)


def active_traces() -> tuple[Any, ...]:
    """The open traces the current thread or task records into (none if idle)."""
    cursor = CURSOR.get()
    traces = with_global(cursor[K_TRACES] if cursor is not None else ())
    return tuple(t for t in traces if not t.closed)


def recording() -> bool:
    """Whether the current thread or task records into some open trace (cheaper than
    :func:`active_traces`, for a check on a hot path)."""
    cursor = CURSOR.get()
    if cursor is not None:
        for trace in cursor[K_TRACES]:
            if not trace.closed:
                return True
    return any(not trace.closed for trace in GLOBAL_TRACES)


def with_global(traces: tuple[Any, ...]) -> tuple[Any, ...]:
    """``traces`` plus the open ``all_threads`` traces not already among them."""
    if GLOBAL_TRACES:
        return traces + tuple(t for t in GLOBAL_TRACES if t not in traces)
    return traces


#: How many failures :func:`log_failure` caught in this process: every one, not
#: only the first of each place (read through :func:`signaltrace.stats`).
FAILURES = 0
_failures_lock = threading.Lock()


def _failures_after_fork() -> None:
    """In a forked child: count and log its own failures, under a fresh lock.

    (The parent's lock may have been held by one of its other threads.)
    """
    global FAILURES, _failures_lock, _active_lock
    _failures_lock = threading.Lock()
    _active_lock = threading.Lock()
    FAILURES = 0
    _logged.clear()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_failures_after_fork)


def log_failure(where: str, exc: BaseException) -> None:
    """Count an internal failure, and log it once per place (per process).

    The traced code never sees it: a sink failing on every request is counted
    each time (:data:`FAILURES`) and logged the first time.
    """
    global FAILURES
    with _failures_lock:
        FAILURES += 1
        if where in _logged:
            return
        _logged.add(where)
    logger.warning(
        "signaltrace: internal error in %s; recording continues without it.",
        where,
        exc_info=exc,
    )


_options_cache: tuple[object, Options] | None = None


def current_options(max_events: int | None = None) -> Options:
    """:class:`Options` from the current settings (cached per settings dict)."""
    global _options_cache
    config = get_config()
    cached = _options_cache
    if cached is None or cached[0] is not config:
        ignored = set()
        for path in config["IGNORE_SIGNALS"]:
            try:
                ignored.add(import_string(path))
            except ImportError as err:
                log_failure(f"IGNORE_SIGNALS {path}", err)
        patterns = [re.escape(p) for p in config["REDACT"] if p]
        options = Options(
            ignored=frozenset(ignored),
            record_empty=config["RECORD_EMPTY"],
            record_origin=config["RECORD_ORIGIN"],
            record_db=config["RECORD_DB"],
            redact=re.compile("|".join(patterns), re.IGNORECASE) if patterns else None,
            max_events=config["MAX_EVENTS"],
            record_sql=bool(config["RECORD_DB"] and config["RECORD_SQL"]),
            record_sql_params=bool(
                config["RECORD_DB"] and config["RECORD_SQL"] and config["RECORD_SQL_PARAMS"]
            ),
        )
        _options_cache = cached = (config, options)
    if max_events is not None:
        return dataclasses.replace(cached[1], max_events=max_events)
    return cached[1]
