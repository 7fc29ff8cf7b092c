"""Render a :class:`~signaltrace.Trace` as a text tree or a JSON-ready dict.

The text tree (used by ``str(trace)``, the console, logs and test failures)::

    3 dispatches, 4 receiver calls, 2.1 ms in receivers
    └─ post_save  sender=auth.User pk=7 created=True  (accounts/views.py:18 in register)
       ├─ accounts.signals.create_user_profile  0.8 ms
       │  └─ post_save  sender=accounts.Profile pk=7 created=True  (no receivers)
       └─ accounts.signals.save_user_profile  0.6 ms
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ._format import format_ms, short_path
from .records import Dispatch, Origin, ReceiverCall, SkippedDispatch

if TYPE_CHECKING:
    from .traces import Trace

__all__ = ["SCHEMA", "dispatch_summary", "render_trace", "trace_to_dict"]

SCHEMA: Final = "signaltrace.trace/1"


#: Values that say nothing worth a column in the tree.
_QUIET: Final = {"raw": False, "using": "default", "update_fields": None}


def dispatch_summary(dispatch: Dispatch) -> str:
    """``post_save  sender=auth.User pk=7 created=True``: one line, no origin."""
    parts = [dispatch.signal_name, f"  sender={dispatch.sender}"]
    for key, value in dispatch.kwargs.items():
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


def render_trace(trace: Trace, *, numbered: bool = False, color: bool = False) -> str:
    """The whole tree, with a summary line first."""
    dispatches, roots, calls = trace.dispatches, trace.roots, trace.calls
    header = (
        f"{len(dispatches)} dispatch{'es' if len(dispatches) != 1 else ''}, "
        f"{len(calls)} receiver call{'s' if len(calls) != 1 else ''}, "
        f"{format_ms(trace.receiver_time_ns)} in receivers"
    )
    errors = sum(1 for call in calls if call.error is not None)
    if errors:
        header += f", {errors} error{'s' if errors != 1 else ''}"
    if trace.label:
        header = f"{trace.label}   {header}"
    lines = [header]
    counter = [0]

    def emit(prefix: str, connector: str, text: str) -> None:
        if numbered:
            counter[0] += 1
            lines.append(f"{counter[0]:>3}. {prefix}{connector}{text}")
        else:
            lines.append(f"{prefix}{connector}{text}")

    def walk_dispatch(dispatch: Dispatch, prefix: str, last: bool) -> None:
        emit(prefix, "└─ " if last else "├─ ", _dispatch_line(dispatch))
        child_prefix = prefix + ("   " if last else "│  ")
        for i, call in enumerate(dispatch.calls):
            walk_call(call, child_prefix, i == len(dispatch.calls) - 1)

    def walk_call(call: ReceiverCall, prefix: str, last: bool) -> None:
        emit(prefix, "└─ " if last else "├─ ", _call_line(call))
        child_prefix = prefix + ("   " if last else "│  ")
        for i, child in enumerate(call.children):
            walk_dispatch(child, child_prefix, i == len(call.children) - 1)

    for i, root in enumerate(roots):
        walk_dispatch(root, "", i == len(roots) - 1)
    if not roots:
        lines.append("(no signals dispatched)")
    for skipped in trace.skipped:
        where = ""
        if skipped.origin is not None:
            origin = skipped.origin
            where = f"  ({short_path(origin.filename)}:{origin.lineno} in {origin.function})"
        lines.append(
            f"⚠ {skipped.operation} on {skipped.model} skipped {', '.join(skipped.signals)}: "
            f"{', '.join(skipped.receivers)} did not run{where}"
        )
    if trace.dropped:
        lines.append(f"… {trace.dropped} events dropped (MAX_EVENTS={trace.max_events} reached)")
    return "\n".join(lines)


def _call_dict(call: ReceiverCall) -> dict[str, Any]:
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
        "error": None
        if error is None
        else {
            "type": error.type,
            "message": error.message,
            "location": f"{error.filename}:{error.lineno}" if error.filename else None,
            "swallowed": call.swallowed,
        },
        "dispatches": [_dispatch_dict(child) for child in call.children],
    }


def _origin_dict(origin: Origin | None) -> dict[str, Any] | None:
    if origin is None:
        return None
    return {"filename": origin.filename, "lineno": origin.lineno, "function": origin.function}


def _dispatch_dict(dispatch: Dispatch) -> dict[str, Any]:
    return {
        "signal": dispatch.signal_name,
        "signal_path": dispatch.signal_path,
        "sender": dispatch.sender,
        "method": dispatch.method,
        "kwargs": dict(dispatch.kwargs),
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
    """The trace as plain JSON types; ``schema`` names the format's version."""
    roots = trace.roots
    return {
        "schema": SCHEMA,
        "label": trace.label,
        "started_at": trace.started_at.isoformat(),
        "start_ns": trace.start_ns,
        "duration_ns": trace.duration_ns,
        "dispatch_count": len(trace.dispatches),
        "call_count": len(trace.calls),
        "error_count": len(trace.errors),
        "receiver_time_ns": trace.receiver_time_ns,
        "events": trace.events,
        "dropped": trace.dropped,
        "meta": dict(trace.meta),
        "dispatches": [_dispatch_dict(root) for root in roots],
        "skipped": [_skipped_dict(item) for item in trace.skipped],
    }
