"""signaltrace's own blinker signals, and sinks configured by dotted path."""

from __future__ import annotations

import asyncio
import http.server
import json
import queue
import threading
from typing import ClassVar

import blinker
import pytest
from django.test import AsyncClient

import signaltrace
from signaltrace import context, signals, sinks
from signaltrace.signals import receiver_failed, send_finished, slow_receiver, trace_finished
from signaltrace.sinks.memory import buffer
from tests import chat_alerts
from tests.testapp.views import view_signal

SIGNALS = (trace_finished, receiver_failed, slow_receiver)


class Heard:
    """Receivers for all three signals, remembering what they were sent, in order."""

    def __init__(self):
        self.events = []

    def finished(self, trace, **kwargs):
        self.events.append(("trace_finished", trace, kwargs))

    def failed(self, trace, **kwargs):
        self.events.append(("receiver_failed", trace, kwargs))

    def slow(self, trace, **kwargs):
        self.events.append(("slow_receiver", trace, kwargs))

    def names(self):
        assert sinks.flush()  # announcements run on the sink worker
        return [name for name, _trace, _kwargs in self.events]

    def of(self, name):
        assert sinks.flush()
        return [(trace, kwargs) for event, trace, kwargs in self.events if event == name]


@pytest.fixture(autouse=True)
def _request_tracing(settings, monkeypatch):
    settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
    monkeypatch.setattr(context, "_logged", set())
    buffer().clear()
    yield
    assert sinks.flush()  # nothing the worker still holds reaches the next test
    buffer().clear()
    for signal in SIGNALS:
        assert not signal.receivers, f"a test left a receiver connected to {signal.name}"


@pytest.fixture
def heard():
    heard = Heard()
    trace_finished.connect(heard.finished)
    receiver_failed.connect(heard.failed)
    slow_receiver.connect(heard.slow)
    yield heard
    trace_finished.disconnect(heard.finished)
    receiver_failed.disconnect(heard.failed)
    slow_receiver.disconnect(heard.slow)


def run(coro):
    return asyncio.run(coro)


class TestAnnouncements:
    def test_trace_finished_once_per_request(self, client, heard):
        """Each finished request trace is sent once, closed, after the sinks kept it."""
        client.get("/signal/a/")
        client.get("/signal/b/")
        finished = heard.of("trace_finished")
        assert [trace for trace, _kwargs in finished] == buffer().traces()[::-1]
        assert [kwargs for _trace, kwargs in finished] == [{}, {}]
        assert all(trace.closed for trace, _kwargs in finished)
        assert heard.names() == ["trace_finished", "trace_finished"]

    def test_async_request(self, heard):
        assert run(AsyncClient().get("/async-signal/a1/")).status_code == 200
        ((trace, _kwargs),) = heard.of("trace_finished")
        assert trace.meta["async"] is True

    def test_streaming_request(self, client, heard):
        """A streamed response is announced once, when its content ends."""
        response = client.get("/stream/")
        assert heard.names() == []
        assert b"".join(response.streaming_content) == b"0\n1\n2\n"
        ((trace, _kwargs),) = heard.of("trace_finished")
        assert len(trace.dispatches) == 6

    def test_receiver_failed_includes_swallowed(self, client, heard):
        """One receiver_failed per failed call: swallowed by send_robust() or not."""
        client.get("/robust/")
        ((trace, kwargs),) = heard.of("receiver_failed")
        call = kwargs["call"]
        assert call.receiver_name == "tests.testapp.views.fails"
        assert call.swallowed
        assert call in trace.calls
        client.raise_request_exception = False
        assert client.get("/raising/").status_code == 500
        (_first, (_trace, kwargs)) = heard.of("receiver_failed")
        assert not kwargs["call"].swallowed
        assert heard.names() == [
            "receiver_failed",
            "trace_finished",
            "receiver_failed",
            "trace_finished",
        ]

    def test_slow_receiver(self, client, heard, settings):
        """One slow_receiver per call of SLOW_MS or more; nested calls count too."""
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "SLOW_MS": 5}
        client.get("/signal/m/", {"pause": "0.01"})
        slow = heard.of("slow_receiver")
        assert [kwargs["call"].receiver_name for _trace, kwargs in slow] == [
            "tests.testapp.views.announce",
            "tests.testapp.views.record_marker",
        ]
        assert {kwargs["slow_ms"] for _trace, kwargs in slow} == {5}
        heard.events.clear()
        client.get("/signal/m/")
        assert heard.names() == ["trace_finished"]

    def test_order(self, client, heard, settings):
        """Failures, then slow calls, then trace_finished."""
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "SLOW_MS": 1e-6}
        client.get("/robust/")
        assert heard.names() == ["receiver_failed", "slow_receiver", "trace_finished"]

    def test_slow_ms_zero(self, client, heard, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "SLOW_MS": 0}
        client.get("/signal/m/", {"pause": "0.01"})
        assert heard.names() == ["trace_finished"]

    def test_only_failed_connected(self, client):
        """Each signal is announced on its own: failures without trace_finished receivers."""
        failures = []

        def failed(trace, call, **kwargs):
            failures.append(call.receiver_name)

        receiver_failed.connect(failed)
        try:
            client.get("/robust/")
            client.get("/signal/m/")
            assert sinks.flush()  # announced by the worker, while still connected
        finally:
            receiver_failed.disconnect(failed)
        assert failures == ["tests.testapp.views.fails"]

    def test_only_slow_connected(self, client, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "SLOW_MS": 1e-6}
        slow = []

        def on_slow(trace, call, **kwargs):
            slow.append(call.receiver_name)

        slow_receiver.connect(on_slow)
        try:
            client.get("/robust/")
            assert sinks.flush()
        finally:
            slow_receiver.disconnect(on_slow)
        assert slow == ["tests.testapp.views.fails"]

    def test_emit_reads_the_settings(self, heard):
        """sinks.emit() without a config reads the current settings."""
        with signaltrace.capture() as trace:
            pass
        sinks.emit(trace)
        assert heard.of("trace_finished") == [(trace, {})]
        assert buffer().traces() == [trace]

    def test_capture_blocks_are_not_announced(self, heard):
        """Traces of capture() never reach the sinks, so they are not announced."""
        with signaltrace.capture():
            view_signal.send(sender="test", marker="m")
        assert heard.events == []

    def test_disabled(self, client, heard, settings):
        settings.SIGNALTRACE = {"ENABLED": False}
        client.get("/signal/m/")
        assert heard.events == []

    def test_muted(self, client, heard):
        """blinker's muted() silences a signal, as for any blinker signal (while the
        worker announces: flush inside the block)."""
        with trace_finished.muted():
            client.get("/robust/")
            assert heard.names() == ["receiver_failed"]
        assert heard.names() == ["receiver_failed"]

    def test_sender_filter(self, client):
        """A receiver connected for one sender hears only that trace (blinker semantics)."""
        with signaltrace.capture() as trace:
            pass
        heard = []

        def hear(sender, **kwargs):
            heard.append(sender)

        trace_finished.connect(hear, sender=trace)
        try:
            client.get("/signal/m/")
            assert sinks.flush()
            send_finished(trace, 0)
        finally:
            trace_finished.disconnect(hear, sender=trace)
        assert heard == [trace]


class TestUntraced:
    def test_receivers_never_appear_in_a_trace(self, client, heard, settings):
        """Neither the request's trace nor any other capture records these signals."""
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "SLOW_MS": 1e-6}
        with signaltrace.capture(all_threads=True) as outer:
            client.get("/robust/")
            run(AsyncClient().get("/async-signal/a/"))
        assert heard.names().count("trace_finished") == 2
        for trace in (outer, *buffer().traces()):
            assert not {d.signal_name for d in trace.dispatches} & {s.name for s in SIGNALS}
            assert not [c for c in trace.calls if c.receiver_name.startswith("tests.test_blinker")]
            assert not [d for d in trace.dispatches if d.blinker]

    def test_sending_directly_is_untraced(self):
        """send() and send_async() are blinker's, on the subclass: the hook never sees them."""
        replies = []

        def sync_reply(sender, **kwargs):
            replies.append(("sync", sender, kwargs))
            return "sync"

        async def async_reply(sender, **kwargs):
            replies.append(("async", sender, kwargs))
            return "async"

        trace_finished.connect(sync_reply)
        try:
            with signaltrace.capture() as trace:
                assert trace_finished.send("x", a=1) == [(sync_reply, "sync")]
                assert run(trace_finished.send_async("y", b=2, _sync_wrapper=_to_async)) == [
                    (sync_reply, "sync")
                ]
        finally:
            trace_finished.disconnect(sync_reply)
        assert trace.dispatches == []
        assert replies == [("sync", "x", {"a": 1}), ("sync", "y", {"b": 2})]
        assert type(trace_finished).send is not blinker.Signal.send

        slow_receiver.connect(async_reply)
        try:
            with signaltrace.capture() as trace:
                assert run(slow_receiver.send_async("z")) == [(async_reply, "async")]
                results = slow_receiver.send("w", _async_wrapper=_to_sync)
        finally:
            slow_receiver.disconnect(async_reply)
        assert results == [(async_reply, "async")]
        assert trace.dispatches == []

    def test_blinker_rules(self):
        """Muted sends nothing; a wrong kind of receiver without a wrapper is refused."""

        async def async_reply(sender, **kwargs):
            return "async"  # pragma: no cover - never called

        def sync_reply(sender, **kwargs):
            raise ValueError("propagates, as in blinker")

        receiver_failed.connect(async_reply)
        try:
            with pytest.raises(RuntimeError, match="Cannot send to a coroutine function"):
                receiver_failed.send("x")
            with receiver_failed.muted():
                assert receiver_failed.send("x") == []
                assert run(receiver_failed.send_async("x")) == []
        finally:
            receiver_failed.disconnect(async_reply)
        receiver_failed.connect(sync_reply)
        try:
            with pytest.raises(RuntimeError, match="Cannot send to a non-coroutine function"):
                run(receiver_failed.send_async("x"))
            with pytest.raises(ValueError, match="propagates"):
                receiver_failed.send("x")
        finally:
            receiver_failed.disconnect(sync_reply)

    def test_other_blinker_signals_are_traced(self):
        """The hook is on blinker.Signal: an ordinary named signal is recorded."""
        ordinary = blinker.Namespace().signal("ordinary")

        def listener(sender, **kwargs):
            pass

        ordinary.connect(listener)
        with signaltrace.capture() as trace:
            ordinary.send("x")
        assert [d.method for d in trace.dispatches] == ["blinker.send"]

    def test_private_namespace(self):
        """Named signals of their own namespace, not blinker's default one."""
        assert [signal.name for signal in SIGNALS] == [
            "trace_finished",
            "receiver_failed",
            "slow_receiver",
        ]
        for signal in SIGNALS:
            assert isinstance(signal, blinker.NamedSignal)
            assert blinker.signal(signal.name) is not signal
            assert signals._namespace[signal.name] is signal
            assert signal.__doc__

    def test_nothing_connected_costs_nothing(self):
        """With no receiver, announcing does not even look at the trace."""
        send_finished(object(), 50)  # type: ignore[arg-type]
        with signaltrace.capture() as trace:
            view_signal.send(sender="test", marker="m")
        config = {**signaltrace.conf.get_config(), "BUFFER_SIZE": 0, "LOG_LEVEL": None}
        sinks.emit(trace, config)
        assert trace._built is None  # the records were never materialised


def _to_async(func):
    async def call(*args, **kwargs):
        return func(*args, **kwargs)

    return call


def _to_sync(func):
    def call(*args, **kwargs):
        return asyncio.run(func(*args, **kwargs))

    return call


class TestContainment:
    def test_failing_receiver(self, client, heard, caplog):
        """A receiver that raises is logged once; the request and other receivers go on."""

        def broken(trace, **kwargs):
            raise RuntimeError("chat is down")

        trace_finished.connect(broken)
        try:
            assert client.get("/signal/a/").status_code == 200
            assert client.get("/signal/b/").status_code == 200
            assert sinks.flush()
        finally:
            trace_finished.disconnect(broken)
        assert heard.names() == ["trace_finished", "trace_finished"]
        assert caplog.text.count("internal error in trace_finished receiver tests.") == 1
        assert "chat is down" in caplog.text

    def test_async_receiver_is_refused(self, client, heard, caplog):
        """Receivers are called synchronously: an async one is logged and skipped."""

        async def async_receiver(trace, **kwargs):
            pass  # pragma: no cover - never called

        trace_finished.connect(async_receiver)
        try:
            assert client.get("/signal/a/").status_code == 200
            assert sinks.flush()
        finally:
            trace_finished.disconnect(async_receiver)
        assert "connect a plain function" in caplog.text
        assert heard.names() == ["trace_finished"]

    def test_failure_while_announcing(self, client, heard, monkeypatch, caplog):
        def boom(trace, slow_ms):
            raise RuntimeError("no announcements today")

        monkeypatch.setattr(sinks, "send_finished", boom)
        assert client.get("/signal/a/").status_code == 200
        assert sinks.flush()
        assert len(buffer()) == 1
        assert "internal error in signaltrace.signals" in caplog.text


class ListSink:
    received: ClassVar[list[signaltrace.Trace]] = []

    def emit(self, trace):
        ListSink.received.append(trace)


class BrokenSink:
    calls: ClassVar[int] = 0

    def emit(self, trace):
        BrokenSink.calls += 1
        raise RuntimeError("sink broke")


list_sink = ListSink()


class TestSinksSetting:
    @pytest.fixture(autouse=True)
    def _sinks(self, settings):
        ListSink.received = []
        BrokenSink.calls = 0
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "LOG_LEVEL": None,
            "SINKS": [
                "tests.test_blinker_hooks.BrokenSink",
                "tests.test_blinker_hooks.ListSink",
                "tests.test_blinker_hooks.list_sink",
            ],
        }

    def test_dotted_paths_in_order(self, client):
        """Classes are instantiated once, instances used as they are, after the built-ins."""
        client.get("/signal/a/")
        assert sinks.flush()
        names = [name for name, _sink in sinks.active_sinks()]
        assert names == [
            "memory",
            "tests.test_blinker_hooks.BrokenSink",
            "tests.test_blinker_hooks.ListSink",
            "tests.test_blinker_hooks.list_sink",
        ]
        assert dict(sinks.active_sinks())["tests.test_blinker_hooks.list_sink"] is list_sink
        assert ListSink.received == [buffer().traces()[0]] * 2

    def test_failing_sink_is_logged_once(self, client, heard, caplog):
        """A sink that raises never affects a request (sync, async, streamed): logged once."""
        assert client.get("/signal/a/").content == b"a"
        assert run(AsyncClient().get("/async-signal/b/")).content == b"b"
        response = client.get("/stream/")
        assert b"".join(response.streaming_content) == b"0\n1\n2\n"
        assert sinks.flush()
        assert BrokenSink.calls == 3
        assert len(ListSink.received) == 6
        assert heard.names() == ["trace_finished"] * 3
        assert caplog.text.count("internal error in sink tests.test_blinker_hooks.BrokenSink") == 1


class _Webhook(http.server.BaseHTTPRequestHandler):
    received: queue.Queue[dict[str, object]]

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        self.received.put(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format, *args):
        pass


@pytest.fixture
def webhook(settings):
    """A local stand-in for the chat service; the example posts here."""
    received: queue.Queue[dict[str, object]] = queue.Queue()
    handler = type("Handler", (_Webhook,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.CHAT_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/hooks/signaltrace"
    yield received
    # Let the example's posting thread finish (if it still runs) before the server goes.
    _joined = [worker.join(5) for worker in threading.enumerate() if worker.name == "chat-alert"]
    server.shutdown()
    server.server_close()
    thread.join(5)


class TestChatExample:
    def test_posts_each_failure(self, client, webhook):
        """The documented example posts one message per failed receiver call."""
        receiver_failed.connect(chat_alerts.post_to_chat)
        try:
            client.get("/robust/")
            message = webhook.get(timeout=10)
            client.get("/signal/m/")
            assert sinks.flush()
        finally:
            receiver_failed.disconnect(chat_alerts.post_to_chat)
        (trace, _ok) = buffer().traces()[::-1]
        assert message == {
            "text": "tests.testapp.views.fails raised ValueError: receiver failed <b>loudly</b>"
            " (swallowed by send_robust)\n"
            "signal error_signal from robust_view, during GET /robust/"
            f" (trace {trace.meta['id']})"
        }
        assert webhook.empty()
