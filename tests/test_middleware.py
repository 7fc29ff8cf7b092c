"""SignalTraceMiddleware: per-request traces, headers, streaming, sinks, settings, checks."""

from __future__ import annotations

import asyncio
import io
import re
import sys
from typing import ClassVar

import pytest
import structlog
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import AsyncClient, RequestFactory

import signaltrace
from signaltrace import context, middleware, sinks
from signaltrace.checks import check_middleware, check_settings
from signaltrace.context import CURSOR
from signaltrace.middleware import SignalTraceMiddleware, show_trace, shown
from signaltrace.sinks import memory
from signaltrace.sinks.console import ConsoleSink, console_enabled
from signaltrace.sinks.memory import buffer
from signaltrace.sinks.structlog import MAX_ERRORS, StructlogSink, request_fields
from tests.testapp.views import error_signal, fails

SERVER_TIMING = re.compile(r'^signaltrace;dur=\d+\.\d{3};desc="(\d+) receiver calls?"$')


class ListSink:
    """A sink for the tests: remembers what it was given."""

    received: ClassVar[list[signaltrace.Trace]] = []

    def emit(self, trace):
        ListSink.received.append(trace)


class BrokenSink:
    def emit(self, trace):
        raise RuntimeError("sink broke")


not_a_sink = object()
list_sink_instance = ListSink()


@pytest.fixture(autouse=True)
def _request_tracing(settings, monkeypatch):
    """Traces shown (DEBUG, internal IP), an empty buffer, failures logged afresh."""
    settings.DEBUG = True
    settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
    monkeypatch.setattr(context, "_logged", set())
    ListSink.received = []
    buffer().clear()
    yield
    assert sinks.flush()  # the worker's sinks: nothing reaches the next test
    memory._buffer.clear()


def last_trace():
    (trace, *_rest) = buffer().traces()
    return trace


def run(coro):
    return asyncio.run(coro)


def markers(trace):
    return [d.kwargs.get("marker") for d in trace.dispatches]


@pytest.mark.django_db
class TestRequestTrace:
    def test_sync_view(self, client):
        """A sync request's trace holds its receivers and request facts, and is closed."""
        response = client.get("/create-user/", {"username": "ann"})
        assert response.status_code == 200
        trace = last_trace()
        assert trace.closed
        assert trace.label == "GET /create-user/ 200"
        meta = trace.meta
        assert meta["method"] == "GET"
        assert meta["path"] == "/create-user/"
        assert meta["view"] == "tests.testapp.views.create_user_view"
        assert meta["status"] == 200
        assert meta["streaming"] is False
        assert meta["async"] is False
        assert re.fullmatch(r"[0-9a-f]{32}", meta["id"])
        assert [c.receiver_name for c in trace.calls] == [
            "tests.testapp.signals.create_user_profile",
            "tests.testapp.signals.save_user_profile",
            "tests.testapp.views.announce",
            "tests.testapp.views.record_marker",
        ]
        user = User.objects.get(username="ann")
        (post_save,) = trace.find_dispatches(signal="post_save", sender=User)
        assert post_save.kwargs["instance"] == f"auth.User pk={user.pk}"

    def test_request_signals_are_outside(self, client):
        """request_started/request_finished are sent outside the middleware: not traced."""
        client.get("/signal/m/")
        names = {d.signal_name for d in last_trace().dispatches}
        assert names == {"view_signal", "nested_signal"}

    def test_async_view(self):
        """Under the async handler the middleware runs async and records async receivers."""
        response = run(AsyncClient().get("/async-signal/a1/"))
        assert response.status_code == 200
        trace = last_trace()
        assert trace.meta["async"] is True
        assert trace.meta["view"] == "tests.testapp.views.async_signal_view"
        assert sorted(c.receiver_name for c in trace.calls) == [
            "tests.testapp.views.async_record",
            "tests.testapp.views.sync_record",
        ]
        assert markers(trace) == ["a1"]

    def test_class_based_view_name(self, client):
        client.get("/class/")
        assert last_trace().meta["view"] == "tests.testapp.views.ClassView"

    def test_view_without_qualname_uses_url_name(self, client):
        client.get("/partial/")
        assert last_trace().meta["view"] == "partial"

    def test_unresolved_path(self, client):
        response = client.get("/nowhere/")
        assert response.status_code == 404
        trace = last_trace()
        assert trace.meta["view"] is None
        assert trace.meta["status"] == 404
        assert {d.signal_name for d in trace.dispatches} <= {"template_rendered"}

    def test_view_error_response(self, client):
        """A view that raises becomes a 500; its failed receiver is in the trace."""
        client.raise_request_exception = False
        response = client.get("/raising/")
        assert response.status_code == 500
        trace = last_trace()
        assert trace.meta["status"] == 500
        (call,) = trace.errors
        assert call.error.type == "ValueError"
        assert not call.swallowed

    def test_context_is_left_as_found(self, client):
        """After the request, this context's cursor is back to what it was."""
        assert CURSOR.get() is None
        client.get("/signal/m/")
        assert CURSOR.get() is None

    def test_outer_capture_sees_the_request(self, client):
        """A capture around the request also records it (captures nest)."""
        with signaltrace.capture() as outer:
            client.get("/signal/outer/")
        names = [d.signal_name for d in outer.dispatches]
        assert names == ["request_started", "view_signal", "nested_signal", "request_finished"]
        assert markers(last_trace()) == ["outer", "outer"]

    def test_disabled(self, client, settings):
        """With ENABLED off the middleware only passes the request on."""
        settings.SIGNALTRACE = {"ENABLED": False}
        response = client.get("/signal/m/")
        assert "X-Signaltrace-Id" not in response.headers
        assert len(buffer()) == 0
        response = run(AsyncClient().get("/async-signal/m/"))
        assert response.status_code == 200
        assert len(buffer()) == 0

    def test_viewer_requests_are_not_recorded(self, client):
        client.get("/signal/m/")
        response = client.get("/__signaltrace__/")
        assert response.status_code == 200
        assert "X-Signaltrace-Id" not in response.headers
        assert len(buffer()) == 1

    def test_start_failure_is_contained(self, client, monkeypatch, caplog):
        """If opening the trace fails, the request runs untraced and the failure is logged."""

        def boom(trace):
            raise RuntimeError("no ids today")

        # Reading the new trace's id (for meta["id"]) fails once the capture is open.
        trace_id = property(boom, lambda trace, value: None)
        monkeypatch.setattr(signaltrace.Trace, "trace_id", trace_id, raising=False)
        capturing = context.CAPTURING
        response = client.get("/signal/m/")
        assert capturing == context.CAPTURING  # the capture it had opened is closed
        assert response.status_code == 200
        assert len(buffer()) == 0
        assert "internal error in middleware start" in caplog.text
        assert CURSOR.get() is None

    def test_finish_failure_is_contained(self, client, monkeypatch, caplog):
        def boom(match):
            raise RuntimeError("no names today")

        monkeypatch.setattr(middleware, "_view_name", boom)
        response = client.get("/signal/m/")
        assert response.status_code == 200
        assert response.content == b"m"
        assert "internal error in middleware" in caplog.text
        assert last_trace().closed  # never left open

    def test_header_failure_is_contained(self, client, settings, monkeypatch, caplog):
        """A failure after the trace was closed leaves it closed and handed on once."""
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "SINKS": [LIST_SINK]}

        def boom(response, trace, config):
            raise RuntimeError("no headers today")

        monkeypatch.setattr(middleware, "_add_headers", boom)
        response = client.get("/signal/m/")
        assert response.status_code == 200
        assert "X-Signaltrace-Id" not in response.headers
        assert sinks.flush()  # SINKS run on the sink worker
        assert len(ListSink.received) == 1
        assert "internal error in middleware" in caplog.text


LIST_SINK = "tests.test_middleware.ListSink"


class TestExceptionsThroughMiddleware:
    """Exceptions that reach the middleware (not turned into responses below it)."""

    def test_sync(self):
        def get_response(request):
            error_signal.send_robust(sender="direct")
            raise KeyError("lost")

        mw = SignalTraceMiddleware(get_response)
        with pytest.raises(KeyError):
            mw(RequestFactory().get("/direct/"))
        trace = last_trace()
        assert trace.meta["exception"] == "KeyError"
        assert trace.meta["status"] is None
        assert trace.label == "GET /direct/ exception"
        assert len(trace.errors) == 1
        assert CURSOR.get() is None

    def test_async(self):
        async def get_response(request):
            raise KeyError("lost")

        mw = SignalTraceMiddleware(get_response)
        assert asyncio.iscoroutinefunction(mw)
        with pytest.raises(KeyError):
            run(mw(RequestFactory().get("/direct/")))
        assert last_trace().meta["exception"] == "KeyError"

    def test_problem_level(self, settings):
        """An exception makes the log event a problem event, with the exception named."""
        settings.SIGNALTRACE = {"ENABLED": True}

        def get_response(request):
            raise KeyError("lost")

        with structlog.testing.capture_logs() as logs, pytest.raises(KeyError):
            SignalTraceMiddleware(get_response)(RequestFactory().get("/direct/"))
        (event,) = logs
        assert event["log_level"] == "warning"
        assert event["exception"] == "KeyError"


@pytest.mark.django_db
class TestHeaders:
    def test_shown(self, client):
        """Server-Timing carries the receiver time and count; the id names the trace."""
        response = client.get("/create-user/", {"username": "ann"})
        match = SERVER_TIMING.match(response.headers["Server-Timing"])
        assert match is not None
        assert match.group(1) == "4"
        assert response.headers["X-Signaltrace-Id"] == last_trace().meta["id"]

    def test_singular(self):
        def get_response(request):
            error_signal.send_robust(sender="x")
            return HttpResponse()

        response = SignalTraceMiddleware(get_response)(RequestFactory().get("/"))
        assert response.headers["Server-Timing"].endswith('desc="1 receiver call"')

    def test_appends_to_existing_server_timing(self):
        def get_response(request):
            response = HttpResponse()
            response.headers["Server-Timing"] = "db;dur=1.5"
            return response

        response = SignalTraceMiddleware(get_response)(RequestFactory().get("/"))
        first, second = response.headers["Server-Timing"].split(", ")
        assert first == "db;dur=1.5"
        assert SERVER_TIMING.match(second)

    def test_server_timing_off(self, client, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "SERVER_TIMING": False}
        response = client.get("/signal/m/")
        assert "Server-Timing" not in response.headers
        assert "X-Signaltrace-Id" in response.headers

    @pytest.mark.parametrize(
        ("debug", "remote_addr"), [(False, "127.0.0.1"), (True, "10.1.2.3"), (False, "10.1.2.3")]
    )
    def test_refused(self, client, settings, debug, remote_addr):
        """Without DEBUG and an internal IP: no signaltrace headers, but still traced."""
        settings.DEBUG = debug
        response = client.get("/signal/m/", REMOTE_ADDR=remote_addr)
        assert "Server-Timing" not in response.headers
        assert "X-Signaltrace-Id" not in response.headers
        assert len(buffer()) == 1

    def test_callable_callback(self, client, settings):
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "SHOW_CALLBACK": lambda request: request.GET.get("show") == "1",
        }
        assert "X-Signaltrace-Id" in client.get("/signal/m/", {"show": "1"}).headers
        assert "X-Signaltrace-Id" not in client.get("/signal/m/").headers

    def test_dotted_callback(self, client, settings):
        settings.DEBUG = False
        settings.SIGNALTRACE = {"ENABLED": True, "SHOW_CALLBACK": "tests.test_middleware.always"}
        assert "X-Signaltrace-Id" in client.get("/signal/m/").headers

    def test_failing_callback(self, client, settings, caplog):
        """A callback that raises counts as a refusal and is logged."""
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "SHOW_CALLBACK": "tests.test_middleware.broken_callback",
        }
        response = client.get("/signal/m/")
        assert response.status_code == 200
        assert "X-Signaltrace-Id" not in response.headers
        assert "internal error in SHOW_CALLBACK" in caplog.text

    def test_show_trace(self, settings):
        request = RequestFactory().get("/")
        assert show_trace(request) is True
        assert shown(request) is True
        settings.INTERNAL_IPS = []
        assert show_trace(request) is False


def always(request):
    return True


def broken_callback(request):
    raise RuntimeError("callback broke")


@pytest.mark.django_db
class TestStreaming:
    def test_trace_closes_when_the_stream_ends(self, client):
        """Signals sent while the content streams are in the trace; it closes at the end."""
        response = client.get("/stream/")
        assert response.headers["X-Signaltrace-Id"]
        assert len(buffer()) == 0
        chunks = iter(response.streaming_content)
        assert next(chunks) == b"0\n"
        assert CURSOR.get() is None  # set only while a chunk is produced
        assert b"".join(chunks) == b"1\n2\n"
        trace = last_trace()
        assert trace.closed
        assert trace.meta["streaming"] is True
        assert markers(trace) == [m for i in range(3) for m in (f"chunk-{i}",) * 2]
        response.close()
        assert len(buffer()) == 1

    def test_closed_without_reading(self, client):
        """A streaming response closed unread still finishes its trace."""
        response = client.get("/stream/")
        response.close()
        trace = last_trace()
        assert trace.closed
        assert trace.dispatches == []

    def test_broken_stream(self, client):
        response = client.get("/broken-stream/")
        with pytest.raises(RuntimeError, match="stream broke"):
            b"".join(response.streaming_content)
        assert CURSOR.get() is None
        assert last_trace().closed

    def test_async_stream(self):
        async def fetch():
            response = await AsyncClient().get("/async-stream/")
            return [chunk async for chunk in response.streaming_content]

        assert run(fetch()) == [b"0\n", b"1\n", b"2\n"]
        trace = last_trace()
        assert trace.meta["streaming"] is True
        assert markers(trace) == ["achunk-0", "achunk-1", "achunk-2"]
        assert len(trace.calls) == 6

    def test_broken_async_stream(self):
        async def fetch():
            response = await AsyncClient().get("/broken-async-stream/")
            return [chunk async for chunk in response.streaming_content]

        with pytest.raises(RuntimeError, match="async stream broke"):
            run(fetch())
        assert last_trace().closed

    def test_file_response_is_left_alone(self):
        """FileResponse keeps its file (wsgi.file_wrapper still applies); close() ends it."""
        from tests.testapp.views import file_view

        request = RequestFactory().get("/file/")
        response = SignalTraceMiddleware(file_view)(request)
        assert response.file_to_stream is not None
        assert len(buffer()) == 0
        assert b"".join(response.streaming_content) == b"file content"
        response.close()
        trace = last_trace()
        assert markers(trace) == ["file", "file"]
        assert trace.meta["streaming"] is True

    def test_close_stream_failure_is_contained(self, client, monkeypatch, caplog):
        response = client.get("/stream/")

        def boom(trace, config=None):
            raise RuntimeError("emit broke")

        monkeypatch.setattr(sinks, "emit", boom)
        response.close()
        assert "internal error in middleware stream" in caplog.text
        assert "emit broke" in caplog.text


@pytest.mark.django_db
class TestStructlog:
    @pytest.fixture(autouse=True)
    def _logging(self, settings):
        settings.SIGNALTRACE = {"ENABLED": True}

    def get(self, client, *args, **kwargs):
        with structlog.testing.capture_logs() as logs:
            client.get(*args, **kwargs)
        (event,) = logs
        return event

    def test_info_event(self, client):
        event = self.get(client, "/create-user/", {"username": "ann"})
        assert event["event"] == "signaltrace.request"
        assert event["log_level"] == "info"
        assert event["method"] == "GET"
        assert event["path"] == "/create-user/"
        assert event["view"] == "tests.testapp.views.create_user_view"
        assert event["status"] == 200
        assert event["dispatches"] == 3
        assert event["receiver_calls"] == 4
        assert event["receiver_ms"] > 0
        assert event["duration_ms"] >= event["receiver_ms"]
        assert event["trace_id"] == last_trace().meta["id"]
        assert event["receivers"] == [
            "tests.testapp.signals.create_user_profile",
            "tests.testapp.signals.save_user_profile",
            "tests.testapp.views.announce",
            "tests.testapp.views.record_marker",
        ]
        assert len(event["slowest"]) == 3
        assert set(event["slowest"][0]) == {"receiver", "ms"}
        assert event["errors"] == []
        assert event["dropped"] == 0

    def test_swallowed_error_warns(self, client):
        """An exception send_robust swallowed is listed and raises the level."""
        event = self.get(client, "/robust/")
        assert event["log_level"] == "warning"
        (error,) = event["errors"]
        assert error["receiver"] == "tests.testapp.views.fails"
        assert error["signal"] == "error_signal"
        assert error["type"] == "ValueError"
        assert error["message"] == "receiver failed <b>loudly</b>"
        assert error["swallowed"] is True
        raise_line = fails.__code__.co_firstlineno + 2  # decorator, def, raise
        assert error["location"].endswith(f"tests/testapp/views.py:{raise_line}")

    def test_slow_receiver_warns(self, client, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "SLOW_MS": 1}
        event = self.get(client, "/signal/slow/", {"pause": "0.005"})
        assert event["log_level"] == "warning"
        assert event["slowest"][0]["receiver"] == "tests.testapp.views.announce"
        assert event["slowest"][0]["ms"] >= 5

    def test_slow_ms_zero_never_slow(self, client, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "SLOW_MS": 0}
        assert self.get(client, "/signal/m/", {"pause": "0.002"})["log_level"] == "info"

    def test_levels(self, client, settings):
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "LOG_LEVEL": "debug",
            "LOG_PROBLEM_LEVEL": "error",
        }
        assert self.get(client, "/signal/m/")["log_level"] == "debug"
        assert self.get(client, "/robust/")["log_level"] == "error"

    def test_fields(self, client, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_FIELDS": ["status", "path"]}
        event = self.get(client, "/signal/m/")
        assert event == {
            "event": "signaltrace.request",
            "log_level": "info",
            "status": 200,
            "path": "/signal/m/",
        }

    def test_off(self, client, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
        with structlog.testing.capture_logs() as logs:
            client.get("/signal/m/")
        assert logs == []
        trace = last_trace()
        with structlog.testing.capture_logs() as logs:
            StructlogSink().emit(trace)
        assert logs == []

    def test_contextvars_are_merged(self, client):
        """structlog's context variables (a request id) are in the event; ours win."""
        structlog.contextvars.bind_contextvars(request_id="req-1", path="ctx", event="ctx")
        try:
            event = self.get(client, "/signal/m/")
        finally:
            structlog.contextvars.clear_contextvars()
        assert event["request_id"] == "req-1"
        assert event["path"] == "/signal/m/"
        assert event["event"] == "signaltrace.request"

    def test_many_errors_are_capped(self):
        with signaltrace.capture() as trace:
            for _ in range(MAX_ERRORS + 5):
                error_signal.send_robust(sender="loop")
        fields, problem = request_fields(trace, 50)
        assert problem
        assert len(fields["errors"]) == MAX_ERRORS
        assert fields["error_count"] == MAX_ERRORS + 5


class TestConsole:
    def test_on(self, client, settings, capsys):
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "CONSOLE": True}
        client.get("/signal/m/")
        assert sinks.flush()  # the console tree is written by the sink worker
        err = capsys.readouterr().err
        assert "GET /signal/m/ 200   2 dispatches, 2 receiver calls" in err
        assert "└─ view_signal  sender=signal_view" in err

    def test_off(self, client, settings, capsys):
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "CONSOLE": False}
        client.get("/signal/m/")
        assert sinks.flush()
        assert capsys.readouterr().err == ""

    @pytest.mark.parametrize(
        ("argv", "debug", "expected"),
        [
            (["manage.py", "runserver"], True, True),
            (["manage.py", "runserver_plus"], True, True),
            (["manage.py", "runserver"], False, False),
            (["manage.py", "migrate"], True, False),
            (["manage.py"], True, False),
        ],
    )
    def test_default_follows_runserver(self, settings, monkeypatch, argv, debug, expected):
        """CONSOLE="auto" (the default): on under runserver with DEBUG."""
        monkeypatch.setattr(sys, "argv", argv)
        settings.DEBUG = debug
        assert console_enabled({"CONSOLE": "auto"}) is expected

    def test_control_characters_are_escaped(self):
        stream = io.StringIO()
        with signaltrace.capture(label="GET /\x1b[31mred\x07") as trace:
            pass
        ConsoleSink(stream).emit(trace)
        assert stream.getvalue().startswith("GET /\\x1b[31mred\\x07   0 dispatches")

    def test_default_stream_is_stderr(self, capsys):
        with signaltrace.capture(label="x") as trace:
            pass
        ConsoleSink().emit(trace)
        assert capsys.readouterr().err.startswith("x   0 dispatches")


class TestSinks:
    def test_extra_sink(self, client, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "SINKS": ["tests.test_middleware.ListSink"]}
        client.get("/signal/m/")
        assert sinks.flush()
        (trace,) = ListSink.received
        assert trace is last_trace()

    def test_sink_instance(self, client, settings):
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "LOG_LEVEL": None,
            "SINKS": ["tests.test_middleware.list_sink_instance"],
        }
        client.get("/signal/m/")
        assert sinks.flush()
        assert len(ListSink.received) == 1

    def test_failing_sink_is_contained(self, client, settings, caplog):
        """A sink that raises is logged; the request and the other sinks carry on."""
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "LOG_LEVEL": None,
            "SINKS": ["tests.test_middleware.BrokenSink", "tests.test_middleware.ListSink"],
        }
        response = client.get("/signal/m/")
        assert response.status_code == 200
        assert sinks.flush()
        assert len(ListSink.received) == 1
        assert "internal error in sink tests.test_middleware.BrokenSink" in caplog.text

    def test_unusable_sink_is_skipped(self, client, settings, caplog):
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "LOG_LEVEL": None,
            "SINKS": ["tests.test_middleware.not_a_sink", "nope.Missing"],
        }
        assert client.get("/signal/m/").status_code == 200
        assert "SINKS tests.test_middleware.not_a_sink" in caplog.text
        assert "SINKS nope.Missing" in caplog.text
        assert [name for name, _sink in sinks.active_sinks()] == ["memory"]

    def test_load_sink(self):
        assert isinstance(sinks.load_sink("tests.test_middleware.ListSink"), ListSink)
        assert sinks.load_sink("tests.test_middleware.list_sink_instance") is list_sink_instance
        with pytest.raises(TypeError, match="has no emit"):
            sinks.load_sink("tests.test_middleware.not_a_sink")
        assert isinstance(ListSink(), sinks.Sink)

    def test_active_sinks_follow_settings(self, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "CONSOLE": True}
        assert [name for name, _s in sinks.active_sinks()] == ["memory", "structlog", "console"]
        assert sinks.active_sinks() is sinks.active_sinks()
        settings.SIGNALTRACE = {"ENABLED": True, "BUFFER_SIZE": 0, "LOG_LEVEL": None}
        assert sinks.active_sinks() == ()


class TestSettings:
    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("BUFFER_SIZE", -1),
            ("BUFFER_SIZE", 1.5),
            ("SLOW_MS", -0.1),
            ("SLOW_MS", True),
            ("SHOW_CALLBACK", 3),
            ("SHOW_CALLBACK", True),
            ("CONSOLE", "yes"),
            ("SERVER_TIMING", None),
            ("LOG_LEVEL", "loud"),
            ("LOG_PROBLEM_LEVEL", None),
            ("LOG_FIELDS", ["status", "nope"]),
            ("LOG_FIELDS", "status"),
            ("SINKS", [3]),
            ("SINKS", "a.b"),
        ],
    )
    def test_bad_values(self, settings, key, value):
        """Each new key is type- and range-checked (signaltrace.E002)."""
        settings.SIGNALTRACE = {key: value}
        assert [error.id for error in check_settings()] == ["signaltrace.E002"]

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("BUFFER_SIZE", 0),
            ("SLOW_MS", 2.5),
            ("SHOW_CALLBACK", show_trace),
            ("CONSOLE", None),
            ("LOG_LEVEL", None),
            ("LOG_PROBLEM_LEVEL", "critical"),
            ("LOG_FIELDS", ("trace_id",)),
            ("SINKS", ["tests.test_middleware.ListSink"]),
        ],
    )
    def test_good_values(self, settings, key, value):
        settings.SIGNALTRACE = {key: value}
        assert check_settings() == []
        assert check_middleware() == []


class TestChecks:
    def ids(self):
        return [message.id for message in check_middleware()]

    def test_first_is_fine(self, settings):
        settings.MIDDLEWARE = [middleware.PATH, "django.middleware.common.CommonMiddleware"]
        assert self.ids() == []

    def test_absent_is_fine(self, settings):
        settings.MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
        assert self.ids() == []

    def test_not_first(self, settings):
        settings.MIDDLEWARE = ["django.middleware.common.CommonMiddleware", middleware.PATH]
        (warning,) = check_middleware()
        assert warning.id == "signaltrace.W100"
        assert "SessionMiddleware" in warning.hint

    def test_show_callback_does_not_import(self, settings):
        settings.SIGNALTRACE = {"SHOW_CALLBACK": "nope.show"}
        assert self.ids() == ["signaltrace.E100"]

    def test_bad_sink(self, settings):
        settings.SIGNALTRACE = {"SINKS": ["tests.test_middleware.not_a_sink", "nope.Sink"]}
        assert self.ids() == ["signaltrace.E101", "signaltrace.E101"]

    def test_invalid_settings_are_left_to_check_settings(self, settings):
        settings.SIGNALTRACE = {"SHOW_CALLBACK": 3}
        settings.MIDDLEWARE = []
        assert self.ids() == []


@pytest.mark.django_db
def test_event_lists_skipped_receivers():
    """The request event names operations that skipped connected receivers."""
    from django.contrib.auth.models import User

    from signaltrace.sinks.structlog import request_fields

    with signaltrace.capture() as trace:
        User.objects.bulk_create([User(username="bulk-event")])
    fields, _problem = request_fields(trace, 50)
    assert fields["skipped"] == [
        {
            "operation": "bulk_create",
            "model": "auth.User",
            "signals": ["post_save"],
            "receivers": [
                "tests.testapp.signals.create_user_profile",
                "tests.testapp.signals.save_user_profile",
            ],
        }
    ]


class TestSampling:
    @pytest.mark.django_db
    @pytest.mark.parametrize(
        ("rate", "draw", "traced"),
        [(0, 0.0, False), (0.25, 0.1, True), (0.25, 0.5, False), (1, 0.99, True)],
    )
    def test_sample_rate(self, client, settings, monkeypatch, rate, draw, traced):
        """SAMPLE_RATE traces that fraction of requests; the others run untouched."""
        import random

        from signaltrace.sinks.memory import buffer

        monkeypatch.setattr(random, "random", lambda: draw)
        settings.DEBUG = True
        settings.SIGNALTRACE = {"ENABLED": True, "SAMPLE_RATE": rate, "LOG_LEVEL": None}
        buffer().clear()
        response = client.get("/signal/sampled/")
        assert response.status_code == 200
        assert ("X-Signaltrace-Id" in response.headers) is traced
        assert len(buffer().traces()) == (1 if traced else 0)

    @pytest.mark.parametrize("value", [-0.1, 1.5, "half"])
    def test_bad_sample_rate(self, settings, value):
        from signaltrace.checks import check_settings

        settings.SIGNALTRACE = {"SAMPLE_RATE": value}
        (error,) = check_settings()
        assert error.id == "signaltrace.E002"
        assert "must be a number from 0 to 1" in error.msg
