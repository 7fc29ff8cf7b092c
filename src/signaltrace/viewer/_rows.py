"""Turn traces into what the viewer's templates show: list rows and tree rows."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final

from django.utils import timezone

from signaltrace._format import format_ms, location
from signaltrace.context import log_failure
from signaltrace.naming import type_label
from signaltrace.records import REDACTED, Dispatch, ReceiverCall
from signaltrace.render import dispatch_summary
from signaltrace.summary import Summary, summarize

if TYPE_CHECKING:
    from signaltrace.traces import Trace

__all__ = [
    "BrokenRow",
    "ListRow",
    "TreeRow",
    "list_row",
    "list_row_or_error",
    "receiver_table",
    "tree_rows",
    "unshown",
]

#: Traces with more tree rows than this open with nested receivers collapsed.
COLLAPSE_ABOVE: Final = 400


def value_text(value: Any) -> str:
    """A recorded kwarg value as JSON text (labels only: never user ``__str__``)."""
    return json.dumps(value, ensure_ascii=False, default=lambda obj: f"<{type(obj).__name__}>")


def _local_time(trace: Trace) -> tuple[str, str]:
    started = trace.started_at
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
    summary: Summary = field(repr=False)


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


def list_row(trace: Trace, slow_ms: float) -> ListRow:
    """The list-page facts of one request trace."""
    meta = trace.meta
    summary = summarize(trace, slow_ms)
    slowest = summary.slowest[0] if summary.slowest else None
    time, iso = _local_time(trace)
    exception = meta.get("exception")
    return ListRow(
        id=str(meta.get("id", "")),
        method=str(meta.get("method") or ""),
        path=str(meta.get("path") or trace.label or ""),
        status=_status(meta.get("status")),
        status_class=_status_class(meta.get("status")),
        view=str(meta.get("view") or ""),
        time=time,
        iso=iso,
        duration=format_ms(trace.duration_ns),
        dispatches=summary.dispatches,
        calls=summary.calls,
        receiver_time=format_ms(summary.receiver_time_ns),
        slowest=slowest.receiver_name if slowest else "",
        slowest_time=format_ms(slowest.duration_ns) if slowest else "",
        errors=len(summary.errors),
        slow=bool(summary.slow),
        exception=None if exception is None else str(exception),
        summary=summary,
    )


#: A trace id as the viewer's URLs accept it.
_ID: Final = re.compile(r"[0-9a-f]{32}")


def unshown(err: BaseException) -> str:
    """What the viewer says of a trace it cannot show: the exception's type."""
    return type_label(type(err))


def list_row_or_error(trace: Trace, slow_ms: float) -> ListRow | BrokenRow:
    """:func:`list_row`, or a :class:`BrokenRow` if the trace cannot be shown (logged once)."""
    try:
        return list_row(trace, slow_ms)
    except Exception as err:
        log_failure("viewer row", err)
        return _broken_row(trace, err)


def _broken_row(trace: Trace, err: Exception) -> BrokenRow:
    """What can still be read safely: the id (only a valid one) and the time."""
    try:
        meta = trace.meta
        trace_id = meta.get("id") if type(meta) is dict else None
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
    def __init__(self, trace: Trace, slow_ms: float) -> None:
        self.start = trace.start_ns
        self.total = max(trace.duration_ns, 1)
        self.zoom = signal_window(trace)
        self.slow_ns = slow_ms * 1_000_000
        self.rows: list[TreeRow] = []

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
        if call.is_async:
            badges.append(("async", "st-b-muted"))
        if slow:
            badges.append(("slow", "st-b-slow"))
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
        )
        self.rows.append(row)
        for i, child in enumerate(call.children, 1):
            self.add_dispatch(child, row_id, level + 1, i, len(call.children))


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


def tree_rows(trace: Trace, slow_ms: float) -> list[TreeRow]:
    """The tree, flattened depth-first; big trees open with nested receivers collapsed."""
    builder = _Builder(trace, slow_ms)
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
