"""Corners of the recorder that ordinary use rarely reaches."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import threading
import weakref

import blinker
import pytest
from django.dispatch import Signal

import signaltrace
from signaltrace import _async, _compat, _hotpath, context, naming
from signaltrace.records import Dispatch, Origin, ReceiverCall

unset_var: contextvars.ContextVar[str] = contextvars.ContextVar("unset_var")


def ok(sender, **kwargs):
    return "ok"


class TestPackage:
    def test_dir_lists_lazy_names(self):
        assert {"capture", "Trace", "install"} <= set(dir(signaltrace))

    def test_unknown_attribute(self):
        with pytest.raises(AttributeError, match="has no attribute 'nope'"):
            signaltrace.nope  # noqa: B018

    def test_no_submodule_shadows_a_public_name(self):
        """Importing every submodule leaves ``signaltrace.capture`` the class, and so on."""
        import pkgutil

        for info in pkgutil.walk_packages(signaltrace.__path__, "signaltrace."):
            assert info.name.rpartition(".")[2] not in signaltrace.__all__
        assert isinstance(signaltrace.capture, type)


class TestAsyncCorners:
    def test_context_var_new_to_the_caller(self):
        """A variable the caller never set is copied back on 6.1, not before, as in Django."""
        sig = Signal()

        async def sets(sender, **kwargs):
            unset_var.set("set by receiver")

        sig.connect(sets)

        async def main():
            async with signaltrace.capture():
                await sig.asend(sender=None)
            return unset_var.get("still unset")

        expected = "set by receiver" if _compat.SHAPE == "taskgroup" else "still unset"
        assert asyncio.run(main()) == expected

    def test_several_async_failures(self):
        """Two failing async receivers: Django's own exception (group) propagates."""
        sig = Signal()

        async def fail_a(sender, **kwargs):
            raise ValueError("a")

        async def fail_b(sender, **kwargs):
            raise KeyError("b")

        sig.connect(fail_a)
        sig.connect(fail_b)

        async def main():
            async with signaltrace.capture() as trace:
                try:
                    await sig.asend(sender=None)
                except BaseException as exc:
                    return trace, exc
            raise AssertionError("no exception")  # pragma: no cover

        trace, exc = asyncio.run(main())
        if _compat.SHAPE == "taskgroup":
            assert isinstance(exc, ExceptionGroup)
        else:
            assert isinstance(exc, ValueError)
        assert {c.error.type for c in trace.errors} == {"ValueError", "KeyError"}

    def test_cancelled_receiver(self):
        """A receiver cancelled mid-dispatch is recorded without an error label."""
        sig = Signal()

        async def sleeps(sender, **kwargs):
            await asyncio.sleep(10)

        sig.connect(sleeps)

        async def main():
            async with signaltrace.capture() as trace:
                task = asyncio.ensure_future(sig.asend(sender=None))
                await asyncio.sleep(0.01)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            return trace

        trace = asyncio.run(main())
        assert len(trace.calls) == 1


class TestRecordCorners:
    def test_describe_callable_object(self):
        class Handler:
            def __call__(self, sender, **kwargs):
                pass

        handler = Handler()
        handler(None)
        assert _hotpath.describe(handler)[0].endswith("Handler.__call__")

    def test_dead_receiver_label(self):
        """A function receiver that died before the trace was read is labelled so."""
        sig = Signal()

        def make():
            def short_lived(sender, **kwargs):
                pass

            return short_lived

        receiver = make()
        sig.connect(receiver)
        cap = signaltrace.capture()
        trace = cap.__enter__()
        sig.send(sender=None)
        raw_call = trace.raw[0][7][0]
        assert isinstance(raw_call[0], weakref.ref)
        del receiver
        gc.collect()
        cap.__exit__(None, None, None)
        assert trace.calls[0].receiver_name == "<dead receiver>"

    def test_forget_ignores_replaced_entries(self):
        """Cache clean-up leaves an entry that already belongs to a new object."""

        class Fresh:
            pass

        for cache, forget in (
            (_hotpath._DESC_CACHE, _hotpath._forget),
            (_hotpath._CLASS_INFO, _hotpath._forget_class),
            (naming._SIGNAL_NAMES, naming._forget_signal),
        ):
            key = -1
            ref = weakref.ref(Fresh)
            cache[key] = (ref, "kept")
            forget(key, weakref.ref(TestRecordCorners))
            assert cache[key][1] == "kept"
            forget(key, ref)
            assert key not in cache
            forget(key, ref)

    def test_origin_unknown_in_a_bare_thread(self):
        """A dispatch whose whole stack is Django and the stdlib has no origin."""
        sig = Signal()
        sig.connect(ok)
        with signaltrace.capture(all_threads=True) as trace:
            thread = threading.Thread(target=sig.send, kwargs={"sender": None})
            thread.start()
            thread.join()
        assert trace.dispatches[0].origin is None

    def test_closed_trace_in_a_leaked_context(self):
        """A context copied while a capture was open records nothing after it closes."""
        sig = Signal()
        sig.connect(ok)
        with signaltrace.capture() as trace:
            leaked = contextvars.copy_context()
        assert leaked.run(sig.send, sender=None) == [(ok, "ok")]
        assert trace.dispatches == []

    def test_several_traces_one_full_one_closed(self):
        """With nested captures, a full or closed trace is skipped, others record."""
        sig = Signal()
        sig.connect(ok)
        with signaltrace.capture() as outer:
            with signaltrace.capture(max_events=1) as inner:
                sig.send(sender=None)
            leaked = contextvars.copy_context()
            leaked.run(sig.send, sender=None)
        assert inner.dispatches == []
        assert inner.dropped == 2
        assert len(outer.dispatches) == 2
        with signaltrace.capture() as lone, signaltrace.capture(max_events=1):
            leaked = contextvars.copy_context()
        leaked.run(sig.send, sender=None)
        assert lone.dispatches == []

    def test_non_int_pk_and_non_str_alias(self):
        from django.contrib.auth.models import User

        user = User(username="x")
        user.__dict__["id"] = "str-pk"
        sig = Signal()
        sig.connect(ok)
        with signaltrace.capture() as trace:
            sig.send(sender=None, instance=user, using=123)
        assert trace.dispatches[0].kwargs["instance"] == "auth.User pk=str-pk"


class TestCaptureCorners:
    def test_close_twice(self):
        with signaltrace.capture() as trace:
            pass
        end = trace.end_ns
        trace.close()
        assert trace.end_ns == end

    def test_exit_without_enter(self):
        with pytest.raises(RuntimeError, match="was not entered"):
            signaltrace.capture().__exit__(None, None, None)

    def test_exit_in_another_context(self):
        """A capture closed in another context than it was opened in restores the outer value."""
        cap = signaltrace.capture()
        ctx = contextvars.copy_context()
        trace = ctx.run(cap.__enter__)
        cap.__exit__(None, None, None)
        assert trace.closed
        assert context.CURSOR.get() is None

    def test_active_traces_with_global(self):
        with signaltrace.capture(all_threads=True) as everywhere:
            with signaltrace.capture() as local:
                assert context.active_traces() == (everywhere, local) or set(
                    context.active_traces()
                ) == {everywhere, local}
            result = []
            thread = threading.Thread(target=lambda: result.append(context.active_traces()))
            thread.start()
            thread.join()
        assert result == [(everywhere,)]

    def test_config_none(self, settings):
        from signaltrace.conf import config_errors

        assert config_errors(None) == []


class TestRecords:
    def test_properties(self):
        dispatch = Dispatch(
            signal_name="s",
            signal_path="m.s",
            sender="x",
            kwargs={"created": True, "instance": "auth.User pk=1"},
            method="blinker.send",
            start_ns=0,
            duration_ns=2_000_000,
            origin=Origin("f.py", 3, "fn"),
            receiver_count=1,
        )
        call = ReceiverCall("r", None, None, False, 0, 1_500_000, None, dispatch)
        assert dispatch.blinker
        assert not dispatch.robust
        assert dispatch.created is True
        assert dispatch.instance == "auth.User pk=1"
        assert dispatch.duration_ms == 2.0
        assert call.duration_ms == 1.5
        assert call.location is None
        assert str(dispatch.origin) == "f.py:3 in fn"
        running = ReceiverCall("r", "f.py", 1, True, 0, None, None, dispatch)
        assert running.outcome == "running"


class TestNamingCorners:
    def test_float_subclass(self):
        class Money(float):
            pass

        assert type(naming.kwarg_value(Money(1.5))) is float

    def test_callable_without_python_call(self):
        """A callable class instance whose __call__ is a C slot still gets a label."""
        desc = naming.describe_receiver(object.__new__(type("Weird", (), {"__call__": len})))
        assert desc[0].endswith("Weird.__call__")

    def test_blinker_unnamed_signal(self):
        anonymous = blinker.Signal()
        assert naming.signal_label(anonymous)[0].startswith("Signal@0x")

    def test_named_signal_without_str_name(self):
        named = blinker.NamedSignal("x")
        named.__dict__["name"] = 3
        assert naming._blinker_name(named) is None

    def test_blinker_idle_sync(self):
        sig = blinker.Signal()
        sig.connect(ok)
        assert sig.send(None) == [(ok, "ok")]


class TestMoreCorners:
    def test_non_str_alias_with_record_db(self, settings):
        settings.SIGNALTRACE = {"RECORD_DB": True}
        sig = Signal()
        sig.connect(ok)
        with signaltrace.capture() as trace:
            sig.send(sender=None, using=123)
        assert trace.calls[0].queries == 0

    def test_leaked_context_while_another_capture_is_open(self):
        """The closed trace is skipped even while other captures keep the hook busy."""
        sig = Signal()
        sig.connect(ok)
        with signaltrace.capture() as closed_one:
            leaked = contextvars.copy_context()
        with signaltrace.capture() as busy:
            leaked.run(sig.send, sender=None)
        assert closed_one.dispatches == []
        assert busy.dispatches == []
        with signaltrace.capture() as outer, signaltrace.capture():
            leaked_two = contextvars.copy_context()
        with signaltrace.capture():
            leaked_two.run(sig.send, sender=None)
        assert outer.dispatches == []

    def test_robust_fast_exits_without_watchers(self):
        sig = Signal()
        assert sig.send_robust(sender=None) == []
        assert asyncio.run(sig.asend_robust(sender=None)) == []

    def test_record_empty_when_full(self, settings):
        settings.SIGNALTRACE = {"RECORD_EMPTY": True, "MAX_EVENTS": 1}
        sig = Signal()
        with signaltrace.capture() as trace:
            sig.send(sender=None)
            sig.send(sender=None)
        assert len(trace.dispatches) == 1
        assert trace.dropped == 1

    @pytest.mark.parametrize("method", ["send", "send_robust"])
    def test_base_exception_with_record_db(self, settings, method):
        settings.SIGNALTRACE = {"RECORD_DB": True}

        class Stop(BaseException):
            pass

        def stops(sender, **kwargs):
            raise Stop

        sig = Signal()
        sig.connect(stops)
        with signaltrace.capture() as trace, pytest.raises(Stop):
            getattr(sig, method)(sender=None)
        assert trace.calls[0].queries == 0

    @pytest.mark.parametrize("method", ["asend", "asend_robust"])
    def test_thread_exceptions_with_record_db(self, settings, method):
        settings.SIGNALTRACE = {"RECORD_DB": True}

        class Stop(BaseException):
            pass

        def fails(sender, **kwargs):
            raise ValueError("x")

        def stops(sender, **kwargs):
            raise Stop

        for receiver, error in ((fails, ValueError), (stops, Stop)):
            sig = Signal()
            sig.connect(receiver)

            async def main(sig=sig):
                async with signaltrace.capture() as trace:
                    with contextlib.suppress(BaseException):
                        await getattr(sig, method)(sender=None)
                return trace

            trace = asyncio.run(main())
            assert trace.calls[0].queries == 0
            assert trace.calls[0].error.type.endswith(error.__name__)

    def test_blinker_send_async_idle_async_receiver(self):
        sig = blinker.Signal()

        async def areceiver(sender):
            return "a"

        sig.connect(areceiver)
        assert asyncio.run(sig.send_async(None)) == [(areceiver, "a")]

    def test_describe_non_callable(self):
        assert naming.describe_receiver(object())[0] == "object.__call__"

    def test_attr_holding_missing_module(self):
        assert naming._attr_holding(None, object()) is None

    def test_async_call_line(self):
        sig = Signal()

        async def areceiver(sender, **kwargs):
            pass

        sig.connect(areceiver)
        with signaltrace.capture() as trace:
            sig.send(sender=None)
        assert "areceiver  " in trace.render()
        assert "  async" in trace.render()


def test_epoch_start_and_no_skipped():
    """A trace knows its epoch start; assert_no_skipped() passes on a clean trace."""
    import time

    before = time.time_ns()
    with signaltrace.capture() as trace:
        pass
    assert before <= trace.started_epoch_ns <= time.time_ns()
    assert trace.started_at.timestamp() == pytest.approx(trace.started_epoch_ns / 1e9)
    assert trace.assert_no_skipped() is trace


def test_current_trace():
    """current_trace() is the innermost open trace of this context."""
    assert signaltrace.current_trace() is None
    with signaltrace.capture() as outer:
        assert signaltrace.current_trace() is outer
        with signaltrace.capture() as inner:
            assert signaltrace.current_trace() is inner
        assert signaltrace.current_trace() is outer
        leaked = contextvars.copy_context()
    assert signaltrace.current_trace() is None
    assert leaked.run(signaltrace.current_trace) is None
