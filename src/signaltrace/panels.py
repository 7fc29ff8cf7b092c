"""A django-debug-toolbar panel: the signals of this request, as a tree.

.. code-block:: python

    DEBUG_TOOLBAR_PANELS = [
        *debug_toolbar.settings.PANELS_DEFAULTS,
        "signaltrace.panels.SignalTracePanel",
    ]

The panel records the request itself: the toolbar calls
:meth:`~SignalTracePanel.enable_instrumentation` before the view and
:meth:`~SignalTracePanel.disable_instrumentation` after it, and the panel keeps
a :class:`~signaltrace.capture` open in between, so it works with or without
``SignalTraceMiddleware`` (when the middleware runs too, the panel links to its
page in the trace viewer). It shows the tree with timings, the receivers that
raised, and the bulk operations that skipped receivers; the side bar says
``3 receivers, 1 error``.

Its data is stored as plain JSON (labels and numbers, never your objects), as
the toolbar's store requires. Needs the ``toolbar`` extra.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from debug_toolbar.panels import Panel
from django.urls import NoReverseMatch, reverse

from ._format import format_ms, short_path
from .capturing import capture
from .conf import get_config
from .context import active_traces
from .render import dispatch_summary, repeated_query
from .traces import Trace

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponseBase

    from .records import Dispatch, ReceiverCall, SkippedDispatch

__all__ = ["SignalTracePanel", "panel_stats"]

#: Indentation of one tree level, in pixels.
INDENT = 16


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _where(filename: str | None, lineno: int | None, function: str | None = None) -> str | None:
    if not filename:
        return None
    where = f"{short_path(filename)}:{lineno}"
    return f"{where} in {function}" if function else where


class _Rows:
    """The tree flattened depth-first, with timeline geometry in percent."""

    def __init__(self, trace: Trace, slow_ms: float, limit: int) -> None:
        self.slow_ns = slow_ms * 1_000_000
        self.limit = limit
        self.rows: list[dict[str, Any]] = []
        self.hidden = 0
        self.trace_end = trace.start_ns + trace.duration_ns
        roots = trace.roots
        self.start = min((d.start_ns for d in roots), default=trace.start_ns)
        end = max((self.end(d.start_ns, d.duration_ns) for d in roots), default=self.trace_end)
        self.total = max(end - self.start, 1)
        for dispatch in roots:
            self.dispatch(dispatch, 0)

    def end(self, start_ns: int, duration_ns: int | None) -> int:
        return start_ns + duration_ns if duration_ns is not None else self.trace_end

    def add(self, row: dict[str, Any], start_ns: int, duration_ns: int | None) -> None:
        if len(self.rows) >= self.limit:
            self.hidden += 1
            return
        left = min(max(start_ns - self.start, 0) / self.total * 100, 100.0)
        width = (self.end(start_ns, duration_ns) - start_ns) / self.total * 100
        row["left"] = round(left, 3)
        row["width"] = round(min(max(width, 0.3), 100.0 - left), 3)
        row["indent"] = row["depth"] * INDENT
        row["duration"] = format_ms(duration_ns)
        row["offset"] = f"+{format_ms(max(start_ns - self.start, 0))}"
        self.rows.append(row)

    def dispatch(self, dispatch: Dispatch, depth: int) -> None:
        origin = dispatch.origin
        detail = dispatch_summary(dispatch)[len(dispatch.signal_name) :].strip()
        self.add(
            {
                "kind": "dispatch",
                "depth": depth,
                "name": dispatch.signal_name,
                "detail": detail,
                "where": _where(origin.filename, origin.lineno, origin.function)
                if origin is not None
                else None,
                "state": "empty" if not dispatch.calls else "ok",
                "error": None,
            },
            dispatch.start_ns,
            dispatch.duration_ns,
        )
        for call in dispatch.calls:
            self.call(call, depth + 1)

    def call(self, call: ReceiverCall, depth: int) -> None:
        slow = bool(self.slow_ns) and (call.duration_ns or 0) >= self.slow_ns
        error = call.error
        notes = []
        if call.is_async:
            notes.append("async")
        if call.queries is not None:
            notes.append(f"{call.queries} quer{'y' if call.queries == 1 else 'ies'}")
        repeated = repeated_query(call)  # RECORD_SQL: an N+1
        if repeated:
            notes.append(f"{repeated} × same query")
        if slow:
            notes.append("slow")
        self.add(
            {
                "kind": "call",
                "depth": depth,
                "name": call.receiver_name,
                "detail": " · ".join(notes),
                "where": _where(call.filename, call.lineno),
                "state": "error" if error is not None else "slow" if slow else call.outcome,
                "error": None if error is None else str(error),
                "swallowed": call.swallowed,
                "sql": _sql(call),
                "sql_omitted": call.sql_omitted,
            },
            call.start_ns,
            call.duration_ns,
        )
        for child in call.children:
            self.dispatch(child, depth + 1)


def _sql(call: ReceiverCall) -> list[dict[str, Any]] | None:
    """The statements of a call (``RECORD_SQL``), parameters as JSON text; None if off."""
    if call.sql is None:
        return None
    return [
        {
            "sql": statement.sql,
            "count": statement.count,
            "params": [
                json.dumps(params, ensure_ascii=False, default=lambda o: f"<{type(o).__name__}>")
                for params in statement.params or ()
            ],
        }
        for statement in call.sql
    ]


def _error(call: ReceiverCall) -> dict[str, Any]:
    error = call.error
    assert error is not None
    dispatch = call.dispatch
    return {
        "receiver": call.receiver_name,
        "signal": dispatch.signal_name,
        "sender": dispatch.sender,
        "method": dispatch.method,
        "type": error.type,
        "message": error.message,
        "where": _where(error.filename, error.lineno),
        "swallowed": call.swallowed,
    }


def _skipped(item: SkippedDispatch) -> dict[str, Any]:
    return {
        "operation": item.operation,
        "model": item.model,
        "signals": ", ".join(item.signals),
        "receivers": list(item.receivers),
        "rows": item.rows,
        "where": _where(item.origin.filename, item.origin.lineno, item.origin.function)
        if item.origin is not None
        else None,
    }


def panel_stats(trace: Trace, *, slow_ms: float = 0, max_rows: int = 1000) -> dict[str, Any]:
    """What the panel stores for one trace: plain JSON types only.

    :param slow_ms: calls of this many milliseconds or more are marked slow (0: none).
    :param max_rows: at most this many tree rows; ``hidden_rows`` counts the rest.

    .. versionadded:: 0.1.0
    """
    calls = trace.calls
    errors = [call for call in calls if call.error is not None]
    rows = _Rows(trace, slow_ms, max_rows)
    return {
        "dispatch_count": len(trace.dispatches),
        "call_count": len(calls),
        "error_count": len(errors),
        "skipped_count": len(trace.skipped),
        "receiver_time": format_ms(trace.receiver_time_ns),
        "receiver_ms": round(trace.receiver_time_ns / 1e6, 3),
        "rows": rows.rows,
        "hidden_rows": rows.hidden,
        "errors": [_error(call) for call in errors],
        "skipped": [_skipped(item) for item in trace.skipped],
        "dropped": trace.dropped,
        "max_events": trace.max_events,
        "slow_ms": slow_ms,
        "viewer_url": None,
    }


def _viewer_url(trace_id: str | None) -> str | None:
    if trace_id is None or not get_config()["BUFFER_SIZE"]:
        return None
    try:
        return reverse("signaltrace:trace_detail", args=[trace_id])
    except NoReverseMatch:
        return None


class SignalTracePanel(Panel):
    """The "Signal trace" panel of django-debug-toolbar.

    Records the signals sent while the toolbar runs the view (sync or async)
    and shows them as a tree with timings, errors and skipped receivers.

    .. versionadded:: 0.1.0
    """

    title = "Signal trace"
    template = "signaltrace/panel.html"
    is_async = True
    #: The most tree rows the panel shows (a trace holds up to ``MAX_EVENTS``).
    max_rows: ClassVar[int] = 1000

    _capture: capture | None = None
    _trace: Trace | None = None
    _request_trace_id: str | None = None

    @property
    def nav_subtitle(self) -> str:
        """``3 receivers, 1 error``: receiver calls, then errors and skips if any."""
        stats = self._stats()
        if not stats:
            return ""
        parts = [_plural(stats["call_count"], "receiver")]
        if stats["error_count"]:
            parts.append(_plural(stats["error_count"], "error"))
        if stats["skipped_count"]:
            parts.append(f"{stats['skipped_count']} skipped")
        return ", ".join(parts)

    def enable_instrumentation(self) -> None:
        """Open this request's capture (idempotent)."""
        if self._capture is not None:
            return
        request = self.toolbar.request
        label = f"{request.method} {request.path}"
        for trace in active_traces():
            trace_id = trace.meta.get("id")
            if isinstance(trace_id, str):  # SignalTraceMiddleware's trace
                self._request_trace_id = trace_id
                break
        self._capture = capture(label=label)
        self._trace = self._capture.__enter__()

    def disable_instrumentation(self) -> None:
        """Close the capture (idempotent)."""
        if self._capture is not None and self._trace is not None and not self._trace.closed:
            self._capture.__exit__(None, None, None)

    def generate_stats(self, request: HttpRequest, response: HttpResponseBase) -> None:
        """Store the tree, errors and skipped receivers of this request's trace."""
        trace = self._trace
        if trace is None:
            return
        stats = panel_stats(trace, slow_ms=get_config()["SLOW_MS"], max_rows=self.max_rows)
        stats["viewer_url"] = _viewer_url(self._request_trace_id)
        self.record_stats(stats)  # type: ignore[no-untyped-call]

    def generate_server_timing(self, request: HttpRequest, response: HttpResponseBase) -> None:
        """A ``Server-Timing`` entry: time in receivers and their number."""
        stats = self._stats()
        if stats:
            title = f"Signal receivers ({stats['call_count']})"
            self.record_server_timing(  # type: ignore[no-untyped-call]
                "receivers", title, stats["receiver_ms"]
            )

    def _stats(self) -> dict[str, Any]:
        return self.get_stats()  # type: ignore[no-untyped-call, no-any-return]
