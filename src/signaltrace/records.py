"""Trace records: what one dispatch and one receiver call looked like.

The hook records into plain lists (cheap to build on the hot path, see
``explanation/overhead``); a :class:`~signaltrace.Trace` turns them into the
frozen :class:`Dispatch` and :class:`ReceiverCall` objects below when it is
read. Records hold labels and scalars only, never the signal, sender,
receiver, instance or exception objects themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["REDACTED", "Dispatch", "ErrorInfo", "Origin", "ReceiverCall", "SkippedDispatch"]

#: What a redacted kwarg (see :setting:`REDACT`) is recorded as.
REDACTED: Final = "[redacted]"

# Raw dispatch layout (a list, mutated while the dispatch runs).
D_SIGNAL: Final = 0  # weakref to the signal, or a (name, path) tuple once resolved
D_SENDER: Final = 1  # sender label
D_KWARGS: Final = 2  # dict of recorded kwargs
D_METHOD: Final = 3  # "send", "send_robust", "asend", "asend_robust", "blinker.send", ...
D_START: Final = 4  # perf_counter_ns
D_END: Final = 5  # perf_counter_ns, 0 while running
D_ORIGIN: Final = 6  # (code object, line) of the first frame outside Django, or None
D_CALLS: Final = 7  # raw call lists (async receivers, asend's thread, blinker)
D_PARENT: Final = 8  # the raw call it nests under: a call list, a (dispatch, index) pair, or None
D_TRACES: Final = 9  # tuple of traces that record this dispatch
D_RECEIVERS: Final = 10  # number of live receivers
#: The calls of ``send``/``send_robust``'s sync loop, flat: ``[key0, t0, key1, t1,
#: ..., tN]``. One clock read per receiver boundary: call i starts at ``t_i``
#: and ends at ``t_(i+1)`` (the last at ``tN``, present once the loop ended).
D_FLAT: Final = 11
#: ``{call index: {"end": ns, "error": ErrorInfo, ...}}`` for flat calls that
#: need more than a key and a time (a receiver that raised), or None.
D_EXTRA: Final = 12
#: ``[(queries, in_atomic, on_commit), ...]`` per flat call (``RECORD_DB``), or None.
D_DB: Final = 13
D_SIZE: Final = 14  # a raw dispatch's length (a raw call list is shorter)

# Raw receiver-call layout.
C_RECEIVER: Final = 0  # weakref to a function, or (label, filename, line, identity token)
C_ASYNC: Final = 1  # bool
C_START: Final = 2
C_END: Final = 3
C_ERROR: Final = 4  # None or ErrorInfo
C_EXTRA: Final = 5  # dict of further facts about the call, or None
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
