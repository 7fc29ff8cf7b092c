"""The text tree: what each line shows."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.dispatch import Signal

import signaltrace
from signaltrace._format import format_ms
from tests.testapp.models import ApiKey

order_paid = Signal()


def on_paid(sender, **kwargs):
    pass


@pytest.fixture
def paid():
    order_paid.connect(on_paid)
    yield
    order_paid.disconnect(on_paid)


@pytest.mark.usefixtures("paid")
class TestDispatchLine:
    def test_custom_kwargs_are_shown(self):
        """Arguments of custom signals appear on the dispatch line."""
        with signaltrace.capture() as trace:
            order_paid.send(sender="shop", order_id=42, currency="EUR")
        assert "order_paid  sender=shop order_id=42 currency=EUR  (" in trace.render()

    def test_secret_primary_keys_are_redacted(self):
        """A model whose pk name matches REDACT is labelled pk=[redacted]."""
        with signaltrace.capture() as trace:
            order_paid.send(sender="shop", holder=ApiKey(key="s3cr3t"))
        assert trace.dispatches[0].kwargs["holder"] == "testapp.ApiKey pk=[redacted]"
        assert "s3cr3t" not in trace.render()

    def test_instance_of_another_model(self):
        from django.contrib.auth.models import User

        with signaltrace.capture() as trace:
            order_paid.send(sender="shop", instance=User(pk=3))
        assert " instance=auth.User pk=3" in trace.render()


class TestFormatMs:
    @pytest.mark.parametrize(
        ("ns", "text"),
        [
            (None, "running"),
            (5_000, "<0.01 ms"),
            (250_000, "0.25 ms"),
            (2_500_000, "2.5 ms"),
            (250_000_000, "250 ms"),
        ],
    )
    def test_format(self, ns, text):
        assert format_ms(ns) == text


@pytest.mark.usefixtures("paid")
class TestOrigin:
    def test_origin_crosses_sync_to_async(self):
        """Across a sync_to_async hop the origin is the code that awaited it."""

        async def view():
            await sync_to_async(order_paid.send)(sender="async-view")

        with signaltrace.capture() as trace:
            async_to_sync(view)()
        assert trace.dispatches[0].origin.function.endswith("view")

    def test_origin_in_async_code(self):
        """A dispatch awaited directly in async code points at that code."""

        async def view():
            async with signaltrace.capture() as trace:
                await order_paid.asend(sender="async-view")
            return trace

        trace = asyncio.run(view())
        assert trace.dispatches[0].origin.function.endswith("view")
