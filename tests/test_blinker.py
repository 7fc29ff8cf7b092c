"""blinker signals are traced too, marked as blinker dispatches."""

from __future__ import annotations

import asyncio

import blinker
import pytest

import signaltrace


@pytest.fixture
def sig():
    return blinker.Signal()


def on_paid(sender, **kwargs):
    return ("paid", kwargs.get("amount"))


async def on_paid_async(sender, **kwargs):
    return "async-paid"


class TestBlinker:
    def test_send_is_traced(self, sig):
        sig.connect(on_paid)
        with signaltrace.capture() as trace:
            result = sig.send("shop", amount=5)
        assert result == [(on_paid, ("paid", 5))]
        (dispatch,) = trace.dispatches
        assert dispatch.method == "blinker.send"
        assert dispatch.blinker
        assert dispatch.sender == "shop"
        assert dispatch.kwargs == {"amount": 5}
        assert trace.calls[0].receiver_name == "tests.test_blinker.on_paid"

    def test_named_signal(self):
        named = blinker.Namespace().signal("order-shipped")
        named.connect(on_paid)
        with signaltrace.capture() as trace:
            named.send(None)
        assert trace.dispatches[0].signal_name == "order-shipped"

    def test_send_with_async_wrapper(self, sig):
        sig.connect(on_paid_async)

        def wrapper(func):
            return lambda *a, **kw: asyncio.run(func(*a, **kw))

        with signaltrace.capture() as trace:
            assert sig.send(None, _async_wrapper=wrapper) == [(on_paid_async, "async-paid")]
        assert trace.calls[0].is_async

    @pytest.mark.parametrize("capturing", [False, True])
    def test_errors_as_in_blinker(self, sig, capturing):
        """Coroutine receivers without a wrapper fail as blinker fails."""
        sig.connect(on_paid_async)
        with (
            signaltrace.capture() if capturing else _null(),
            pytest.raises(RuntimeError, match=r"Cannot send to a coroutine function\."),
        ):
            sig.send(None)

    def test_receiver_exception_recorded(self, sig):
        def bad(sender, **kwargs):
            raise ValueError("blinker boom")

        sig.connect(bad)
        with signaltrace.capture() as trace, pytest.raises(ValueError, match="blinker boom"):
            sig.send(None)
        assert trace.calls[0].error.message == "blinker boom"

    def test_muted_and_unmatched(self, sig):
        sig.connect(on_paid, sender="only-this")
        with signaltrace.capture() as trace:
            assert sig.send("other") == []
            with sig.muted():
                assert sig.send("only-this") == []
        assert trace.dispatches == []

    def test_send_async(self, sig):
        sig.connect(on_paid_async)
        sig.connect(on_paid)

        async def sync_wrapper_factory(func):  # pragma: no cover - not used
            raise AssertionError

        def sync_wrapper(func):
            async def inner(*args, **kwargs):
                return func(*args, **kwargs)

            return inner

        async def main():
            async with signaltrace.capture() as trace:
                result = await sig.send_async("x", _sync_wrapper=sync_wrapper, amount=1)
            return result, trace

        result, trace = asyncio.run(main())
        assert sorted(map(repr, result)) == sorted(
            map(repr, [(on_paid_async, "async-paid"), (on_paid, ("paid", 1))])
        )
        assert trace.dispatches[0].method == "blinker.send_async"
        assert {c.is_async for c in trace.calls} == {True, False}

    @pytest.mark.parametrize("capturing", [False, True])
    def test_send_async_errors(self, sig, capturing):
        sig.connect(on_paid)

        async def main():
            if capturing:
                async with signaltrace.capture():
                    await sig.send_async(None)
            else:
                await sig.send_async(None)

        with pytest.raises(RuntimeError, match=r"Cannot send to a non-coroutine function\."):
            asyncio.run(main())

    def test_send_async_exception_recorded(self, sig):
        async def bad(sender, **kwargs):
            raise KeyError("k")

        sig.connect(bad)

        async def main():
            async with signaltrace.capture() as trace:
                with pytest.raises(KeyError):
                    await sig.send_async(None)
            return trace

        assert asyncio.run(main()).calls[0].error.type == "KeyError"


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
