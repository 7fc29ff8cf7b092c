"""Async dispatch: asend, asend_robust, async receivers from send, concurrency."""

from __future__ import annotations

import asyncio
import contextvars
import logging

import pytest
from asgiref.sync import sync_to_async
from django.dispatch import Signal

import signaltrace
import signaltrace.context
from signaltrace import _compat

marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")


async def async_a(sender, **kwargs):
    await asyncio.sleep(0)
    return "async-a"


async def async_b(sender, **kwargs):
    await asyncio.sleep(0)
    return "async-b"


def sync_c(sender, **kwargs):
    return "sync-c"


async def async_fails(sender, **kwargs):
    await asyncio.sleep(0)
    raise ValueError("async boom")


def sync_fails(sender, **kwargs):
    raise KeyError("sync boom")


@pytest.fixture
def signal():
    sig = Signal()
    yield sig
    sig.receivers.clear()


def run(coro_fn):
    return asyncio.run(coro_fn())


class TestSendWithAsyncReceivers:
    def test_sync_send_runs_and_records_async_receivers(self, signal):
        """send() with async receivers records them as async calls."""
        signal.connect(sync_c)
        signal.connect(async_a)
        signal.connect(async_b)
        with signaltrace.capture() as trace:
            responses = signal.send(sender=None)
        assert responses == [(sync_c, "sync-c"), (async_a, "async-a"), (async_b, "async-b")]
        assert [(c.receiver_name.rsplit(".", 1)[1], c.is_async) for c in trace.calls] == [
            ("sync_c", False),
            ("async_a", True),
            ("async_b", True),
        ]
        assert all(c.duration_ns is not None and c.duration_ns >= 0 for c in trace.calls)

    def test_sync_send_async_failure_propagates(self, signal):
        """An async receiver's exception propagates from send() and is recorded."""
        signal.connect(async_fails)
        with signaltrace.capture() as trace, pytest.raises(ValueError, match="async boom"):
            signal.send(sender=None)
        assert trace.calls[0].outcome == "raised"
        assert trace.calls[0].error.type == "ValueError"
        assert not trace.calls[0].swallowed

    def test_send_robust_with_async_failure(self, signal, caplog):
        """send_robust() swallows an async receiver's error, logs it and records it."""
        signal.connect(async_fails)
        signal.connect(async_a)
        with caplog.at_level(logging.ERROR, "django.dispatch"), signaltrace.capture() as trace:
            responses = signal.send_robust(sender=None)
        assert responses[0][0] is async_fails
        assert isinstance(responses[0][1], ValueError)
        assert responses[1] == (async_a, "async-a")
        assert trace.calls[0].swallowed
        assert trace.calls[1].outcome == "returned"
        assert "Error calling async_fails in Signal.send_robust() (async boom)" in caplog.text

    def test_idle_send_robust_with_async_receivers(self, signal):
        """Installed but not capturing, async receivers behave as in Django."""
        signal.connect(async_fails)
        signal.connect(async_a)
        responses = signal.send_robust(sender=None)
        assert isinstance(responses[0][1], ValueError)
        assert responses[1] == (async_a, "async-a")
        with pytest.raises(ValueError, match="async boom"):
            signal.send(sender=None)


@pytest.mark.parametrize("capturing", [False, True], ids=["idle", "capturing"])
class TestAsend:
    async def _maybe_capture(self, capturing, coro_fn):
        if capturing:
            async with signaltrace.capture() as trace:
                result = await coro_fn()
            return result, trace
        return await coro_fn(), None

    def test_asend_mixed_receivers(self, signal, capturing):
        """asend() returns sync results first, then async ones, as Django does."""
        signal.connect(async_a)
        signal.connect(sync_c)
        signal.connect(async_b)
        responses, trace = run(
            lambda: self._maybe_capture(capturing, lambda: signal.asend(sender=None))
        )
        assert responses == [(sync_c, "sync-c"), (async_a, "async-a"), (async_b, "async-b")]
        if trace:
            assert {c.receiver_name.rsplit(".", 1)[1] for c in trace.calls} == {
                "sync_c",
                "async_a",
                "async_b",
            }
            assert trace.dispatches[0].method == "asend"

    def test_asend_robust_collects_errors(self, signal, capturing, caplog):
        """asend_robust() returns exceptions in place and logs each one."""
        signal.connect(sync_fails)
        signal.connect(async_fails)
        signal.connect(async_a)
        with caplog.at_level(logging.ERROR, "django.dispatch"):
            responses, trace = run(
                lambda: self._maybe_capture(capturing, lambda: signal.asend_robust(sender=None))
            )
        assert responses[0][0] is sync_fails
        assert isinstance(responses[0][1], KeyError)
        assert responses[1][0] is async_fails
        assert isinstance(responses[1][1], ValueError)
        assert responses[2] == (async_a, "async-a")
        assert len([r for r in caplog.records if r.name == "django.dispatch"]) == 2
        if trace:
            assert sorted(c.error.type for c in trace.errors) == ["KeyError", "ValueError"]
            assert all(c.swallowed for c in trace.errors)

    def test_asend_exception_is_same_object(self, signal, capturing):
        """asend() propagates the receiver's own exception object."""
        error = RuntimeError("mine")

        async def raiser(sender, **kwargs):
            raise error

        signal.connect(raiser)
        with pytest.raises(RuntimeError) as info:
            run(lambda: self._maybe_capture(capturing, lambda: signal.asend(sender=None)))
        assert info.value is error

    def test_asend_sync_exception(self, signal, capturing):
        """A sync receiver's exception propagates from asend()."""
        signal.connect(sync_fails)
        with pytest.raises(KeyError):
            run(lambda: self._maybe_capture(capturing, lambda: signal.asend(sender=None)))

    def test_context_changes_propagate_as_in_django(self, signal, capturing):
        """Context variables set by receivers reach the caller exactly as without us."""

        async def sets_marker(sender, **kwargs):
            marker.set("from-receiver")

        signal.connect(sets_marker)

        async def probe():
            await signal.asend(sender=None)
            return marker.get()

        signaltrace.uninstall()
        try:
            expected = run(probe)
        finally:
            signaltrace.install()
        got, _ = run(lambda: self._maybe_capture(capturing, probe))
        assert got == expected
        assert expected == ("from-receiver" if _compat.SHAPE == "taskgroup" else "unset")

    def test_no_receivers(self, signal, capturing):
        """asend() with nobody connected returns []."""
        responses, _ = run(
            lambda: self._maybe_capture(capturing, lambda: signal.asend(sender=None))
        )
        assert responses == []
        signal.connect(sync_c, sender="other")
        responses, _ = run(
            lambda: self._maybe_capture(capturing, lambda: signal.asend_robust(sender=None))
        )
        assert responses == []


class TestAsyncNesting:
    def test_concurrent_async_receivers_get_the_right_parent(self):
        """Async receivers that Django runs concurrently each parent their own dispatches."""
        outer = Signal()
        inner = Signal()
        inner_sync = Signal()

        def make(tag):
            async def receiver(sender, **kwargs):
                for _ in range(3):
                    await inner.asend(sender=tag)
                    await asyncio.sleep(0)
                inner_sync.send(sender=f"{tag}-sync")

            receiver.__qualname__ = f"receiver_{tag}"
            return receiver

        receivers = [make(tag) for tag in "abcd"]
        for r in receivers:
            outer.connect(r)
        # Only async receivers on `inner`: on Django 6.1, sync receivers reached
        # through asend() from concurrently running receivers deadlock-guard in
        # asgiref (with or without signaltrace).
        inner.connect(async_a)
        inner.connect(async_b)
        inner_sync.connect(sync_c)

        async def main():
            async with signaltrace.capture() as trace:
                await outer.asend(sender=None)
            return trace

        trace = run(main)
        (root,) = trace.roots
        assert len(root.calls) == 4
        for call in root.calls:
            tag = call.receiver_name[-1]
            assert [d.sender for d in call.children] == [tag, tag, tag, f"{tag}-sync"]
            for child in call.children[:3]:
                assert {c.receiver_name.rsplit(".", 1)[1] for c in child.calls} == {
                    "async_a",
                    "async_b",
                }
            assert [c.receiver_name for c in call.children[3].calls] == ["tests.test_async.sync_c"]
        # Nothing leaked into the caller's context.
        assert signaltrace.context.CURSOR.get() is None

    def test_concurrent_tasks_with_own_captures(self):
        """Concurrent asyncio tasks with their own captures never mix."""
        sig = Signal()
        sig.connect(async_a)
        sig.connect(sync_c)

        async def task(n):
            async with signaltrace.capture() as trace:
                for _ in range(5):
                    await sig.asend(sender=f"task-{n}")
                    await asyncio.sleep(0)
            return n, trace

        async def main():
            return await asyncio.gather(*(task(n) for n in range(20)))

        for n, trace in run(main):
            assert len(trace.dispatches) == 5
            assert {d.sender for d in trace.dispatches} == {f"task-{n}"}
            assert len(trace.calls) == 10

    def test_sync_to_async_handoff_keeps_the_trace(self):
        """A dispatch inside sync_to_async lands in the awaiting task's trace."""
        sig = Signal()
        sig.connect(sync_c)

        async def main():
            async with signaltrace.capture() as trace:
                await sync_to_async(sig.send)(sender="in-thread")
            return trace

        trace = run(main)
        assert [d.sender for d in trace.dispatches] == ["in-thread"]
