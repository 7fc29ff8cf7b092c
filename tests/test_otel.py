"""The OpenTelemetry sink: spans per dispatch and call, real times, parents, settings."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient
from opentelemetry import trace as otel
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import signaltrace
from signaltrace import conf, context, sinks
from signaltrace.checks import check_settings
from signaltrace.sinks.memory import buffer
from signaltrace.sinks.otel import TRACER_NAME, OpenTelemetrySink, _value
from tests.testapp.views import error_signal, view_signal

ROOT = Path(__file__).resolve().parent.parent

#: The process-wide provider (OpenTelemetry lets it be set once), for the ``OTEL``
#: setting, whose sink uses the global provider.
EXPORTER = InMemorySpanExporter()
PROVIDER = TracerProvider()
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))


@pytest.fixture(autouse=True)
def _otel(settings, monkeypatch):
    """The global provider is ours, the exporter empty, failures logged afresh."""
    if otel.get_tracer_provider() is not PROVIDER:
        otel.set_tracer_provider(PROVIDER)
    settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
    settings.MIDDLEWARE = ["signaltrace.middleware.SignalTraceMiddleware"]
    monkeypatch.setattr(context, "_logged", set())
    EXPORTER.clear()
    buffer().clear()
    yield
    EXPORTER.clear()
    buffer().clear()


@pytest.fixture
def instrumented(settings):
    """opentelemetry-instrumentation-django, its middleware put first in MIDDLEWARE."""
    DjangoInstrumentor().instrument(tracer_provider=PROVIDER)
    assert settings.MIDDLEWARE[0].startswith("opentelemetry.")
    yield
    DjangoInstrumentor().uninstrument()


def spans():
    assert sinks.flush()  # the OTel sink runs on the sink worker
    return list(EXPORTER.get_finished_spans())


def by_name(name):
    (span,) = [s for s in spans() if s.name == name]
    return span


def children(parent):
    return [
        s for s in spans() if s.parent is not None and s.parent.span_id == parent.context.span_id
    ]


def emitted(trace):
    OpenTelemetrySink(PROVIDER).emit(trace)
    return spans()


class TestSpans:
    def test_one_span_per_dispatch_and_call(self):
        """Dispatches and calls become a tree of spans under one root span."""
        with signaltrace.capture() as trace:
            view_signal.send(sender="test", marker="m")
        emitted(trace)
        root = by_name("signaltrace")
        assert root.parent is None
        (dispatch,) = children(root)
        assert dispatch.name == "signal view_signal"
        (call,) = children(dispatch)
        assert call.name == "receiver tests.testapp.views.announce"
        (nested,) = children(call)
        assert nested.name == "signal nested_signal"
        (inner,) = children(nested)
        assert inner.name == "receiver tests.testapp.views.record_marker"
        assert {s.context.trace_id for s in spans()} == {root.context.trace_id}
        assert {s.kind for s in spans()} == {SpanKind.INTERNAL}
        assert {s.instrumentation_scope.name for s in spans()} == {TRACER_NAME}
        assert len(spans()) == 5

    def test_real_times(self):
        """Spans carry the recorded start and end times, converted to epoch nanoseconds."""
        before = time.time_ns()
        with signaltrace.capture() as trace:
            view_signal.send(sender="test", marker="m", pause=0.01)
        after = time.time_ns()
        emitted(trace)
        (dispatch,) = trace.roots
        (call,) = dispatch.calls
        offset = trace.started_epoch_ns - trace.start_ns
        span = by_name("signal view_signal")
        assert span.start_time == dispatch.start_ns + offset
        assert span.end_time == dispatch.start_ns + dispatch.duration_ns + offset
        call_span = by_name("receiver tests.testapp.views.announce")
        assert call_span.start_time == call.start_ns + offset
        assert call_span.end_time - call_span.start_time == call.duration_ns
        assert call_span.end_time - call_span.start_time >= 10_000_000
        root = by_name("signaltrace")
        assert before <= root.start_time <= span.start_time <= call_span.start_time
        assert call_span.end_time <= span.end_time <= root.end_time <= after

    @pytest.mark.django_db
    def test_attributes(self):
        """Signal, sender, kwargs, created, receiver, outcome and code locations."""
        with signaltrace.capture() as trace:
            user = User.objects.create(username="ann")
        trace.meta["id"] = "f" * 32
        emitted(trace)
        (dispatch_span,) = [
            s
            for s in spans()
            if s.attributes.get("signaltrace.sender") == "auth.User"
            and s.name == "signal post_save"
        ]
        attributes = dispatch_span.attributes
        assert attributes["signaltrace.signal"] == "post_save"
        assert attributes["signaltrace.signal_path"] == "django.db.models.signals.post_save"
        assert attributes["signaltrace.method"] == "send"
        assert attributes["signaltrace.created"] is True
        assert attributes["signaltrace.kwargs.instance"] == f"auth.User pk={user.pk}"
        assert attributes["signaltrace.kwargs.created"] is True
        assert "signaltrace.kwargs.update_fields" not in attributes  # None is left out
        assert attributes["signaltrace.receiver_count"] == 2
        assert attributes["signaltrace.trace_id"] == "f" * 32
        assert attributes["code.file.path"] == __file__
        assert attributes["code.function.name"] == "TestSpans.test_attributes"
        call_span = by_name("receiver tests.testapp.signals.create_user_profile")
        attributes = call_span.attributes
        assert attributes["signaltrace.receiver"] == "tests.testapp.signals.create_user_profile"
        assert attributes["signaltrace.signal"] == "post_save"
        assert attributes["signaltrace.sender"] == "auth.User"
        assert attributes["signaltrace.created"] is True
        assert attributes["signaltrace.outcome"] == "returned"
        assert attributes["signaltrace.async"] is False
        assert attributes["code.file.path"].endswith("tests/testapp/signals.py")
        assert isinstance(attributes["code.line.number"], int)
        assert attributes["signaltrace.trace_id"] == "f" * 32
        assert call_span.status.status_code is StatusCode.UNSET
        assert "signaltrace.db.queries" not in attributes

    @pytest.mark.django_db
    def test_database_attributes(self, settings):
        """With RECORD_DB, each receiver span says how many queries it ran."""
        settings.SIGNALTRACE = {"ENABLED": True, "RECORD_DB": True}
        with signaltrace.capture() as trace:
            User.objects.create(username="bob")
        emitted(trace)
        attributes = by_name("receiver tests.testapp.signals.create_user_profile").attributes
        assert attributes["signaltrace.db.queries"] == 1
        assert attributes["signaltrace.db.in_atomic"] is True  # the test's transaction
        assert attributes["signaltrace.db.on_commit"] == 0

    def test_failed_receiver(self):
        """A receiver that raised: status ERROR, an exception event; so is its send()."""
        with signaltrace.capture() as trace, pytest.raises(ValueError, match="loudly"):
            error_signal.send(sender="test")
        emitted(trace)
        span = by_name("receiver tests.testapp.views.fails")
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "ValueError: receiver failed <b>loudly</b>"
        assert span.attributes["signaltrace.outcome"] == "raised"
        assert span.attributes["error.type"] == "ValueError"
        assert span.attributes["signaltrace.swallowed"] is False
        (event,) = span.events
        assert event.name == "exception"
        assert event.attributes["exception.type"] == "ValueError"
        assert event.attributes["exception.message"] == "receiver failed <b>loudly</b>"
        assert event.attributes["signaltrace.exception.location"].endswith("views.py:41")
        assert event.timestamp == span.end_time
        dispatch = by_name("signal error_signal")
        assert dispatch.status.status_code is StatusCode.ERROR
        assert dispatch.attributes["error.type"] == "ValueError"

    def test_swallowed_error(self):
        """Under send_robust() the receiver span fails; the dispatch did not raise."""
        with signaltrace.capture() as trace:
            error_signal.send_robust(sender="test", password="hunter2")
        emitted(trace)
        span = by_name("receiver tests.testapp.views.fails")
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["signaltrace.swallowed"] is True
        dispatch = by_name("signal error_signal")
        assert dispatch.status.status_code is StatusCode.UNSET
        assert dispatch.attributes["signaltrace.method"] == "send_robust"
        assert dispatch.attributes["signaltrace.kwargs.password"] == "[redacted]"

    def test_exception_without_location(self):
        """An exception with no traceback frame gets no location attribute."""

        def builtin_raiser(sender, **kwargs):
            raise KeyError("k")

        view_signal.connect(builtin_raiser)
        try:
            with signaltrace.capture() as trace:
                view_signal.send_robust(sender="test", marker="m")
        finally:
            view_signal.disconnect(builtin_raiser)
        # The recorder always finds a frame for Python code; drop it to cover labels only.
        call = trace.errors[0]
        object.__setattr__(call, "error", type(call.error)("KeyError", "'k'"))
        emitted(trace)
        (event,) = by_name(f"receiver {call.receiver_name}").events
        assert "signaltrace.exception.location" not in event.attributes

    def test_receiver_without_code(self):
        """A receiver with no Python code (a class here) has no code location."""
        view_signal.connect(dict, weak=False)
        try:
            with signaltrace.capture() as trace:
                view_signal.send(sender="test", marker="m")
        finally:
            view_signal.disconnect(dict)
        emitted(trace)
        attributes = by_name("receiver dict").attributes
        assert attributes["code.function.name"] == "dict"
        assert "code.file.path" not in attributes

    def test_current_span_is_the_parent(self):
        """Spans go under the span current when the sink runs, without a root of their own."""
        with signaltrace.capture() as trace:
            view_signal.send(sender="test", marker="m")
        tracer = PROVIDER.get_tracer("tests")
        with tracer.start_as_current_span("outer") as outer:
            OpenTelemetrySink(PROVIDER).emit(trace)
        assert [s.name for s in spans() if s.name == "signaltrace"] == []
        (dispatch,) = children(by_name("outer"))
        assert dispatch.name == "signal view_signal"
        assert dispatch.context.trace_id == outer.get_span_context().trace_id

    def test_unsampled_parent(self):
        """Under a span that is not sampled, nothing is made (its children would not be)."""
        with signaltrace.capture() as trace:
            view_signal.send(sender="test", marker="m")
        unsampled = otel.NonRecordingSpan(
            otel.SpanContext(trace_id=1, span_id=2, is_remote=True, trace_flags=otel.TraceFlags(0))
        )
        with otel.use_span(unsampled):
            assert emitted(trace) == []

    def test_empty_trace_exports_nothing(self):
        with signaltrace.capture() as trace:
            pass
        assert emitted(trace) == []

    def test_running_call_ends_with_the_trace(self):
        """A call still running when the sink runs ends when the trace does."""
        sink = OpenTelemetrySink(PROVIDER)
        with signaltrace.capture() as trace:

            def export_now(sender, **kwargs):
                sink.emit(trace)

            view_signal.connect(export_now)
            try:
                view_signal.send(sender="test", marker="m")
            finally:
                view_signal.disconnect(export_now)
        span = by_name(
            "receiver tests.test_otel.TestSpans.test_running_call_ends_with_the_trace.<locals>.export_now"
        )
        assert span.attributes["signaltrace.outcome"] == "running"
        assert (
            by_name("signal view_signal").end_time
            == span.end_time
            == by_name("signaltrace").end_time
        )

    def test_global_provider_by_default(self):
        with signaltrace.capture() as trace:
            view_signal.send(sender="test", marker="m")
        OpenTelemetrySink().emit(trace)
        assert by_name("signal view_signal")

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (None, None),
            ("s", "s"),
            (True, True),
            (3, 3),
            (1.5, 1.5),
            ([1, "a"], ["1", "a"]),
            (("x",), ["x"]),
            ({"a": 1}, "{'a': 1}"),
        ],
    )
    def test_attribute_values(self, value, expected):
        """Recorded kwargs become valid attribute values (None is left out)."""
        assert _value(value) == expected


class TestSetting:
    def test_otel_setting(self, client, settings):
        """OTEL turns the sink on for request traces; the root span has the request facts."""
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "OTEL": True}
        assert [name for name, _sink in sinks.active_sinks()] == ["memory", "otel"]
        client.get("/signal/m/")
        root = by_name("signaltrace")
        (trace,) = buffer().traces()
        assert root.attributes == {
            "signaltrace.trace_id": trace.meta["id"],
            "signaltrace.label": "GET /signal/m/ 200",
            "http.request.method": "GET",
            "url.path": "/signal/m/",
            "http.response.status_code": 200,
            "signaltrace.view": "tests.testapp.views.signal_view",
        }
        assert [s.name for s in children(root)] == ["signal view_signal"]

    def test_dropped_events_are_counted(self, client, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "OTEL": True, "MAX_EVENTS": 2, "LOG_LEVEL": None}
        client.get("/signal/m/")
        assert by_name("signaltrace").attributes["signaltrace.dropped"] == 2

    def test_listed_in_sinks(self, client, settings):
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "LOG_LEVEL": None,
            "SINKS": ["signaltrace.sinks.otel.OpenTelemetrySink"],
        }
        client.get("/signal/m/")
        assert by_name("signal view_signal")

    def test_off_by_default(self, client):
        client.get("/signal/m/")
        assert spans() == []
        assert [name for name, _sink in sinks.active_sinks()] == ["memory"]

    def test_off_imports_nothing(self):
        """With OTEL off, a request imports neither the sink nor OpenTelemetry."""
        code = (
            "import sys, django; django.setup()\n"
            "from django.test import Client\n"
            "assert Client().get('/signal/m/').status_code == 200\n"
            "loaded = [m for m in sys.modules if m.startswith(('opentelemetry', 'signaltrace.sinks.otel'))]\n"
            "assert not loaded, loaded\n"
            "assert 'signaltrace.sinks' in sys.modules\n"
        )
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
        subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)

    def test_missing_package_is_a_settings_error(self, settings, monkeypatch):
        """OTEL without the otel extra is reported by signaltrace.E002, naming the extra."""
        settings.SIGNALTRACE = {"OTEL": True}
        assert check_settings() == []
        monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)
        (error,) = check_settings()
        assert error.id == "signaltrace.E002"
        assert 'pip install "django-signaltrace[otel]"' in error.msg
        settings.SIGNALTRACE = {"OTEL": False}
        assert check_settings() == []

    def test_missing_namespace(self, monkeypatch):
        monkeypatch.delitem(sys.modules, "opentelemetry.trace")
        monkeypatch.setitem(sys.modules, "opentelemetry", None)
        assert conf._otel_missing()

    @pytest.mark.parametrize("value", [1, "yes", None])
    def test_bad_values(self, settings, value):
        settings.SIGNALTRACE = {"OTEL": value}
        assert [error.id for error in check_settings()] == ["signaltrace.E002"]

    def test_unimportable_sink_is_logged(self, client, settings, monkeypatch, caplog):
        """If the sink cannot be imported at run time, requests go on; it is logged once."""
        monkeypatch.setitem(sys.modules, "signaltrace.sinks.otel", None)
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "OTEL": True}
        assert client.get("/signal/m/").status_code == 200
        assert "internal error in OTEL" in caplog.text
        assert len(buffer()) == 1

    def test_failing_export_is_contained(self, client, settings, monkeypatch, caplog):
        def broken(self, trace):
            raise RuntimeError("collector down")

        monkeypatch.setattr(OpenTelemetrySink, "emit", broken)
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "OTEL": True}
        assert client.get("/signal/m/").status_code == 200
        assert client.get("/signal/m/").status_code == 200
        assert sinks.flush()
        assert caplog.text.count("internal error in sink otel") == 1


@pytest.mark.usefixtures("instrumented")
class TestDjangoInstrumentation:
    """Under opentelemetry-instrumentation-django the request's server span is the parent."""

    def server_span(self):
        (span,) = [s for s in spans() if s.kind is SpanKind.SERVER]
        return span

    def assert_under_request(self, signal_name):
        server = self.server_span()
        dispatches = [s for s in spans() if s.name == f"signal {signal_name}"]
        assert dispatches
        for dispatch in dispatches:
            assert dispatch.parent.span_id == server.context.span_id
            assert dispatch.context.trace_id == server.context.trace_id
            assert server.start_time <= dispatch.start_time <= dispatch.end_time
        assert [s.name for s in spans() if s.name == "signaltrace"] == []
        return server, dispatches

    @pytest.mark.django_db
    def test_sync_request(self, client, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "OTEL": True}
        response = client.get("/create-user/", {"username": "ann"})
        assert response.status_code == 200
        server, (post_save,) = self.assert_under_request("post_save")
        assert server.name == "GET create-user/"
        assert post_save.end_time <= server.end_time
        calls = children(post_save)
        assert [s.name for s in calls] == [
            "receiver tests.testapp.signals.create_user_profile",
            "receiver tests.testapp.signals.save_user_profile",
        ]
        (trace,) = buffer().traces()
        assert post_save.attributes["signaltrace.trace_id"] == trace.meta["id"]

    def test_async_request(self, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "OTEL": True}
        response = asyncio.run(AsyncClient().get("/async-signal/a1/"))
        assert response.status_code == 200
        _server, (dispatch,) = self.assert_under_request("async_signal")
        assert sorted(s.name for s in children(dispatch)) == [
            "receiver tests.testapp.views.async_record",
            "receiver tests.testapp.views.sync_record",
        ]
        assert by_name("receiver tests.testapp.views.async_record").attributes["signaltrace.async"]

    def test_streaming_response(self, client, settings):
        """Streamed content is traced until it ends; its spans still join the request."""
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "OTEL": True}
        response = client.get("/stream/")
        assert b"".join(response.streaming_content) == b"0\n1\n2\n"
        _server, dispatches = self.assert_under_request("view_signal")
        assert len(dispatches) == 3

    def test_error_in_view(self, client, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "OTEL": True}
        client.raise_request_exception = False
        assert client.get("/raising/").status_code == 500
        _server, (dispatch,) = self.assert_under_request("error_signal")
        assert dispatch.status.status_code is StatusCode.ERROR

    def test_without_the_sink(self, client):
        """Only the request span: signaltrace adds nothing unless OTEL is on."""
        client.get("/signal/m/")
        assert [s.kind for s in spans()] == [SpanKind.SERVER]
