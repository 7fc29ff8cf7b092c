"""The hook is transparent: Django behaves exactly as without signaltrace."""

from __future__ import annotations

import gc
import inspect
import logging
import sys
import warnings
import weakref

import pytest
from django.dispatch import Signal, dispatcher

import signaltrace
from signaltrace import _send, hook


def receiver_a(sender, **kwargs):
    return "a"


def receiver_b(sender, **kwargs):
    return "b"


def failing(sender, **kwargs):
    raise ValueError("boom")


@pytest.fixture
def signal():
    sig = Signal()
    yield sig
    sig.receivers.clear()


class TestInstall:
    def test_uninstall_restores_django_functions(self):
        """uninstall() puts back the very same function objects."""
        originals = {name: Signal.__dict__[name] for name in ("send", "send_robust")}
        signaltrace.uninstall()
        try:
            plain = {name: Signal.__dict__[name] for name in originals}
            assert plain["send"] is not originals["send"]
            assert plain["send"].__module__ == "django.dispatch.dispatcher"
            assert Signal.send is dispatcher.Signal.send
            assert not signaltrace.is_installed()
        finally:
            signaltrace.install()
        assert Signal.__dict__["send"] is _send.send
        assert signaltrace.is_installed()

    def test_install_is_idempotent(self):
        """A second install() keeps Django's originals, not the hook, for uninstall."""
        signaltrace.install()
        signaltrace.install()
        signaltrace.uninstall()
        try:
            assert Signal.send.__module__ == "django.dispatch.dispatcher"
            assert Signal.asend_robust.__module__ == "django.dispatch.dispatcher"
        finally:
            signaltrace.install()

    def test_uninstall_twice(self):
        """uninstall() when not installed does nothing."""
        signaltrace.uninstall()
        signaltrace.uninstall()
        assert not signaltrace.is_installed()

    def test_blinker_can_be_left_alone(self):
        """install(blinker=False) leaves blinker's methods untouched."""
        import blinker

        signaltrace.uninstall()
        try:
            signaltrace.install(blinker=False)
            assert blinker.Signal.send.__module__ == "blinker.base"
        finally:
            signaltrace.uninstall()
            signaltrace.install()
        from signaltrace import _blinker

        assert blinker.Signal.send is _blinker.blinker_send


@pytest.mark.parametrize("capturing", [False, True], ids=["idle", "capturing"])
class TestTransparency:
    def _run(self, capturing, func):
        if capturing:
            with signaltrace.capture() as trace:
                result = func()
            return result, trace
        return func(), None

    def test_responses_hold_original_receivers(self, signal, capturing):
        """(receiver, response) pairs hold the receivers themselves, in order."""
        signal.connect(receiver_a)
        signal.connect(receiver_b)
        responses, trace = self._run(capturing, lambda: signal.send(sender=self))
        assert responses == [(receiver_a, "a"), (receiver_b, "b")]
        assert responses[0][0] is receiver_a
        if trace:
            assert [c.receiver_name for c in trace.calls] == [
                "tests.test_hook.receiver_a",
                "tests.test_hook.receiver_b",
            ]

    def test_exception_is_the_same_object(self, signal, capturing):
        """send() propagates the receiver's exception object itself."""
        error = ValueError("mine")

        def raiser(sender, **kwargs):
            raise error

        signal.connect(raiser)
        signal.connect(receiver_a)
        with pytest.raises(ValueError, match="mine") as info:
            self._run(capturing, lambda: signal.send(sender=None))
        assert info.value is error

    def test_send_robust_returns_error_and_logs(self, signal, capturing, caplog):
        """send_robust() returns the error object and logs as Django does."""
        signal.connect(failing)
        signal.connect(receiver_a)
        with caplog.at_level(logging.ERROR, logger="django.dispatch"):
            responses, trace = self._run(capturing, lambda: signal.send_robust(sender=None))
        assert responses[0][0] is failing
        assert isinstance(responses[0][1], ValueError)
        assert responses[1] == (receiver_a, "a")
        assert [r.getMessage() for r in caplog.records] == [
            "Error calling failing in Signal.send_robust() (boom)"
        ]
        assert caplog.records[0].exc_info[1] is responses[0][1]
        if trace:
            call = trace.calls[0]
            assert call.outcome == "raised"
            assert call.swallowed
            assert str(call.error) == "ValueError: boom"

    def test_stack_depth_is_unchanged(self, signal, capturing):
        """The receiver runs at the same depth, so stacklevel-based code is unchanged."""
        depths = []
        locations = []

        def probe(sender, **kwargs):
            depths.append(len(inspect.stack(0)))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                warnings.warn("where", UserWarning, stacklevel=3)
            locations.append((caught[0].filename, caught[0].lineno))

        signal.connect(probe)

        def send_here():
            return signal.send(sender=None)

        signaltrace.uninstall()
        try:
            self._run(False, send_here)
        finally:
            signaltrace.install()
        self._run(capturing, send_here)
        assert depths[0] == depths[1]
        assert locations[0] == locations[1]
        assert locations[0][0] == __file__

    def test_weak_receivers_still_die(self, signal, capturing):
        """A trace never keeps a weakly connected receiver alive."""

        def make():
            def temporary(sender, **kwargs):
                return "t"

            return temporary

        temporary = make()
        signal.connect(temporary)
        ref = weakref.ref(temporary)
        responses, trace = self._run(capturing, lambda: signal.send(sender=None))
        del temporary, responses
        gc.collect()
        assert ref() is None
        assert signal.send(sender=None) == []
        if trace:
            assert trace.calls[0].receiver_name.endswith("make.<locals>.temporary")

    def test_receivers_cache_is_unchanged(self, capturing):
        """sender_receivers_cache is filled exactly as without signaltrace."""
        caching = Signal(use_caching=True)

        class Sender:
            pass

        caching.connect(receiver_a, sender=Sender)
        self._run(capturing, lambda: caching.send(sender=Sender))
        self._run(capturing, lambda: caching.send(sender=object))
        assert caching.sender_receivers_cache.get(object) is dispatcher.NO_RECEIVERS
        assert len(caching.sender_receivers_cache[Sender]) == 1

    def test_signal_subclass_created_after_install(self, capturing):
        """Signals (and subclasses) created after install() are traced."""

        class MySignal(Signal):
            pass

        late = MySignal()
        late.connect(receiver_a)
        responses, trace = self._run(capturing, lambda: late.send(sender=None))
        assert responses == [(receiver_a, "a")]
        if trace:
            assert len(trace.calls) == 1


class TestFailureContainment:
    def test_labelling_failure_never_reaches_the_app(self, signal, monkeypatch, caplog):
        """If recording fails, the dispatch still happens and the error is logged once."""
        from signaltrace import _hotpath as _record

        def broken(sender):
            raise RuntimeError("labelling broke")

        monkeypatch.setattr(_record, "_sender_label", broken)
        monkeypatch.setattr(_record._ctx, "_logged", set())
        signal.connect(receiver_a)
        with caplog.at_level(logging.WARNING, logger="signaltrace"), signaltrace.capture() as trace:
            assert signal.send(sender=None) == [(receiver_a, "a")]
            assert signal.send(sender=None) == [(receiver_a, "a")]
        assert trace.calls == []
        messages = [r.getMessage() for r in caplog.records if r.name == "signaltrace"]
        assert messages == [
            "signaltrace: internal error in open_dispatch; recording continues without it."
        ]


def test_module_is_hook():
    """The methods on Signal are signaltrace's while installed."""
    assert Signal.send is _send.send
    assert sys.modules["signaltrace.hook"] is hook
