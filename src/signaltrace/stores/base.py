"""What every store shares: the interface, the list entries, the JSON and its read model.

A store keeps the newest ``BUFFER_SIZE`` finished traces. It answers three
questions for the trace viewer: the recent traces, newest first, as
:class:`Listing` entries (what the list page shows, without the tree); one
trace by its id (a :class:`~signaltrace.Trace` for the memory store, a
:class:`StoredTrace` read back from JSON for a shared one); and it can forget
everything. A shared store keeps text only: the trace JSON
(:doc:`/reference/trace-json`) and a listing in JSON, never a pickle.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol, cast, runtime_checkable

from signaltrace import _stats, render
from signaltrace.conf import get_config
from signaltrace.context import log_failure
from signaltrace.records import (
    Dispatch,
    EnqueuedTask,
    ErrorInfo,
    Origin,
    ReceiverCall,
    SkippedDispatch,
    Statement,
)
from signaltrace.summary import summarize
from signaltrace.traces import KINDS, Truncation

if TYPE_CHECKING:
    from collections.abc import Callable

    from signaltrace.traces import Trace

__all__ = [
    "ID",
    "LISTING_SCHEMA",
    "Listing",
    "Store",
    "StoredTrace",
    "contained",
    "dumps",
    "failed",
    "listing_from_dict",
    "listing_of",
    "listing_to_dict",
    "loads",
    "valid_id",
]

#: A trace id: 32 lowercase hex digits (``Trace.trace_id``).
ID: Final = re.compile(r"[0-9a-f]{32}")
#: The version of the listing JSON a shared store keeps next to each trace.
LISTING_SCHEMA: Final = "signaltrace.listing/1"
_EPOCH: Final = datetime.fromtimestamp(0, tz=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
#: Schemas of the trace JSON a store can read back.
READABLE: Final = (render.SCHEMA,)


@runtime_checkable
class Store(Protocol):
    """Where finished traces are kept for the viewer (``SIGNALTRACE["STORE"]``).

    A store class is instantiated with ``(size, options)``: ``BUFFER_SIZE``
    and the ``STORE_OPTIONS`` dict. It may also have a class attribute
    ``in_process = True`` (it keeps traces in this process and writing costs
    no I/O: it is then written in the request, as the memory store is) and a
    classmethod ``option_errors(options) -> list[str]`` (what is wrong with
    ``STORE_OPTIONS``, for the system checks). Every other store is written
    on the sink worker thread, never in the request.

    .. versionadded:: 0.1.0
    """

    def save(self, trace: Trace) -> None:
        """Keep ``trace`` (closed), dropping the oldest past the store's size."""

    def get(self, trace_id: str) -> Trace | StoredTrace | None:
        """The kept trace with this id, or ``None``."""

    def recent(self, *, kind: str | None = None) -> list[Listing]:
        """The kept traces, newest first, as list entries; only ``kind`` if given."""

    def clear(self) -> None:
        """Forget every kept trace."""


def contained(where: str, call: Callable[..., Any], *args: Any, default: Any = None) -> Any:
    """``call(*args)``; if it raises: counted as ``store_failures``, logged once, ``default``.

    What keeps a store failure (Redis down, a missing table) away from the
    request and the viewer.
    """
    try:
        return call(*args)
    except Exception as err:
        failed(where, err)
        return default


def failed(where: str, err: BaseException) -> None:
    """Count a store failure (``store_failures``) and log it once per place."""
    _stats.count("store_failures")
    log_failure(f"store {where}", err)


# -- JSON ------------------------------------------------------------------------


def _unknown(value: object) -> str:
    """What ``json.dumps`` writes for a value it cannot encode (never user ``__str__``)."""
    return f"<{type(value).__name__}>"


def dumps(data: Any) -> str:
    """Compact JSON text; a value JSON cannot hold becomes ``"<Type>"``."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=_unknown)


def loads(text: object) -> Any:
    """Parse JSON text (``str`` or UTF-8 ``bytes``); anything else is refused.

    Only text is parsed: a value of any other type read back from a store is
    an error, never an object to use.

    :raises ValueError: if ``text`` is not JSON text.
    """
    if type(text) is bytes:
        text = text.decode("utf-8")
    if type(text) is not str:
        raise ValueError(f"a stored value must be JSON text, got {type(text).__name__}")
    return json.loads(text)


# -- listings --------------------------------------------------------------------


def _scalar(value: object) -> bool:
    return value is None or type(value) in (str, int, float, bool)


@dataclass(frozen=True, slots=True)
class Listing:
    """One kept trace as the viewer's list shows it: facts and counts, no tree.

    ``error`` is set instead of the facts for an entry the store could not read
    (the viewer shows an error row for it).

    .. versionadded:: 0.1.0
    """

    trace_id: str
    kind: str = "capture"
    #: ``{"trace_id": ..., "receiver": ...}`` of the trace that caused this one.
    parent: dict[str, Any] | None = None
    label: str | None = None
    #: The trace's ``meta`` (method, path, status, view...); read back from a
    #: shared store, its scalar values only.
    meta: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    duration_ns: int = 0
    dispatches: int = 0
    calls: int = 0
    receiver_time_ns: int = 0
    #: Receiver calls that raised.
    errors: int = 0
    #: The slowest receiver call's receiver, or ``""``, and its duration.
    slowest: str = ""
    slowest_ns: int | None = None
    signals: tuple[str, ...] = ()
    receivers: tuple[str, ...] = ()
    dropped: int = 0
    #: The ``⚠`` line of each operation that skipped connected receivers.
    skipped: tuple[str, ...] = ()
    #: Where :setting:`MAX_EVENTS` cut the trace short, or ``None``.
    truncated_at: Truncation | None = None
    error: BaseException | None = field(default=None, compare=False)

    def is_slow(self, slow_ms: float) -> bool:
        """Whether a receiver call took ``slow_ms`` or more (never, for ``0``)."""
        return bool(slow_ms) and (self.slowest_ns or 0) >= slow_ms * 1_000_000


def valid_id(value: object) -> str:
    """``value`` if it is a trace id (32 lowercase hex digits), else ``""``."""
    return value if type(value) is str and ID.fullmatch(value) else ""


def listing_of(trace: Trace | StoredTrace) -> Listing:
    """The :class:`Listing` of a (closed) trace, live or stored."""
    # A StoredTrace has the reading side of a Trace (what summarize() reads).
    summary = summarize(cast("Trace", trace), get_config()["SLOW_MS"])
    slowest = summary.slowest[0] if summary.slowest else None
    return Listing(
        trace_id=trace.trace_id,
        kind=trace.kind,
        parent=None if trace.parent is None else dict(trace.parent),
        label=trace.label,
        meta=dict(trace.meta),
        started_at=trace.started_at,
        duration_ns=trace.duration_ns,
        dispatches=summary.dispatches,
        calls=summary.calls,
        receiver_time_ns=summary.receiver_time_ns,
        errors=len(summary.errors),
        slowest=slowest.receiver_name if slowest else "",
        slowest_ns=slowest.duration_ns if slowest else None,
        signals=tuple(summary.signals),
        receivers=tuple(summary.receivers),
        dropped=summary.dropped,
        skipped=tuple(render.skipped_line(item) for item in trace.skipped),
        truncated_at=_truncation(trace),
    )


def _truncation(trace: Trace | StoredTrace) -> Truncation | None:
    """``trace.truncated_at`` without its clock reading (``at_ns``: 0, as the JSON has
    none), also for a trace still open (what was dropped is not named yet)."""
    at = trace.truncated_at
    if at is not None:
        return Truncation(at.events, at.dispatches, at.what, 0)
    if trace.truncated:
        return Truncation(trace.events, len(trace.dispatches), "event", 0)
    return None


def listing_to_dict(listing: Listing) -> dict[str, Any]:
    """The listing as JSON types (schema ``signaltrace.listing/1``)."""
    return {
        "schema": LISTING_SCHEMA,
        "trace_id": listing.trace_id,
        "kind": listing.kind,
        "parent": listing.parent,
        "label": listing.label,
        "meta": listing.meta,
        "started_at": None if listing.started_at is None else listing.started_at.isoformat(),
        "duration_ns": listing.duration_ns,
        "dispatches": listing.dispatches,
        "calls": listing.calls,
        "receiver_time_ns": listing.receiver_time_ns,
        "errors": listing.errors,
        "slowest": listing.slowest,
        "slowest_ns": listing.slowest_ns,
        "signals": list(listing.signals),
        "receivers": list(listing.receivers),
        "dropped": listing.dropped,
        "skipped": list(listing.skipped),
        "truncated": None
        if listing.truncated_at is None
        else {
            "events": listing.truncated_at.events,
            "dispatches": listing.truncated_at.dispatches,
            "what": listing.truncated_at.what,
        },
    }


def listing_from_dict(data: Any) -> Listing:
    """A :class:`Listing` read back from :func:`listing_to_dict`'s JSON.

    :raises ValueError: if ``data`` is not such a listing.
    """
    d = _Fields(data, "listing")
    if d.text("schema") != LISTING_SCHEMA:
        raise ValueError(f"not a {LISTING_SCHEMA} listing")
    return Listing(
        trace_id=d.trace_id(),
        kind=d.kind(),
        parent=d.parent(),
        label=d.opt_text("label"),
        meta={k: v for k, v in d.obj("meta").items() if type(k) is str and _scalar(v)},
        started_at=d.when("started_at"),
        duration_ns=d.number("duration_ns"),
        dispatches=d.number("dispatches"),
        calls=d.number("calls"),
        receiver_time_ns=d.number("receiver_time_ns"),
        errors=d.number("errors"),
        slowest=d.text("slowest"),
        slowest_ns=d.opt_number("slowest_ns"),
        signals=d.texts("signals"),
        receivers=d.texts("receivers"),
        dropped=d.number("dropped"),
        skipped=d.texts("skipped"),
        truncated_at=_truncated(data.get("truncated")),
    )


def _truncated(data: Any) -> Truncation | None:
    if data is None:
        return None
    t = _Fields(data, "truncated")
    return Truncation(t.number("events"), t.number("dispatches"), t.text("what"), 0)


# -- reading JSON back --------------------------------------------------------------


class _Fields:
    """Typed access to one JSON object: each getter raises ValueError on a wrong type."""

    __slots__ = ("data", "what")

    def __init__(self, data: Any, what: str) -> None:
        if type(data) is not dict:
            raise ValueError(f"a {what} must be a JSON object, got {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.what = what

    def _get(self, key: str, types: tuple[type, ...]) -> Any:
        value = self.data.get(key)
        if type(value) not in types:
            raise ValueError(f"{self.what}[{key!r}] has the wrong type: {type(value).__name__}")
        return value

    def text(self, key: str) -> str:
        return self._get(key, (str,))  # type: ignore[no-any-return]

    def opt_text(self, key: str) -> str | None:
        return self._get(key, (str, type(None)))  # type: ignore[no-any-return]

    def number(self, key: str) -> int:
        return self._get(key, (int,))  # type: ignore[no-any-return]

    def opt_number(self, key: str) -> int | None:
        return self._get(key, (int, type(None)))  # type: ignore[no-any-return]

    def opt_flag(self, key: str) -> bool | None:
        return self._get(key, (bool, type(None)))  # type: ignore[no-any-return]

    def flag(self, key: str) -> bool:
        return self._get(key, (bool,))  # type: ignore[no-any-return]

    def obj(self, key: str) -> dict[str, Any]:
        return self._get(key, (dict,))  # type: ignore[no-any-return]

    def items(self, key: str) -> list[Any]:
        return self._get(key, (list,))  # type: ignore[no-any-return]

    def texts(self, key: str) -> tuple[str, ...]:
        items = self.items(key)
        if not all(type(item) is str for item in items):
            raise ValueError(f"{self.what}[{key!r}] must hold strings only")
        return tuple(items)

    def when(self, key: str) -> datetime:
        value = datetime.fromisoformat(self.text(key))
        if value.tzinfo is None:
            raise ValueError(f"{self.what}[{key!r}] has no time zone")
        return value

    def trace_id(self) -> str:
        value = self.text("trace_id")
        if not ID.fullmatch(value):
            raise ValueError(f"{self.what}['trace_id'] is not 32 hex digits")
        return value

    def kind(self) -> str:
        value = self.text("kind")
        if value not in KINDS:
            raise ValueError(f"{self.what}['kind'] {value!r} is not one of {', '.join(KINDS)}")
        return value

    def parent(self) -> dict[str, Any] | None:
        value = self.data.get("parent")
        if value is None:
            return None
        parent = _Fields(value, "parent")
        parent.trace_id()
        parent.opt_text("receiver")
        return dict(value)


def _location(text: str | None) -> tuple[str | None, int | None]:
    """``(filename, lineno)`` from a ``"file:line"`` location (the inverse of the JSON's)."""
    if text is None:
        return None, None
    filename, _colon, line = text.rpartition(":")
    if not filename:
        raise ValueError(f"not a location: {text!r}")
    return filename, int(line) if line.isdigit() else None


def _origin(data: Any) -> Origin | None:
    if data is None:
        return None
    d = _Fields(data, "origin")
    return Origin(d.text("filename"), d.number("lineno"), d.text("function"))


class StoredTrace:
    """A trace read back from its JSON (``signaltrace.trace/2``): what the viewer shows.

    It has the reading side of :class:`~signaltrace.Trace`: ``dispatches``,
    ``calls``, ``roots``, ``errors``, ``skipped``, ``meta``, ``truncated``,
    ``trace_id``, ``kind``, ``parent``, ``render()`` and ``to_dict()``, rebuilt
    as the same
    :class:`~signaltrace.Dispatch` and :class:`~signaltrace.ReceiverCall`
    records, so it renders as the live trace did. Receivers are known by name
    only (no object to compare with), and it is always closed.

    :raises ValueError: if ``data`` is not trace JSON of a readable schema.

    .. versionadded:: 0.1.0
    """

    closed: Final = True
    options: Final = None

    def __init__(self, data: Any) -> None:
        d = _Fields(data, "trace")
        if d.text("schema") not in READABLE:
            raise ValueError(f"unknown trace schema {d.data.get('schema')!r}")
        self.trace_id = d.trace_id()
        self.kind = d.kind()
        self.parent = d.parent()
        self.label = d.opt_text("label")
        self.meta: dict[str, Any] = d.obj("meta")
        started = d.when("started_at")
        self.started_at = started
        self.started_epoch_ns = (started - _EPOCH) // _MICROSECOND * 1000
        self.start_ns = d.number("start_ns")
        self.duration_ns = d.number("duration_ns")
        self.end_ns = self.start_ns + self.duration_ns
        self.events = d.number("events")
        self.dropped = d.number("dropped")
        self.max_events = d.number("max_events")
        self.truncated_at: Truncation | None = _truncated(data.get("truncated"))
        self.roots: list[Dispatch] = [self._dispatch(item, None) for item in d.items("dispatches")]
        self.dispatches: list[Dispatch] = sorted(_walk(self.roots), key=_start)
        self.calls: list[ReceiverCall] = sorted(
            (call for dispatch in self.dispatches for call in dispatch.calls), key=_start
        )
        self.skipped: list[SkippedDispatch] = [
            _skipped(item) for item in d.items("skipped") if item is not None
        ]

    def _dispatch(self, data: Any, parent: ReceiverCall | None) -> Dispatch:
        d = _Fields(data, "dispatch")
        dispatch = Dispatch(
            signal_name=d.text("signal"),
            signal_path=d.text("signal_path"),
            sender=d.text("sender"),
            kwargs=d.obj("kwargs"),
            method=d.text("method"),
            start_ns=d.number("start_ns"),
            duration_ns=d.opt_number("duration_ns"),
            origin=_origin(data.get("origin")),
            receiver_count=d.number("receiver_count"),
            parent=parent,
        )
        dispatch.calls.extend(self._call(item, dispatch) for item in d.items("calls"))
        return dispatch

    def _call(self, data: Any, dispatch: Dispatch) -> ReceiverCall:
        d = _Fields(data, "call")
        filename, lineno = _location(d.opt_text("location"))
        error = None
        if data.get("error") is not None:
            e = _Fields(data["error"], "error")
            error_file, error_line = _location(e.opt_text("location"))
            error = ErrorInfo(e.text("type"), e.text("message"), error_file, error_line)
        call = ReceiverCall(
            receiver_name=d.text("receiver"),
            filename=filename,
            lineno=lineno,
            is_async=d.flag("async"),
            start_ns=d.number("start_ns"),
            duration_ns=d.opt_number("duration_ns"),
            error=error,
            dispatch=dispatch,
            queries=d.opt_number("queries"),
            in_atomic=d.opt_flag("in_atomic"),
            on_commit=d.opt_number("on_commit"),
            tasks=tuple(_task(item) for item in data.get("tasks") or ()),
            sql=_statements(data.get("sql")),
            sql_omitted=d.opt_number("sql_omitted") or 0,
        )
        call.children.extend(self._dispatch(item, call) for item in d.items("dispatches"))
        return call

    @property
    def truncated(self) -> bool:
        """Whether :setting:`MAX_EVENTS` cut the trace short."""
        return self.truncated_at is not None

    @property
    def errors(self) -> list[ReceiverCall]:
        """Receiver calls that raised (including those ``send_robust`` swallowed)."""
        return [call for call in self.calls if call.error is not None]

    @property
    def receiver_time_ns(self) -> int:
        """Time spent in top-level receiver calls (nested time counted once)."""
        return sum(call.duration_ns or 0 for dispatch in self.roots for call in dispatch.calls)

    @property
    def raw(self) -> list[Dispatch]:
        """As ``Trace.raw`` counts them: one entry per recorded dispatch."""
        return self.dispatches

    def to_dict(self) -> dict[str, Any]:
        """The trace JSON again (``render.trace_to_dict``): equal to what was stored."""
        return render.trace_to_dict(self)  # type: ignore[arg-type]

    def render(self, *, numbered: bool = False, color: bool = False) -> str:
        """The text tree, as ``Trace.render()`` draws it."""
        return render.render_trace(self, numbered=numbered, color=color)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"<StoredTrace {self.kind} {self.trace_id} dispatches={len(self.dispatches)}>"


def _start(item: Dispatch | ReceiverCall) -> int:
    return item.start_ns


def _walk(dispatches: list[Dispatch]) -> Iterator[Dispatch]:
    for dispatch in dispatches:
        yield dispatch
        for call in dispatch.calls:
            yield from _walk(call.children)


def _task(data: Any) -> EnqueuedTask:
    """A call's Celery task, read back (``signaltrace.integrations.celery``)."""
    d = _Fields(data, "task")
    return EnqueuedTask(
        name=d.text("name"),
        id=d.text("id"),
        on_commit=d.flag("on_commit"),
        in_atomic=d.flag("in_atomic"),
        eager=d.flag("eager"),
    )


def _statements(data: Any) -> tuple[Statement, ...] | None:
    """A call's ``sql`` (``RECORD_SQL``), read back; None when it was not recorded."""
    if data is None:
        return None
    if type(data) is not list:
        raise ValueError(f"call['sql'] has the wrong type: {type(data).__name__}")
    statements = []
    for item in data:
        d = _Fields(item, "statement")
        params = item.get("params")
        if params is not None and type(params) is not list:
            raise ValueError(f"statement['params'] has the wrong type: {type(params).__name__}")
        statements.append(
            Statement(d.text("sql"), d.number("count"), None if params is None else tuple(params))
        )
    return tuple(statements)


def _skipped(data: Any) -> SkippedDispatch:
    d = _Fields(data, "skipped")
    return SkippedDispatch(
        operation=d.text("operation"),
        model=d.text("model"),
        signals=d.texts("signals"),
        receivers=d.texts("receivers"),
        origin=_origin(data.get("origin")),
        start_ns=d.number("start_ns"),
        rows=d.opt_number("rows"),
    )


def option_errors(
    options: Mapping[str, Any], known: Mapping[str, Callable[[Any], str | None]]
) -> list[str]:
    """Messages for ``STORE_OPTIONS``: unknown keys, and what each known key's check says."""
    errors = []
    for key, value in options.items():
        check = known.get(key) if type(key) is str else None
        if check is None:
            valid = ", ".join(known) if known else "none"
            errors.append(f"{key!r} is not an option of this store (its options: {valid}).")
            continue
        problem = check(value)
        if problem:
            errors.append(f"[{key!r}] {problem}")
    return errors
