"""The cursor a sync dispatch changes in place, and who may see it (signaltrace.context).

In the thread that owns the cursor, ``send()``/``send_robust()`` point it at
themselves while their receivers run and put it back afterwards; any other
flow that shares it must see it as it was, or a cursor of its own.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest
from asgiref.sync import sync_to_async
from django.dispatch import Signal

import signaltrace
from signaltrace import context
from signaltrace.context import CURSOR, K_CALL, K_OWNER

outer = Signal()
inner = Signal()
other = Signal()

WAIT = 10  # seconds: only ever reached if the test is broken


def nest(sender, **kwargs):
    inner.send(sender=sender)


def nothing(sender, **kwargs):
    return None


@pytest.fixture
def connected():
    inner.connect(nothing, weak=False)
    other.connect(nothing, weak=False)
    yield
    inner.disconnect(nothing)
    other.disconnect(nothing)


def spawning(target):
    """A receiver that runs ``target`` in a new thread, in a copy of its context."""

    def spawn(sender, **kwargs):
        ctx = contextvars.copy_context()
        thread = threading.Thread(target=ctx.run, args=(target,))
        thread.start()
        thread.join(WAIT)

    return spawn


def names(trace):
    return [
        (d.signal_name, d.parent.receiver_name.rsplit(".", 1)[-1] if d.parent else None)
        for d in trace.dispatches
    ]


class TestOwner:
    def test_a_capture_is_owned_by_its_thread(self):
        with signaltrace.capture():
            assert CURSOR.get()[K_OWNER] == threading.get_ident()

    def test_nested_then_restored(self, connected):
        outer.connect(nest, weak=False)
        try:
            with signaltrace.capture() as trace:
                cursor = CURSOR.get()
                outer.send(sender=None)
                assert cursor[K_CALL] is None  # put back
                assert CURSOR.get() is cursor  # no cursor was set for the dispatch
                outer.send_robust(sender=None)
                assert cursor[K_CALL] is None
        finally:
            outer.disconnect(nest)
        assert names(trace) == [
            ("outer", None),
            ("inner", "nest"),
            ("outer", None),
            ("inner", "nest"),
        ]

    def test_restored_when_a_receiver_raises(self):
        def boom(sender, **kwargs):
            raise ZeroDivisionError

        outer.connect(boom, weak=False)
        try:
            with signaltrace.capture() as trace:
                cursor = CURSOR.get()
                with pytest.raises(ZeroDivisionError):
                    outer.send(sender=None)
                assert cursor[K_CALL] is None
                outer.send_robust(sender=None)
                assert cursor[K_CALL] is None
        finally:
            outer.disconnect(boom)
        assert [c.outcome for c in trace.calls] == ["raised", "raised"]

    def test_another_thread_that_shares_the_cursor_gets_its_own(self, connected):
        """A thread running in a copy of the context while the owner waits in a
        receiver: its dispatch nests under that receiver, through a cursor of its own."""
        seen = {}

        def in_thread():
            seen["before"] = CURSOR.get()
            other.send(sender=None)
            seen["after"] = CURSOR.get()

        spawn = spawning(in_thread)

        outer.connect(spawn, weak=False)
        try:
            with signaltrace.capture() as trace:
                outer.send(sender=None)
        finally:
            outer.disconnect(spawn)
        assert seen["before"] is seen["after"]  # the thread put nothing in place
        assert names(trace) == [("outer", None), ("other", "spawn")]


class TestHop:
    def test_a_thread_never_sees_a_sibling_tasks_dispatch(self, connected):
        """Two tasks share the capture's cursor. While task B's sync dispatch runs
        in the event loop's thread, task A's sync_to_async thread sends: its
        dispatch is at the top, not under B's receiver."""
        in_b = threading.Event()
        sent = threading.Event()

        def hold(sender, **kwargs):
            in_b.set()
            assert sent.wait(WAIT)  # blocks the loop: the thread sends meanwhile

        def worker():
            assert in_b.wait(WAIT)
            other.send(sender=None)
            sent.set()

        async def task_a():
            await sync_to_async(worker, thread_sensitive=False)()

        async def task_b():
            await asyncio.sleep(0)  # let A's thread start first
            outer.send(sender=None)

        async def main():
            await asyncio.gather(task_a(), task_b())

        outer.connect(hold, weak=False)
        try:
            with signaltrace.capture() as trace:
                asyncio.run(main())
        finally:
            outer.disconnect(hold)
        assert sorted(names(trace), key=str) == [("other", None), ("outer", None)]


class TestToThread:
    """``asyncio.to_thread()`` copies the context with no hook of ours: in a thread
    running an event loop, sync dispatches never change the shared cursor in place."""

    def run(self, main, outside):
        outer.connect(self.hold, weak=False)
        try:
            if outside:  # the capture's cursor is owned by the thread that runs the loop
                with signaltrace.capture() as trace:
                    asyncio.run(main())
            else:

                async def inside():
                    async with signaltrace.capture() as trace:
                        await main()
                    return trace

                trace = asyncio.run(inside())
        finally:
            outer.disconnect(self.hold)
        return trace

    def hold(self, sender, **kwargs):
        self.in_b.set()
        assert self.sent.wait(WAIT)  # blocks the loop: the thread sends meanwhile

    @pytest.mark.parametrize("outside", [True, False], ids=["capture-outside", "capture-inside"])
    def test_a_thread_never_sees_a_sibling_tasks_dispatch(self, connected, outside):
        self.in_b = threading.Event()
        self.sent = threading.Event()

        def worker():
            assert self.in_b.wait(WAIT)
            other.send(sender=None)
            self.sent.set()

        async def task_a():
            await asyncio.to_thread(worker)

        async def task_b():
            await asyncio.sleep(0)  # let A's thread start first
            outer.send(sender=None)

        async def main():
            await asyncio.gather(task_a(), task_b())

        trace = self.run(main, outside)
        assert sorted(names(trace), key=str) == [("other", None), ("outer", None)]

    def test_a_thread_spawned_by_a_receiver_in_the_loop_nests_under_it(self, connected):
        """The nesting a copied context should give still holds in the loop's thread."""

        def in_thread():
            other.send(sender=None)

        spawn = spawning(in_thread)

        async def main():
            async with signaltrace.capture() as trace:
                outer.send(sender=None)
            return trace

        outer.connect(spawn, weak=False)
        try:
            trace = asyncio.run(main())
        finally:
            outer.disconnect(spawn)
        assert names(trace) == [("outer", None), ("other", "spawn")]


class TestActive:
    def test_idle_until_metrics_or_a_capture(self, settings):
        settings.SIGNALTRACE = {"ENABLED": True}
        assert not context.ACTIVE
        with signaltrace.capture():
            assert context.ACTIVE
        assert not context.ACTIVE

    def test_override_settings_turns_metrics_on_and_off(self, settings):
        """setting_changed, sent by override_settings, is what re-reads METRICS."""
        settings.SIGNALTRACE = {"ENABLED": True, "METRICS": True}
        assert context.ACTIVE
        assert context.METRICS
        settings.SIGNALTRACE = {"ENABLED": True}
        assert not context.ACTIVE
        assert not context.METRICS
