"""Labels for odd receivers, senders and values, built without calling user code."""

from __future__ import annotations

import functools
import sys
import typing
import uuid
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.dispatch import Signal

import signaltrace
from signaltrace import naming
from signaltrace._hotpath import error_info


class Explodes:
    """Counts every way of turning it into text or probing its attributes."""

    touched: typing.ClassVar[list[str]] = []

    def __str__(self):  # pragma: no cover - the tripwire must stay untouched
        Explodes.touched.append("str")
        return "explodes"

    def __repr__(self):  # pragma: no cover - the tripwire must stay untouched
        Explodes.touched.append("repr")
        return "Explodes()"

    def __getattr__(self, name):
        Explodes.touched.append(f"getattr {name}")
        raise AttributeError(name)

    def __eq__(self, other):  # pragma: no cover - the tripwire must stay untouched
        Explodes.touched.append("eq")
        return self is other

    __hash__ = object.__hash__


class CallableExplodes(Explodes):
    def __call__(self, sender, **kwargs):
        return "called"


def touches(func):
    """What ``func`` made Django (and signaltrace) do to Explodes objects."""
    Explodes.touched = []
    func()
    return list(Explodes.touched)


class Handler:
    def on_signal(self, sender, **kwargs):
        return "method"

    @classmethod
    def on_class(cls, sender, **kwargs):
        return "classmethod"

    @staticmethod
    def on_static(sender, **kwargs):
        return "staticmethod"


def plain(sender, **kwargs):
    return "plain"


def decorator(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


@decorator
def decorated(sender, **kwargs):
    return "decorated"


class BadMessage(Exception):
    def __str__(self):
        Explodes.touched.append("exception str")
        return "bad message"


RECEIVER_CASES = [
    (plain, "tests.test_naming.plain"),
    (Handler().on_signal, "tests.test_naming.Handler.on_signal"),
    (Handler.on_class, "tests.test_naming.Handler.on_class"),
    (Handler.on_static, "tests.test_naming.Handler.on_static"),
    (functools.partial(plain, extra=1), "functools.partial(tests.test_naming.plain)"),
    (CallableExplodes(), "tests.test_naming.CallableExplodes.__call__"),
    (lambda sender, **kw: None, "tests.test_naming.<lambda>"),
    (mock.Mock(), "unittest.mock.Mock.__call__"),
    (mock.MagicMock(), "unittest.mock.MagicMock.__call__"),
    (len, "builtins.len"),
    (Handler, "tests.test_naming.Handler"),
    (decorated, "tests.test_naming.decorated"),
]


class TestDescribeReceiver:
    @pytest.mark.parametrize(
        ("receiver", "name"), RECEIVER_CASES, ids=[name for _, name in RECEIVER_CASES]
    )
    def test_labels(self, receiver, name):
        """Each kind of receiver gets a dotted name and never raises."""
        assert naming.describe_receiver(receiver)[0] == name

    def test_wrapped_points_at_real_code(self):
        """functools.wraps-decorated receivers point at the wrapped function's line."""
        _, filename, line = naming.describe_receiver(decorated)
        assert filename == __file__
        assert line == decorated.__wrapped__.__code__.co_firstlineno

    def test_odd_receivers_are_traced(self):
        """Partials, bound methods, callable objects and mocks are traced and called."""
        sig = Signal()
        handler = Handler()
        receivers = [
            functools.partial(plain),
            handler.on_signal,
            CallableExplodes(),
            mock.Mock(return_value="mock"),
        ]
        for r in receivers:
            sig.connect(r, weak=False)
        sender = Explodes()
        plain_touches = touches(lambda: sig.send(sender=sender))
        with signaltrace.capture() as trace:
            traced_touches = touches(lambda: sig.send(sender=sender))
        assert traced_touches == plain_touches
        responses = sig.send(sender=sender)
        assert [resp for _, resp in responses] == ["plain", "method", "called", "mock"]
        assert [c.receiver_name for c in trace.calls] == [
            "functools.partial(tests.test_naming.plain)",
            "tests.test_naming.Handler.on_signal",
            "tests.test_naming.CallableExplodes.__call__",
            "unittest.mock.Mock.__call__",
        ]
        assert trace.dispatches[0].sender == "<tests.test_naming.Explodes instance>"

    def test_weak_bound_method_receiver_that_died(self):
        """A weakly connected bound method whose object died is skipped, not mislabelled."""
        sig = Signal()
        handler = Handler()
        sig.connect(handler.on_signal)
        del handler
        with signaltrace.capture() as trace:
            assert sig.send(sender=None) == []
        assert trace.calls == []


class TestValues:
    def test_user_objects_are_never_stringified(self, caplog):
        """Hostile senders, kwargs and exceptions are labelled by type, never str()'d."""
        sig = Signal()

        def raises(sender, **kwargs):
            raise BadMessage(Explodes())

        sig.connect(raises)
        sender, thing = Explodes(), Explodes()

        def send():
            sig.send_robust(sender=sender, thing=thing, items=[Explodes()])

        signaltrace.uninstall()
        try:
            plain_touches = touches(send)
        finally:
            signaltrace.install()
        with signaltrace.capture() as trace:
            traced_touches = touches(send)
        # Django's own logging of the failure str()s the exception; we add nothing.
        assert traced_touches == plain_touches
        dispatch = trace.dispatches[0]
        assert dispatch.kwargs == {
            "thing": "<tests.test_naming.Explodes>",
            "items": "<list of 1>",
        }
        assert trace.calls[0].error.type == "tests.test_naming.BadMessage"
        assert trace.calls[0].error.message == "<tests.test_naming.Explodes>"
        rendered = touches(lambda: (trace.render(), trace.to_dict()))
        assert rendered == []

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (None, None),
            (True, True),
            (3, 3),
            (1.5, 1.5),
            ("x" * 300, "x" * 199 + "…"),
            (frozenset({"b", "a"}), ["a", "b"]),
            ((1, "a"), [1, "a"]),
            (set(range(30)), "<set of 30>"),
            (int, "int"),
            (User, "auth.User"),
            (object(), "<object>"),
        ],
    )
    def test_kwarg_value(self, value, expected):
        assert naming.kwarg_value(value) == expected

    def test_int_subclass_kept_as_plain_int(self):
        """Enum-like int subclasses are kept as their int value."""
        import enum

        class Color(enum.IntEnum):
            RED = 1

        assert naming.kwarg_value(Color.RED) == 1
        assert type(naming.kwarg_value(Color.RED)) is int

    def test_model_instance_labels(self):
        """Model instances become app_label.Model pk=N, read from __dict__."""
        user = User(pk=7, username="x")
        assert naming.kwarg_value(user) == "auth.User pk=7"
        assert naming.instance_label(User(username="unsaved")) == "auth.User pk=None"
        assert naming.sender_label(user) == "auth.User pk=7"

    def test_uuid_and_odd_pk(self):
        user = User(username="x")
        user.__dict__["id"] = uuid.UUID(int=1)
        assert naming.instance_label(user).endswith("pk=00000000-0000-0000-0000-000000000001")
        user.__dict__["id"] = Explodes()
        assert naming.instance_label(user) == "auth.User pk=<tests.test_naming.Explodes>"

    def test_queryset_origin(self, db):
        assert naming.kwarg_value(User.objects.all()) == "<QuerySet auth.User>"

    @pytest.mark.parametrize(
        ("sender", "expected"),
        [
            (None, "None"),
            ("name", "name"),
            (5, "5"),
            (Handler, "tests.test_naming.Handler"),
            (object, "object"),
        ],
    )
    def test_sender_labels(self, sender, expected):
        assert naming.sender_label(sender) == expected

    def test_exception_messages(self):
        assert naming.exception_message(ValueError()) == ""
        assert naming.exception_message(ValueError("a", 2)) == "a, 2"


class TestSignalLabels:
    def test_django_signals(self):
        from django.db.models.signals import post_save

        assert naming.signal_label(post_save) == ("post_save", "django.db.models.signals.post_save")

    def test_unnamed_signal(self):
        local = Signal()
        name, path = naming.signal_label(local)
        assert name == path == f"Signal@{id(local):#x}"

    def test_blinker_named_signal(self):
        import blinker

        assert naming.signal_label(blinker.signal("order-paid")) == (
            "order-paid",
            "blinker:order-paid",
        )

    def test_cache_forgets_dead_signals(self):
        import gc

        local = Signal()
        key = id(local)
        naming.signal_label(local)
        assert key in naming._SIGNAL_NAMES
        del local
        gc.collect()
        assert key not in naming._SIGNAL_NAMES


def test_receivers_used_for_labels_work():
    """The receivers above are real callables (they are labelled, not only called)."""
    handler = Handler()
    assert handler.on_signal(None) == "method"
    assert Handler.on_class(None) == "classmethod"
    assert Handler.on_static(None) == "staticmethod"
    assert plain(None) == "plain"
    assert decorated(None) == "decorated"
    assert CallableExplodes()(None) == "called"


class RaisingModule(type):
    """A metaclass whose classes' ``__module__`` raises (the containment issue's case)."""

    @property
    def __module__(cls):
        raise ZeroDivisionError("no module")

    @property
    def __name__(cls):
        raise ZeroDivisionError("no name")


class Unlabellable(metaclass=RaisingModule):
    def __call__(self, sender, **kwargs):
        return "ok"


class UnlabellableError(Exception, metaclass=RaisingModule):
    pass


class TestHostileLabels:
    """Labels read classes through type's own descriptors; nothing raises."""

    def test_receiver_whose_class_module_raises(self):
        name, filename, line = naming.describe_receiver(Unlabellable())
        assert name == "tests.test_naming.Unlabellable.__call__"
        assert (filename, line) == (__file__, Unlabellable.__call__.__code__.co_firstlineno)
        assert naming.type_label(Unlabellable) == "tests.test_naming.Unlabellable"
        assert naming.sender_label(Unlabellable()) == "<tests.test_naming.Unlabellable instance>"

    def test_send_robust_returns_what_django_returns(self):
        """The issue: send_robust() raised ZeroDivisionError; Django returns the response."""
        sig = Signal()
        receiver = Unlabellable()
        sig.connect(receiver, weak=False)
        with signaltrace.capture() as trace:
            assert sig.send_robust(sender=None) == [(receiver, "ok")]
            assert sig.send(sender=None) == [(receiver, "ok")]
        assert [c.receiver_name for c in trace.calls] == [
            "tests.test_naming.Unlabellable.__call__"
        ] * 2

    def test_error_info_of_an_unlabellable_exception(self):
        try:
            raise UnlabellableError(10**5000, "text")
        except UnlabellableError as exc:
            info = error_info(exc)
        assert info.type == "tests.test_naming.UnlabellableError"
        assert info.message == "<int, 5001 digits>, text"
        assert info.filename == __file__

    def test_builtin_method_of_an_odd_object(self):
        class Mapping(dict, metaclass=RaisingModule):
            pass

        name = naming.describe_receiver(Mapping().update)[0]
        assert name.startswith("builtins.")
        assert name.endswith(".Mapping.update")
        assert naming.describe_receiver([].append)[0] == "builtins.list.append"
        assert naming.describe_receiver(len)[0] == "builtins.len"

    def test_signal_names_survive_odd_modules(self, monkeypatch):
        class NotAModule:
            @property
            def __dict__(self):  # pragma: no cover - must not be read
                raise AssertionError("read a non-module's __dict__")

        local = Signal()
        monkeypatch.setitem(sys.modules, "tests.not_a_module", NotAModule())
        assert naming.signal_label(local)[0] == f"Signal@{id(local):#x}"
