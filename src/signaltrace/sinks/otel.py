"""Export finished request traces to OpenTelemetry: a span per dispatch and per call.

.. code-block:: python

    SIGNALTRACE = {"OTEL": True}    # pip install "django-signaltrace[otel]"

Each dispatch becomes a span (``signal post_save``) and each receiver call a child
span of it (``receiver accounts.signals.create_user_profile``); a dispatch sent
by a receiver is a child of that receiver's span. Spans carry the real start and
end times of the dispatch and call, the trace's ``perf_counter_ns`` offsets
turned into epoch nanoseconds from the moment the trace opened.

They are parented to the span that is current when the sink runs: the sink runs
inside the middleware, so under ``opentelemetry-instrumentation-django`` (whose
middleware wraps every other one) that is the request's server span. Without a
current span, a ``signaltrace`` span for the whole trace is made the root. When
the current span is not sampled, no spans are made.

Only the OpenTelemetry API is used; spans go wherever the tracer provider you
configured sends them. This module is imported only when ``OTEL`` is on (or the
sink is listed in ``SINKS``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace as otel
from opentelemetry.trace import SpanKind, Status, StatusCode

import signaltrace

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider
    from opentelemetry.util.types import AttributeValue

    from signaltrace.records import Dispatch, ReceiverCall
    from signaltrace.traces import Trace

__all__ = ["TRACER_NAME", "OpenTelemetrySink"]

#: The instrumentation scope name of the spans.
TRACER_NAME: Final = "signaltrace"


def _value(value: Any) -> AttributeValue:
    """A recorded kwarg as an attribute value (labels and scalars only), or None."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Sequence):
        return [str(item) for item in value]
    return str(value)


class _Export:
    """Turn one trace into spans with one tracer; times are epoch nanoseconds."""

    def __init__(self, tracer: Tracer, trace: Trace) -> None:
        self.tracer = tracer
        self.trace = trace
        self.epoch_offset = trace.started_epoch_ns - trace.start_ns
        self.end_ns = trace.start_ns + trace.duration_ns
        trace_id = trace.meta.get("id")
        self.common: dict[str, AttributeValue] = (
            {"signaltrace.trace_id": trace_id} if isinstance(trace_id, str) else {}
        )

    def times(self, start_ns: int, duration_ns: int | None) -> tuple[int, int]:
        """``(start, end)`` in epoch ns; a call still running ends with the trace."""
        end_ns = start_ns + duration_ns if duration_ns is not None else self.end_ns
        return start_ns + self.epoch_offset, end_ns + self.epoch_offset

    def root(self) -> Span:
        """A span for the whole trace, when nothing else is current."""
        meta = self.trace.meta
        attributes: dict[str, AttributeValue] = {**self.common}
        if self.trace.label:
            attributes["signaltrace.label"] = self.trace.label
        for key, name in (
            ("method", "http.request.method"),
            ("path", "url.path"),
            ("status", "http.response.status_code"),
            ("view", "signaltrace.view"),
        ):
            if meta.get(key) is not None:
                attributes[name] = _value(meta[key])
        if self.trace.dropped:
            attributes["signaltrace.dropped"] = self.trace.dropped
        start, _end = self.times(self.trace.start_ns, None)
        return self.tracer.start_span(
            "signaltrace",
            context=otel.set_span_in_context(otel.INVALID_SPAN),
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=start,
        )

    def dispatch(self, dispatch: Dispatch, parent: Span) -> None:
        attributes: dict[str, AttributeValue] = {
            **self.common,
            "signaltrace.signal": dispatch.signal_name,
            "signaltrace.signal_path": dispatch.signal_path,
            "signaltrace.sender": dispatch.sender,
            "signaltrace.method": dispatch.method,
            "signaltrace.receiver_count": dispatch.receiver_count,
        }
        if isinstance(dispatch.created, bool):
            attributes["signaltrace.created"] = dispatch.created
        for key, value in dispatch.kwargs.items():
            converted = _value(value)
            if converted is not None:
                attributes[f"signaltrace.kwargs.{key}"] = converted
        origin = dispatch.origin
        if origin is not None:
            attributes["code.file.path"] = origin.filename
            attributes["code.line.number"] = origin.lineno
            attributes["code.function.name"] = origin.function
        start, end = self.times(dispatch.start_ns, dispatch.duration_ns)
        span = self.tracer.start_span(
            f"signal {dispatch.signal_name}",
            context=otel.set_span_in_context(parent),
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=start,
        )
        escaped = None
        for call in dispatch.calls:
            self.call(call, span)
            if escaped is None and call.error is not None and not dispatch.robust:
                escaped = call
        if escaped is not None:
            assert escaped.error is not None
            span.set_attribute("error.type", escaped.error.type)
            span.set_status(Status(StatusCode.ERROR, str(escaped.error)))
        span.end(end_time=end)

    def call(self, call: ReceiverCall, parent: Span) -> None:
        dispatch = call.dispatch
        attributes: dict[str, AttributeValue] = {
            **self.common,
            "signaltrace.receiver": call.receiver_name,
            "signaltrace.signal": dispatch.signal_name,
            "signaltrace.sender": dispatch.sender,
            "signaltrace.outcome": call.outcome,
            "signaltrace.async": call.is_async,
            "code.function.name": call.receiver_name,
        }
        if isinstance(dispatch.created, bool):
            attributes["signaltrace.created"] = dispatch.created
        if call.filename is not None and call.lineno is not None:
            attributes["code.file.path"] = call.filename
            attributes["code.line.number"] = call.lineno
        if call.queries is not None:
            attributes["signaltrace.db.queries"] = call.queries
            attributes["signaltrace.db.in_atomic"] = bool(call.in_atomic)
            attributes["signaltrace.db.on_commit"] = call.on_commit or 0
        start, end = self.times(call.start_ns, call.duration_ns)
        span = _start_span(
            self.tracer,
            _chosen_span_id(call, parent),
            f"receiver {call.receiver_name}",
            context=otel.set_span_in_context(parent),
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=start,
        )
        error = call.error
        if error is not None:
            event: dict[str, AttributeValue] = {
                "exception.type": error.type,
                "exception.message": error.message,
            }
            if error.filename is not None:
                event["signaltrace.exception.location"] = f"{error.filename}:{error.lineno}"
            span.add_event("exception", event, timestamp=end)
            span.set_attribute("error.type", error.type)
            span.set_attribute("signaltrace.swallowed", call.swallowed)
            span.set_status(Status(StatusCode.ERROR, str(error)))
        for child in call.children:
            self.dispatch(child, span)
        span.end(end_time=end)


def _chosen_span_id(call: ReceiverCall, parent: Span) -> int | None:
    """The span id chosen for ``call`` when it published a Celery task, if in this trace.

    The Celery integration runs the publish under a span with an id chosen then
    (``EnqueuedTask.span``: the publish span's parent); the call's span is
    exported with that id, so it is the publish's parent.
    """
    trace_id = parent.get_span_context().trace_id
    for task in call.tasks:
        if task.span is not None and task.span[0] == trace_id:
            return task.span[1]
    return None


class _ChosenIds:
    """An SDK id generator handing out one chosen span id first, then the real one's."""

    def __init__(self, base: Any, span_id: int) -> None:
        self.base = base
        self.span_id: int | None = span_id

    def generate_span_id(self) -> int:
        span_id, self.span_id = self.span_id, None
        return span_id if span_id is not None else int(self.base.generate_span_id())

    def generate_trace_id(self) -> int:
        return int(self.base.generate_trace_id())


def _start_span(tracer: Tracer, span_id: int | None, name: str, **kwargs: Any) -> Span:
    """``tracer.start_span(name, **kwargs)``, with id ``span_id`` if given (SDK tracers only).

    The OpenTelemetry SDK's tracer takes its ids from its ``id_generator``;
    for this one span it is one that returns ``span_id`` (this sink's tracer is
    its own, used on one thread at a time). Another tracer gets a new id.
    """
    real = tracer._tracer if isinstance(tracer, otel.ProxyTracer) else tracer
    base = getattr(real, "id_generator", None)
    if span_id is None or base is None:
        return tracer.start_span(name, **kwargs)
    real.id_generator = _ChosenIds(base, span_id)  # type: ignore[attr-defined]
    try:
        return real.start_span(name, **kwargs)
    finally:
        real.id_generator = base  # type: ignore[attr-defined]


class OpenTelemetrySink:
    """Export each finished trace as OpenTelemetry spans (see the module docstring).

    Traces without dispatches export nothing.

    :param tracer_provider: where spans go; ``None`` means the global provider
        (:func:`opentelemetry.trace.get_tracer_provider`).

    .. versionadded:: 0.1.0
    """

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self.tracer: Tracer = otel.get_tracer(
            TRACER_NAME, signaltrace.__version__, tracer_provider=tracer_provider
        )

    def emit(self, trace: Trace) -> None:
        """Make the spans of ``trace``, under the current span (or a new root span)."""
        parent = otel.get_current_span()
        context = parent.get_span_context()
        if context.is_valid and not context.trace_flags.sampled:
            return  # the request is not sampled: neither would its children be
        roots = trace.roots
        if not roots:
            return
        export = _Export(self.tracer, trace)
        root = None
        if not context.is_valid:
            parent = root = export.root()
        for dispatch in roots:
            export.dispatch(dispatch, parent)
        if root is not None:
            root.end(end_time=export.end_ns + export.epoch_offset)
