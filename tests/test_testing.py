"""signaltrace.testing: assertions on traces, failure messages, near-miss hints, the mixin."""

from __future__ import annotations

import asyncio
import gc
import importlib
import re
import sys
import unittest
from unittest import mock

import blinker
import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.db.models.signals import post_delete, post_init, post_save, pre_delete
from django.dispatch import Signal
from django.test import TestCase

import signaltrace
from signaltrace import testing
from signaltrace.assertions import hints, lookup
from signaltrace.assertions import text as assertion_text
from signaltrace.testing import (
    DeferredAssertion,
    SignalTraceAssertionError,
    SignalTraceTestMixin,
    assert_called,
    assert_called_once,
    assert_no_errors,
    assert_not_called,
    assert_not_sent,
    assert_order,
    assert_sent,
    calls_of,
)
from tests.testapp.models import Profile, Tag
from tests.testapp.signals import backup_user_data, create_user_profile, save_user_profile

CREATE = "tests.testapp.signals.create_user_profile"
SAVE = "tests.testapp.signals.save_user_profile"
BACKUP = "tests.testapp.signals.backup_user_data"

local_signal = Signal()
other_signal = Signal()
blinker_signal = blinker.Signal()


class SenderClass:
    """A non-model sender."""


class Handler:
    def method(self, sender, **kwargs):
        """A method receiver (never connected)."""

    @staticmethod
    def static(sender, **kwargs):
        """A static method receiver (never connected)."""


class CallableReceiver:
    def __call__(self, sender, **kwargs):
        """A callable object receiver (never connected)."""


def lonely(sender, **kwargs):
    """Never connected."""


def on_local(sender, **kwargs):
    return "local"


def on_other(sender, **kwargs):
    return "other"


def explode(sender, **kwargs):
    raise ValueError("nope")


def blinker_receiver(sender, **kwargs):
    """Connected to a blinker signal that is never sent."""


def failure(func, *args, **kwargs) -> SignalTraceAssertionError:
    with pytest.raises(SignalTraceAssertionError) as info:
        func(*args, **kwargs)
    return info.value


@pytest.fixture
def no_origin(settings):
    """Trees without origins, so exact texts do not depend on this file's line numbers."""
    settings.SIGNALTRACE = {"ENABLED": True, "RECORD_ORIGIN": False}


@pytest.fixture
def user_trace(db, no_origin):
    """Create, save and delete a user: post_save twice (created True/False), pre_delete."""
    with signaltrace.capture() as trace:
        user = User.objects.create(pk=7, username="ann")
        user.save()
        user.delete()
    return trace


@pytest.fixture
def connected():
    """Connect on_local to local_signal (any sender) and on_other to other_signal (User)."""
    local_signal.connect(on_local)
    other_signal.connect(on_other, sender=User)
    yield
    local_signal.disconnect(on_local)
    other_signal.disconnect(on_other, sender=User)


def tree(trace) -> str:
    """The numbered tree a failure message shows."""
    return trace.render(numbered=True)


class TestNumbering:
    def test_line_numbers_match_the_rendered_tree(self, user_trace):
        """The line numbers in messages are those of trace.render(numbered=True)."""
        rendered = tree(user_trace).splitlines()
        lines = assertion_text.numbering(user_trace)
        records = [*user_trace.dispatches, *user_trace.calls]
        assert sorted(lines[id(r)] for r in records) == list(range(1, 9))
        for record in records:
            number, text = rendered[lines[id(record)]].split(". ", 1)
            assert int(number) == lines[id(record)]
            name = getattr(record, "receiver_name", None) or record.signal_name
            assert name in text


class TestCallsOf:
    def test_filters_by_receiver_signal_sender_and_kwargs(self, user_trace):
        """calls_of() keeps the calls matching every filter, receivers as objects or paths."""
        assert len(calls_of(user_trace, create_user_profile)) == 2
        assert len(calls_of(user_trace, CREATE, signal=post_save, sender=User)) == 2
        assert len(calls_of(user_trace, create_user_profile, signal="pre_save")) == 0
        assert len(calls_of(user_trace, create_user_profile, sender="testapp.Profile")) == 0
        (call,) = calls_of(user_trace, create_user_profile, created=True)
        assert call.dispatch.kwargs["created"] is True
        assert user_trace.calls_of(BACKUP, signal="django.db.models.signals.pre_delete")

    def test_model_instances_and_classes_match_their_labels(self, user_trace):
        """An instance matches ``app.Model pk=N``; a class its label; a string as recorded."""
        user = User(pk=7, username="ann")
        assert len(calls_of(user_trace, save_user_profile, instance=user)) == 2
        assert len(calls_of(user_trace, save_user_profile, instance="auth.User pk=7")) == 2
        assert not calls_of(user_trace, save_user_profile, instance=User(pk=8))
        assert len(calls_of(user_trace, save_user_profile, using="default")) == 2

    def test_any_bools_and_missing_kwargs(self, user_trace):
        """mock.ANY matches any recorded value; 1 is not True; a missing kwarg never matches."""
        assert len(calls_of(user_trace, save_user_profile, created=mock.ANY)) == 2
        assert not calls_of(user_trace, save_user_profile, created=1)
        assert not calls_of(user_trace, backup_user_data, created=mock.ANY)
        assert len(calls_of(user_trace, save_user_profile, update_fields=None)) == 2

    def test_collections_are_compared_as_recorded(self, db, no_origin):
        """Sets are recorded as sorted lists, so a set, tuple or list matches."""
        with signaltrace.capture() as trace:
            user = User.objects.create(pk=7, username="ann")
            user.save(update_fields={"username", "email"})
        expected = ["email", "username"]
        assert calls_of(trace, save_user_profile, update_fields={"email", "username"})
        assert calls_of(trace, save_user_profile, update_fields=expected)
        assert calls_of(trace, save_user_profile, update_fields=("email", "username"))


class TestAssertCalled:
    def test_returns_the_matching_calls(self, user_trace):
        """assert_called() returns the calls; times= checks their number."""
        calls = assert_called(user_trace, create_user_profile, sender=User, created=True)
        assert [c.receiver_name for c in calls] == [CREATE]
        assert len(user_trace.assert_called(SAVE, times=2)) == 2
        assert (
            user_trace.assert_called_once(create_user_profile, created=False)
            is calls_of(user_trace, create_user_profile, created=False)[0]
        )
        assert assert_called_once(user_trace, backup_user_data).receiver_name == BACKUP

    def test_wrong_kwarg_full_message(self, user_trace):
        """The message: expectation, numbered tree, then the near miss."""
        err = failure(user_trace.assert_called, create_user_profile, created=True, times=2)
        assert str(err) == (
            f"Expected {CREATE} to be called 2 times with created=True, "
            "but it was called once (line 2).\n"
            "\n"
            "Captured signal trace:\n"
            f"{tree(user_trace)}\n"
            "\n"
            f"Hint: {CREATE} ran with created=False (line 5); expected created=True."
        )
        assert err.trace is user_trace
        assert err.hints == [f"{CREATE} ran with created=False (line 5); expected created=True."]

    def test_another_sender(self, user_trace):
        """A receiver that ran for another sender says which, and where."""
        err = failure(user_trace.assert_called, create_user_profile, sender=Profile)
        assert str(err).startswith(
            f"Expected {CREATE} to be called with sender=testapp.Profile, "
            "but none of its 2 calls matched.\n\nCaptured signal trace:\n"
        )
        assert err.hints == [
            f"{CREATE} ran for sender=auth.User (lines 2 and 5); expected sender=testapp.Profile."
        ]

    def test_another_signal(self, user_trace):
        """A receiver that ran for another signal says which."""
        err = failure(user_trace.assert_called, backup_user_data, signal=post_delete)
        assert str(err).startswith(
            f"Expected {BACKUP} to be called for post_delete, but its call did not match."
        )
        assert err.hints == [f"{BACKUP} ran for pre_delete (line 8); expected post_delete."]

    def test_several_differing_kwargs_and_missing_ones(self, user_trace):
        """Each distinct difference is one hint; missing kwargs are named as missing."""
        err = failure(
            user_trace.assert_called, save_user_profile, created=None, using="other", raw=mock.ANY
        )
        assert err.hints == [
            f"{SAVE} ran with created=True, using='default' (line 3); "
            "expected created=None, using='other'.",
            f"{SAVE} ran with created=False, using='default' (line 6); "
            "expected created=None, using='other'.",
        ]
        err = failure(user_trace.assert_called, backup_user_data, created=True, origin=User(pk=8))
        assert err.hints == [
            f"{BACKUP} ran with origin='auth.User pk=7' and without created (line 8); "
            "expected created=True, origin='auth.User pk=8'."
        ]
        err = failure(user_trace.assert_called, backup_user_data, created=True)
        assert err.hints == [f"{BACKUP} ran without created (line 8); expected created=True."]

    def test_expected_instances_are_shown_as_labels(self, user_trace):
        """The expectation shows a model instance the way the trace records it."""
        err = failure(user_trace.assert_called, backup_user_data, instance=User(pk=8))
        assert str(err).splitlines()[0] == (
            f"Expected {BACKUP} to be called with instance='auth.User pk=8', "
            "but its call did not match."
        )

    def test_too_few_calls(self, user_trace):
        """times= larger than the matches reports the matches it found."""
        err = failure(assert_called, user_trace, save_user_profile, times=3)
        assert str(err).splitlines()[0] == (
            f"Expected {SAVE} to be called 3 times, but it was called 2 times (lines 3 and 6)."
        )
        assert err.hints == []

    def test_called_once(self, user_trace):
        """assert_called_once() fails on two calls."""
        err = failure(user_trace.assert_called_once, save_user_profile, sender="auth.User")
        assert str(err).splitlines()[0] == (
            f"Expected {SAVE} to be called once with sender=auth.User, "
            "but it was called 2 times (lines 3 and 6)."
        )

    @pytest.mark.parametrize("times", [-1, 1.0, True])
    def test_bad_times(self, user_trace, times):
        """times must be a non-negative int."""
        with pytest.raises(ValueError, match="times must be a non-negative int"):
            user_trace.assert_called(save_user_profile, times=times)
        with pytest.raises(ValueError, match="times must be a non-negative int"):
            user_trace.assert_sent(post_save, times=times)

    def test_times_zero(self, user_trace):
        """times=0 is allowed and means not called."""
        assert user_trace.assert_called(lonely, times=0) == []


class TestNotConnectedHints:
    def test_not_connected_at_all(self, user_trace):
        """A receiver connected to nothing gets the AppConfig.ready() advice."""
        err = failure(user_trace.assert_called, lonely)
        assert str(err).splitlines()[0] == (
            "Expected tests.test_testing.lonely to be called, but it was not called."
        )
        assert err.hints == [
            "tests.test_testing.lonely is not connected to any signal: no connect() or @receiver for it has run, "
            "or it was disconnected, or another receiver took its dispatch_uid. Receivers "
            "connect when the module holding their @receiver decorator is imported: import "
            "tests.test_testing in your AppConfig.ready()."
        ]

    def test_not_connected_to_that_signal(self, user_trace):
        """With signal=, the hint names it."""
        err = failure(user_trace.assert_called, lonely, signal=post_save)
        assert err.hints == [
            "tests.test_testing.lonely is not connected to post_save: no connect() or @receiver for it has run, "
            "or it was disconnected, or another receiver took its dispatch_uid. Receivers "
            "connect when the module holding their @receiver decorator is imported: import "
            "tests.test_testing in your AppConfig.ready()."
        ]

    def test_connected_to_other_signals_only(self, user_trace, connected):
        """A receiver connected elsewhere says where."""
        err = failure(user_trace.assert_called, on_other, signal="post_save")
        assert err.hints == [
            "tests.test_testing.on_other is not connected to post_save, "
            "only to other_signal (sender=auth.User)."
        ]
        err = failure(user_trace.assert_called, on_local, signal=post_save)
        assert err.hints == [
            "tests.test_testing.on_local is not connected to post_save, "
            "only to local_signal (any sender)."
        ]

    @pytest.fixture
    def signupapp(self, tmp_path, monkeypatch):
        """A package ``signupapp`` with a ``receivers`` module nobody imports."""
        package = tmp_path / "signupapp"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "receivers.py").write_text("def on_signup(sender, **kwargs):\n    pass\n")
        monkeypatch.syspath_prepend(tmp_path)
        yield package
        for name in ("signupapp", "signupapp.receivers"):
            sys.modules.pop(name, None)

    def test_module_never_imported(self, user_trace, signupapp):
        """A dotted path into a module nobody imported: import it in ready()."""
        hint = (
            "module signupapp.receivers was never imported, so the receivers in it are "
            "not connected. Receivers connect when the module holding their @receiver "
            "decorator is imported: import signupapp.receivers in your AppConfig.ready()."
        )
        assert failure(user_trace.assert_called, "signupapp.receivers.on_signup").hints == [hint]
        importlib.import_module("signupapp")
        assert failure(user_trace.assert_called, "signupapp.receivers.on_signup").hints == [hint]
        err = failure(user_trace.assert_called, "signupapp.receiver.on_signup")
        assert err.hints == [
            "signupapp has no module or attribute receiver; did you mean signupapp.receivers?"
        ]

    def test_module_not_importable(self, user_trace):
        """A path whose top-level package cannot be found is called out."""
        err = failure(user_trace.assert_called, "nowhere_at_all.signals.receiver")
        assert err.hints == [
            "no module named nowhere_at_all can be imported; "
            "give receivers as objects or full dotted paths."
        ]

    def test_attribute_missing(self, user_trace):
        """A typo in a dotted path gets a suggestion when one is close."""
        err = failure(user_trace.assert_called, "tests.testapp.signals.create_user_profil")
        assert err.hints == [
            f"tests.testapp.signals has no attribute create_user_profil; did you mean {CREATE}?"
        ]
        err = failure(user_trace.assert_called, "tests.testapp.signals.zzz")
        assert err.hints == ["tests.testapp.signals has no attribute zzz."]

    def test_short_name(self, user_trace):
        """A short name stands for the one dotted name it ends; messages use the dotted name."""
        (call,) = user_trace.assert_called("create_user_profile", created=False)
        assert call.receiver_name == CREATE
        err = failure(user_trace.assert_called, "signals.create_user_profile", created=None)
        assert str(err).splitlines()[0] == (
            f"Expected {CREATE} to be called with created=None, but none of its 2 calls matched."
        )

    def test_receiver_name_typo(self, user_trace):
        """A misspelt short name gets the closest receiver that ran."""
        err = failure(user_trace.assert_called, "create_user_profle")
        assert err.hints == [
            f"no receiver named create_user_profle ran; did you mean {CREATE} (line 2)?"
        ]

    def test_bare_names_give_no_hint(self, user_trace):
        """A bare name that matches nothing that ran gives no hint."""
        assert failure(user_trace.assert_called, "lonely_name").hints == []

    def test_paths_resolve_without_importing(self, user_trace):
        """A path to an unconnected function is inspected like the function."""
        err = failure(user_trace.assert_called, "tests.test_testing.lonely")
        assert err.hints[0].startswith("tests.test_testing.lonely is not connected to any signal: ")
        err = failure(user_trace.assert_called, "tests.test_testing.Handler.static")
        assert err.hints[0].startswith(
            "tests.test_testing.Handler.static is not connected to any signal: "
        )

    def test_methods_and_callable_objects(self, user_trace):
        """Bound methods and callable objects name their module in the advice."""
        err = failure(user_trace.assert_called, Handler().method)
        assert err.hints[0].startswith(
            "tests.test_testing.Handler.method is not connected to any signal: "
        )
        assert err.hints[0].endswith("import tests.test_testing in your AppConfig.ready().")
        err = failure(user_trace.assert_called, CallableReceiver())
        assert err.hints[0].startswith(
            "tests.test_testing.CallableReceiver.__call__ is not connected to any signal: "
        )
        assert err.hints[0].endswith("import tests.test_testing in your AppConfig.ready().")

    def test_dead_receivers_are_skipped(self, user_trace):
        """A weakly connected receiver that died counts as not connected."""
        signal = Signal()

        def make():
            def ephemeral(sender, **kwargs):
                """Each call makes a new function with the same name."""

            return ephemeral

        signal.connect(make())  # weak, and nothing else holds it
        gc.collect()
        assert [entry[1]() for entry in signal.receivers] == [None]  # still listed, dead
        err = failure(user_trace.assert_called, make(), signal=signal)
        assert err.hints[0].startswith(
            "tests.test_testing.TestNotConnectedHints.test_dead_receivers_are_skipped.<locals>"
            ".make.<locals>.ephemeral is not connected to Signal@0x"
        )

    def test_placeholder_modules_are_skipped(self, user_trace, monkeypatch):
        """``None`` entries in sys.modules do not break the signal scan."""
        monkeypatch.setitem(sys.modules, "signaltrace_test_placeholder", None)
        assert (
            failure(user_trace.assert_called, lonely)
            .hints[0]
            .startswith("tests.test_testing.lonely is not connected to any signal: ")
        )


class TestSenderAndSendHints:
    def test_connected_for_another_sender(self, user_trace):
        """The receiver listens to one sender, the test expected another."""
        err = failure(user_trace.assert_called, backup_user_data, signal=pre_delete, sender=Tag)
        assert err.hints == [
            f"{BACKUP} ran for sender=auth.User (line 8); expected sender=testapp.Tag.",
        ]
        err = failure(user_trace.assert_called, create_user_profile, sender=Tag, created=True)
        assert err.hints == [
            f"{CREATE} ran for sender=auth.User (lines 2 and 5); expected sender=testapp.Tag."
        ]

    def test_receiver_for_another_sender_never_ran(self, db, no_origin, connected):
        """Connected for auth.User only, but the test expected another sender."""
        with signaltrace.capture() as trace:
            other_signal.send(sender=User)
        err = failure(trace.assert_called, on_local, sender=Tag)
        assert err.hints == [
            "local_signal was not sent for sender=testapp.Tag.",
        ]
        other_signal.connect(on_local, sender=Profile)
        try:
            err = failure(trace.assert_called, on_local, signal=other_signal, sender=Tag)
        finally:
            other_signal.disconnect(on_local, sender=Profile)
        assert err.hints == [
            "tests.test_testing.on_local is connected to other_signal for sender=testapp.Profile "
            "only; expected sender=testapp.Tag."
        ]

    def test_signal_sent_for_other_senders_only(self, db, no_origin, connected):
        """The receiver's sender never sent the signal; others did."""
        other_signal.connect(on_local, sender=Profile)
        try:
            with signaltrace.capture() as trace:
                other_signal.send(sender=User)
            err = failure(trace.assert_called, on_local, signal=other_signal)
            assert err.hints == [
                "tests.test_testing.on_local is connected to other_signal for "
                "sender=testapp.Profile only, but other_signal was sent for sender=auth.User "
                "(line 1)."
            ]
            err = failure(trace.assert_called, on_local, signal=other_signal, sender=Profile)
            assert err.hints == [
                "other_signal was not sent for sender=testapp.Profile; "
                "it was sent for sender=auth.User (line 1)."
            ]
        finally:
            other_signal.disconnect(on_local, sender=Profile)

    def test_model_signal_not_sent(self, db, no_origin):
        """A model signal that was not sent reminds of update() and bulk_create()."""
        with signaltrace.capture() as trace:
            User.objects.bulk_create([User(username="ann")])
            User.objects.update(first_name="Ann")
        err = failure(trace.assert_called, create_user_profile, sender=User, created=True)
        assert str(err) == (
            f"Expected {CREATE} to be called with sender=auth.User, created=True, "
            "but it was not called.\n"
            "\n"
            "Captured signal trace:\n"
            f"{tree(trace)}\n"
            "\n"
            "Hint: post_save was not sent for sender=auth.User: bulk_create on auth.User and "
            "update on auth.User skipped it; those operations send no model signals."
        )

    def test_no_bulk_hint_without_a_bulk_operation(self, db, no_origin):
        """Nothing was deleted and no bulk operation ran: the hint says just that."""
        with signaltrace.capture() as trace:
            User.objects.create(username="ann")
        err = failure(trace.assert_called, backup_user_data)
        assert err.hints == ["pre_delete was not sent for sender=auth.User."]
        err = failure(trace.assert_sent, pre_delete)
        assert err.hints == [
            "signaltrace records a dispatch only when it has receivers; set "
            "SIGNALTRACE['RECORD_EMPTY'] = True to record pre_delete sent to no receivers too.",
        ]

    def test_bulk_hint_for_that_model_and_signal_only(self, db, no_origin):
        """An update() on another model, or one that skipped other signals, is not the reason."""
        with signaltrace.capture() as trace:
            User.objects.create(username="ann")
            User.objects.update(first_name="Ann")
        assert trace.skipped
        err = failure(trace.assert_called, backup_user_data)
        assert err.hints == ["pre_delete was not sent for sender=auth.User."]
        err = failure(trace.assert_sent, post_save, sender=Tag)
        assert not any("no model signals" in hint for hint in err.hints)

    def test_plain_signal_not_sent(self, no_origin, connected):
        """A receiver for any sender of a signal that was not sent."""
        with signaltrace.capture() as trace:
            pass
        assert failure(trace.assert_called, on_local).hints == ["local_signal was not sent."]

    def test_receivers_unknown_senders(self, no_origin):
        """A sender Django knows only by id is named as such, as signaltrace_receivers does."""
        local_signal.connect(on_other, sender="a string")
        try:
            with signaltrace.capture() as trace:
                pass
            err = failure(trace.assert_called, on_other, sender=SenderClass)
        finally:
            local_signal.disconnect(on_other, sender="a string")
        assert len(err.hints) == 1
        assert re.fullmatch(
            r"tests\.test_testing\.on_other is connected to local_signal for "
            r"sender=(<unknown sender \d+>|a string) only; "
            r"expected sender=tests\.test_testing\.SenderClass\.",
            err.hints[0],
        ), err.hints

    def test_class_senders_are_labelled(self, no_origin, connected):
        """A class the receiver is connected for is named (also on Django 5.2, without sender_ref)."""
        local_signal.connect(on_other, sender=SenderClass)
        try:
            with signaltrace.capture() as trace:
                local_signal.send(sender="x")
            err = failure(trace.assert_called, on_other, signal=local_signal, sender=SenderClass)
        finally:
            local_signal.disconnect(on_other, sender=SenderClass)
        assert err.hints == [
            "local_signal was not sent for sender=tests.test_testing.SenderClass; "
            "it was sent for sender=x (line 1)."
        ]

    def test_an_earlier_receiver_raised(self, no_origin):
        """send() stops at the first exception; the hint says which receiver raised."""
        local_signal.connect(explode)
        try:
            with signaltrace.capture() as trace, pytest.raises(ValueError, match="nope"):
                local_signal.send(sender=None)
            local_signal.connect(on_local)
            err = failure(trace.assert_called, on_local)
        finally:
            local_signal.disconnect(explode)
            local_signal.disconnect(on_local)
        assert err.hints == [
            "tests.test_testing.explode raised ValueError: nope (line 2), so send() did not "
            "call the receivers after it."
        ]

    def test_connected_later(self, no_origin):
        """A receiver connected after the dispatch."""
        local_signal.connect(on_other)
        try:
            with signaltrace.capture() as trace:
                local_signal.send(sender=None)
            local_signal.connect(on_local)
            err = failure(trace.assert_called, on_local)
        finally:
            local_signal.disconnect(on_other)
            local_signal.disconnect(on_local)
        assert err.hints == [
            "tests.test_testing.on_local is connected to local_signal now, but was not a "
            "receiver when local_signal was sent (line 1); was it connected later?"
        ]

    def test_ignored_signal(self, no_origin):
        """A receiver of an IGNORE_SIGNALS signal: the trace cannot show it."""
        post_init.connect(on_local, sender=Tag)
        try:
            with signaltrace.capture() as trace:
                Tag(name="x")
            err = failure(trace.assert_called, on_local, signal=post_init)
        finally:
            post_init.disconnect(on_local, sender=Tag)
        assert err.hints == [
            "post_init is in SIGNALTRACE['IGNORE_SIGNALS'], so signaltrace never records it."
        ]

    def test_dropped_events(self, no_origin):
        """Events dropped past MAX_EVENTS are mentioned."""
        local_signal.connect(on_local)
        try:
            with signaltrace.capture(max_events=2) as trace:
                for _ in range(3):
                    local_signal.send(sender=None)
        finally:
            local_signal.disconnect(on_local)
        err = failure(trace.assert_called, on_local, sender="x")
        assert err.hints == [
            "tests.test_testing.on_local ran for sender=None (line 2); expected sender=x.",
            "4 events were dropped (MAX_EVENTS=2 reached); what you expect may be among them.",
        ]

    def test_blinker_receivers(self, no_origin):
        """Connections to blinker signals are found too (ANY and specific senders)."""
        blinker_signal.connect(blinker_receiver, sender=SenderClass)
        blinker_signal.connect(blinker_receiver, sender="not weak-referenceable")
        try:
            with signaltrace.capture() as trace:
                pass
            err = failure(trace.assert_called, blinker_receiver, signal=post_save)
        finally:
            blinker_signal.disconnect(blinker_receiver)
        assert err.hints == [
            "tests.test_testing.blinker_receiver is not connected to post_save, only to "
            "blinker_signal (senders not weak-referenceable, tests.test_testing.SenderClass)."
        ]
        blinker_signal.connect(blinker_receiver)
        try:
            err = failure(trace.assert_called, blinker_receiver)
        finally:
            blinker_signal.disconnect(blinker_receiver)
        assert err.hints == ["blinker_signal was not sent."]

    def test_sender_candidates_before_apps_are_ready(self, monkeypatch):
        """Without a ready app registry, only the expected sender can be named."""
        monkeypatch.setattr(apps, "ready", False)
        assert lookup.sender_candidates(User) == {id(User): User}
        assert lookup.sender_candidates("auth.User") == {}
        assert lookup.sender_candidates(None) == {}

    def test_a_failing_hint_never_hides_the_failure(self, user_trace, monkeypatch):
        """Hints are best effort."""

        def broken():
            raise RuntimeError("broken")

        monkeypatch.setattr(hints, "all_signals", broken)
        err = failure(user_trace.assert_called, lonely)
        assert err.hints == []
        assert str(err).startswith("Expected tests.test_testing.lonely to be called")


class TestDidYouMean:
    def test_keyword_typo(self, user_trace):
        """A keyword no call recorded, close to one they did, gets a suggestion."""
        err = failure(user_trace.assert_called, create_user_profile, crated=True)
        assert err.hints == [
            f"{CREATE} ran without crated (lines 2 and 5); expected crated=True.",
            f"crated was never recorded for {CREATE}; did you mean created?",
        ]
        err = failure(user_trace.assert_sent, post_save, crated=True)
        assert err.hints == [
            "post_save was sent without crated (lines 1 and 4); expected crated=True.",
            "crated was never recorded for post_save; did you mean created?",
        ]

    def test_signal_typo(self, user_trace):
        """A signal name that names nothing, close to one that exists, gets a suggestion."""
        err = failure(user_trace.assert_called, create_user_profile, signal="post_sav")
        assert (
            err.hints[-1]
            == "no dispatch or known signal is named post_sav; did you mean post_save?"
        )
        err = failure(user_trace.assert_sent, "post_sav")
        assert err.hints == [
            "no dispatch or known signal is named post_sav; did you mean post_save?"
        ]
        err = failure(user_trace.assert_sent, "django.db.models.signals.pre_delet")
        assert err.hints == [
            "no dispatch or known signal is named django.db.models.signals.pre_delet; "
            "did you mean django.db.models.signals.pre_delete?"
        ]


class TestNearMissLimits:
    def test_many_near_misses_are_cut(self, no_origin):
        """Six near misses are listed, the rest counted."""
        local_signal.connect(on_local)
        try:
            with signaltrace.capture() as trace:
                for n in range(8):
                    local_signal.send(sender=None, n=n)
        finally:
            local_signal.disconnect(on_local)
        err = failure(trace.assert_called, on_local, n=100)
        assert err.hints[-1] == "… and 2 more near misses."
        assert err.hints[0] == (
            "tests.test_testing.on_local ran with n=0 (line 2); expected n=100."
        )
        assert len(err.hints) == 7
        err = failure(trace.assert_not_called, on_local)
        assert str(err).splitlines()[0] == (
            "Expected tests.test_testing.on_local not to be called, but it was called 8 times "
            "(lines 2, 4, 6, 8, 10, 12, 14 and 16)."
        )

    def test_long_trees_are_cut(self, no_origin, monkeypatch):
        """Only MAX_TREE_LINES lines of the tree are shown."""
        monkeypatch.setattr(assertion_text, "MAX_TREE_LINES", 3)
        local_signal.connect(on_local)
        try:
            with signaltrace.capture() as trace:
                for _ in range(3):
                    local_signal.send(sender=None)
        finally:
            local_signal.disconnect(on_local)
        err = failure(trace.assert_not_called, on_local)
        shown = tree(trace).splitlines()[:3]
        assert str(err).split("\n\n")[1].splitlines() == [
            "Captured signal trace:",
            *shown,
            "… 4 more lines (print(trace) shows them all)",
        ]

    def test_redacted_kwargs(self, no_origin):
        """A redacted kwarg cannot be matched, and the hint says so."""
        local_signal.connect(on_local)
        try:
            with signaltrace.capture() as trace:
                local_signal.send(sender=None, password="hunter2")
        finally:
            local_signal.disconnect(on_local)
        err = failure(trace.assert_sent, local_signal, password="hunter2")
        assert err.hints == [
            "local_signal was sent with password='[redacted]' (line 1); "
            "expected password='hunter2'.",
            "password is redacted in traces (SIGNALTRACE['REDACT']), so it cannot be matched.",
        ]
        err = failure(trace.assert_called, on_local, password="hunter2", api_key="k")
        assert err.hints == [
            "tests.test_testing.on_local ran with password='[redacted]' and without api_key "
            "(line 2); expected password='hunter2', api_key='k'.",
            "password is redacted in traces (SIGNALTRACE['REDACT']), so it cannot be matched.",
        ]

    def test_several_redacted_kwargs(self, no_origin):
        """Several redacted kwargs are named together."""
        local_signal.connect(on_local)
        try:
            with signaltrace.capture() as trace:
                local_signal.send(sender=None, password="hunter2", token="t")
        finally:
            local_signal.disconnect(on_local)
        err = failure(trace.assert_sent, local_signal, token="t", password="hunter2")
        assert err.hints[-1] == (
            "password, token are redacted in traces (SIGNALTRACE['REDACT']), "
            "so they cannot be matched."
        )

    def test_line_helpers(self):
        """Long lists of lines are cut; unknown ones (a trace still growing) are left out."""
        assert assertion_text.lines_text(range(1, 11)) == " (lines 1, 2, 3, 4, 5, 6, 7 and 3 more)"
        assert assertion_text.lines_text([None]) == ""
        assert assertion_text.lines_text([None, 3]) == " (line 3)"
        assert assertion_text.at({}, object()) == ""


class TestAssertNotCalled:
    def test_passes_and_returns_the_trace(self, user_trace):
        """assert_not_called() returns the trace for chaining."""
        assert user_trace.assert_not_called(lonely) is user_trace
        assert assert_not_called(user_trace, create_user_profile, sender=Profile) is user_trace
        assert user_trace.assert_not_called(create_user_profile, created=None) is user_trace

    def test_message(self, user_trace):
        """The message lists where it ran."""
        err = failure(user_trace.assert_not_called, backup_user_data, signal=pre_delete)
        assert str(err) == (
            f"Expected {BACKUP} not to be called for pre_delete, but it was called once (line 8).\n"
            "\n"
            "Captured signal trace:\n"
            f"{tree(user_trace)}"
        )
        assert err.hints == []


class TestAssertSent:
    def test_returns_the_dispatches(self, user_trace):
        """assert_sent() returns the matching dispatches."""
        (dispatch,) = user_trace.assert_sent(post_save, sender=User, created=True)
        assert dispatch.kwargs["created"] is True
        assert len(assert_sent(user_trace, "post_save", times=2)) == 2
        assert user_trace.assert_not_sent(post_delete) is user_trace
        assert assert_not_sent(user_trace, "post_save", sender=Profile) is user_trace

    def test_other_sender_and_record_empty(self, user_trace):
        """Sent for another sender; dispatches without receivers are not recorded."""
        err = failure(user_trace.assert_sent, post_save, sender=Profile)
        assert str(err).splitlines()[0] == (
            "Expected post_save to be sent with sender=testapp.Profile, "
            "but none of its 2 dispatches matched."
        )
        assert err.hints == [
            "post_save was sent for sender=auth.User (lines 1 and 4); "
            "expected sender=testapp.Profile.",
            "signaltrace records a dispatch only when it has receivers; set "
            "SIGNALTRACE['RECORD_EMPTY'] = True to record post_save sent to no receivers too.",
        ]

    def test_kwarg_mismatch(self, user_trace):
        """A kwarg mismatch needs no RECORD_EMPTY advice."""
        err = failure(user_trace.assert_sent, pre_delete, origin=User(pk=8))
        assert str(err).splitlines()[0] == (
            "Expected pre_delete to be sent with origin='auth.User pk=8', "
            "but its dispatch did not match."
        )
        assert err.hints == [
            "pre_delete was sent with origin='auth.User pk=7' (line 7); "
            "expected origin='auth.User pk=8'."
        ]

    def test_wrong_count(self, user_trace):
        """times= compares the number of matching dispatches."""
        err = failure(assert_sent, user_trace, post_save, times=1)
        assert str(err).splitlines()[0] == (
            "Expected post_save to be sent once, but it was sent 2 times (lines 1 and 4)."
        )
        assert err.hints == []

    @pytest.mark.parametrize("signal", [post_delete, "post_delete"])
    def test_model_signal_not_sent(self, user_trace, signal):
        """A model signal that was not sent, with no bulk operation in the trace: RECORD_EMPTY."""
        err = failure(user_trace.assert_sent, signal)
        assert str(err).splitlines()[0] == "Expected post_delete to be sent, but it was not sent."
        assert err.hints == [
            "signaltrace records a dispatch only when it has receivers; set "
            "SIGNALTRACE['RECORD_EMPTY'] = True to record post_delete sent to no receivers too.",
        ]

    def test_model_signal_skipped(self, db, no_origin):
        """A bulk operation in the trace that skipped the signal is named."""
        with signaltrace.capture() as trace:
            User.objects.bulk_create([User(username="ann")])
        err = failure(trace.assert_sent, post_save, sender=User)
        assert err.hints[-1] == (
            "post_save was not sent for sender=auth.User: bulk_create on auth.User skipped it; "
            "that operation sends no model signals."
        )

    def test_with_record_empty(self, db, settings):
        """With RECORD_EMPTY, the advice is left out; ignored signals are explained."""
        settings.SIGNALTRACE = {"ENABLED": True, "RECORD_EMPTY": True, "RECORD_ORIGIN": False}
        with signaltrace.capture() as trace:
            Tag.objects.create(name="x")
        trace.assert_sent(post_save, sender=Tag, created=True)
        err = failure(trace.assert_sent, local_signal)
        assert err.hints == []
        err = failure(trace.assert_sent, post_init)
        assert err.hints == [
            "post_init is in SIGNALTRACE['IGNORE_SIGNALS'], so signaltrace never records it."
        ]

    def test_with_nested_record_empty(self, db, settings):
        """RECORD_EMPTY='nested' records empty dispatches inside receivers only; the hint says so."""
        settings.SIGNALTRACE = {"ENABLED": True, "RECORD_EMPTY": "nested", "RECORD_ORIGIN": False}
        with signaltrace.capture() as trace:
            User.objects.create(username="ann")
            Tag.objects.create(name="x")
        trace.assert_sent(post_save, sender=Profile, created=True)
        err = failure(trace.assert_sent, post_save, sender=Tag)
        assert err.hints[-1] == (
            "signaltrace records a dispatch only when it has receivers or is sent inside a "
            "receiver (RECORD_EMPTY='nested'); set SIGNALTRACE['RECORD_EMPTY'] = True to record "
            "post_save sent to no receivers too."
        )

    def test_not_sent_message(self, user_trace):
        """assert_not_sent() lists where it was sent."""
        err = failure(
            user_trace.assert_not_sent, "django.db.models.signals.post_save", created=True
        )
        assert str(err) == (
            "Expected django.db.models.signals.post_save not to be sent with created=True, "
            "but it was sent once (line 1).\n"
            "\n"
            "Captured signal trace:\n"
            f"{tree(user_trace)}"
        )


class TestAssertOrder:
    def test_passes_and_returns_first_calls(self, user_trace):
        """assert_order() compares first calls and returns them in the order given."""
        calls = user_trace.assert_order(create_user_profile, SAVE, backup_user_data)
        assert [c.receiver_name for c in calls] == [CREATE, SAVE, BACKUP]
        assert assert_order(user_trace, SAVE, BACKUP)[1].receiver_name == BACKUP

    def test_wrong_order_full_message(self, user_trace):
        """The message names the first pair out of order and both orders."""
        err = failure(user_trace.assert_order, save_user_profile, create_user_profile)
        assert str(err) == (
            f"Expected {SAVE} to run before {CREATE}, but it first ran at line 3, "
            f"after {CREATE} at line 2.\n"
            "\n"
            "Expected order:\n"
            f"  {SAVE} (line 3)\n"
            f"  {CREATE} (line 2)\n"
            "\n"
            "Order of first calls:\n"
            f"  {CREATE} (line 2)\n"
            f"  {SAVE} (line 3)\n"
            "\n"
            "Captured signal trace:\n"
            f"{tree(user_trace)}"
        )

    def test_missing_receivers(self, user_trace):
        """Receivers that never ran are named, with hints."""
        err = failure(user_trace.assert_order, CREATE, lonely, "tests.nowhere.receiver")
        assert str(err).split("\n\n")[:2] == [
            "Expected receivers to run in the order given, but tests.test_testing.lonely and "
            "tests.nowhere.receiver were not called.",
            "Expected order:\n"
            f"  {CREATE} (line 2)\n"
            "  tests.test_testing.lonely (not called)\n"
            "  tests.nowhere.receiver (not called)",
        ]
        assert err.hints == [
            "tests.test_testing.lonely is not connected to any signal: no connect() or @receiver for it has run, "
            "or it was disconnected, or another receiver took its dispatch_uid. Receivers "
            "connect when the module holding their @receiver decorator is imported: import "
            "tests.test_testing in your AppConfig.ready().",
            "tests has no module or attribute nowhere.",
        ]
        err = failure(user_trace.assert_order, lonely, CREATE)
        assert str(err).splitlines()[0] == (
            "Expected receivers to run in the order given, but tests.test_testing.lonely "
            "was not called."
        )

    @pytest.mark.parametrize("receivers", [(), (lonely,), (lonely, "tests.test_testing.lonely")])
    def test_needs_two_different_receivers(self, user_trace, receivers):
        """Fewer than two receivers, or the same one twice, is a usage error."""
        with pytest.raises(ValueError, match="two or more different receivers"):
            user_trace.assert_order(*receivers)


class TestAssertNoErrors:
    def test_passes(self, user_trace):
        """No receiver raised: the trace is returned."""
        assert user_trace.assert_no_errors() is user_trace
        assert assert_no_errors(user_trace) is user_trace

    def test_lists_swallowed_and_raised_errors(self, no_origin):
        """Errors send_robust swallowed and errors send raised are both listed."""
        local_signal.connect(explode)
        try:
            with signaltrace.capture() as trace:
                local_signal.send_robust(sender=None)
                with pytest.raises(ValueError, match="nope"):
                    local_signal.send(sender=None)
        finally:
            local_signal.disconnect(explode)
        err = failure(trace.assert_no_errors)
        lineno = explode.__code__.co_firstlineno + 1
        assert str(err) == (
            "Expected no receiver errors, but 2 receiver calls raised:\n"
            "  tests.test_testing.explode (line 2) raised ValueError: nope "
            f"at tests/test_testing.py:{lineno} (swallowed by send_robust)\n"
            "  tests.test_testing.explode (line 4) raised ValueError: nope "
            f"at tests/test_testing.py:{lineno}\n"
            "\n"
            "Captured signal trace:\n"
            f"{tree(trace)}"
        )

    def test_errors_without_location(self, no_origin, monkeypatch):
        """An error without a traceback location is listed without one."""
        local_signal.connect(explode)
        try:
            with signaltrace.capture() as trace:
                local_signal.send_robust(sender=None)
        finally:
            local_signal.disconnect(explode)
        call = trace.errors[0]
        monkeypatch.setattr(call, "error", type(call.error)("KeyError", "k"))
        monkeypatch.setattr(type(trace), "errors", property(lambda self: [call]))
        err = failure(trace.assert_no_errors)
        assert str(err).splitlines()[:2] == [
            "Expected no receiver errors, but 1 receiver call raised:",
            "  tests.test_testing.explode (line 2) raised KeyError: k (swallowed by send_robust)",
        ]


class TestAsync:
    def test_asend_inside_asyncio_run(self, no_origin, connected):
        """Dispatches made in an event loop (asyncio.run) are in the trace."""

        async def main():
            await local_signal.asend(sender=None, marker="a")

        with signaltrace.capture() as trace:
            asyncio.run(main())
        call = trace.assert_called_once(on_local, signal=local_signal, marker="a")
        assert call.dispatch.method == "asend"
        trace.assert_sent(local_signal, marker="a")


class SignalCase(SignalTraceTestMixin, TestCase):
    """The mixin on Django's TestCase, sync and async."""

    def test_context_manager(self):
        """Without trace=, each assertion captures its with block."""
        with self.assertReceiverCalled(create_user_profile, sender=User, created=True) as trace:
            User.objects.create(username="ann")
        assert [c.receiver_name for c in trace.calls] == [CREATE, SAVE]
        with self.assertReceiverNotCalled(backup_user_data):
            User.objects.create(username="bob")
        with self.assertSignalSent(post_save, sender=User, times=1):
            User.objects.create(username="cyd")
        with self.assertNoReceiverErrors():
            User.objects.create(username="dan")

    def test_trace_keyword(self):
        """With trace=, the assertion checks that trace and returns what Trace returns."""
        with self.captureSignals(label="signup") as trace:
            User.objects.create(username="ann")
        assert trace.label == "signup"
        calls = self.assertReceiverCalled(create_user_profile, trace=trace, created=True)
        assert calls[0].receiver_name == CREATE
        assert self.assertReceiverNotCalled(backup_user_data, trace=trace) is trace
        assert len(self.assertSignalSent("post_save", trace=trace)) == 1
        assert self.assertNoReceiverErrors(trace=trace) is trace

    def test_failure_in_context_manager(self):
        """A failing check raises at the end of the with block."""
        assertion = self.assertReceiverCalled(create_user_profile, created=False)
        with pytest.raises(SignalTraceAssertionError) as info, assertion:
            User.objects.create(username="ann")
        assert str(info.value).startswith(f"Expected {CREATE} to be called")
        assert assertion.result is None

    def test_msg(self):
        """msg= goes in front of the message."""
        with self.captureSignals() as trace:
            pass
        with pytest.raises(SignalTraceAssertionError) as info:
            self.assertSignalSent(post_save, trace=trace, msg="signup sends post_save")
        assert str(info.value).startswith(
            "signup sends post_save: Expected post_save to be sent, but it was not sent."
        )
        with pytest.raises(SignalTraceAssertionError) as info:
            self.assertReceiverCalled(create_user_profile, trace=trace)
        assert str(info.value).startswith("Expected")

    def test_exception_in_block_skips_the_check(self):
        """An exception in the block propagates; the assertion does not run."""
        assertion = self.assertReceiverCalled(create_user_profile)
        with pytest.raises(KeyError), assertion:
            raise KeyError("x")
        assert assertion.result is None

    def test_one_with_block_only(self):
        """A DeferredAssertion is used once."""
        assertion = self.assertReceiverNotCalled(lonely)
        with assertion:
            pass
        with pytest.raises(RuntimeError), assertion:
            pass  # pragma: no cover

    def test_result(self):
        """After the block, result holds what the check returned."""
        assertion = self.assertReceiverCalled(create_user_profile)
        with assertion as trace:
            User.objects.create(username="ann")
        assert assertion.result == trace.find(receiver=create_user_profile)

    async def test_async_with(self):
        """The assertions work with async with in async tests."""
        async with self.assertReceiverCalled(create_user_profile, created=True) as trace:
            await User.objects.acreate(username="ann")
        assert len(trace.calls) == 2
        async with self.captureSignals() as trace:
            await User.objects.acreate(username="bob")
        self.assertReceiverCalled(save_user_profile, trace=trace)


class TestForgottenWith:
    def test_cleanup_fails_an_unused_assertion(self):
        """An assertion without trace= that is never entered fails the test at cleanup."""

        class Case(SignalTraceTestMixin, unittest.TestCase):
            def test_it(self):
                self.assertReceiverCalled(create_user_profile)

        result = unittest.TestResult()
        Case("test_it").run(result)
        assert result.errors == []
        ((_, traceback),) = result.failures
        message = traceback.strip().splitlines()[-1]
        assert re.fullmatch(
            r"signaltrace\.testing\.SignalTraceAssertionError: assertReceiverCalled\(\) at "
            r"tests/test_testing\.py:\d+ was called without trace= and not used as a context "
            r"manager, so nothing was checked\. Write `with self\.assertReceiverCalled\(\.\.\.\):` "
            r"around the code under test, or pass trace= a trace from "
            r"`with self\.captureSignals\(\) as trace:`\.",
            message,
        )

    def test_unittest_hides_this_module_from_tracebacks(self):
        """unittest leaves signaltrace.testing's frames out (``__unittest``)."""
        assert testing.__dict__["__unittest"] is True

    def test_without_add_cleanup(self):
        """Outside a TestCase there is no cleanup check."""

        class Plain(SignalTraceTestMixin):
            pass

        assertion = Plain().assertNoReceiverErrors()
        assert isinstance(assertion, DeferredAssertion)
        assert assertion.where.startswith("tests/test_testing.py:")
        with assertion:
            pass
        assertion._verify_used()
