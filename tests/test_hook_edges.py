"""Edge paths of the hook: fast exits, BaseException, idle blinker wrappers."""

from __future__ import annotations

import asyncio
import threading

import blinker
import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.dispatch import Signal

import signaltrace
from signaltrace import _compat, context


class Stop(BaseException):
    """Not an Exception: send_robust must let it through."""


def stops(sender, **kwargs):
    raise Stop


def ok(sender, **kwargs):
    return "ok"


@pytest.fixture
def signal():
    return Signal()


@pytest.fixture
def record_empty(settings):
    settings.SIGNALTRACE = {"RECORD_EMPTY": True}


class TestRecordEmptyFastExit:
    @pytest.mark.usefixtures("record_empty")
    @pytest.mark.parametrize("method", ["send", "send_robust"])
    def test_sync(self, signal, method):
        """Django's no-receivers fast exit is recorded with RECORD_EMPTY."""
        with signaltrace.capture() as trace:
            assert getattr(signal, method)(sender=None) == []
        (dispatch,) = trace.dispatches
        assert dispatch.method == method
        assert dispatch.calls == []
        assert dispatch.duration_ns == 0

    @pytest.mark.usefixtures("record_empty")
    @pytest.mark.parametrize("method", ["asend", "asend_robust"])
    def test_async(self, signal, method):
        async def main():
            async with signaltrace.capture() as trace:
                assert await getattr(signal, method)(sender=None) == []
            return trace

        assert [d.method for d in asyncio.run(main()).dispatches] == [method]

    @pytest.mark.usefixtures("record_empty")
    def test_fast_exit_outside_capture_and_ignored(self, signal):
        """With a RECORD_EMPTY capture open elsewhere, other flows stay unrecorded."""
        from django.db.models.signals import pre_init

        seen = []
        with signaltrace.capture() as trace:
            thread = threading.Thread(target=lambda: seen.append(signal.send(sender=None)))
            thread.start()
            thread.join()
            pre_init.send(sender=object, args=(), kwargs={})
        assert seen == [[]]
        assert trace.dispatches == []

    def test_record_empty_capture_counts_balance(self, settings):

        counts = [context.EMPTY_WATCHERS]
        settings.SIGNALTRACE = {"RECORD_EMPTY": True}
        with signaltrace.capture():
            counts.append(context.EMPTY_WATCHERS)
        counts.append(context.EMPTY_WATCHERS)
        assert counts == [counts[0], counts[0] + 1, counts[0]]


class TestBaseException:
    def test_send_robust_lets_base_exceptions_through(self, signal):
        """send_robust only catches Exception; a BaseException propagates, recorded."""
        signal.connect(stops)
        with signaltrace.capture() as trace, pytest.raises(Stop):
            signal.send_robust(sender=None)
        assert trace.calls[0].error.type == "tests.test_hook_edges.Stop"
        assert not trace.calls[0].swallowed or trace.calls[0].dispatch.robust

    @pytest.mark.parametrize("method", ["asend", "asend_robust"])
    def test_asend_sync_receiver_base_exception(self, signal, method):
        signal.connect(stops)

        async def main():
            async with signaltrace.capture() as trace:
                with pytest.raises(Stop):
                    await getattr(signal, method)(sender=None)
            return trace

        assert asyncio.run(main()).calls[0].outcome == "raised"

    @pytest.mark.parametrize("capturing", [False, True])
    def test_asend_robust_sync_success(self, signal, capturing):
        signal.connect(ok)

        async def main():
            if capturing:
                async with signaltrace.capture():
                    return await signal.asend_robust(sender=None)
            return await signal.asend_robust(sender=None)

        assert asyncio.run(main()) == [(ok, "ok")]

    def test_async_receiver_base_exception_in_send(self, signal):
        async def astops(sender, **kwargs):
            raise Stop

        signal.connect(astops)
        with signaltrace.capture() as trace, pytest.raises(Stop):
            signal.send_robust(sender=None)
        assert trace.calls[0].outcome == "raised"


class TestBlinkerIdle:
    def test_send_with_async_wrapper_idle(self):
        sig = blinker.Signal()

        async def areceiver(sender):
            return "a"

        sig.connect(areceiver)
        wrapper = lambda func: lambda *a, **kw: asyncio.run(func(*a, **kw))  # noqa: E731
        assert sig.send(None, _async_wrapper=wrapper) == [(areceiver, "a")]

    def test_send_async_with_sync_wrapper_idle(self):
        sig = blinker.Signal()

        def receiver(sender):
            return "s"

        sig.connect(receiver)

        def sync_wrapper(func):
            async def inner(*args, **kwargs):
                return func(*args, **kwargs)

            return inner

        assert asyncio.run(sig.send_async(None, _sync_wrapper=sync_wrapper)) == [(receiver, "s")]
        assert asyncio.run(sig.send_async(None, _sync_wrapper=sync_wrapper)) == [(receiver, "s")]

    def test_muted_send_async(self):
        sig = blinker.Signal()
        sig.connect(ok)
        with sig.muted():
            assert asyncio.run(sig.send_async(None)) == []


class TestUnsupported:
    def test_old_django_is_refused(self):
        signaltrace.uninstall()
        _compat.SUPPORTED = False
        try:
            with pytest.raises(ImproperlyConfigured, match=r"Django 5\.2 and newer"):
                signaltrace.install()
            assert not signaltrace.is_installed()
        finally:
            _compat.SUPPORTED = True


class TestCurrentParent:
    def test_thread_inside_single_async_receiver(self, signal):
        """A dispatch from sync_to_async inside an async receiver nests under it."""
        inner = Signal()
        inner.connect(ok)

        async def areceiver(sender, **kwargs):
            await sync_to_async(inner.send)(sender="from-thread")

        signal.connect(areceiver)

        async def main():
            async with signaltrace.capture() as trace:
                await signal.asend(sender=None)
            return trace

        trace = asyncio.run(main())
        (root,) = trace.roots
        assert root.calls[0].children[0].sender == "from-thread"

    def test_dict_cursor_lookup(self):
        """The task map falls back to its only entry, else to no parent."""
        one = {object(): "call-a"}
        assert context.current_parent([(), one, None]) == "call-a"
        two = {object(): "a", object(): "b"}
        assert context.current_parent([(), two, None]) is None

    def test_global_cursor_without_traces(self):
        assert context.global_cursor() is None
