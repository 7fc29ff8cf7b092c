"""signaltrace's own counters (``signaltrace.stats()``) and the memory a kept trace holds (issue 12)."""

from __future__ import annotations

import gc
import re
import threading
import tracemalloc

import pytest
from django.contrib.auth.models import User
from django.dispatch import Signal
from django.test import override_settings

import signaltrace
from signaltrace import _stats, context, sinks
from signaltrace.sinks.memory import buffer
from signaltrace.summary import summarize

VIEWER = "/__signaltrace__/"

#: The documented worst case (docs/how-to/production.md, "Memory"): a kept
#: request trace holds at most half a kilobyte per recorded event.
BYTES_PER_EVENT = 512


@pytest.fixture(autouse=True)
def _clean(settings, monkeypatch):
    settings.DEBUG = True
    settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
    monkeypatch.setattr(context, "_logged", set())
    buffer().clear()
    yield
    assert sinks.flush(10)
    buffer().clear()


def delta(before, key):
    return signaltrace.stats()[key] - before[key]


class TestStats:
    def test_documented_keys(self):
        """stats() is a fresh dict of ints with exactly the documented keys."""
        stats = signaltrace.stats()
        assert tuple(stats) == _stats.KEYS
        assert all(type(value) is int for value in stats.values())
        assert _stats.KEYS == (
            "traces",
            "dropped_events",
            "internal_failures",
            "sink_failures",
            "sink_overruns",
            "sink_skipped",
            "queue_dropped",
            "store_failures",
            "queued",
            "open_captures",
        )
        stats["traces"] = -1
        assert signaltrace.stats()["traces"] != -1
        for key in _stats.KEYS:
            assert f"``{key}``" in _stats.stats.__doc__

    def test_callable_whatever_was_imported_first(self):
        """``signaltrace.stats`` is the function even though the sinks import its module."""
        import signaltrace._stats  # the module: binding it must not shadow the function

        assert signaltrace.stats is _stats.stats
        assert "stats" in signaltrace.__all__
        assert "stats" in dir(signaltrace)

    def test_open_captures(self):
        outer = signaltrace.stats()["open_captures"]
        with signaltrace.capture():
            assert signaltrace.stats()["open_captures"] == outer + 1
        assert signaltrace.stats()["open_captures"] == outer

    def test_failures_are_counted_each_time_and_logged_once(self, caplog):
        before = signaltrace.stats()
        for _ in range(3):
            context.log_failure("test place", ValueError("nope"))
        context.log_failure("other place", ValueError("nope"))
        assert delta(before, "internal_failures") == 4
        assert caplog.text.count("internal error in test place") == 1
        assert caplog.text.count("internal error in other place") == 1

    def test_failures_from_threads(self):
        before = signaltrace.stats()

        def fail():
            for _ in range(200):
                context.log_failure("threaded place", ValueError("nope"))

        threads = [threading.Thread(target=fail) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert delta(before, "internal_failures") == 800

    def test_request_traces_and_dropped_events(self, client, settings):
        """MAX_EVENTS drops of request traces are summed as each trace reaches the sinks."""
        before = signaltrace.stats()
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "MAX_EVENTS": 2}
        client.get("/signal/a/")
        client.get("/signal/b/")
        (trace, _other) = buffer().traces()
        assert trace.dropped == 2
        assert delta(before, "dropped_events") == 4
        assert delta(before, "traces") == 2

    def test_capture_blocks_are_not_request_traces(self):
        before = signaltrace.stats()
        with signaltrace.capture(max_events=1):
            User(username="ann")
            Signal().send(sender=None)
        assert delta(before, "traces") == 0
        assert delta(before, "dropped_events") == 0

    def test_failing_sink_on_every_request_shows_once(self, client, settings, caplog):
        before = signaltrace.stats()
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "LOG_LEVEL": None,
            "SINKS": ["tests.test_sink_worker.BrokenSink"],
        }
        for marker in "abc":
            assert client.get(f"/signal/{marker}/").status_code == 200
        assert sinks.flush(10)
        assert delta(before, "sink_failures") == 3
        assert caplog.text.count("internal error in sink tests.test_sink_worker.BrokenSink") == 1


class TestFooter:
    FOOTER = re.compile(r'<footer class="st-foot".*?</footer>', re.S)

    def footer(self, html):
        (found,) = self.FOOTER.findall(html)
        return found

    def test_list_and_detail_show_the_counters(self, client):
        response = client.get("/signal/a/")
        context.log_failure("footer test", ValueError("nope"))
        stats = signaltrace.stats()
        for url in (VIEWER, f"{VIEWER}{response.headers['X-Signaltrace-Id']}/"):
            footer = self.footer(client.get(url).content.decode())
            assert f"<dd>{stats['internal_failures']}</dd>" in footer
            for label in (
                "internal failures",
                "events dropped",
                "sink failures",
                "queue drops",
                "open captures",
            ):
                assert label in footer
            assert "st-foot-alert" in footer  # a failure is highlighted


# -- memory ---------------------------------------------------------------------

one_signal = Signal()
five_signal = Signal()


def _r1(sender, **kwargs):
    pass


def _r2(sender, **kwargs):
    pass


def _r3(sender, **kwargs):
    pass


def _r4(sender, **kwargs):
    pass


def _r5(sender, **kwargs):
    pass


one_signal.connect(_r1)
for _receiver in (_r1, _r2, _r3, _r4, _r5):
    five_signal.connect(_receiver)


def _record(signal, dispatches):
    """A closed trace of ``dispatches`` post_save-like sends, as a request records them."""
    with signaltrace.capture(max_events=1_000_000) as trace:
        for pk in range(dispatches):
            user = User(pk=pk, username=f"user{pk}")
            signal.send(
                sender=User,
                instance=user,
                created=True,
                update_fields=None,
                raw=False,
                using="default",
            )
    return trace


def _bytes_per_event(signal, *, read):
    """What one kept trace holds per event, once closed (and read, as the sinks read it)."""
    with override_settings(SIGNALTRACE={"ENABLED": True, "RECORD_ORIGIN": True, "RECORD_DB": True}):
        assert _record(signal, 20).calls  # warm every cache first
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            trace = _record(signal, 2_000)
            if read:
                summarize(trace, 50)
                trace.render()
            gc.collect()
            used = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
    return used / trace.events, trace


class TestMemory:
    @pytest.mark.parametrize("signal", [one_signal, five_signal], ids=["1 receiver", "5 receivers"])
    @pytest.mark.parametrize("read", [True, False], ids=["read", "unread"])
    def test_documented_worst_case(self, signal, read):
        """A kept trace holds at most BYTES_PER_EVENT per event, read or not."""
        per_event, trace = _bytes_per_event(signal, read=read)
        assert trace.events == 2_000 * (1 + len(signal.receivers))
        assert per_event < BYTES_PER_EVENT, f"{per_event:.0f} bytes per event"

    def test_released_trace_reads_the_same(self):
        """Once built, the raw records are dropped; every read still answers in full."""
        trace = _record(five_signal, 10)
        assert len({id(raw) for raw in trace.raw}) == 10  # not read yet: the raw records
        first = (trace.to_dict(), trace.render())
        assert len({id(raw) for raw in trace.raw}) == 1  # read: one shared placeholder
        assert (trace.to_dict(), trace.render()) == first
        assert first[1].count("tests.test_stats._r3") == 10
        assert (len(trace.dispatches), len(trace.calls), len(trace.roots)) == (10, 50, 10)
        assert "dispatches=10 " in repr(trace)
        assert [call.receiver_name for call in trace.find(receiver=_r3)] == [
            "tests.test_stats._r3"
        ] * 10
        assert summarize(trace, 50).calls == 50

    def test_open_trace_keeps_its_records(self):
        """Read while open, a trace keeps its raw records: more can still arrive."""
        with signaltrace.capture() as trace:
            five_signal.send(sender=None)
            assert len(trace.calls) == 5
            five_signal.send(sender=None)
            assert len(trace.calls) == 10
            assert len({id(raw) for raw in trace.raw}) == 2
        assert len(trace.calls) == 10

    def test_truncated_trace_is_released_too(self):
        with signaltrace.capture(max_events=7) as trace:
            for _ in range(3):
                five_signal.send(sender=None)
        assert len(trace.calls) == 5
        assert trace.truncated
        assert str(trace.truncated_at).startswith("MAX_EVENTS reached after 6 events")
        assert trace._truncated_raw[2] is None

    def test_an_overtaken_reader_gets_the_final_build(self):
        """A reader that found nothing built, then lost the race to a thread that built
        and released the raw records, returns that build (it cannot rebuild from raw)."""
        trace = _record(one_signal, 5)
        stopped, go = threading.Event(), threading.Event()

        class Gated(type(trace)):
            @property
            def closed(self):
                # _build reads `closed` just after `_built`: hold the late reader there.
                if threading.current_thread().name == "late reader" and not go.is_set():
                    stopped.set()
                    go.wait(5)
                return True

        trace.__class__ = Gated
        seen = []
        late = threading.Thread(target=lambda: seen.append(len(trace.calls)), name="late reader")
        late.start()
        assert stopped.wait(5)
        assert len(trace.calls) == 5  # built and released here, meanwhile
        assert len({id(raw) for raw in trace.raw}) == 1
        go.set()
        late.join(5)
        assert seen == [5]
