"""The hot-path helpers: receiver descriptions, label caches, origin, admission."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import threading
import weakref

from django.contrib.auth.models import User
from django.dispatch import Signal

import signaltrace
from signaltrace import _hotpath, naming
from signaltrace.records import D_FLAT, D_ORIGIN


def ok(sender, **kwargs):
    return "ok"


#: Attribute reads of Watched instances.
WATCHED: list[str] = []


class Watched(User):
    """A model reading its attributes its own way."""

    class Meta:
        proxy = True
        app_label = "auth"

    def __getattribute__(self, name):
        WATCHED.append(name)
        return super().__getattribute__(name)


class TestLabelsAndCaches:
    def test_describe_callable_object(self):
        class Handler:
            def __call__(self, sender, **kwargs):
                pass

        handler = Handler()
        handler(None)
        assert _hotpath.describe(handler)[0].endswith("Handler.__call__")

    def test_dead_receiver_label(self):
        """A function receiver that died before the trace was read is labelled so."""
        sig = Signal()

        def make():
            def short_lived(sender, **kwargs):
                pass

            return short_lived

        receiver = make()
        sig.connect(receiver)
        cap = signaltrace.capture()
        trace = cap.__enter__()
        sig.send(sender=None)
        key = trace.raw[0][D_FLAT]  # the flat sync calls: [..., key, start, ..., end]
        assert isinstance(key, weakref.ref)
        del receiver
        gc.collect()
        cap.__exit__(None, None, None)
        assert trace.calls[0].receiver_name == "<dead receiver>"

    def test_forget_ignores_replaced_entries(self):
        """Cache clean-up leaves an entry that already belongs to a new object."""

        class Fresh:
            pass

        for cache, forget in (
            (_hotpath._DESC_CACHE, _hotpath._forget),
            (_hotpath._CLASS_INFO, _hotpath._forget_class),
            (naming._SIGNAL_NAMES, naming._forget_signal),
        ):
            key = -1
            ref = weakref.ref(Fresh)
            cache[key] = (ref, "kept")
            forget(key, weakref.ref(TestLabelsAndCaches))
            assert cache[key][1] == "kept"
            forget(key, ref)
            assert key not in cache
            forget(key, ref)

    def test_origin_unknown_in_a_bare_thread(self):
        """A dispatch whose whole stack is Django and the stdlib has no origin."""
        sig = Signal()
        sig.connect(ok)
        with signaltrace.capture(all_threads=True) as trace:
            thread = threading.Thread(target=sig.send, kwargs={"sender": None})
            thread.start()
            thread.join()
        assert trace.dispatches[0].origin is None

    def test_origin_of_a_repeated_call_site(self):
        """Sends from one function: each its own line, one shared origin per instruction."""
        sig = Signal()
        sig.connect(ok)

        def sends():
            for _ in range(2):
                sig.send(sender=None)  # line A, twice
            sig.send(sender=None)  # line B
            for _ in range(2):
                sig.send(sender=None)  # line C, twice: from B back to a new offset

        with signaltrace.capture() as trace:
            sends()
        raw = [dispatch[D_ORIGIN] for dispatch in trace.raw]  # (before reading releases them)
        assert raw[0] is raw[1]
        assert raw[3] is raw[4]
        assert len({id(origin) for origin in raw}) == 3
        lines = [d.origin.lineno for d in trace.dispatches]
        first = sends.__code__.co_firstlineno
        assert lines == [first + 2, first + 2, first + 3, first + 5, first + 5]

    def test_closed_trace_in_a_leaked_context(self):
        """A context copied while a capture was open records nothing after it closes."""
        sig = Signal()
        sig.connect(ok)
        with signaltrace.capture() as trace:
            leaked = contextvars.copy_context()
        assert leaked.run(sig.send, sender=None) == [(ok, "ok")]
        assert trace.dispatches == []

    def test_several_traces_one_full_one_closed(self):
        """With nested captures, a full or closed trace is skipped, others record."""
        sig = Signal()
        sig.connect(ok)
        with signaltrace.capture() as outer:
            with signaltrace.capture(max_events=1) as inner:
                sig.send(sender=None)
            leaked = contextvars.copy_context()
            leaked.run(sig.send, sender=None)
        assert inner.dispatches == []
        assert inner.dropped == 2
        assert len(outer.dispatches) == 2
        with signaltrace.capture() as lone, signaltrace.capture(max_events=1):
            leaked = contextvars.copy_context()
        leaked.run(sig.send, sender=None)
        assert lone.dispatches == []

    def test_non_int_pk_and_non_str_alias(self):
        user = User(username="x")
        user.__dict__["id"] = "str-pk"
        sig = Signal()
        sig.connect(ok)
        with signaltrace.capture() as trace:
            sig.send(sender=None, instance=user, using=123)
        assert trace.dispatches[0].kwargs["instance"] == "auth.User pk=str-pk"


class TestKwargs:
    """_kwargs' one-pass fast path, and what falls back to the full labelling."""

    def send_twice(self, **kwargs):
        """The first dispatch learns the names; the second takes the fast path."""
        sig = Signal()
        sig.connect(ok)
        with signaltrace.capture() as trace:
            sig.send(sender=None, **kwargs)
            sig.send(sender=None, **kwargs)
        first, second = (d.kwargs for d in trace.dispatches)
        assert first == second
        return second

    def test_plain_values_kept_as_they_are(self):
        kwargs = {"n": 2**63, "f": 1.5, "b": True, "none": None, "s": "x" * 200}
        assert self.send_twice(**kwargs) == kwargs

    def test_bounded_on_the_fast_path_too(self):
        kwargs = self.send_twice(big=2**64, long="y" * 201)
        assert kwargs["big"] == "<int, 20 digits>"
        assert len(kwargs["long"]) == 200

    def test_a_model_instance_is_its_label_and_never_kept(self):
        sig = Signal()
        sig.connect(ok)
        with signaltrace.capture() as trace:
            for pk in (1, 2):
                user = User(pk=pk, username="x")
                ref = weakref.ref(user)
                sig.send(sender=None, instance=user, created=True)
                del user
                gc.collect()
                assert ref() is None  # the open trace holds no reference to it
        assert [d.kwargs for d in trace.dispatches] == [
            {"instance": "auth.User pk=1", "created": True},
            {"instance": "auth.User pk=2", "created": True},
        ]

    def test_redacted_names_every_time(self):
        assert self.send_twice(password="hunter2", user_token=1) == {
            "password": "[redacted]",
            "user_token": "[redacted]",
        }

    def test_a_model_whose_pk_is_redacted(self):
        from tests.testapp.models import ApiKey

        kwargs = self.send_twice(instance=ApiKey(key="k"))
        assert kwargs == {"instance": "testapp.ApiKey pk=[redacted]"}

    def test_a_model_reading_attributes_its_own_way(self):
        """Its pk is read without running its __getattribute__ (naming.kwarg_value)."""
        instance = Watched(pk=7)
        WATCHED.clear()
        assert self.send_twice(instance=instance) == {"instance": "auth.Watched pk=7"}
        assert WATCHED == []


class TestAdmission:
    def test_record_empty_when_full(self, settings):
        settings.SIGNALTRACE = {"RECORD_EMPTY": True, "MAX_EVENTS": 1}
        sig = Signal()
        with signaltrace.capture() as trace:
            sig.send(sender=None)
            sig.send(sender=None)
        assert len(trace.dispatches) == 1
        assert trace.dropped == 1

    def test_leaked_context_while_another_capture_is_open(self):
        """The closed trace is skipped even while other captures keep the hook busy."""
        sig = Signal()
        sig.connect(ok)
        with signaltrace.capture() as closed_one:
            leaked = contextvars.copy_context()
        with signaltrace.capture() as busy:
            leaked.run(sig.send, sender=None)
        assert closed_one.dispatches == []
        assert busy.dispatches == []
        with signaltrace.capture() as outer, signaltrace.capture():
            leaked_two = contextvars.copy_context()
        with signaltrace.capture():
            leaked_two.run(sig.send, sender=None)
        assert outer.dispatches == []

    def test_robust_fast_exits_without_watchers(self):
        sig = Signal()
        assert sig.send_robust(sender=None) == []
        assert asyncio.run(sig.asend_robust(sender=None)) == []
