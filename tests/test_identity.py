"""Assertions match the receiver object they are given, by identity, not by name.

Each receiver kind is connected to a real signal, sent inside ``capture()``,
then checked in both directions: the connected object (or an equivalent bound
method) matches, and a namesake (another instance's bound method, another
partial, another function made by the same factory) does not.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import blinker
import pytest
from django.dispatch import Signal

import signaltrace
from signaltrace import naming
from signaltrace.testing import SignalTraceAssertionError, calls_of

MODULE = "tests.test_identity"


class Notifier:
    def on_save(self, sender: Any, **kwargs: Any) -> None:
        """A method receiver: each instance's bound method is its own receiver."""

    async def aon_save(self, sender: Any, **kwargs: Any) -> None:
        """An async method receiver."""

    @classmethod
    def on_class(cls, sender: Any, **kwargs: Any) -> None:
        """A classmethod: bound to the class it was looked up on."""


class SubNotifier(Notifier):
    """Same classmethod, bound to another class."""


class Other:
    def on_save(self, sender: Any, **kwargs: Any) -> None:
        """Another receiver whose short name is on_save too."""


class CallableReceiver:
    def __call__(self, sender: Any, **kwargs: Any) -> None:
        """A callable object receiver."""


class Slotted:
    """A callable object that cannot be weakly referenced (no ``__weakref__``)."""

    __slots__ = ()

    def __call__(self, sender: Any, **kwargs: Any) -> None:
        """Connectable with weak=False only."""

    def on_save(self, sender: Any, **kwargs: Any) -> None:
        """A bound method whose object cannot be weakly referenced."""


def make_function() -> Callable[..., None]:
    """A new function object each call, all with the same dotted name."""

    def receiver(sender: Any, **kwargs: Any) -> None:
        """A factory-made receiver."""

    return receiver


def make_async() -> Callable[..., Any]:
    async def areceiver(sender: Any, **kwargs: Any) -> None:
        """A factory-made async receiver."""

    return areceiver


def make_lambda() -> Callable[..., None]:
    return lambda sender, **kwargs: None


def make_static_holder() -> Any:
    """A new class (and static function) each call, with the same dotted names."""

    class Holder:
        @staticmethod
        def on_static(sender: Any, **kwargs: Any) -> None:
            """A staticmethod receiver: a plain function."""

    return Holder


def tag(label: str, sender: Any, **kwargs: Any) -> None:
    """Wrapped in functools.partial."""


@dataclass
class Case:
    """A receiver to connect, the object that must match and a namesake that must not."""

    connected: Any
    right: Any
    wrong: Any
    kind: str = "send"  # "send", "asend", "blinker", "blinker_async"
    weak: bool = True
    keep: list[Any] = field(default_factory=list)  # objects to keep alive


def build(name: str) -> Case:
    a, b = Notifier(), Notifier()
    if name == "function":
        first = make_function()
        return Case(first, first, make_function())
    if name == "bound method":
        return Case(a.on_save, a.on_save, b.on_save, keep=[a, b])
    if name == "classmethod":
        return Case(Notifier.on_class, Notifier.on_class, SubNotifier.on_class)
    if name == "staticmethod":
        one, two = make_static_holder(), make_static_holder()
        return Case(one.on_static, one.on_static, two.on_static, keep=[one, two])
    if name == "partial":
        partial = functools.partial(tag, "MINE")
        return Case(partial, partial, functools.partial(tag, "OTHER"))
    if name == "callable instance":
        instance = CallableReceiver()
        return Case(instance, instance, CallableReceiver())
    if name == "async function":
        first = make_async()
        return Case(first, first, make_async(), kind="asend")
    if name == "async bound method":
        return Case(a.aon_save, a.aon_save, b.aon_save, kind="asend", keep=[a, b])
    if name == "lambda":
        first = make_lambda()
        return Case(first, first, make_lambda())
    if name == "weak=False function":
        first = make_function()
        return Case(first, first, make_function(), weak=False)
    if name == "weak=False unweakrefable object":
        slotted = Slotted()
        return Case(slotted, slotted, Slotted(), weak=False)
    if name == "weak=False method of an unweakrefable object":
        owner = Slotted()
        return Case(owner.on_save, owner.on_save, Slotted().on_save, weak=False)
    if name == "blinker bound method":
        return Case(a.on_save, a.on_save, b.on_save, kind="blinker", keep=[a, b])
    if name == "blinker function":
        first = make_function()
        return Case(first, first, make_function(), kind="blinker")
    if name == "blinker async bound method":
        return Case(a.aon_save, a.aon_save, b.aon_save, kind="blinker_async", keep=[a, b])
    raise AssertionError(name)  # pragma: no cover


KINDS = [
    "function",
    "bound method",
    "classmethod",
    "staticmethod",
    "partial",
    "callable instance",
    "async function",
    "async bound method",
    "lambda",
    "weak=False function",
    "weak=False unweakrefable object",
    "weak=False method of an unweakrefable object",
    "blinker bound method",
    "blinker function",
    "blinker async bound method",
]


def run(case: Case) -> signaltrace.Trace:
    """Connect the case's receiver, send once inside capture(), disconnect."""
    if case.kind.startswith("blinker"):
        bsignal = blinker.Signal()
        bsignal.connect(case.connected, weak=case.weak)
        with signaltrace.capture() as trace:
            if case.kind == "blinker":
                bsignal.send("shop")
            else:
                asyncio.run(bsignal.send_async("shop"))
        return trace
    signal = Signal()
    signal.connect(case.connected, weak=case.weak)
    with signaltrace.capture() as trace:
        if case.kind == "asend":
            asyncio.run(signal.asend(sender=None))
        else:
            signal.send(sender=None)
    return trace


@pytest.mark.parametrize("name", KINDS)
def test_the_receiver_passed_matches_itself_only(name):
    """assert_called/assert_not_called/calls_of/find: the right one matches, a namesake not."""
    case = build(name)
    trace = run(case)
    gc.collect()
    (call,) = trace.calls
    assert call.receiver_name == naming.describe_receiver(case.wrong)[0]

    assert trace.assert_called(case.right) == [call]
    assert trace.assert_called_once(case.right) is call
    assert calls_of(trace, case.right) == [call]
    assert trace.find(receiver=case.right) == [call]
    with pytest.raises(SignalTraceAssertionError):
        trace.assert_not_called(case.right)

    with pytest.raises(SignalTraceAssertionError) as info:
        trace.assert_called(case.wrong)
    assert str(info.value).splitlines()[0] == (
        f"Expected {call.receiver_name} to be called, but it was not called."
    )
    assert trace.assert_not_called(case.wrong) is trace
    assert calls_of(trace, case.wrong) == []
    assert trace.find(receiver=case.wrong) == []


@pytest.mark.parametrize("name", ["bound method", "partial", "callable instance"])
def test_the_issue_examples(name):
    """The reported cases: b.on_save, another partial, another CallableReceiver()."""
    case = build(name)
    trace = run(case)
    with pytest.raises(SignalTraceAssertionError):
        trace.assert_called(case.wrong)
    trace.assert_not_called(case.wrong)


def test_identity_survives_closing_the_trace():
    """Function receivers are resolved to labels at close; their identity is kept."""
    case = build("function")
    trace = run(case)
    assert trace.closed
    trace.assert_called(case.right)
    trace.assert_not_called(case.wrong)


def test_identity_while_the_trace_is_open():
    """Assertions on an open trace (the pytest fixture's) match by identity too."""
    a, b = Notifier(), Notifier()
    signal = Signal()
    signal.connect(a.on_save)
    with signaltrace.capture() as trace:
        signal.send(sender=None)
        trace.assert_called(a.on_save)
        trace.assert_not_called(b.on_save)


def test_receivers_are_not_kept_alive():
    """The trace holds weak references only: a receiver can die after it ran."""
    signal = Signal()
    a = Notifier()
    signal.connect(a.on_save)
    with signaltrace.capture() as trace:
        signal.send(sender=None)
    ref = weakref.ref(a)
    del a
    gc.collect()
    assert ref() is None
    (call,) = trace.calls
    assert call.receiver_name == f"{MODULE}.Notifier.on_save"
    trace.assert_not_called(Notifier().on_save)
    trace.assert_called(f"{MODULE}.Notifier.on_save")


def test_a_function_does_not_match_a_bound_method_of_it():
    """Notifier.on_save (the function) is not a.on_save; the name matches both."""
    a = Notifier()
    signal = Signal()
    signal.connect(a.on_save)
    with signaltrace.capture() as trace:
        signal.send(sender=None)
    trace.assert_not_called(Notifier.on_save)
    trace.assert_called(f"{MODULE}.Notifier.on_save")


class TestNames:
    @pytest.fixture
    def trace(self):
        """a.on_save, b.on_save and Other().on_save ran, once each."""
        a, b, other = Notifier(), Notifier(), Other()
        signal = Signal()
        for receiver in (a.on_save, b.on_save, other.on_save):
            signal.connect(receiver)
        with signaltrace.capture() as trace:
            signal.send(sender=None)
        return trace

    def test_names_match_every_object_of_that_name(self, trace):
        """A dotted name, or a short one that ends one dotted name only, matches by name."""
        assert len(trace.assert_called(f"{MODULE}.Notifier.on_save", times=2)) == 2
        assert len(trace.find(receiver=f"{MODULE}.Notifier.on_save")) == 2
        assert len(trace.assert_called("Notifier.on_save", times=2)) == 2
        assert len(calls_of(trace, "Other.on_save")) == 1
        with pytest.raises(SignalTraceAssertionError) as info:
            trace.assert_not_called("Other.on_save")
        assert str(info.value).splitlines()[0] == (
            f"Expected {MODULE}.Other.on_save not to be called, but it was called once (line 4)."
        )

    def test_an_ambiguous_short_name_fails(self, trace):
        """A short name that ends two dotted names fails, listing them."""
        message = (
            "The receiver name 'on_save' is ambiguous: it matches "
            f"{MODULE}.Notifier.on_save (lines 2 and 3) and {MODULE}.Other.on_save (line 4). "
            "Give the dotted name or the receiver object."
        )
        for check in (trace.assert_called, trace.assert_not_called, trace.assert_called_once):
            with pytest.raises(SignalTraceAssertionError) as info:
                check("on_save")
            assert str(info.value).splitlines()[0] == message
            assert info.value.trace is trace
        with pytest.raises(SignalTraceAssertionError, match="is ambiguous"):
            trace.assert_order("on_save", f"{MODULE}.Other.on_save")
        with pytest.raises(ValueError, match="'on_save' is ambiguous"):
            trace.find(receiver="on_save")
        with pytest.raises(ValueError, match="'on_save' is ambiguous"):
            calls_of(trace, "on_save")

    def test_order_of_two_instances(self):
        """assert_order() tells two instances of one method apart."""
        a, b = Notifier(), Notifier()
        signal = Signal()
        signal.connect(b.on_save)
        signal.connect(a.on_save)
        with signaltrace.capture() as trace:
            signal.send(sender=None)
        first, second = trace.assert_order(b.on_save, a.on_save)
        assert first.start_ns < second.start_ns
        with pytest.raises(SignalTraceAssertionError) as info:
            trace.assert_order(a.on_save, b.on_save)
        assert str(info.value).splitlines()[0] == (
            f"Expected {MODULE}.Notifier.on_save to run before {MODULE}.Notifier.on_save, "
            f"but it first ran at line 3, after {MODULE}.Notifier.on_save at line 2."
        )
        with pytest.raises(ValueError, match="two or more different receivers"):
            trace.assert_order(a.on_save, a.on_save)
        with pytest.raises(ValueError, match="two or more different receivers"):
            trace.assert_order(a.on_save, f"{MODULE}.Notifier.on_save")


class TestIdentityHints:
    def test_another_instance_ran(self):
        """The hint says the namesake ran, bound to another object."""
        a, b = Notifier(), Notifier()
        signal = Signal()
        signal.connect(a.on_save)
        with signaltrace.capture() as trace:
            signal.send(sender=None)
        with pytest.raises(SignalTraceAssertionError) as info:
            trace.assert_called(b.on_save)
        assert info.value.hints == [
            f"{MODULE}.Notifier.on_save ran (line 2), but bound to another object than the "
            "method you passed: a bound method matches calls on its own object only. Pass "
            f"'{MODULE}.Notifier.on_save' to match calls on any object."
        ]

    def test_another_instance_matched_the_filters(self):
        """Its own call did not match; another instance's did: both are said."""
        a, b = Notifier(), Notifier()
        signal = Signal()
        signal.connect(a.on_save)
        with signaltrace.capture() as trace:
            signal.send(sender=None, n=1)
            signal.disconnect(a.on_save)
            signal.connect(b.on_save)
            signal.send(sender=None, n=2)
        with pytest.raises(SignalTraceAssertionError) as info:
            trace.assert_called(b.on_save, n=1)
        assert str(info.value).splitlines()[0] == (
            f"Expected {MODULE}.Notifier.on_save to be called with n=1, but its call did not match."
        )
        assert info.value.hints == [
            f"{MODULE}.Notifier.on_save ran with n=2 (line 4); expected n=1.",
            f"{MODULE}.Notifier.on_save ran (line 2), but bound to another object than the "
            "method you passed: a bound method matches calls on its own object only. Pass "
            f"'{MODULE}.Notifier.on_save' to match calls on any object.",
        ]

    def test_another_object_ran(self):
        """The same for a callable object, a partial or a function of the same name."""
        mine, other = CallableReceiver(), CallableReceiver()
        signal = Signal()
        signal.connect(mine)
        with signaltrace.capture() as trace:
            signal.send(sender=None)
        with pytest.raises(SignalTraceAssertionError) as info:
            trace.assert_called(other)
        assert info.value.hints == [
            f"{MODULE}.CallableReceiver.__call__ ran (line 2), but as another object than the "
            "one you passed: a receiver given as an object matches only itself. Pass "
            f"'{MODULE}.CallableReceiver.__call__' to match any receiver of that name."
        ]

    def test_connected_hints_look_at_the_object(self):
        """A namesake connected to the signal is not taken for the receiver passed."""
        a, b = Notifier(), Notifier()
        signal = Signal()
        signal.connect(a.on_save)
        with signaltrace.capture() as trace:
            pass
        with pytest.raises(SignalTraceAssertionError) as info:
            trace.assert_called(b.on_save, signal=signal)
        label = naming.signal_label(signal)[0]
        assert info.value.hints == [
            f"{MODULE}.Notifier.on_save is not connected to {label}, but another object of "
            f"that name is, to {label}: a receiver given as an object matches only itself "
            f"(a bound method, its own object's). Pass '{MODULE}.Notifier.on_save' to match "
            "by name."
        ]
        with pytest.raises(SignalTraceAssertionError) as info:
            trace.assert_called(a.on_save, signal=signal)
        assert info.value.hints == [f"{label} was not sent."]
