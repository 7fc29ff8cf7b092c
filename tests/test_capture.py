"""capture(): nesting, threads, caps, settings-driven filtering, output."""

from __future__ import annotations

import gc
import json
import threading
import weakref

import pytest
from django.contrib.auth.models import User
from django.db.models.signals import post_init, post_save, pre_init
from django.dispatch import Signal

import signaltrace
from tests.testapp.models import Profile
from tests.testapp.signals import backup_user_data, create_user_profile

inner_signal = Signal()
outer_signal = Signal()


def sends_inner(sender, **kwargs):
    inner_signal.send(sender="inner-sender", flag=True)
    return "outer"


def inner_receiver(sender, **kwargs):
    return "inner"


@pytest.fixture
def nested():
    outer_signal.connect(sends_inner)
    inner_signal.connect(inner_receiver)
    yield
    outer_signal.disconnect(sends_inner)
    inner_signal.disconnect(inner_receiver)


@pytest.mark.django_db
class TestUserProfile:
    def test_create_and_delete_records_the_seed_receivers(self):
        """Creating and deleting a User records post_save and pre_delete receivers."""
        with signaltrace.capture() as trace:
            user = User.objects.create(username="ann")
            user.delete()
        names = [c.receiver_name for c in trace.calls]
        assert names == [
            "tests.testapp.signals.create_user_profile",
            "tests.testapp.signals.save_user_profile",
            "tests.testapp.signals.backup_user_data",
        ]
        post = trace.find_dispatches(signal=post_save, sender=User)[0]
        assert post.signal_name == "post_save"
        assert post.signal_path == "django.db.models.signals.post_save"
        assert post.sender == "auth.User"
        assert post.kwargs["created"] is True
        assert post.kwargs["instance"] == f"auth.User pk={user.pk or 1}" or post.kwargs[
            "instance"
        ].startswith("auth.User pk=")
        assert post.kwargs["using"] == "default"
        assert post.kwargs["update_fields"] is None
        assert post.origin is not None
        assert post.origin.filename == __file__
        assert (
            post.origin.function
            == "TestUserProfile.test_create_and_delete_records_the_seed_receivers"
        )
        assert trace.find(receiver=create_user_profile, sender=User, signal="post_save")
        assert trace.find(receiver="tests.testapp.signals.backup_user_data")
        assert not trace.find(receiver=backup_user_data, signal=post_save)
        assert all(c.duration_ns and c.duration_ns > 0 for c in trace.calls)
        assert trace.errors == []

    def test_nested_profile_save_with_record_empty(self, settings):
        """With RECORD_EMPTY, the Profile saves inside receivers nest under them."""
        settings.SIGNALTRACE = {"ENABLED": True, "RECORD_EMPTY": True}
        with signaltrace.capture() as trace:
            User.objects.create(username="bob")
        create_call, save_call = trace.calls[0], trace.calls[1]
        assert create_call.receiver_name.endswith("create_user_profile")
        assert [d.signal_name for d in create_call.children] == ["pre_save", "post_save"]
        assert create_call.children[1].sender == "testapp.Profile"
        assert create_call.children[1].kwargs["created"] is True
        assert create_call.children[1].parent is create_call
        assert save_call.children[1].kwargs["created"] is False
        assert [d.signal_name for d in trace.roots] == ["pre_save", "post_save"]
        text = trace.render()
        assert "(no receivers)" in text

    def test_instances_are_not_kept_alive(self):
        """A trace holds labels, never the model instance."""
        with signaltrace.capture() as trace:
            user = User.objects.create(username="cat")
        ref = weakref.ref(user)
        del user
        gc.collect()
        assert ref() is None
        assert trace.dispatches[0].kwargs["instance"].startswith("auth.User pk=")

    def test_update_fields_recorded_sorted(self):
        """update_fields is recorded as a sorted list of names."""
        user = User.objects.create(username="dan")
        with signaltrace.capture() as trace:
            user.save(update_fields=["username", "email"])
        post = trace.find_dispatches(signal="post_save")[0]
        assert post.kwargs["update_fields"] == ["email", "username"]
        assert "update_fields=['email', 'username']" in trace.render()

    def test_m2m_changed_records_action_and_pk_set(self):
        """m2m_changed kwargs are recorded as labels and scalars."""
        from django.db.models.signals import m2m_changed

        from tests.testapp.models import Tag

        def on_m2m(sender, **kwargs):
            pass

        m2m_changed.connect(on_m2m, sender=Tag.profiles.through)
        try:
            user = User.objects.create(username="eve")
            tag = Tag.objects.create(name="x")
            with signaltrace.capture() as trace:
                tag.profiles.add(Profile.objects.get(user=user))
        finally:
            m2m_changed.disconnect(on_m2m, sender=Tag.profiles.through)
        actions = [d.kwargs["action"] for d in trace.find_dispatches(signal=m2m_changed)]
        assert actions == ["pre_add", "post_add"]
        first = trace.find_dispatches(signal=m2m_changed)[0]
        assert first.kwargs["model"] == "testapp.Profile"
        assert first.kwargs["pk_set"] == [user.profile.pk]
        assert first.kwargs["reverse"] is False


class TestNesting:
    def test_signal_inside_receiver_is_child(self, nested):
        """A dispatch sent inside a receiver is a child of that receiver's call."""
        with signaltrace.capture() as trace:
            outer_signal.send(sender=None)
        (root,) = trace.roots
        assert root.signal_name == "outer_signal"
        (call,) = root.calls
        (child,) = call.children
        assert child.signal_name == "inner_signal"
        assert child.parent is call
        assert child.kwargs == {"flag": True}
        assert child.sender == "inner-sender"
        assert [c.receiver_name for c in trace.calls] == [
            "tests.test_capture.sends_inner",
            "tests.test_capture.inner_receiver",
        ]

    def test_nested_captures_each_see_their_part(self, nested):
        """An inner capture sees only what ran while it was open; the outer sees all."""
        with signaltrace.capture() as outer:
            outer_signal.send(sender=None)
            with signaltrace.capture() as inner:
                inner_signal.send(sender=None)
        assert len(outer.dispatches) == 3
        assert len(inner.dispatches) == 1
        assert inner.roots[0].signal_name == "inner_signal"
        assert len(outer.roots) == 2

    def test_capture_opened_inside_a_receiver(self):
        """A capture opened inside a receiver treats later dispatches as its roots."""
        sig = Signal()
        inner_traces = []

        def opens_capture(sender, **kwargs):
            with signaltrace.capture() as inner:
                inner_signal.send(sender=None)
            inner_traces.append(inner)

        sig.connect(opens_capture)
        inner_signal.connect(inner_receiver)
        try:
            with signaltrace.capture() as outer:
                sig.send(sender=None)
        finally:
            inner_signal.disconnect(inner_receiver)
        assert [d.signal_name for d in inner_traces[0].roots] == ["inner_signal"]
        assert outer.roots[0].calls[0].children[0].signal_name == "inner_signal"

    def test_capture_cannot_be_reused(self):
        """Entering one capture() object twice is an error."""
        cap = signaltrace.capture()
        with cap:
            pass
        with pytest.raises(RuntimeError, match="already in use"), cap:
            pass  # pragma: no cover

    def test_bad_max_events(self):
        """max_events must be a positive int."""
        with pytest.raises(ValueError, match="max_events must be a positive int"):
            signaltrace.capture(max_events=0)

    def test_capture_installs_the_hook(self):
        """capture() installs the hook when it is not installed."""
        signaltrace.uninstall()
        with signaltrace.capture():
            assert signaltrace.is_installed()


class TestThreads:
    def test_threads_never_see_each_other(self):
        """Concurrent threads with their own captures record only their own dispatches."""
        sig = Signal()
        barrier = threading.Barrier(8)
        results = {}

        def echo(sender, **kwargs):
            return sender

        sig.connect(echo)

        def worker(n):
            with signaltrace.capture() as trace:
                barrier.wait()
                for _ in range(50):
                    sig.send(sender=f"thread-{n}")
            results[n] = trace

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for n, trace in results.items():
            assert len(trace.dispatches) == 50
            assert {d.sender for d in trace.dispatches} == {f"thread-{n}"}

    def test_other_threads_not_collected_by_default(self, nested):
        """A capture in one thread does not see another thread's dispatches..."""
        with signaltrace.capture() as trace:
            thread = threading.Thread(target=lambda: outer_signal.send(sender=None))
            thread.start()
            thread.join()
        assert trace.dispatches == []

    def test_all_threads_collects_other_threads(self, nested):
        """...unless it is opened with all_threads=True."""
        with signaltrace.capture(all_threads=True) as trace:
            thread = threading.Thread(target=lambda: outer_signal.send(sender="t"))
            thread.start()
            thread.join()
            outer_signal.send(sender="main")
        assert [d.sender for d in trace.roots] == ["t", "main"]
        assert trace.roots[0].calls[0].children[0].signal_name == "inner_signal"
        # Closed: no longer collects.
        outer_signal.send(sender="after")
        assert len(trace.roots) == 2


class TestFiltering:
    @pytest.mark.django_db
    def test_pre_init_and_post_init_ignored_by_default(self):
        """pre_init/post_init are ignored by default (IGNORE_SIGNALS)."""

        def on_init(sender, **kwargs):
            pass

        pre_init.connect(on_init, sender=User)
        post_init.connect(on_init, sender=User)
        try:
            with signaltrace.capture() as trace:
                User(username="x")
        finally:
            pre_init.disconnect(on_init, sender=User)
            post_init.disconnect(on_init, sender=User)
        assert trace.dispatches == []

    def test_ignore_signals_can_be_emptied(self, settings):
        """With IGNORE_SIGNALS empty, pre_init is recorded."""
        settings.SIGNALTRACE = {"IGNORE_SIGNALS": []}

        def on_init(sender, **kwargs):
            pass

        pre_init.connect(on_init, sender=User)
        try:
            with signaltrace.capture() as trace:
                User(username="x")
        finally:
            pre_init.disconnect(on_init, sender=User)
        assert [d.signal_name for d in trace.dispatches] == ["pre_init"]
        assert trace.dispatches[0].kwargs["args"] == []

    def test_empty_dispatches_skipped_unless_record_empty(self, settings):
        """Dispatches without live receivers are recorded only with RECORD_EMPTY."""
        sig = Signal()
        sig.connect(inner_receiver, sender="someone-else")
        with signaltrace.capture() as trace:
            sig.send(sender="me")
        assert trace.dispatches == []
        settings.SIGNALTRACE = {"RECORD_EMPTY": True}
        with signaltrace.capture() as trace:
            sig.send(sender="me")
        assert trace.dispatches[0].calls == []
        assert trace.dispatches[0].receiver_count == 0

    def test_record_origin_off(self, settings, nested):
        """RECORD_ORIGIN=False skips the stack walk."""
        settings.SIGNALTRACE = {"RECORD_ORIGIN": False}
        with signaltrace.capture() as trace:
            outer_signal.send(sender=None)
        assert trace.dispatches[0].origin is None

    def test_redacted_kwargs(self, nested):
        """Kwargs whose name matches REDACT are recorded as [redacted]."""
        with signaltrace.capture() as trace:
            outer_signal.send(sender=None, password="hunter2", api_token="t", name="ok")
        assert trace.dispatches[0].kwargs == {
            "password": "[redacted]",
            "api_token": "[redacted]",
            "name": "ok",
        }


class TestCap:
    def test_events_past_max_are_counted_and_reported(self, nested):
        """Past MAX_EVENTS, dispatches are dropped, counted and shown."""
        with signaltrace.capture(max_events=5) as trace:
            for _ in range(3):
                outer_signal.send(sender=None)
        # Each outer send is 4 events (2 dispatches + 2 calls); the nested
        # inner dispatch of the second outer send still fits (1 + 1 <= 5).
        assert trace.events <= 5
        assert trace.dropped > 0
        assert trace.events + trace.dropped == 12
        assert f"{trace.dropped} events dropped (MAX_EVENTS=5 reached)" in trace.render()

    def test_max_events_setting(self, settings, nested):
        """MAX_EVENTS from settings is the default cap."""
        settings.SIGNALTRACE = {"MAX_EVENTS": 2}
        with signaltrace.capture() as trace:
            outer_signal.send(sender=None)
        assert trace.max_events == 2
        assert trace.events == 2
        assert trace.dropped == 2


class TestOutput:
    def test_to_dict_is_json_and_versioned(self, nested):
        """to_dict() is JSON-serialisable and names its schema."""
        with signaltrace.capture(label="unit") as trace:
            outer_signal.send(sender=None)
        data = json.loads(json.dumps(trace.to_dict()))
        assert data["schema"] == "signaltrace.trace/2"
        assert data["label"] == "unit"
        assert data["dispatch_count"] == 2
        assert data["call_count"] == 2
        (root,) = data["dispatches"]
        assert root["signal"] == "outer_signal"
        assert root["calls"][0]["receiver"] == "tests.test_capture.sends_inner"
        assert root["calls"][0]["dispatches"][0]["signal"] == "inner_signal"
        assert root["calls"][0]["location"].startswith(__file__ + ":")
        assert root["origin"]["filename"] == __file__

    def test_render_tree(self, nested):
        """render() draws the causal tree with timings."""
        with signaltrace.capture() as trace:
            outer_signal.send(sender=None)
        lines = str(trace).splitlines()
        assert lines[0].startswith("2 dispatches, 2 receiver calls, ")
        assert lines[1].startswith("└─ outer_signal  sender=None  (tests/test_capture.py:")
        assert lines[2].startswith("   └─ tests.test_capture.sends_inner  ")
        assert lines[3].startswith("      └─ inner_signal  sender=inner-sender")
        assert lines[4].startswith("         └─ tests.test_capture.inner_receiver  ")
        numbered = trace.render(numbered=True).splitlines()
        assert numbered[1].startswith("  1. └─ outer_signal")

    def test_render_errors_and_empty(self):
        """Errors are marked in the tree; an empty trace says so."""
        with signaltrace.capture() as trace:
            pass
        assert trace.render().endswith("(no signals dispatched)")
        sig = Signal()

        def bad(sender, **kwargs):
            raise KeyError("k")

        sig.connect(bad)
        with signaltrace.capture() as trace:
            sig.send_robust(sender=None)
        assert "✗ raised KeyError: k (swallowed by send_robust)" in trace.render()
        assert "1 error" in trace.render().splitlines()[0]
        assert "[send_robust]" in trace.render()

    def test_repr(self):
        with signaltrace.capture(label="x") as trace:
            pass
        assert repr(trace) == "<Trace x dispatches=0 events=0 dropped=0>"
        assert trace.duration_ns >= 0


class TestRecordEmptyNested:
    def test_nested_mode_records_only_inside_receivers(self, settings, nested):
        """RECORD_EMPTY="nested" keeps empty dispatches only when a receiver sent them."""
        settings.SIGNALTRACE = {"RECORD_EMPTY": "nested"}
        silent = Signal()

        def sends_silent(sender, **kwargs):
            silent.send(sender="inside")

        outer_signal.connect(sends_silent)
        try:
            with signaltrace.capture() as trace:
                silent.send(sender="top")
                outer_signal.send(sender=None)
        finally:
            outer_signal.disconnect(sends_silent)
        senders = [d.sender for d in trace.dispatches]
        assert "top" not in senders
        assert "inside" in senders

    @pytest.mark.django_db
    def test_design_tree(self, settings):
        """The nested Profile saves show as (no receivers), the top-level pre_save does not."""
        settings.SIGNALTRACE = {"RECORD_EMPTY": "nested"}
        with signaltrace.capture() as trace:
            User.objects.create(username="tree")
        assert [d.signal_name for d in trace.roots] == ["post_save"]
        assert [d.signal_name for d in trace.calls[0].children] == ["pre_save", "post_save"]

    def test_bad_value(self, settings):
        from signaltrace.checks import check_settings

        settings.SIGNALTRACE = {"RECORD_EMPTY": "always"}
        (error,) = check_settings()
        assert error.msg == (
            "SIGNALTRACE['RECORD_EMPTY'] must be a bool or \"nested\", got str: 'always'."
        )
