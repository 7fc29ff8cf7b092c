"""Trace records: what one dispatch and one receiver call looked like.

The hook records into plain lists (cheap to build on the hot path, see
``explanation/overhead``); a :class:`~signaltrace.Trace` turns them into the
frozen :class:`Dispatch` and :class:`ReceiverCall` objects below when it is
read. Records hold labels and scalars only, never the signal, sender,
receiver, instance or exception objects themselves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "MODEL_PK",
    "REDACTED",
    "Dispatch",
    "EnqueuedTask",
    "ErrorInfo",
    "Origin",
    "ReceiverCall",
    "SkippedDispatch",
    "Statement",
    "flat_call_end",
    "flat_calls",
    "read_kwargs",
    "running_flat_call",
    "task_trace_id",
]

#: What a redacted kwarg (see :setting:`REDACT`) is recorded as.
REDACTED: Final = "[redacted]"

#: First item of ``(MODEL_PK, "app_label.Model", pk)``: how the hot path records a
#: model instance kwarg (formatting its label costs more than the rest of the
#: kwarg); :func:`read_kwargs` makes it ``"app_label.Model pk=N"``. Recorded
#: kwargs hold no other tuple (a tuple value is labelled as a list).
MODEL_PK: Final = object()


def read_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A raw dispatch's recorded kwargs as :attr:`Dispatch.kwargs` shows them."""
    for value in kwargs.values():
        if type(value) is tuple:
            return {key: _shown(value) for key, value in kwargs.items()}
    return kwargs


def _shown(value: Any) -> Any:
    if type(value) is tuple and len(value) == 3 and value[0] is MODEL_PK:
        return f"{value[1]} pk={value[2]}"
    return value


#: ``RECORD_SQL``: statements kept per receiver call (each text once, with a count);
#: the rest are counted only.
MAX_STATEMENTS: Final = 50
#: ``RECORD_SQL``: a statement's text is cut at this many characters.
SQL_CHARS: Final = 300
#: ``RECORD_SQL_PARAMS``: parameter sets kept per statement, and parameters per set.
MAX_PARAM_SETS: Final = 10
MAX_PARAMS: Final = 20

# Raw dispatch layout (a list, mutated while the dispatch runs).
D_SIGNAL: Final = 0  # weakref to the signal, or a (name, path) tuple once resolved
D_SENDER: Final = 1  # sender label
D_KWARGS: Final = 2  # dict of recorded kwargs (see read_kwargs), or the call's own when all plain
D_METHOD: Final = 3  # "send", "send_robust", "asend", "asend_robust", "blinker.send", ...
D_START: Final = 4  # perf_counter_ns
D_END: Final = 5  # perf_counter_ns, 0 while running
D_ORIGIN: Final = 6  # (code object, line) of the first frame outside Django, or None
D_CALLS: Final = 7  # raw call lists (async receivers, asend's thread, blinker); () while none
D_PARENT: Final = 8  # the raw call it nests under: a call list, a (dispatch, index) pair, or None
D_TRACES: Final = 9  # tuple of traces that record this dispatch
D_RECEIVERS: Final = 10  # number of live receivers
#: ``{call index: {...}}`` for flat calls (see :data:`D_FLAT`) that need more
#: than a key and a time, or None: ``"end"`` and ``"error"`` for a receiver that
#: raised, ``"tasks"`` (:class:`EnqueuedTask` list) for one that published Celery tasks.
D_EXTRA: Final = 11
#: Per receiver boundary of the flat calls (``RECORD_DB``), or None: the statement
#: count, the ``on_commit`` count and (at a call's start) whether it is in ``atomic``,
#: ``[n0, c0, a0, n1, c1, a1, ..., nN, cN]``.
D_DB: Final = 12
#: ``[statements, m0, m1, ..., mN]`` (``RECORD_SQL``), or None: the list the DB probe
#: appends this thread's ``[sql, count, params]`` entries to, and its length at each
#: receiver boundary of the flat calls (call i ran ``statements[m_i:m_(i+1)]``).
D_SQL: Final = 13
D_SIZE: Final = 14  # the slots of a raw dispatch (a raw call list has fewer)
#: Where the calls of ``send``/``send_robust``'s sync loop start: they follow the
#: slots above in the dispatch list itself, flat, ``[..., key0, t0, key1, t1, ...,
#: tN]`` (no list of their own: one object fewer for the garbage collector to
#: follow per dispatch). One clock read per receiver boundary: call i starts at
#: ``t_i`` and ends at ``t_(i+1)`` (the last at ``tN``, present once the loop
#: ended). See :func:`flat_calls`.
D_FLAT: Final = D_SIZE


def flat_calls(dispatch: list[Any]) -> list[Any] | None:
    """A snapshot of a raw dispatch's flat calls (``[key0, t0, ..., tN]``), or None."""
    return dispatch[D_FLAT:] if len(dispatch) > D_FLAT else None


def flat_call_end(flat: list[Any], facts: dict[str, Any] | None, index: int) -> int | None:
    """When flat call ``index`` ended, or None while it runs.

    ``flat`` is :func:`flat_calls`' snapshot and ``facts`` the call's
    ``D_EXTRA`` entry, if any: ``"end"`` is there only if the call raised (a
    call with other facts, such as the Celery tasks it published, ended at the
    next boundary like any other). The one reader of the layout: traces and
    metrics both use it.
    """
    if facts is not None:
        end = facts.get("end")
        if end is not None:
            return end  # type: ignore[no-any-return]
    n = len(flat)
    if 2 * index + 3 < n:
        return flat[2 * index + 3]  # type: ignore[no-any-return]
    if 2 * index + 3 == n:
        # An odd length: the loop's end time, or the next call's key appended
        # before its start time was (a snapshot taken from another thread
        # between the two appends). A key is never an int.
        last = flat[n - 1]
        if type(last) is int:
            return last
    return None  # the call runs (or its end is not recorded yet)


def running_flat_call(dispatch: list[Any]) -> int | None:
    """The index of the flat call of ``dispatch``'s sync loop running now, or None."""
    n = len(dispatch) - D_FLAT
    return None if n <= 0 or n % 2 else n // 2 - 1


# Raw receiver-call layout.
C_RECEIVER: Final = 0  # weakref to a function, or (label, filename, line, identity token)
C_ASYNC: Final = 1  # bool
C_START: Final = 2
C_END: Final = 3
C_ERROR: Final = 4  # None or ErrorInfo
C_EXTRA: Final = 5  # dict of further facts about the call ("tasks", "sql"), or None
C_DISPATCH: Final = 6  # the raw dispatch
C_QUERIES: Final = 7  # statements run (RECORD_DB), or None
C_ATOMIC: Final = 8  # inside transaction.atomic (RECORD_DB), or None
C_ON_COMMIT: Final = 9  # on_commit callbacks registered (RECORD_DB), or None


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a dispatch came from: the first frame outside Django and signaltrace."""

    filename: str
    lineno: int
    function: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno} in {self.function}"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An exception a receiver raised, kept as labels (never the object)."""

    type: str
    message: str
    filename: str | None = None
    lineno: int | None = None

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


@dataclass(frozen=True, slots=True)
class EnqueuedTask:
    """A Celery task published while a receiver call ran (``signaltrace.integrations.celery``).

    Also one published later, by an ``on_commit`` callback the call registered
    (``on_commit``), while the trace was still open.

    .. versionadded:: 0.1.0
    """

    #: The task's name (``accounts.tasks.send_welcome``).
    name: str
    #: Celery's task id (a UUID): the id of the task's own trace is its 32 hex digits.
    id: str
    #: Published from a ``transaction.on_commit`` callback the receiver registered.
    on_commit: bool = False
    #: Published inside ``transaction.atomic`` (the block had not committed yet).
    in_atomic: bool = False
    #: Run at once in this process (``task_always_eager``, ``apply()``), not published.
    eager: bool = False
    #: ``(trace_id, span_id)`` the OpenTelemetry publish span was parented to
    #: (``OTEL``): the receiver call's span, exported later with that id.
    span: tuple[int, int] | None = field(default=None, compare=False, repr=False)

    @property
    def before_commit(self) -> bool:
        """Published inside ``transaction.atomic``: a worker may run it before the commit."""
        return self.in_atomic and not self.eager

    @property
    def trace_id(self) -> str | None:
        """The id of the task's own trace: ``uuid.UUID(id).hex``, or None if not a UUID."""
        return task_trace_id(self.id)


def task_trace_id(task_id: object) -> str | None:
    """The trace id of a Celery task's trace: ``uuid.UUID(task_id).hex``, or None.

    (None for an id that is not a UUID: such a task's trace gets a random id.)
    """
    if type(task_id) is not str:
        return None
    try:
        return uuid.UUID(task_id).hex
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Statement:
    """A database statement a receiver call ran (``RECORD_SQL``), and how many times.

    The same text run several times in one call is one ``Statement`` whose
    :attr:`count` says how often: ``12`` for the N+1 query of a loop.

    .. versionadded:: 0.1.0
    """

    #: The SQL as the backend got it, with its placeholders (``%s``), cut at 300
    #: characters (``…`` last).
    sql: str
    #: How many times the call ran it.
    count: int = 1
    #: With ``RECORD_SQL_PARAMS``, the parameters of its first runs (at most 10), each
    #: a list (a dict for named parameters) of labels, redacted like kwargs; else ``None``.
    params: tuple[Any, ...] | None = None

    def __str__(self) -> str:
        return self.sql if self.count == 1 else f"{self.sql}  × {self.count}"


@dataclass(eq=False, slots=True)
class ReceiverCall:
    """One receiver invocation inside a :class:`Dispatch`.

    .. versionadded:: 0.1.0
    """

    receiver_name: str
    filename: str | None
    lineno: int | None
    is_async: bool
    start_ns: int
    duration_ns: int | None
    error: ErrorInfo | None
    dispatch: Dispatch = field(repr=False)
    children: list[Dispatch] = field(default_factory=list, repr=False)
    #: Database statements the receiver ran (``RECORD_DB``), else None.
    queries: int | None = None
    #: Whether it ran inside ``transaction.atomic`` (``RECORD_DB``), else None.
    in_atomic: bool | None = None
    #: ``on_commit`` callbacks it registered (``RECORD_DB``), else None.
    on_commit: int | None = None
    #: An opaque token for the receiver object, made of weak references only:
    #: what ``assert_called(receiver)`` and ``find(receiver=...)`` compare the
    #: object they are given with (see ``signaltrace.query.is_receiver``).
    receiver_identity: Any = field(default=None, repr=False)
    #: Celery tasks it published (``signaltrace.integrations.celery``), in order.
    tasks: tuple[EnqueuedTask, ...] = ()
    #: The statements it ran, nested receivers' included, each text once, in the
    #: order they first ran (``RECORD_SQL``), else None. At most 50 are kept.
    sql: tuple[Statement, ...] | None = None
    #: How many statements it ran beyond those counted in :attr:`sql`.
    sql_omitted: int = 0

    @property
    def outcome(self) -> str:
        """``"returned"``, ``"raised"``, or ``"running"`` if it has not finished."""
        if self.error is not None:
            return "raised"
        return "running" if self.duration_ns is None else "returned"

    @property
    def location(self) -> str | None:
        """``filename:line`` of the receiver's code, when it has Python code."""
        if self.filename is None:
            return None
        return f"{self.filename}:{self.lineno}"

    @property
    def swallowed(self) -> bool:
        """True if the receiver raised inside ``send_robust``/``asend_robust``."""
        return self.error is not None and self.dispatch.robust

    @property
    def duration_ms(self) -> float:
        return (self.duration_ns or 0) / 1e6


@dataclass(eq=False, slots=True)
class Dispatch:
    """One ``send``/``send_robust``/``asend``/``asend_robust`` (or blinker send).

    .. versionadded:: 0.1.0
    """

    signal_name: str
    signal_path: str
    sender: str
    kwargs: dict[str, Any]
    method: str
    start_ns: int
    duration_ns: int | None
    origin: Origin | None
    receiver_count: int
    calls: list[ReceiverCall] = field(default_factory=list, repr=False)
    parent: ReceiverCall | None = field(default=None, repr=False)

    @property
    def robust(self) -> bool:
        return self.method.endswith("robust")

    @property
    def blinker(self) -> bool:
        return self.method.startswith("blinker")

    @property
    def created(self) -> Any:
        return self.kwargs.get("created")

    @property
    def instance(self) -> Any:
        return self.kwargs.get("instance")

    @property
    def duration_ms(self) -> float:
        return (self.duration_ns or 0) / 1e6


@dataclass(frozen=True, slots=True)
class SkippedDispatch:
    """An operation that skipped signals which had receivers connected.

    ``QuerySet.update``, ``bulk_create`` and ``bulk_update`` send no model
    signals; when receivers are connected for the model, the trace says which
    would have run.

    .. versionadded:: 0.1.0
    """

    operation: str
    model: str
    signals: tuple[str, ...]
    receivers: tuple[str, ...]
    origin: Origin | None
    start_ns: int
    rows: int | None = None

    def __str__(self) -> str:
        where = f"  ({self.origin})" if self.origin else ""
        return (
            f"{self.operation} on {self.model} skipped {', '.join(self.signals)}: "
            f"{', '.join(self.receivers)} did not run{where}"
        )
