"""Edges of the recording paths that ordinary traffic does not reach."""

from __future__ import annotations

import asyncio
import contextvars
import weakref

import pytest
from django.dispatch import Signal

import signaltrace
from signaltrace import _hotpath, context, metrics
from signaltrace._metrics import collect
from signaltrace.records import D_END, D_FLAT, D_SIZE, flat_call_end, running_flat_call

sig = Signal()


def ok(sender, **kwargs):
    return "ok"


def ok2(sender, **kwargs):
    return "ok2"


async def aok(sender, **kwargs):
    return "aok"


def failing(sender, **kwargs):
    raise ValueError("no")


class Stop(BaseException):
    pass


def stops(sender, **kwargs):
    raise Stop


@pytest.fixture
def connect():
    connected = []

    def connect(receiver, signal=sig):
        signal.connect(receiver, weak=False)
        connected.append((signal, receiver))

    yield connect
    for signal, receiver in connected:
        signal.disconnect(receiver)


def rows():
    return {row["receiver"].rsplit(".", 1)[-1]: row for row in collect()}


class TestNotRecordedWithAsyncReceivers:
    """Django's loop inside an open capture: an ignored signal, or a full trace."""

    @pytest.mark.parametrize("method", ["send", "send_robust"])
    def test_ignored_signal(self, settings, connect, method):
        settings.SIGNALTRACE = {"ENABLED": True, "IGNORE_SIGNALS": ["tests.test_hotpath_edges.sig"]}
        connect(ok)
        connect(aok)
        with signaltrace.capture() as trace:
            responses = getattr(sig, method)(sender=None)
        assert [r for _receiver, r in responses] == ["ok", "aok"]
        assert trace.dispatches == []

    def test_asend_into_a_full_trace(self, connect):
        connect(ok)
        connect(aok)
        with signaltrace.capture(max_events=1) as trace:
            responses = asyncio.run(sig.asend(sender=None))
        assert sorted(r for _receiver, r in responses) == ["aok", "ok"]
        assert trace.dispatches == []
        assert trace.dropped == 3


class TestMetricsRobust:
    def test_two_failures_and_a_base_exception(self, settings, connect):
        settings.SIGNALTRACE = {"ENABLED": True, "METRICS": True}
        metrics.reset()
        connect(failing)
        connect(ok)

        def failing_too(sender, **kwargs):
            raise KeyError("again")

        connect(failing_too)
        responses = sig.send_robust(sender=None)
        assert [type(r) for _receiver, r in responses] == [ValueError, str, KeyError]
        connect(stops)
        with pytest.raises(Stop):
            sig.send_robust(sender=None)
        got = rows()
        assert (got["failing"]["errors"], got["failing_too"]["errors"]) == (2, 2)
        assert (got["stops"]["calls"], got["stops"]["errors"]) == (1, 1)

    def test_async_receivers_without_a_capture(self, settings, connect):
        settings.SIGNALTRACE = {"ENABLED": True, "METRICS": True}
        metrics.reset()
        connect(ok)
        connect(aok)
        sig.send_robust(sender=None)
        got = rows()
        assert (got["ok"]["calls"], got["aok"]["calls"]) == (1, 1)


class TestSettingChangedAsync:
    def test_asend_of_setting_changed_reads_metrics_again(self, settings):
        from django.conf import settings as django_settings
        from django.core.signals import setting_changed

        settings.SIGNALTRACE = {"ENABLED": True}  # the fixture's override: undone after
        assert not context.METRICS
        value = {"ENABLED": True, "METRICS": True}
        django_settings.SIGNALTRACE = value  # into the override, sending no signal
        assert not context.METRICS
        asyncio.run(
            setting_changed.asend(sender=None, setting="SIGNALTRACE", value=value, enter=True)
        )
        assert context.METRICS


class TestRecordDbRobust:
    def test_an_alias_the_probe_does_not_know(self, settings, connect):
        settings.SIGNALTRACE = {"RECORD_DB": True}
        connect(ok)
        with signaltrace.capture() as trace:
            sig.send_robust(sender=None, using=123)
        assert trace.calls[0].queries is None or trace.calls[0].queries == 0


class TestSmallPieces:
    def test_class_info_is_cached(self):
        class Fresh:
            pass

        first = _hotpath.class_info(Fresh)
        assert _hotpath.class_info(Fresh) is first

    def test_a_replaced_dict_is_not_read_the_plain_way(self):
        class OwnDict:
            @property
            def __dict__(self):  # type: ignore[override]
                raise AssertionError("never read")

        class Plain:
            pass

        assert not _hotpath._plain_dict(OwnDict)
        assert _hotpath._plain_dict(Plain)

    @pytest.mark.django_db
    def test_an_instance_built_without_init(self):
        """A model instance whose pk is not in its __dict__ goes to the full labelling."""
        from django.contrib.auth.models import User

        sig.connect(ok, weak=False)
        try:
            with signaltrace.capture() as trace:
                sig.send(sender=None, instance=User(pk=1))  # learns the names
                sig.send(sender=None, instance=User.__new__(User))
        finally:
            sig.disconnect(ok)
        assert [d.kwargs["instance"] for d in trace.dispatches] == [
            "auth.User pk=1",
            "auth.User pk=None",
        ]

    def test_running_flat_call(self):
        dispatch = [None] * D_SIZE
        assert running_flat_call(dispatch) is None  # the loop has not started
        dispatch += ["key", 1]
        assert running_flat_call(dispatch) == 0
        dispatch.append(2)
        assert running_flat_call(dispatch) is None  # ended
        assert D_FLAT == D_SIZE

    def test_flat_call_end_between_the_two_appends(self):
        """Another thread's snapshot may end in a key whose start is not appended yet.

        The CI failure: ``[key0, t0, key1]`` read ``key1`` (a weakref) as call 0's end.
        """
        key0, key1 = weakref.ref(ok), ("label", None, None, None)
        assert flat_call_end([key0, 10, key1], None, 0) is None  # not recorded yet
        assert flat_call_end([key0, 10, weakref.ref(ok)], None, 0) is None
        assert flat_call_end([key0, 10, key1, 20], None, 0) == 20
        assert flat_call_end([key0, 10, key1, 20], None, 1) is None  # runs
        assert flat_call_end([key0, 10, key1, 20, 30], None, 1) == 30  # the loop ended
        assert flat_call_end([key0, 10], None, 0) is None

    def test_a_trace_read_between_the_two_appends(self, connect):
        """Reading a trace whose dispatch another thread is between a key and its start."""
        connect(ok)
        connect(ok2)
        with signaltrace.capture() as trace:
            sig.send(sender=None)
        raw = trace.raw[0]
        del raw[D_FLAT + 3 :]  # [key0, t0, key1]: call 1 not started, no end
        raw[D_END] = 0
        trace._built = None
        (dispatch,) = trace.dispatches
        assert dispatch.duration_ns is None
        assert [call.outcome for call in dispatch.calls] == ["running"]
        assert trace.render()

    def test_recording_with_only_closed_traces(self):
        with signaltrace.capture():
            leaked = contextvars.copy_context()
        assert not leaked.run(context.recording)
        with signaltrace.capture():
            assert context.recording()
        assert not context.recording()


class TestFactsWithoutAnError:
    """A flat call that has facts but did not raise (the Celery integration notes
    the tasks a receiver publishes): metrics count it as a plain call."""

    def test_metrics_of_a_call_with_facts(self, settings, connect):
        settings.SIGNALTRACE = {"ENABLED": True, "METRICS": True}
        metrics.reset()

        def noting(sender, **kwargs):
            facts = _hotpath.current_call_facts(context.CURSOR.get())
            facts["tasks"] = []

        connect(noting)
        connect(ok)
        failures = context.FAILURES
        with signaltrace.capture() as trace:
            sig.send(sender=None)
        assert failures == context.FAILURES
        got = rows()
        assert (got["noting"]["calls"], got["noting"]["errors"]) == (1, 0)
        assert got["ok"]["calls"] == 1
        assert [c.outcome for c in trace.calls] == ["returned", "returned"]
