"""How async receivers run under each Django shape (gather or TaskGroup), traced."""

from __future__ import annotations

import asyncio
import contextvars

import blinker
import pytest
from django.dispatch import Signal

import signaltrace
from signaltrace import _compat

unset_var: contextvars.ContextVar[str] = contextvars.ContextVar("unset_var")


class TestTracedRunners:
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


class Stop(BaseException):
    """A BaseException that asyncio lets a coroutine catch (unlike KeyboardInterrupt)."""


class TestExceptionsInTheThread:
    """asend()'s sync receivers run in a thread; their failures are recorded as in Django."""

    @pytest.mark.parametrize("method", ["asend", "asend_robust"])
    @pytest.mark.parametrize("error", [ValueError, Stop])
    def test_thread_exceptions_with_record_db(self, settings, method, error):
        """A sync receiver's exception is recorded, then handled exactly as Django does.

        ``asend_robust`` returns an ``Exception`` in the responses and re-raises
        a ``BaseException``; ``asend`` re-raises both. Either way the same
        exception object reaches the caller.
        """
        settings.SIGNALTRACE = {"RECORD_DB": True}
        raised = error("x")

        def receiver(sender, **kwargs):
            raise raised

        sig = Signal()
        sig.connect(receiver)
        caught: list[BaseException] = []

        async def main():
            async with signaltrace.capture() as trace:
                try:
                    responses = await getattr(sig, method)(sender=None)
                except BaseException as exc:
                    caught.append(exc)
                else:
                    assert responses == [(receiver, raised)]
            return trace

        trace = asyncio.run(main())
        swallowed = method == "asend_robust" and issubclass(error, Exception)
        assert caught == ([] if swallowed else [raised])
        assert trace.calls[0].queries == 0
        assert trace.calls[0].error.type.endswith(error.__name__)


class TestBlinkerAsync:
    def test_blinker_send_async_idle_async_receiver(self):
        sig = blinker.Signal()

        async def areceiver(sender):
            return "a"

        sig.connect(areceiver)
        assert asyncio.run(sig.send_async(None)) == [(areceiver, "a")]
