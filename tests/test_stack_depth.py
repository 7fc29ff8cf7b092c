"""Receivers run at exactly the stack depth plain Django (and blinker) give them.

signaltrace replaces the send methods on the class; the promise is that a
receiver cannot tell: it is called from the same number of frames, so
``warnings.warn(stacklevel=...)``, ``inspect.stack()`` based code and
recursion limits behave as without signaltrace. Each test dispatches one fresh
signal four times: with signaltrace uninstalled (Django's and blinker's own
functions), installed but idle, installed with ``METRICS`` on (its own
untraced timing loop), and installed inside an open ``capture()``; async sends
a fifth time, inside an ``async with capture()`` opened in the event loop.
Receivers are functions (sync, async, both) and a bound method (which the
recording loops call with one keyword dict, see ``signaltrace._send``).

The depth is counted from the receiver's own frame along ``f_back``: for a
receiver in the test's thread up to pytest's entry point, in a worker thread
(``sync_to_async``) or an event loop thread (``async_to_sync``) up to the
thread's bootstrap, and for a receiver running as an asyncio task up to the
event loop's frames. Async dispatches run one ``asyncio.run`` per measurement,
so each mode gets the same event loop shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import blinker
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.dispatch import Signal
from django.test import override_settings

import signaltrace

MODES = ("uninstalled", "idle", "metrics", "capturing")


@dataclass
class Probe:
    """What the receivers saw: their depth and frame chain, keyed by receiver."""

    warn: bool
    depths: dict[str, int] = field(default_factory=dict)
    chains: dict[str, list[str]] = field(default_factory=dict)

    def record(self, name: str, frame: FrameType | None) -> None:
        chain = []
        while frame is not None:
            code = frame.f_code
            chain.append(f"{os.path.basename(code.co_filename)}:{frame.f_lineno}:{code.co_name}")
            frame = frame.f_back
        self.depths[name] = len(chain)
        self.chains[name] = chain

    def receivers(self, kind: str) -> list[Callable[..., Any]]:
        probe = self

        def sync_receiver(*args: Any, **kwargs: Any) -> str:
            probe.record("sync", sys._getframe())
            if probe.warn:
                # 1: this receiver, 2: the send method, 3: whoever called send.
                warnings.warn("from a receiver", UserWarning, stacklevel=3)
            return "sync-result"

        async def async_receiver(*args: Any, **kwargs: Any) -> str:
            probe.record("async", sys._getframe())
            return "async-result"

        class Holder:
            def method_receiver(self, *args: Any, **kwargs: Any) -> str:
                probe.record("method", sys._getframe())
                return "method-result"

        return {
            "sync": [sync_receiver],
            "async": [async_receiver],
            "both": [sync_receiver, async_receiver],
            "method": [Holder().method_receiver],  # the recording loops' _call_with
        }[kind]


# -- the dispatches --------------------------------------------------------
# Each is called the same way in every mode; the sync ones make their send call
# on the line after the ``def`` (checked against the warning's location). The
# async ones run one event loop per call, with ``context`` entered around the
# send inside it: ``nullcontext()``, or ``capture()`` for "capturing-async".


def django_send(signal: Any) -> Any:
    return signal.send(sender=None)


def django_send_robust(signal: Any) -> Any:
    return signal.send_robust(sender=None)


def django_asend(signal: Any, context: Any) -> Any:
    async def main() -> Any:
        async with context as trace:
            responses = await signal.asend(sender=None)
        return responses, trace

    return asyncio.run(main())


def django_asend_robust(signal: Any, context: Any) -> Any:
    async def main() -> Any:
        async with context as trace:
            responses = await signal.asend_robust(sender=None)
        return responses, trace

    return asyncio.run(main())


def blinker_send(signal: Any) -> Any:
    return signal.send(None, _async_wrapper=async_to_sync)


def blinker_send_async(signal: Any, context: Any) -> Any:
    async def main() -> Any:
        async with context as trace:
            responses = await signal.send_async(None, _sync_wrapper=sync_to_async)
        return responses, trace

    return asyncio.run(main())


@dataclass(frozen=True)
class Method:
    cls: type
    name: str
    dispatch: Callable[[Any], Any]
    is_sync: bool
    original_module: str

    def __str__(self) -> str:
        return f"{self.cls.__module__.split('.')[0]}.{self.name}"

    def new_signal(self) -> Any:
        return self.cls()

    def is_originals(self) -> bool:
        """Whether the class holds the library's own function (signaltrace uninstalled)."""
        return self.cls.__dict__[self.name].__module__ == self.original_module


METHODS = [
    Method(Signal, "send", django_send, True, "django.dispatch.dispatcher"),
    Method(Signal, "send_robust", django_send_robust, True, "django.dispatch.dispatcher"),
    Method(Signal, "asend", django_asend, False, "django.dispatch.dispatcher"),
    Method(Signal, "asend_robust", django_asend_robust, False, "django.dispatch.dispatcher"),
    Method(blinker.Signal, "send", blinker_send, True, "blinker.base"),
    Method(blinker.Signal, "send_async", blinker_send_async, False, "blinker.base"),
]


@dataclass
class Measurement:
    probe: Probe
    responses: list[tuple[str, Any]]
    warnings: list[tuple[str, int]]
    calls: int | None = None


def modes(method: Method) -> tuple[str, ...]:
    """The modes to compare: async sends are also traced by a capture opened in the loop."""
    return MODES if method.is_sync else (*MODES, "capturing-async")


def run(method: Method, signal: Any, context: Any = None) -> tuple[Any, Any]:
    """Dispatch once; returns the responses and the trace of an in-loop ``capture()``."""
    if method.is_sync:
        return method.dispatch(signal), None
    return method.dispatch(signal, contextlib.nullcontext() if context is None else context)


def measure(method: Method, signal: Any, kind: str, mode: str) -> Measurement:
    """Dispatch ``signal`` once in ``mode`` and return what the receivers saw."""
    probe = Probe(warn=method.is_sync)
    receivers = probe.receivers(kind)  # kept alive for the weak references
    for receiver in receivers:
        signal.connect(receiver)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if mode == "uninstalled":
                signaltrace.uninstall()
                try:
                    assert not signaltrace.is_installed()
                    assert method.is_originals()
                    responses, trace = run(method, signal)
                finally:
                    signaltrace.install()
            elif mode == "idle":
                assert signaltrace.is_installed()
                assert not method.is_originals()
                responses, trace = run(method, signal)
            elif mode == "metrics":
                assert not method.is_originals()
                with override_settings(SIGNALTRACE={"ENABLED": True, "METRICS": True}):
                    responses, trace = run(method, signal)
            elif mode == "capturing":
                assert not method.is_originals()
                with signaltrace.capture() as trace:
                    responses, _ = run(method, signal)
            else:
                assert not method.is_originals()
                responses, trace = run(method, signal, signaltrace.capture())
    finally:
        for receiver in receivers:
            signal.disconnect(receiver)
    assert signaltrace.is_installed()
    return Measurement(
        probe,
        sorted((receiver.__name__, response) for receiver, response in responses),
        [(os.path.basename(w.filename), w.lineno) for w in caught],
        None if trace is None else len(trace.calls),
    )


def chains(results: dict[str, Measurement], name: str) -> str:
    return "\n".join(
        f"{mode} ({len(m.probe.chains[name])} frames):\n    " + "\n    ".join(m.probe.chains[name])
        for mode, m in results.items()
    )


@pytest.fixture(autouse=True)
def _restores_installed():
    """Each test leaves signaltrace installed, as the test settings have it."""
    assert signaltrace.is_installed()
    yield
    assert signaltrace.is_installed()


@pytest.mark.parametrize("kind", ["sync", "async", "both", "method"])
@pytest.mark.parametrize("method", METHODS, ids=str)
def test_receiver_stack_depth_is_unchanged(method, kind):
    """A receiver runs at the same frame depth uninstalled, installed-idle and capturing.

    (For the async sends, also capturing with ``async with`` inside the loop.)
    Covers every hooked method with sync receivers, async receivers and both:
    Django's ``send``/``send_robust`` run async receivers through
    ``async_to_sync``, ``asend``/``asend_robust`` run sync receivers through
    ``sync_to_async``, blinker's ``send``/``send_async`` through the given
    ``_async_wrapper``/``_sync_wrapper``. The responses are the same in every
    mode, and the capture really recorded every call (so the traced path ran).
    """
    signal = method.new_signal()
    results = {mode: measure(method, signal, kind, mode) for mode in modes(method)}
    expected_names = {
        "sync": ["sync"],
        "async": ["async"],
        "both": ["sync", "async"],
        "method": ["method"],
    }[kind]
    for name in expected_names:
        depths = {mode: m.probe.depths.get(name) for mode, m in results.items()}
        assert None not in depths.values(), f"{name} receiver did not run: {depths}"
        assert len(set(depths.values())) == 1, (
            f"{method} with a {name} receiver: depths differ {depths}\n" + chains(results, name)
        )
    responses = {mode: m.responses for mode, m in results.items()}
    assert len({repr(r) for r in responses.values()}) == 1, responses
    assert {mode: m.calls for mode, m in results.items()} == {
        mode: None if mode in ("uninstalled", "idle", "metrics") else len(expected_names)
        for mode in results
    }


@pytest.mark.parametrize("method", [m for m in METHODS if m.is_sync], ids=str)
def test_warning_stacklevel_points_at_the_caller_of_send(method):
    """``warnings.warn(stacklevel=3)`` in a receiver reports the same place in every mode.

    Level 3 is the code that called the send method, so in each mode it is
    this module's dispatch function, on the line that calls ``send``: no frame
    is added or removed between the receiver and the caller of ``send``.
    """
    signal = method.new_signal()
    results = {mode: measure(method, signal, "sync", mode) for mode in MODES}
    locations = {mode: m.warnings for mode, m in results.items()}
    expected = [(os.path.basename(__file__), method.dispatch.__code__.co_firstlineno + 1)]
    assert locations == dict.fromkeys(MODES, expected)
