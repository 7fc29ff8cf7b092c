"""Sinks off the request path: the background worker, its queue, budget and flush (issue 7).

The requests here are real (``django.test.Client`` and ``AsyncClient`` through
``SignalTraceMiddleware``), and so are the sinks, configured by dotted path in
``SINKS``. The time bounds are behavioural, with a wide margin: a sink that
sleeps 1 s must not make a request take anywhere near 1 s.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import ClassVar

import pytest
import structlog
from django.test import AsyncClient, Client, override_settings

import signaltrace
from signaltrace import context, sinks
from signaltrace.signals import trace_finished
from signaltrace.sinks.memory import buffer

#: A request whose sink sleeps SLEEP seconds must answer in less than this.
FAST = 0.5
SLEEP = 1.0
WORKER = "signaltrace-sinks"
ROOT = Path(__file__).resolve().parent.parent


class SlowSink:
    """Sleeps SLEEP seconds per trace, then remembers it."""

    received: ClassVar[list[signaltrace.Trace]] = []

    def emit(self, trace):
        time.sleep(SLEEP)
        SlowSink.received.append(trace)


class ListSink:
    received: ClassVar[list[signaltrace.Trace]] = []
    threads: ClassVar[list[str]] = []

    def emit(self, trace):
        ListSink.received.append(trace)
        ListSink.threads.append(threading.current_thread().name)


class BrokenSink:
    calls: ClassVar[int] = 0

    def emit(self, trace):
        BrokenSink.calls += 1
        raise RuntimeError("sink broke")


class GateSink:
    """Blocks in emit() until ``gate`` is set; ``entered`` says it is blocked."""

    entered = threading.Event()
    gate = threading.Event()
    received: ClassVar[list[signaltrace.Trace]] = []

    def emit(self, trace):
        GateSink.entered.set()
        GateSink.gate.wait(10)
        GateSink.received.append(trace)


class OverrunSink:
    """Takes PAUSE seconds on its first trace only."""

    PAUSE = 0.2
    received: ClassVar[list[signaltrace.Trace]] = []

    def emit(self, trace):
        if not OverrunSink.received:
            time.sleep(OverrunSink.PAUSE)
        OverrunSink.received.append(trace)


def tracing(*paths, **extra):
    return override_settings(
        SIGNALTRACE={"ENABLED": True, "LOG_LEVEL": None, "SINKS": list(paths), **extra}
    )


@pytest.fixture(autouse=True)
def _clean(settings, monkeypatch):
    settings.DEBUG = True
    settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
    monkeypatch.setattr(context, "_logged", set())
    for sink in (SlowSink, ListSink, GateSink, OverrunSink):
        sink.received = []
    ListSink.threads = []
    BrokenSink.calls = 0
    GateSink.entered.clear()
    GateSink.gate.clear()
    buffer().clear()
    Client().get("/signal/warm/")  # URL resolver, imports: not part of any measurement
    assert sinks.flush(10)
    yield
    GateSink.gate.set()
    assert sinks.flush(10)
    buffer().clear()


def timed_get(client, path):
    start = time.perf_counter()
    response = client.get(path)
    return response, time.perf_counter() - start


def delta(before, key):
    return signaltrace.stats()[key] - before[key]


class TestOffTheRequestPath:
    def test_slow_sink_does_not_delay_the_response(self):
        """The issue's scenario under WSGI: the response does not wait for the sink."""
        with tracing("tests.test_sink_worker.SlowSink", SINK_TIMEOUT_MS=None):
            response, elapsed = timed_get(Client(), "/signal/a/")
            assert response.status_code == 200
            assert elapsed < FAST, f"the request took {elapsed:.2f} s"
            assert SlowSink.received == []  # still sleeping, on the worker
            assert sinks.flush(10)
        assert SlowSink.received == buffer().traces()[:1]

    def test_slow_sink_does_not_block_the_event_loop(self):
        """Under ASGI, two concurrent requests both answer quickly: no sink runs on the loop."""

        async def both():
            client = AsyncClient()

            async def one(path):
                start = time.perf_counter()
                response = await client.get(path)
                return response.status_code, time.perf_counter() - start

            start = time.perf_counter()
            results = await asyncio.gather(one("/async-signal/a/"), one("/async-signal/b/"))
            return results, time.perf_counter() - start

        with tracing("tests.test_sink_worker.SlowSink", SINK_TIMEOUT_MS=None):
            results, total = asyncio.run(both())
            assert [status for status, _elapsed in results] == [200, 200]
            assert total < FAST, f"two concurrent requests took {total:.2f} s ({results})"
            assert sinks.flush(10)
        assert len(SlowSink.received) == 2

    def test_sinks_and_announcements_run_on_the_worker(self):
        """User sinks and trace_finished receivers run on the worker thread, in order."""
        heard = []

        def finished(trace, **kwargs):
            heard.append((trace, threading.current_thread().name))

        trace_finished.connect(finished)
        try:
            with tracing("tests.test_sink_worker.ListSink"):
                Client().get("/signal/a/")
                asyncio.run(AsyncClient().get("/async-signal/b/"))
                assert sinks.flush(10)
        finally:
            trace_finished.disconnect(finished)
        assert ListSink.threads == [WORKER, WORKER]
        assert heard == [(trace, WORKER) for trace in ListSink.received]
        assert ListSink.received == buffer().traces()[1::-1]  # (not the warm-up request)

    def test_in_request_sinks_stay_in_the_request(self):
        """The ring buffer is filled before the response is returned (the viewer reads it)."""
        with tracing("tests.test_sink_worker.GateSink"):
            response = Client().get("/signal/a/")
            assert buffer().get(response.headers["X-Signaltrace-Id"]) is not None
            GateSink.gate.set()

    def test_sink_keeps_the_request_context(self):
        """Sinks run in a copy of the request's context: contextvars bound there are seen."""
        seen = []

        class ContextSink:
            def emit(self, trace):
                seen.append(structlog.contextvars.get_contextvars().get("request_id"))

        sink = ContextSink()
        with signaltrace.capture() as trace:
            pass
        structlog.contextvars.bind_contextvars(request_id="r-1")
        try:
            config = {**signaltrace.conf.get_config(), "SINKS": ()}
            sinks._enqueue(trace, config, (("context", sink),), announce=False)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        assert sinks.flush(10)
        assert seen == ["r-1"]


class TestQueue:
    def test_full_queue_drops_and_counts(self):
        """With the worker stuck, SINK_QUEUE_SIZE traces wait and the rest are dropped."""
        before = signaltrace.stats()
        client = Client()
        with tracing("tests.test_sink_worker.GateSink", SINK_QUEUE_SIZE=2):
            client.get("/signal/1/")
            assert GateSink.entered.wait(10)  # the worker holds trace 1
            for marker in "2345":
                assert client.get(f"/signal/{marker}/").status_code == 200
            assert signaltrace.stats()["queued"] == 2
            assert delta(before, "queue_dropped") == 2
            GateSink.gate.set()
            assert sinks.flush(10)
        assert signaltrace.stats()["queued"] == 0
        assert [trace.meta["path"] for trace in GateSink.received] == [
            "/signal/1/",
            "/signal/2/",
            "/signal/3/",
        ]
        assert len(buffer()) == 6  # the in-request ring buffer kept every request

    def test_flush_drains(self):
        client = Client()
        with tracing("tests.test_sink_worker.ListSink"):
            for marker in "abcde":
                client.get(f"/signal/{marker}/")
            assert sinks.flush(10)
            assert [trace.meta["path"] for trace in ListSink.received] == [
                f"/signal/{marker}/" for marker in "abcde"
            ]
            assert signaltrace.stats()["queued"] == 0

    def test_flush_times_out(self):
        """flush() returns False when the queue is not drained in time."""
        with tracing("tests.test_sink_worker.GateSink"):
            Client().get("/signal/a/")
            assert GateSink.entered.wait(10)
            start = time.perf_counter()
            assert sinks.flush(timeout=0.1) is False
            assert time.perf_counter() - start < FAST
            GateSink.gate.set()
            assert sinks.flush(10) is True

    def test_flush_from_a_sink_does_not_deadlock(self):
        results = []

        class Flusher:
            def emit(self, trace):
                results.append(sinks.flush(timeout=5))

        with signaltrace.capture() as trace:
            pass
        sinks._enqueue(trace, signaltrace.conf.get_config(), (("f", Flusher()),), announce=False)
        assert sinks.flush(10)
        assert results == [False]

    def test_nothing_to_do_queues_nothing(self):
        """Without worker sinks or receivers, a trace is never queued."""
        with tracing():
            Client().get("/signal/a/")
            assert signaltrace.stats()["queued"] == 0
            assert sinks.flush(0)


def test_worker_starts_on_first_use():
    """No thread until a trace has a worker sink (or a receiver) to go to."""
    code = (
        "import threading, django; django.setup()\n"
        "from django.test import Client\n"
        "from django.test.utils import override_settings\n"
        "from signaltrace import sinks\n"
        "def worker(): return [t for t in threading.enumerate() if t.name == sinks.WORKER_NAME]\n"
        "assert Client().get('/signal/m/').status_code == 200\n"
        "assert worker() == [], 'started without a worker sink'\n"
        "with override_settings(SIGNALTRACE={'ENABLED': True, 'CONSOLE': True}):\n"
        "    assert Client().get('/signal/m/').status_code == 200\n"
        "    assert sinks.flush(10)\n"
        "assert len(worker()) == 1 and worker()[0].daemon\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


class TestContainment:
    def test_raising_sink_is_counted_and_never_reaches_the_app(self, caplog):
        before = signaltrace.stats()
        with tracing("tests.test_sink_worker.BrokenSink", "tests.test_sink_worker.ListSink"):
            assert Client().get("/signal/a/").content == b"a"
            assert asyncio.run(AsyncClient().get("/async-signal/b/")).status_code == 200
            assert sinks.flush(10)
        assert BrokenSink.calls == 2
        assert len(ListSink.received) == 2
        assert delta(before, "sink_failures") == 2
        assert delta(before, "internal_failures") == 2
        assert caplog.text.count("internal error in sink tests.test_sink_worker.BrokenSink") == 1

    def test_raising_receiver_never_reaches_the_app(self, caplog):
        def broken(trace, **kwargs):
            raise RuntimeError("receiver broke")

        trace_finished.connect(broken)
        try:
            assert Client().get("/signal/a/").status_code == 200
            assert sinks.flush(10)
        finally:
            trace_finished.disconnect(broken)
        assert "receiver broke" in caplog.text

    def test_worker_that_cannot_start_drops_and_counts(self, monkeypatch, caplog):
        """If no thread can be started, the trace is dropped and counted; the request goes on."""

        def refuse(self):
            raise RuntimeError("can't start new thread")

        monkeypatch.setattr(sinks, "_worker", sinks._Worker())
        monkeypatch.setattr(threading.Thread, "start", refuse)
        before = signaltrace.stats()
        with tracing("tests.test_sink_worker.ListSink"):
            assert Client().get("/signal/a/").status_code == 200
        assert delta(before, "queue_dropped") == 1
        assert "internal error in sink worker" in caplog.text

    def test_worker_survives_base_exceptions(self):
        """A sink that calls sys.exit() does not end the worker."""

        class Exiting:
            def emit(self, trace):
                raise SystemExit(3)

        with signaltrace.capture() as trace:
            pass
        config = signaltrace.conf.get_config()
        sinks._enqueue(trace, config, (("exit", Exiting()),), announce=False)
        sinks._enqueue(trace, config, (("list", ListSink()),), announce=False)
        assert sinks.flush(10)
        assert ListSink.received == [trace]


class TestBudget:
    def test_overrun_is_counted_logged_once_and_cools_down(self, caplog, monkeypatch):
        """A sink over SINK_TIMEOUT_MS is not interrupted, but then skipped for a while."""
        monkeypatch.setattr(sinks, "COOL_DOWN_S", 1.0)
        before = signaltrace.stats()
        client = Client()
        sinks_ = ("tests.test_sink_worker.OverrunSink", "tests.test_sink_worker.ListSink")
        with tracing(*sinks_, SINK_TIMEOUT_MS=50):
            client.get("/signal/a/")
            assert sinks.flush(10)
            cooling_since = time.monotonic()
            client.get("/signal/b/")
            client.get("/signal/c/")
            assert sinks.flush(10)
            assert time.monotonic() - cooling_since < 1.0  # (else the test proves nothing)
            assert [t.meta["path"] for t in OverrunSink.received] == ["/signal/a/"]
            assert len(ListSink.received) == 3  # the other sinks go on
            assert delta(before, "sink_overruns") == 1
            assert delta(before, "sink_skipped") == 2
            time.sleep(1.1)  # the cool-down is over
            client.get("/signal/d/")
            assert sinks.flush(10)
        assert [t.meta["path"] for t in OverrunSink.received] == ["/signal/a/", "/signal/d/"]
        assert caplog.text.count("sink tests.test_sink_worker.OverrunSink took") == 1
        assert "SINK_TIMEOUT_MS" in caplog.text

    def test_no_budget(self):
        with tracing("tests.test_sink_worker.OverrunSink", SINK_TIMEOUT_MS=None):
            before = signaltrace.stats()
            client = Client()
            client.get("/signal/a/")
            client.get("/signal/b/")
            assert sinks.flush(10)
        assert len(OverrunSink.received) == 2
        assert delta(before, "sink_overruns") == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
class TestFork:
    def test_child_gets_a_fresh_worker(self):
        """A forked child restarts the worker and never re-delivers the parent's queue."""
        with tracing("tests.test_sink_worker.GateSink"):
            Client().get("/signal/parent/")
            assert GateSink.entered.wait(10)
            Client().get("/signal/queued/")  # waits in the parent's queue
            assert signaltrace.stats()["queued"] == 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
                pid = os.fork()
            if pid == 0:  # pragma: no cover - the child reports through its exit code
                code = 1
                try:
                    with signaltrace.capture() as trace:
                        pass
                    queued = signaltrace.stats()["queued"]
                    drained = sinks.flush(2)
                    ListSink.received = []
                    config = signaltrace.conf.get_config()
                    sinks._enqueue(trace, config, (("list", ListSink()),), announce=False)
                    delivered = sinks.flush(5) and ListSink.received == [trace]
                    code = 0 if (queued, drained, delivered) == (0, True, True) else 2
                finally:
                    os._exit(code)
            _pid, status = os.waitpid(pid, 0)
            GateSink.gate.set()
            assert sinks.flush(10)
        assert os.waitstatus_to_exitcode(status) == 0
        assert [t.meta["path"] for t in GateSink.received] == ["/signal/parent/", "/signal/queued/"]
