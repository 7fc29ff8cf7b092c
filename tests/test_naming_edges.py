"""Labels for unusual values, receivers and signals; rendering of async calls."""

from __future__ import annotations

import blinker
from django.dispatch import Signal

import signaltrace
from signaltrace import naming


def ok(sender, **kwargs):
    return "ok"


class TestUnusualValues:
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


class TestReceiverLabels:
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
