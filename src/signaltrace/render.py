"""Render a :class:`~signaltrace.Trace` as a text tree or a JSON-ready dict.

The text tree (used by ``str(trace)``, the console, logs and test failures)::

    3 dispatches, 4 receiver calls, 2.1 ms in receivers
    └─ post_save  sender=auth.User pk=7 created=True  (accounts/views.py:18 in register)
       ├─ accounts.signals.create_user_profile  0.8 ms
       │  └─ post_save  sender=accounts.Profile pk=7 created=True  (no receivers)
       └─ accounts.signals.save_user_profile  0.6 ms

An operation that skipped receivers (:attr:`Trace.skipped <signaltrace.Trace.skipped>`)
is a ``⚠`` line at the top level, among the dispatches in the order they started.
A Celery task a receiver call enqueued is a ``→ task ... enqueued`` line under
that call, after its dispatches (``⚠`` when it was published inside
``transaction.atomic``); a trace with a parent (a task's) says where it came
from on its second line, ``← enqueued by <receiver> in trace <id>``.

Neither :func:`render_trace` nor :func:`trace_to_dict` raises: an item that
cannot be formatted becomes a placeholder (``<unrenderable dispatch>``) and the
failure is logged once through :func:`signaltrace.context.log_failure`. A trace
cut short by :setting:`MAX_EVENTS` says so on its last line (``⚠ truncated: ...``)
and in its ``truncated`` field.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from . import naming
from ._format import format_ms, short_path
from .context import log_failure
from .records import Dispatch, EnqueuedTask, Origin, ReceiverCall, SkippedDispatch

if TYPE_CHECKING:
    from .traces import Trace

__all__ = [
    "SCHEMA",
    "dispatch_summary",
    "parent_line",
    "render_trace",
    "repeated_query",
    "skipped_line",
    "sql_dicts",
    "task_line",
    "trace_to_dict",
]

#: The trace JSON's name and version (``/2``: ``trace_id``, ``kind``, ``parent`` and
#: ``max_events`` at the top; see ``docs/reference/trace-json.md``).
SCHEMA: Final = "signaltrace.trace/2"


#: Values that say nothing worth a column in the tree.
_QUIET: Final = {"raw": False, "using": "default", "update_fields": None}

_A = TypeVar("_A")
_T = TypeVar("_T")


def _guarded(build: Callable[[_A], _T], item: _A, placeholder: _T) -> _T:
    """``build(item)``, or ``placeholder`` (the failure logged once) if it raises."""
    try:
        return build(item)
    except Exception as err:
        log_failure("rendering a trace", err)
        return placeholder


def _plain(value: Any) -> Any:
    """A recorded kwarg value, bounded again for output.

    The hot path records plain, bounded values; this keeps a record made any
    other way (an int past 4,300 digits would make ``str()`` and ``json`` raise)
    from breaking the tree or the JSON.
    """
    cls = type(value)
    if cls is int:
        return naming.clamp_int(value)
    if value is None or cls is str or cls is float or cls is bool:
        return value
    if cls is list or cls is tuple:
        return [_plain(item) for item in value[:20]]
    return naming.kwarg_value(value)


def dispatch_summary(dispatch: Dispatch) -> str:
    """``post_save  sender=auth.User pk=7 created=True``: one line, no origin."""
    parts = [dispatch.signal_name, f"  sender={dispatch.sender}"]
    for key, value in dispatch.kwargs.items():
        value = _plain(value)
        if key == "instance" and isinstance(value, str):
            if value.startswith(dispatch.sender + " "):
                parts.append(value[len(dispatch.sender) :])
            else:
                parts.append(f" instance={value}")
            continue
        if key in _QUIET and _QUIET[key] == value and type(_QUIET[key]) is type(value):
            continue
        if key == "origin" and value == dispatch.kwargs.get("instance"):
            continue
        if isinstance(value, list):
            value = "{" + ", ".join(map(str, value)) + "}" if key == "pk_set" else value
        parts.append(f" {key}={value}")
    if dispatch.method != "send":
        parts.append(f" [{dispatch.method}]")
    return "".join(parts)


def _dispatch_line(dispatch: Dispatch) -> str:
    line = dispatch_summary(dispatch)
    notes = []
    if dispatch.origin is not None and dispatch.parent is None:
        origin = dispatch.origin
        notes.append(f"{short_path(origin.filename)}:{origin.lineno} in {origin.function}")
    if not dispatch.calls:
        notes.append("no receivers")
    if notes:
        line += "  (" + "; ".join(notes) + ")"
    return line


def _call_line(call: ReceiverCall) -> str:
    line = f"{call.receiver_name}  {format_ms(call.duration_ns)}"
    if call.queries is not None:
        line += f"  {call.queries} quer{'y' if call.queries == 1 else 'ies'}"
    repeated = repeated_query(call)
    if repeated:
        line += f"  {repeated} × same query"
    if call.on_commit:
        line += f"  {call.on_commit} on_commit"
    if call.is_async:
        line += "  async"
    if call.error is not None:
        short = call.error.type.rsplit(".", 1)[-1]
        message = f": {call.error.message}" if call.error.message else ""
        line += f"  ✗ raised {short}{message}"
        if call.swallowed:
            line += f" (swallowed by {call.dispatch.method})"
    return line


def repeated_query(call: ReceiverCall) -> int:
    """How many times the call's most repeated statement ran, if more than once (``RECORD_SQL``).

    ``12`` for a receiver whose loop runs one query per item (an N+1); else ``0``.
    """
    sql = call.sql
    if not sql:
        return 0
    most = max(statement.count for statement in sql)
    return most if most > 1 else 0


def sql_dicts(call: ReceiverCall) -> list[dict[str, Any]] | None:
    """The call's ``sql`` field: ``[{"sql": ..., "count": ...}, ...]`` (with ``"params"``
    when they were recorded), or None without ``RECORD_SQL``."""
    if call.sql is None:
        return None
    return [
        {"sql": s.sql, "count": s.count}
        if s.params is None
        else {"sql": s.sql, "count": s.count, "params": list(s.params)}
        for s in call.sql
    ]


def render_trace(trace: Trace, *, numbered: bool = False, color: bool = False) -> str:
    """The whole tree, with a summary line first; never raises."""
    return _guarded(functools.partial(_render, numbered=numbered), trace, "<unrenderable trace>")


def _label(trace: Trace) -> str | None:
    label = trace.label
    if label is None:
        return None
    text = naming.clip_text(label, 300)
    return str(naming.kwarg_value(label)) if text is None else text


def _render(trace: Trace, numbered: bool) -> str:
    dispatches, roots, calls = trace.dispatches, trace.roots, trace.calls
    header = (
        f"{len(dispatches)} dispatch{'es' if len(dispatches) != 1 else ''}, "
        f"{len(calls)} receiver call{'s' if len(calls) != 1 else ''}, "
        f"{format_ms(trace.receiver_time_ns)} in receivers"
    )
    errors = sum(1 for call in calls if call.error is not None)
    if errors:
        header += f", {errors} error{'s' if errors != 1 else ''}"
    skipped = list(trace.skipped)
    if skipped:
        header += f", {len(skipped)} skipped operation{'s' if len(skipped) != 1 else ''}"
    early = sum(1 for call in calls for task in call.tasks if task.before_commit)
    if early:
        header += f", {early} task{'s' if early != 1 else ''} before commit"
    label = _label(trace)
    if label:
        header = f"{label}   {header}"
    lines = [header]
    if trace.parent is not None:  # where it came from: not a record, never numbered
        lines.append(_guarded(parent_line, trace, "← <unrenderable parent>"))
    counter = [0]

    def emit(prefix: str, connector: str, text: str, *, count: bool = True) -> None:
        if numbered and count:
            counter[0] += 1
            lines.append(f"{counter[0]:>3}. {prefix}{connector}{text}")
        elif numbered:  # not a record assertion messages point at: aligned, no number
            lines.append(f"     {prefix}{connector}{text}")
        else:
            lines.append(f"{prefix}{connector}{text}")

    def walk_dispatch(dispatch: Dispatch, prefix: str, last: bool) -> None:
        line = _guarded(_dispatch_line, dispatch, "<unrenderable dispatch>")
        emit(prefix, "└─ " if last else "├─ ", line)
        child_prefix = prefix + ("   " if last else "│  ")
        for i, call in enumerate(dispatch.calls):
            walk_call(call, child_prefix, i == len(dispatch.calls) - 1)

    def walk_call(call: ReceiverCall, prefix: str, last: bool) -> None:
        line = _guarded(_call_line, call, "<unrenderable receiver call>")
        emit(prefix, "└─ " if last else "├─ ", line)
        child_prefix = prefix + ("   " if last else "│  ")
        tasks = call.tasks
        for i, child in enumerate(call.children):
            walk_dispatch(child, child_prefix, i == len(call.children) - 1 and not tasks)
        for i, task in enumerate(tasks):  # after its dispatches: not records to number
            text = _guarded(task_line, task, "→ <unrenderable task>")
            emit(child_prefix, "└─ " if i == len(tasks) - 1 else "├─ ", text, count=False)

    # The top level: dispatches and skipped operations, in the order they started.
    top = _top_level(roots, skipped)
    for i, item in enumerate(top):
        last = i == len(top) - 1
        if isinstance(item, SkippedDispatch):
            line = _guarded(skipped_line, item, "⚠ <unrenderable skipped operation>")
            emit("", "└─ " if last else "├─ ", line, count=False)
        else:
            walk_dispatch(item, "", last)
    if not top:
        lines.append("(no signals dispatched)")
    if trace.dropped:
        lines.append(f"… {trace.dropped} events dropped (MAX_EVENTS={trace.max_events} reached)")
    if trace.truncated:
        lines.append(f"⚠ truncated: {_truncation_text(trace)}")
    return "\n".join(lines)


def _start(item: Dispatch | SkippedDispatch) -> int:
    start = item.start_ns
    return start if type(start) is int else 0


def _top_level(
    roots: list[Dispatch], skipped: list[SkippedDispatch]
) -> list[Dispatch | SkippedDispatch]:
    """Root dispatches and skipped operations merged by start time (a tie: the dispatch first).

    A skipped operation is not nested under the receiver call that made it: which
    call that was is not recorded (concurrent threads and tasks overlap in time).
    """
    pending = sorted(skipped, key=_start)  # stable: they keep their order on ties
    items: list[Dispatch | SkippedDispatch] = []
    for root in roots:  # kept in their own order
        start = _start(root)
        while pending and _start(pending[0]) < start:
            items.append(pending.pop(0))
        items.append(root)
    items.extend(pending)
    return items


def parent_line(trace: Trace) -> str:
    """``← enqueued by accounts.signals.welcome in trace 0af7…``: the trace's parent link."""
    parent = trace.parent or {}
    trace_id = parent.get("trace_id")
    receiver = parent.get("receiver")
    what = "enqueued" if trace.kind == "task" else "caused"
    where = f"trace {trace_id}" if type(trace_id) is str else "another trace"
    if type(receiver) is str:
        return f"← {what} by {receiver} in {where}"
    return f"← {what} by {where}"


def task_line(task: EnqueuedTask) -> str:
    """``→ task accounts.tasks.send_welcome enqueued`` (and how: on commit, eagerly, too early)."""
    if task.eager:
        return f"→ task {task.name} ran eagerly (inline)"
    line = f"→ task {task.name} enqueued"
    if task.on_commit:
        line += " on commit"
    if task.before_commit:
        line += "  ⚠ inside transaction.atomic: a worker may run it before the commit"
    return line


def skipped_line(skipped: SkippedDispatch) -> str:
    """``⚠ bulk_create on auth.User skipped post_save: ... did not run  (where)``."""
    where = ""
    if skipped.origin is not None:
        origin = skipped.origin
        where = f"  ({short_path(origin.filename)}:{origin.lineno} in {origin.function})"
    return (
        f"⚠ {skipped.operation} on {skipped.model} skipped {', '.join(skipped.signals)}: "
        f"{', '.join(skipped.receivers)} did not run{where}"
    )


def _truncation_text(trace: Trace) -> str:
    """Why the trace ends early: its :class:`~signaltrace.Truncation`, or what is known yet."""
    if trace.truncated_at is not None:
        return str(trace.truncated_at)
    return (
        f"MAX_EVENTS={trace.max_events} reached after {trace.events} events "
        f"({len(trace.raw)} dispatches); {trace.dropped} events not recorded so far"
    )


def _truncation_dict(trace: Trace) -> dict[str, Any] | None:
    """The ``truncated`` field: ``None``, or where :setting:`MAX_EVENTS` cut the trace."""
    at = trace.truncated_at
    if at is not None:
        return {"events": at.events, "dispatches": at.dispatches, "what": at.what}
    if trace.truncated:  # still open: what was dropped first is named at close
        return {"events": trace.events, "dispatches": len(trace.raw), "what": "event"}
    return None


def _call_dict(call: ReceiverCall) -> dict[str, Any]:
    return _guarded(_call_fields, call, {**_UNRENDERABLE_CALL, "dispatches": []})


#: What a call that cannot be serialised becomes: the same fields, empty.
_UNRENDERABLE_CALL: Final[dict[str, Any]] = {
    "receiver": "<unrenderable receiver call>",
    "location": None,
    "async": False,
    "start_ns": 0,
    "duration_ns": None,
    "outcome": "unknown",
    "queries": None,
    "in_atomic": None,
    "on_commit": None,
    "sql": None,
    "sql_omitted": 0,
    "error": None,
    "tasks": [],
}


def _call_fields(call: ReceiverCall) -> dict[str, Any]:
    error = call.error
    return {
        "receiver": call.receiver_name,
        "location": call.location,
        "async": call.is_async,
        "start_ns": call.start_ns,
        "duration_ns": call.duration_ns,
        "outcome": call.outcome,
        "queries": call.queries,
        "in_atomic": call.in_atomic,
        "on_commit": call.on_commit,
        "sql": sql_dicts(call),
        "sql_omitted": call.sql_omitted,
        "error": None
        if error is None
        else {
            "type": error.type,
            "message": error.message,
            "location": f"{error.filename}:{error.lineno}" if error.filename else None,
            "swallowed": call.swallowed,
        },
        "tasks": [_task_dict(task) for task in call.tasks],
        "dispatches": [_dispatch_dict(child) for child in call.children],
    }


def _task_dict(task: EnqueuedTask) -> dict[str, Any]:
    """A Celery task the call published: ``{"name", "id", "on_commit", "in_atomic", "eager"}``."""
    return {
        "name": task.name,
        "id": task.id,
        "on_commit": task.on_commit,
        "in_atomic": task.in_atomic,
        "eager": task.eager,
    }


def _origin_dict(origin: Origin | None) -> dict[str, Any] | None:
    if origin is None:
        return None
    return {"filename": origin.filename, "lineno": origin.lineno, "function": origin.function}


def _dispatch_dict(dispatch: Dispatch) -> dict[str, Any]:
    return _guarded(_dispatch_fields, dispatch, {**_UNRENDERABLE_DISPATCH, "calls": []})


#: What a dispatch that cannot be serialised becomes: the same fields, empty.
_UNRENDERABLE_DISPATCH: Final[dict[str, Any]] = {
    "signal": "<unrenderable dispatch>",
    "signal_path": "<unrenderable dispatch>",
    "sender": "?",
    "method": "?",
    "kwargs": {},
    "start_ns": 0,
    "duration_ns": None,
    "origin": None,
    "receiver_count": 0,
}


def _dispatch_fields(dispatch: Dispatch) -> dict[str, Any]:
    return {
        "signal": dispatch.signal_name,
        "signal_path": dispatch.signal_path,
        "sender": dispatch.sender,
        "method": dispatch.method,
        "kwargs": {key: _plain(value) for key, value in dispatch.kwargs.items()},
        "start_ns": dispatch.start_ns,
        "duration_ns": dispatch.duration_ns,
        "origin": _origin_dict(dispatch.origin),
        "receiver_count": dispatch.receiver_count,
        "calls": [_call_dict(call) for call in dispatch.calls],
    }


def _skipped_dict(item: SkippedDispatch) -> dict[str, Any]:
    return {
        "operation": item.operation,
        "model": item.model,
        "signals": list(item.signals),
        "receivers": list(item.receivers),
        "rows": item.rows,
        "start_ns": item.start_ns,
        "origin": _origin_dict(item.origin),
    }


def trace_to_dict(trace: Trace) -> dict[str, Any]:
    """The trace as plain JSON types; ``schema`` names the format's version. Never raises."""
    try:
        return _trace_fields(trace)
    except Exception as err:
        log_failure("rendering a trace", err)
        return _unrenderable_trace(trace)


def _unrenderable_trace(trace: Trace) -> dict[str, Any]:
    fields: dict[str, Any] = {"schema": SCHEMA}
    fields.update(_guarded(_identity, trace, {"trace_id": None, "kind": None, "parent": None}))
    fields.update({"label": None, "dispatches": [], "skipped": []})
    fields["truncated"] = _guarded(_truncation_dict, trace, None)
    return fields


def _identity(trace: Trace) -> dict[str, Any]:
    """``trace_id``, ``kind`` and ``parent``: which trace this is, and what caused it."""
    parent = trace.parent
    return {
        "trace_id": trace.trace_id,
        "kind": trace.kind,
        "parent": None
        if parent is None
        else {key: naming.kwarg_value(value) for key, value in parent.items() if type(key) is str},
    }


def _trace_fields(trace: Trace) -> dict[str, Any]:
    roots = trace.roots
    return {
        "schema": SCHEMA,
        **_identity(trace),
        "label": _label(trace),
        "started_at": trace.started_at.isoformat(),
        "start_ns": trace.start_ns,
        "duration_ns": trace.duration_ns,
        "dispatch_count": len(trace.dispatches),
        "call_count": len(trace.calls),
        "error_count": len(trace.errors),
        "receiver_time_ns": trace.receiver_time_ns,
        "events": trace.events,
        "max_events": trace.max_events,
        "dropped": trace.dropped,
        "truncated": _truncation_dict(trace),
        "meta": dict(trace.meta),
        "dispatches": [_dispatch_dict(root) for root in roots],
        "skipped": [_guarded(_skipped_dict, item, None) for item in trace.skipped],
    }
