"""The middleware under real servers: dropped streams, settings errors, a missing app.

Servers differ from the test client in what they skip: one may drop a
streaming response without closing it, none run the system checks, and a
project may list the middleware without the app.
"""

from __future__ import annotations

import gc
import html
import logging
import threading
from contextlib import contextmanager

import pytest
from django.http import HttpResponse, StreamingHttpResponse
from django.test import RequestFactory

import signaltrace
from signaltrace import context
from signaltrace.context import CURSOR
from signaltrace.middleware import SignalTraceMiddleware
from signaltrace.sinks.memory import buffer

BAD_RATE = (
    "signaltrace: settings error, requests are not traced until it is fixed: "
    "SIGNALTRACE['SAMPLE_RATE'] must be a number from 0 to 1, got int: 2."
)


@pytest.fixture(autouse=True)
def _request_tracing(settings):
    """Traces shown and kept, an empty buffer."""
    settings.DEBUG = True
    settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
    buffer().clear()
    yield
    buffer().clear()


def streaming_view(seen):
    """A view returning a streaming response; ``seen`` gets each request's trace."""

    def view(request):
        seen.append(signaltrace.current_trace())
        return StreamingHttpResponse(iter([b"a", b"b"]))

    return view


def plain_view(request):
    return HttpResponse("ok")


def get(handler, path="/stream/"):
    return handler(RequestFactory().get(path))


@contextmanager
def collector_off():
    """No automatic collection: only the test's own gc.collect() runs finalizers."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def open_captures():
    """How many captures are open in the process (``signaltrace.context.CAPTURING``)."""
    return context.CAPTURING


def signaltrace_records(caplog):
    return [r for r in caplog.records if r.name == "signaltrace"]


@pytest.mark.django_db  # closing a response sends request_finished
class TestDroppedResponses:
    def test_never_closed_responses_end_their_captures(self):
        """50 streams a server never closes: once collected, no capture is left open."""
        seen = []
        handler = SignalTraceMiddleware(streaming_view(seen))
        before = open_captures()
        responses = [get(handler) for _ in range(50)]
        assert open_captures() == before + 50
        assert len(seen) == 50
        assert not any(trace.closed for trace in seen)
        del responses
        gc.collect()
        assert open_captures() == before
        assert all(trace.closed for trace in seen)
        # Closed where the collector ran: not handed to the sinks.
        assert len(buffer()) == 0
        assert CURSOR.get() is None

    def test_through_the_test_client(self, client):
        """The test client's responses sit in reference cycles: the collector frees them."""
        before = open_captures()
        with collector_off():
            for _ in range(50):
                assert client.get("/stream/").streaming
            assert open_captures() == before + 50
            gc.collect()
        assert open_captures() == before

    def test_collected_in_another_thread(self):
        """A stream dropped by one thread and collected in another still closes there."""
        seen = []
        handler = SignalTraceMiddleware(streaming_view(seen))
        before = open_captures()
        kept = []
        with collector_off():
            worker = threading.Thread(target=lambda: kept.append(get(handler)))
            worker.start()
            worker.join()
            (response,) = kept
            response.cycle = response  # only the collector can free it now
            del response
            kept.clear()
            assert open_captures() == before + 1

            def collect():
                gc.collect()

            collector = threading.Thread(target=collect)
            collector.start()
            collector.join()
        assert open_captures() == before
        assert seen[0].closed
        assert CURSOR.get() is None

    def test_closed_response_closes_once(self):
        """Closing ends the trace; collecting the response later changes nothing."""
        seen = []
        handler = SignalTraceMiddleware(streaming_view(seen))
        before = open_captures()
        response = get(handler)
        response.close()
        assert open_captures() == before
        assert seen[0].closed
        assert len(buffer()) == 1
        del response
        gc.collect()
        assert open_captures() == before  # not decremented twice
        assert len(buffer()) == 1

    def test_read_to_the_end_then_dropped(self):
        seen = []
        handler = SignalTraceMiddleware(streaming_view(seen))
        before = open_captures()
        response = get(handler)
        assert b"".join(response) == b"ab"
        assert open_captures() == before
        del response
        gc.collect()
        assert open_captures() == before
        assert len(buffer()) == 1

    def test_collected_inside_signaltrace_waits_for_the_next_request(self):
        """Collected while signaltrace's own code runs (a lock may be held): closed later.

        Streaming responses always sit in a reference cycle (Django's iterator holds
        the response's make_bytes), so the collector frees them, wherever it runs.
        Here it runs from signaltrace's stream wrapper: the content is a C iterator
        calling gc.collect(). Closing there could take a lock the interrupted frame
        holds, so the next request through the middleware closes the dropped stream.
        """
        seen = []
        dropping = SignalTraceMiddleware(streaming_view(seen))
        collecting = SignalTraceMiddleware(
            lambda request: StreamingHttpResponse(map(gc.collect, [2]))
        )
        before = open_captures()
        with collector_off():
            dropped = get(dropping)
            del dropped
            assert open_captures() == before + 1
            response = get(collecting)
            assert int(b"".join(response)) > 0  # collected the dropped stream, inside
            assert open_captures() == before + 1  # left for the next request
            assert not seen[0].closed
            get(SignalTraceMiddleware(plain_view), "/plain/")
        assert open_captures() == before
        assert seen[0].closed

    def test_failure_while_closing_is_contained(self, caplog, monkeypatch):
        """The finalizer never raises: a failure is logged like any internal error."""
        monkeypatch.setattr(context, "_logged", set())
        seen = []
        before = open_captures()
        response = get(SignalTraceMiddleware(streaming_view(seen)))

        def boom():
            raise RuntimeError("close broke")

        seen[0].close = boom
        del response
        gc.collect()
        assert open_captures() == before  # counted down before the trace's close()
        assert "internal error in middleware abandoned stream" in caplog.text
        assert "close broke" in caplog.text


class TestSettingsErrors:
    """Servers run no system checks: the middleware reports settings errors itself."""

    def test_logged_once_naming_the_key(self, client, settings, caplog):
        signaltrace.uninstall()  # as ready() leaves it with bad settings
        settings.SIGNALTRACE = {"ENABLED": True, "SAMPLE_RATE": 2}
        with caplog.at_level(logging.INFO, logger="signaltrace"):
            for _ in range(3):
                response = client.get("/signal/m/")
        assert response.status_code == 200
        assert "X-Signaltrace-Id" not in response.headers
        assert len(buffer()) == 0
        records = signaltrace_records(caplog)
        assert [(r.levelname, r.getMessage()) for r in records] == [("ERROR", BAD_RATE)]
        assert "internal error" not in caplog.text

    def test_logged_when_the_middleware_starts(self, settings, caplog):
        """At start-up, before any request; every error, each with its hint."""
        settings.SIGNALTRACE = {"SAMPLE_RATE": 2, "BUFER_SIZE": 5}
        SignalTraceMiddleware(plain_view)
        SignalTraceMiddleware(plain_view)
        messages = [r.getMessage() for r in signaltrace_records(caplog)]
        assert messages == [
            BAD_RATE,
            "signaltrace: settings error, requests are not traced until it is fixed: "
            "SIGNALTRACE['BUFER_SIZE'] is not a known setting. Did you mean 'BUFFER_SIZE'?",
        ]

    def test_not_traced_even_with_the_hook_installed(self, settings, caplog):
        seen = []
        settings.SIGNALTRACE = {"ENABLED": True, "SAMPLE_RATE": 2}
        response = get(SignalTraceMiddleware(streaming_view(seen)))
        assert seen == [None]
        assert "X-Signaltrace-Id" not in response.headers
        assert [r.getMessage() for r in signaltrace_records(caplog)] == [BAD_RATE]

    def test_fixed_settings_trace_again(self, settings, caplog):
        settings.SIGNALTRACE = {"ENABLED": True, "SAMPLE_RATE": 2}
        handler = SignalTraceMiddleware(plain_view)
        assert "X-Signaltrace-Id" not in get(handler, "/plain/").headers
        settings.SIGNALTRACE = {"ENABLED": True}
        assert "X-Signaltrace-Id" in get(handler, "/plain/").headers
        # A new dict with the same error is reported again.
        settings.SIGNALTRACE = {"ENABLED": True, "SAMPLE_RATE": 2}
        get(handler, "/plain/")
        assert [r.getMessage() for r in signaltrace_records(caplog)] == [BAD_RATE, BAD_RATE]

    def test_failing_validation_is_contained(self, settings, caplog, monkeypatch):
        """If reading the setting fails, the request is traced as if it had no errors."""
        monkeypatch.setattr(context, "_logged", set())

        class Exploding(dict):
            def items(self):
                raise RuntimeError("items broke")

        settings.SIGNALTRACE = Exploding(ENABLED=True, LOG_LEVEL=None)
        response = get(SignalTraceMiddleware(plain_view), "/plain/")
        assert "X-Signaltrace-Id" in response.headers
        assert "internal error in settings validation" in caplog.text

    def test_viewer_banner(self, client, settings):
        """The request list says why nothing is recorded."""
        settings.SIGNALTRACE = {"ENABLED": True, "SAMPLE_RATE": 2, "BUFER_SIZE": 5}
        client.get("/signal/m/")
        response = client.get("/__signaltrace__/")
        assert response.status_code == 200
        page = html.unescape(response.content.decode())
        assert 'id="st-settings-errors"' in page
        assert (
            "Requests are not being recorded: the <code>SIGNALTRACE</code> setting has 2 errors"
        ) in page
        assert (
            "<li>SIGNALTRACE['SAMPLE_RATE'] must be a number from 0 to 1, got int: 2.</li>" in page
        )
        assert "Did you mean 'BUFFER_SIZE'?" in page
        assert "0 requests kept" in page

    def test_no_banner_without_errors(self, client):
        response = client.get("/__signaltrace__/")
        assert response.status_code == 200
        assert b"st-settings-errors" not in response.content


class TestWithoutTheApp:
    @pytest.fixture
    def without_app(self, settings):
        settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != "signaltrace"]

    def test_warned_once(self, without_app, caplog):
        SignalTraceMiddleware(plain_view)
        SignalTraceMiddleware(plain_view)
        (record,) = signaltrace_records(caplog)
        assert record.levelname == "WARNING"
        message = record.getMessage()
        assert message.startswith(
            "signaltrace: signaltrace.middleware.SignalTraceMiddleware is in MIDDLEWARE but "
            '"signaltrace" is not in INSTALLED_APPS. Requests are still traced'
        )
        assert "signaltrace_receivers" in message
        assert message.endswith('Add "signaltrace" to INSTALLED_APPS.')

    @pytest.mark.django_db
    def test_traces_and_the_viewer_works(self, without_app, client):
        """Tracing needs no app; nor does the viewer, which loads its own templates."""
        response = client.get("/signal/m/")
        assert "X-Signaltrace-Id" in response.headers
        response = client.get("/__signaltrace__/")
        assert response.status_code == 200
        assert b"1 request kept" in response.content

    def test_installed_is_quiet(self, settings, caplog):
        settings.INSTALLED_APPS = list(settings.INSTALLED_APPS)  # checked afresh
        SignalTraceMiddleware(plain_view)
        assert signaltrace_records(caplog) == []
