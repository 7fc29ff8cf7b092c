"""Turn traces into what the viewer's templates show: list rows and tree rows."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final

from django.utils import timezone

from signaltrace._format import format_ms, location
from signaltrace.context import log_failure
from signaltrace.naming import type_label
from signaltrace.records import REDACTED, Dispatch, ReceiverCall, SkippedDispatch
from signaltrace.render import dispatch_summary, repeated_query
from signaltrace.stores import Listing, StoredTrace, listing_of

if TYPE_CHECKING:
    from signaltrace.traces import Trace

__all__ = [
    "BrokenRow",
    "ListRow",
    "SkippedRow",
    "SqlRow",
    "TaskLink",
    "TreeRow",
    "list_row",
    "list_row_or_error",
    "receiver_table",
    "skipped_rows",
    "sql_rows",
    "task_node",
    "tree_rows",
    "truncation_text",
    "unshown",
]

#: Traces with more tree rows than this open with nested receivers collapsed.
COLLAPSE_ABOVE: Final = 400


def value_text(value: Any) -> str:
    """A recorded kwarg value as JSON text (labels only: never user ``__str__``)."""
    return json.dumps(value, ensure_ascii=False, default=lambda obj: f"<{type(obj).__name__}>")


def _local_time(trace: Trace | StoredTrace | Listing) -> tuple[str, str]:
    started = trace.started_at
    if started is None:  # a listing the store could not read
        return "", ""
    local = timezone.localtime(started) if timezone.is_aware(started) else started
    return local.strftime("%H:%M:%S.") + f"{local.microsecond // 1000:03d}", started.isoformat()


@dataclass
class ListRow:
    """One request in the list page: text and numbers only, so rendering cannot fail."""

    broken: ClassVar[bool] = False

    id: str
    method: str
    path: str
    status: int | str | None
    status_class: str
    view: str
    time: str
    iso: str
    duration: str
    dispatches: int
    calls: int
    receiver_time: str
    slowest: str
    slowest_time: str
    errors: int
    slow: bool
    exception: str | None
    #: ``"request"``, ``"task"``, ``"command"`` or ``"capture"`` (``Trace.kind``).
    kind: str
    #: Operations that skipped connected receivers, and their ``⚠`` lines (the badge's title).
    skipped: int
    skipped_title: str
    #: Whether ``MAX_EVENTS`` cut the trace short, and where (the badge's title).
    truncated: bool
    truncated_text: str
    #: What the filters read: ``errors``, ``signals``, ``receivers``.
    summary: Listing = field(repr=False)

    @property
    def quiet(self) -> bool:
        """Nothing to see: no dispatch, no skipped operation, no truncation, no view exception.

        The list hides such rows unless asked (``?all=1``).
        """
        return not (self.dispatches or self.skipped or self.truncated or self.exception)

    @property
    def slowest_parts(self) -> tuple[str, str]:
        """The slowest receiver as ``(module, name)``: the list shows the name, module below."""
        return _split_name(self.slowest)


@dataclass
class BrokenRow:
    """A trace the list could not show: an error row instead of a failing page."""

    broken: ClassVar[bool] = True

    #: The trace id if it is a valid one (the row then links to the detail page).
    id: str
    #: The type of the exception that stopped the row.
    error: str
    time: str
    iso: str


def _status_class(status: Any) -> str:
    if not isinstance(status, int):
        return "st-s5"
    return f"st-s{min(max(status // 100, 1), 5)}"


def _status(status: Any) -> int | str | None:
    """The status as the page shows it (text made now: rendering must not fail)."""
    if status is None or type(status) is int:
        return status
    return str(status)


def list_row(trace: Trace | StoredTrace | Listing, slow_ms: float) -> ListRow:
    """The list-page facts of one trace, made from its :class:`~signaltrace.stores.Listing`.

    A listing is what every store can list without reading the trace's tree
    (shared stores keep it next to the trace); a trace, live or stored, is
    listed first (:func:`~signaltrace.stores.listing_of`), so the list and the
    detail page show the same facts whichever store kept the trace.
    """
    entry = trace if isinstance(trace, Listing) else listing_of(trace)
    if entry.error is not None:
        raise entry.error  # the store could not read this entry
    meta = entry.meta
    time, iso = _local_time(entry)
    exception = meta.get("exception")
    truncated = entry.truncated_at
    return ListRow(
        id=entry.trace_id,
        method=str(meta.get("method") or ""),
        path=str(meta.get("path") or entry.label or ""),
        status=_status(meta.get("status")),
        status_class=_status_class(meta.get("status")),
        view=str(meta.get("view") or ""),
        time=time,
        iso=iso,
        duration=format_ms(entry.duration_ns),
        dispatches=entry.dispatches,
        calls=entry.calls,
        receiver_time=format_ms(entry.receiver_time_ns),
        slowest=entry.slowest,
        slowest_time=format_ms(entry.slowest_ns) if entry.slowest else "",
        errors=entry.errors,
        slow=entry.is_slow(slow_ms),
        exception=None if exception is None else str(exception),
        kind=str(entry.kind),
        skipped=len(entry.skipped),
        skipped_title="\n".join(entry.skipped),
        truncated=truncated is not None,
        truncated_text="" if truncated is None else str(truncated),
        summary=entry,
    )


def truncation_text(trace: Trace) -> str:
    """Where ``MAX_EVENTS`` cut ``trace`` short (``""`` if it did not)."""
    if trace.truncated_at is not None:
        return str(trace.truncated_at)
    if trace.truncated:  # still open: what was dropped first is named when it closes
        return f"MAX_EVENTS reached after {trace.events} events"
    return ""


@dataclass
class SkippedRow:
    """One operation that skipped connected receivers, as the detail page lists it."""

    operation: str
    model: str
    signals: tuple[str, ...]
    receivers: tuple[str, ...]
    rows: int | None
    #: ``short/path.py:12 in function`` (the one path rule), or ``""``.
    where: str


def skipped_rows(trace: Trace) -> list[SkippedRow]:
    """The detail page's "Receivers that did not run", in the order they happened."""
    return [_skipped_row(item) for item in trace.skipped]


def _skipped_row(item: SkippedDispatch) -> SkippedRow:
    origin = item.origin
    where = f"{location(origin.filename, origin.lineno)} in {origin.function}" if origin else ""
    return SkippedRow(
        operation=item.operation,
        model=item.model,
        signals=tuple(item.signals),
        receivers=tuple(item.receivers),
        rows=item.rows,
        where=where,
    )


#: A trace id as the viewer's URLs accept it.
_ID: Final = re.compile(r"[0-9a-f]{32}")


def unshown(err: BaseException) -> str:
    """What the viewer says of a trace it cannot show: the exception's type."""
    return type_label(type(err))


def list_row_or_error(trace: Trace | StoredTrace | Listing, slow_ms: float) -> ListRow | BrokenRow:
    """:func:`list_row`, or a :class:`BrokenRow` if the trace cannot be shown (logged once)."""
    try:
        return list_row(trace, slow_ms)
    except Exception as err:
        log_failure("viewer row", err)
        return _broken_row(trace, err)


def _broken_row(trace: Trace | StoredTrace | Listing, err: Exception) -> BrokenRow:
    """What can still be read safely: the id (only a valid one) and the time."""
    try:
        trace_id = trace.trace_id
    except Exception:
        trace_id = None
    try:
        time, iso = _local_time(trace)
    except Exception:
        time, iso = "", ""
    return BrokenRow(
        id=trace_id if type(trace_id) is str and _ID.fullmatch(trace_id) else "",
        error=unshown(err),
        time=time,
        iso=iso,
    )


@dataclass
class TaskLink:
    """A Celery task a receiver call enqueued, as the detail page shows it."""

    name: str
    #: Celery's task id.
    id: str
    #: The id of the task's own trace (``""`` if the task id is not a UUID).
    trace_id: str
    #: Whether that trace is in the store (the page links to it).
    kept: bool
    #: ``"on commit"``, ``"eagerly, inline"`` or ``""``.
    how: str
    #: Published inside ``transaction.atomic``: a worker may run it before the commit.
    before_commit: bool


@dataclass
class TreeRow:
    """One dispatch or receiver call in the detail page's tree and waterfall."""

    id: str
    parent: str
    kind: str
    level: int
    posinset: int
    setsize: int
    title: str
    short: str
    module: str
    subtitle: str
    duration: str
    offset: str
    left: str
    width: str
    zleft: str
    zwidth: str
    state: str
    expandable: bool
    expanded: bool = True
    hidden: bool = False
    badges: list[tuple[str, str]] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    kwargs: list[tuple[str, str, bool]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    #: Celery tasks the receiver call enqueued.
    tasks: list[TaskLink] = field(default_factory=list)
    #: The statements the receiver call ran (``RECORD_SQL``), else None.
    sql: list[SqlRow] | None = None
    #: Statements it ran beyond those in :attr:`sql`.
    sql_omitted: int = 0


@dataclass
class SqlRow:
    """One statement in a receiver's details: the same statement once, with its count."""

    sql: str
    count: int
    #: The labels of its first runs' parameters as JSON text (``RECORD_SQL_PARAMS``).
    params: list[str] = field(default_factory=list)


def sql_rows(call: ReceiverCall) -> list[SqlRow] | None:
    """The statements of a receiver call for the details panel, or None (``RECORD_SQL`` off)."""
    if call.sql is None:
        return None
    return [SqlRow(s.sql, s.count, [value_text(p) for p in s.params or ()]) for s in call.sql]


def _span(start: int, total: int, start_ns: int, duration_ns: int | None) -> tuple[str, str]:
    """``left%`` and ``width%`` of an item within the window ``[start, start + total]``."""
    offset = max(start_ns - start, 0)
    duration = duration_ns if duration_ns is not None else total - offset
    left = min(offset / total * 100, 100.0)
    width = min(duration / total * 100, 100.0 - left)
    return f"{left:.3f}", f"{width:.3f}"


def signal_window(trace: Trace) -> tuple[int, int]:
    """``(start_ns, duration_ns)`` from the first dispatch's start to the last one's end."""
    roots = trace.roots
    end_of_trace = trace.start_ns + trace.duration_ns
    if not roots:
        return trace.start_ns, max(trace.duration_ns, 1)
    start = min(d.start_ns for d in roots)
    end = max(
        d.start_ns + d.duration_ns if d.duration_ns is not None else end_of_trace for d in roots
    )
    return start, max(end - start, 1)


class _Builder:
    def __init__(self, trace: Trace, slow_ms: float, kept: Collection[str] = ()) -> None:
        self.start = trace.start_ns
        self.total = max(trace.duration_ns, 1)
        self.zoom = signal_window(trace)
        self.slow_ns = slow_ms * 1_000_000
        self.kept = kept
        self.rows: list[TreeRow] = []

    def task_links(self, call: ReceiverCall) -> list[TaskLink]:
        return [
            TaskLink(
                name=task.name,
                id=task.id,
                trace_id=task.trace_id or "",
                kept=(task.trace_id or "") in self.kept,
                how="eagerly, inline" if task.eager else "on commit" if task.on_commit else "",
                before_commit=task.before_commit,
            )
            for task in call.tasks
        ]

    def geometry(self, start_ns: int, duration_ns: int | None) -> dict[str, Any]:
        left, width = _span(self.start, self.total, start_ns, duration_ns)
        zleft, zwidth = _span(*self.zoom, start_ns, duration_ns)
        offset = f"+{format_ms(max(start_ns - self.start, 0))}"
        return {"offset": offset, "left": left, "width": width, "zleft": zleft, "zwidth": zwidth}

    def add_dispatch(
        self, dispatch: Dispatch, parent: str, level: int, pos: int, size: int
    ) -> None:
        row_id = f"n{len(self.rows) + 1}"
        geometry = self.geometry(dispatch.start_ns, dispatch.duration_ns)
        offset = geometry["offset"]
        summary = dispatch_summary(dispatch)
        origin = dispatch.origin
        facts = [
            ("Signal", dispatch.signal_path),
            ("Sender", dispatch.sender),
            ("Method", dispatch.method),
            ("Started", offset),
            ("Duration", format_ms(dispatch.duration_ns)),
            ("Receivers", f"{len(dispatch.calls)} called of {dispatch.receiver_count} connected"),
        ]
        if origin is not None:
            where = location(origin.filename, origin.lineno)
            facts.append(("Sent from", f"{where} in {origin.function}"))
        badges = []
        if dispatch.method != "send":
            badges.append((dispatch.method, "st-b-method"))
        if not dispatch.calls:
            badges.append(("no receivers", "st-b-muted"))
        row = TreeRow(
            id=row_id,
            parent=parent,
            kind="dispatch",
            level=level,
            posinset=pos,
            setsize=size,
            title=dispatch.signal_name,
            short=dispatch.signal_name,
            module="",
            subtitle=summary[len(dispatch.signal_name) :]
            .strip()
            .removesuffix(f"[{dispatch.method}]")
            .strip(),
            duration=format_ms(dispatch.duration_ns),
            **geometry,
            state="running" if dispatch.duration_ns is None else "ok",
            expandable=bool(dispatch.calls),
            badges=badges,
            facts=facts,
            kwargs=_kwargs(dispatch),
        )
        self.rows.append(row)
        for i, call in enumerate(dispatch.calls, 1):
            self.add_call(call, row_id, level + 1, i, len(dispatch.calls))

    def add_call(self, call: ReceiverCall, parent: str, level: int, pos: int, size: int) -> None:
        row_id = f"n{len(self.rows) + 1}"
        geometry = self.geometry(call.start_ns, call.duration_ns)
        offset = geometry["offset"]
        dispatch = call.dispatch
        slow = bool(self.slow_ns) and (call.duration_ns or 0) >= self.slow_ns
        state = "error" if call.error is not None else "slow" if slow else call.outcome
        facts = [
            ("Receiver", call.receiver_name),
            ("Location", location(call.filename, call.lineno) or "(no Python code)"),
            ("Signal", f"{dispatch.signal_name} from {dispatch.sender} via {dispatch.method}"),
            ("Started", offset),
            ("Duration", format_ms(call.duration_ns)),
            ("Outcome", call.outcome),
            ("Kind", "async" if call.is_async else "sync"),
        ]
        if call.children:
            facts.append(("Sent in turn", f"{len(call.children)} dispatch(es)"))
        badges = []
        queries = call.queries  # RECORD_DB
        if queries is not None:
            facts.append(("Queries", str(queries)))
            facts.append(("In atomic block", "yes" if call.in_atomic else "no"))
            facts.append(("on_commit callbacks", str(call.on_commit or 0)))
            if queries:
                badges.append((f"{queries} quer{'y' if queries == 1 else 'ies'}", "st-b-muted"))
        repeated = repeated_query(call)  # RECORD_SQL: an N+1
        if repeated:
            badges.append((f"{repeated} × same query", "st-b-skipped"))
        if call.is_async:
            badges.append(("async", "st-b-muted"))
        if slow:
            badges.append(("slow", "st-b-slow"))
        tasks = self.task_links(call)
        if tasks:
            facts.append(("Celery tasks", ", ".join(task.name for task in tasks)))
            badges.append((f"→ {len(tasks)} task{'s' if len(tasks) != 1 else ''}", "st-b-task"))
            early = sum(task.before_commit for task in tasks)
            if early:
                badges.append(("⚠ task before commit", "st-b-skipped"))
        error = None
        if call.error is not None:
            error = {
                "type": call.error.type,
                "message": call.error.message,
                "location": location(call.error.filename, call.error.lineno),
                "swallowed": call.swallowed,
                "method": dispatch.method,
            }
            badges.append(
                (
                    f"swallowed {call.error.type}" if call.swallowed else call.error.type,
                    "st-b-error",
                )
            )
        module, short = _split_name(call.receiver_name)
        row = TreeRow(
            id=row_id,
            parent=parent,
            kind="call",
            level=level,
            posinset=pos,
            setsize=size,
            title=call.receiver_name,
            short=short,
            module=module,
            subtitle="",
            duration=format_ms(call.duration_ns),
            **geometry,
            state=state,
            expandable=bool(call.children),
            badges=badges,
            facts=facts,
            kwargs=_kwargs(dispatch),
            error=error,
            tasks=tasks,
            sql=sql_rows(call),
            sql_omitted=call.sql_omitted,
        )
        self.rows.append(row)
        for i, child in enumerate(call.children, 1):
            self.add_dispatch(child, row_id, level + 1, i, len(call.children))


def task_node(rows: list[TreeRow], trace_id: str) -> str:
    """The id of the row whose receiver call enqueued the task with this trace id, or ``""``."""
    for row in rows:
        if any(task.trace_id == trace_id for task in row.tasks):
            return row.id
    return ""


def _split_name(name: str) -> tuple[str, str]:
    """``("pkg.module", "function")``; names like ``functools.partial(...)`` stay whole."""
    if "(" in name:
        return "", name
    module, _dot, short = name.rpartition(".")
    return module, short


def _kwargs(dispatch: Dispatch) -> list[tuple[str, str, bool]]:
    return [
        (key, REDACTED if value == REDACTED else value_text(value), value == REDACTED)
        for key, value in dispatch.kwargs.items()
    ]


def tree_rows(trace: Trace, slow_ms: float, kept: Collection[str] = ()) -> list[TreeRow]:
    """The tree, flattened depth-first; big trees open with nested receivers collapsed.

    :param kept: the ids of the kept traces a call's Celery tasks may link to.
    """
    builder = _Builder(trace, slow_ms, kept)
    roots = trace.roots
    for i, root in enumerate(roots, 1):
        builder.add_dispatch(root, "", 1, i, len(roots))
    rows = builder.rows
    if len(rows) > COLLAPSE_ABOVE:
        collapsed_level: int | None = None
        for row in rows:
            if collapsed_level is not None and row.level > collapsed_level:
                row.hidden = True
                continue
            collapsed_level = None
            if row.expandable and row.kind == "call":
                row.expanded = False
                collapsed_level = row.level
    return rows


@dataclass
class ReceiverStats:
    """Per-receiver totals for the detail page's receiver table."""

    name: str
    location: str
    calls: int = 0
    total_ns: int = 0
    max_ns: int = 0
    errors: int = 0
    queries: int | None = None

    @property
    def total(self) -> str:
        return format_ms(self.total_ns)

    @property
    def max(self) -> str:
        return format_ms(self.max_ns)


def receiver_table(trace: Trace) -> list[ReceiverStats]:
    """One line per receiver that ran: calls, total and longest time, errors."""
    stats: dict[str, ReceiverStats] = {}
    for call in trace.calls:
        entry = stats.get(call.receiver_name)
        if entry is None:
            entry = stats[call.receiver_name] = ReceiverStats(
                call.receiver_name, location(call.filename, call.lineno) or ""
            )
        duration = call.duration_ns or 0
        entry.calls += 1
        entry.total_ns += duration
        entry.max_ns = max(entry.max_ns, duration)
        entry.errors += call.error is not None
        queries = call.queries
        if queries is not None:
            entry.queries = (entry.queries or 0) + queries
    return sorted(stats.values(), key=lambda entry: entry.total_ns, reverse=True)
