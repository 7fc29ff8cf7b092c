"""Bounded values: whatever is sent, a trace stays small, renders and serialises.

A kwarg ``10**5000`` made ``render()`` and ``to_dict()`` raise (``str()`` of an
int refuses past 4,300 digits), and the viewer answered 500; a 50 MB int stayed
alive as long as the trace. Ints past 64 bits are now labels, like long strings.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import re
import sys

import blinker
import pytest
from django.contrib.auth.models import User
from django.dispatch import Signal

import signaltrace
from signaltrace import context, naming
from signaltrace.records import ErrorInfo
from signaltrace.sinks import memory
from signaltrace.sinks.memory import buffer
from signaltrace.traces import Trace

order_paid = Signal()
calls: list[dict[str, object]] = []


def on_paid(sender, **kwargs):
    calls.append(kwargs)


def fails(sender, **kwargs):
    raise kwargs["error"]


@pytest.fixture(autouse=True)
def _connected(monkeypatch):
    monkeypatch.setattr(context, "_logged", set())
    order_paid.connect(on_paid)
    yield
    order_paid.disconnect(on_paid)
    order_paid.disconnect(fails)
    calls.clear()


def sent(**kwargs: object) -> Trace:
    with signaltrace.capture() as trace:
        order_paid.send(sender="shop", **kwargs)
    return trace


def recorded(value: object) -> object:
    return sent(value=value).dispatches[0].kwargs["value"]


def serialised(trace: Trace) -> str:
    return json.dumps(trace.to_dict())


def short_id(value: object) -> str:
    """A test id that never str()s the value (pytest would, and 10**5000 refuses)."""
    if type(value) is int:
        return f"int-{value.bit_length()}-bits{'-negative' if value < 0 else ''}"
    return type(value).__name__


class Loud(int):
    """An int whose text is not to be asked for."""

    def __str__(self):  # pragma: no cover - must not be called
        raise AssertionError("str() of a kwarg")

    __repr__ = __format__ = __str__  # type: ignore[assignment]


class TestInts:
    def test_huge_int_renders_and_serialises(self):
        """The issue's case: 10**5000 is recorded as a label, not kept and not str()'d."""
        trace = sent(big=10**5000)
        assert trace.dispatches[0].kwargs["big"] == "<int, 5001 digits>"
        assert "big=<int, 5001 digits>" in trace.render()
        assert json.loads(serialised(trace))["dispatches"][0]["kwargs"]["big"] == (
            "<int, 5001 digits>"
        )

    def test_huge_int_is_not_kept_alive(self):
        """A 5 MB int is dropped once the dispatch is recorded (the trace keeps a label)."""
        big = 1 << 40_000_000
        before = sys.getrefcount(big)
        trace = sent(big=big)
        assert calls[0]["big"] is big  # the receiver got it
        calls.clear()
        assert sys.getrefcount(big) == before
        label = trace.dispatches[0].kwargs["big"]
        digits = int(re.fullmatch(r"<int, (\d+) digits>", label).group(1))
        assert abs(digits - 40_000_000 * math.log10(2)) < 2
        assert len(serialised(trace)) < 2_000

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (0, 0),
            (10**15, 10**15),
            (2**64 - 1, 2**64 - 1),
            (-(2**64) + 1, -(2**64) + 1),
            (2**64, "<int, 20 digits>"),
            (-(2**64), "<negative int, 20 digits>"),
            (10**19, 10**19),  # 64 bits: exact
            (10**20 - 1, "<int, 20 digits>"),
            (10**20, "<int, 21 digits>"),
            (10**5000, "<int, 5001 digits>"),
            (10**5000 - 1, "<int, 5000 digits>"),
            (-(10**5000), "<negative int, 5001 digits>"),
            (True, True),
            (1.5e308, 1.5e308),
        ],
        ids=short_id,
    )
    def test_clamp(self, value, expected):
        """Ints up to 64 bits are exact; past that a digit count, computed without str()."""
        got = naming.kwarg_value(value)
        assert got == expected
        assert type(got) is type(expected)
        assert recorded(value) == expected

    def test_digit_counts_are_exact_up_to_20000_bits(self):
        limit = sys.get_int_max_str_digits()
        sys.set_int_max_str_digits(0)
        try:
            for bits in range(65, 20_000, 997):
                for value in (1 << bits, (1 << bits) - 1, 10 ** (bits // 4), 10 ** (bits // 4) - 1):
                    if value.bit_length() > 64:
                        assert naming.clamp_int(value) == f"<int, {len(str(value))} digits>"
        finally:
            sys.set_int_max_str_digits(limit)

    def test_hostile_int_subclass(self):
        """An int subclass is kept as the plain int (bounded), its __str__ never called."""
        assert recorded(Loud(7)) == 7
        assert type(recorded(Loud(7))) is int
        assert recorded(Loud(10**5000)) == "<int, 5001 digits>"
        assert naming.sender_label(Loud(7)) == "7"
        assert naming.sender_label(Loud(10**5000)) == "<int, 5001 digits>"

    def test_enums_stay_plain_numbers(self):
        class Colour(enum.IntEnum):
            RED = 1

        assert recorded(Colour.RED) == 1
        assert type(recorded(Colour.RED)) is int

    def test_huge_int_sender(self):
        with signaltrace.capture() as trace:
            order_paid.send(sender=10**5000)
        assert trace.dispatches[0].sender == "<int, 5001 digits>"
        trace.render()

    def test_huge_pk(self):
        """A model instance with a huge pk is labelled with the clamped pk."""
        user = User(pk=10**5000, username="x")
        assert recorded(user) == "auth.User pk=<int, 5001 digits>"
        assert recorded(User(pk=2**63, username="x")) == f"auth.User pk={2**63}"


class TestOtherValues:
    def test_strings_and_str_subclasses_are_cut(self):
        class Text(str):
            def __str__(self):  # pragma: no cover - must not be called
                raise AssertionError("str() of a kwarg")

        assert recorded("x" * 300) == "x" * 199 + "…"
        value = recorded(Text("y" * 10_000))
        assert value == "y" * 199 + "…"
        assert type(value) is str

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (list(range(20)), list(range(20))),
            (list(range(21)), "<list of 21>"),
            ([[1, 2]], "<list of 1>"),  # nested collections are not expanded
            ([[[[[[1]]]]]], "<list of 1>"),
            ((1, 10**5000), [1, "<int, 5001 digits>"]),
            (frozenset(f"field_{i}" for i in range(10_000)), "<frozenset of 10000>"),
            (tuple(f"field_{i}" for i in range(10_000)), "<tuple of 10000>"),
            (("x" * 1000,) * 20, ["x" * 199 + "…"] * 20),
            (b"x" * 10_000_000, "<bytes>"),
            (bytearray(1000), "<bytearray>"),
            ({i: i for i in range(1000)}, "<dict>"),
        ],
        ids=short_id,
    )
    def test_collections_and_bytes(self, value, expected):
        """At most 20 scalars per collection, one level deep, each bounded."""
        assert naming.kwarg_value(value) == expected
        assert recorded(value) == expected

    def test_update_fields_of_a_huge_save(self):
        trace = sent(update_fields=frozenset(f"field_{i}" for i in range(100_000)))
        assert trace.dispatches[0].kwargs["update_fields"] == "<frozenset of 100000>"
        assert len(serialised(trace)) < 2_000

    def test_keys_and_count_of_kwargs(self):
        """Long kwarg names are cut; past 64 kwargs, the rest are counted."""
        trace = sent(**{"k" * 1000: 1})
        assert list(trace.dispatches[0].kwargs) == ["k" * 199 + "…"]
        trace = sent(**{f"arg{i}": i for i in range(100)})
        kwargs = trace.dispatches[0].kwargs
        assert len(kwargs) == 65
        assert kwargs["arg63"] == 63
        assert kwargs["…"] == "<36 more kwargs>"
        assert len(serialised(trace)) < 5_000


class TestNames:
    def test_long_names_are_cut(self):
        def receiver(sender, **kwargs):
            pass

        receiver.__qualname__ = "r" * 10_000
        sender = type("S" * 10_000, (), {})
        order_paid.connect(receiver)
        try:
            with signaltrace.capture() as trace:
                order_paid.send(sender=sender)
                blinker.signal("n" * 10_000).send("x")
        finally:
            order_paid.disconnect(receiver)
        names = [call.receiver_name for call in trace.calls]
        assert all(len(name) <= 300 for name in names)
        assert all(len(dispatch.sender) <= 300 for dispatch in trace.dispatches)
        assert all(len(dispatch.signal_name) <= 300 for dispatch in trace.dispatches)

    def test_type_label_of_odd_classes(self):
        cls = type("C", (), {"__module__": object()})
        assert naming.type_label(cls) == "?.C"
        assert naming.type_label(type("C" * 1000, (), {})).endswith("…")
        assert naming.type_label(5) == "?"  # type: ignore[arg-type]


class Rejected(Exception):
    """What the failing receiver raises (its args are the test's)."""


class TestExceptionMessages:
    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (Rejected("x" * 1_000_000), "x" * 199 + "…"),
            (Rejected(10**5000), "<int, 5001 digits>"),
            (Rejected(Loud(3), 1.5, None), "3, 1.5, None"),
            (Rejected(*["a"] * 10_000), ", ".join(["a"] * 20) + ", …"),
            (Rejected(*["abc" * 30] * 5), None),
        ],
        ids=short_id,
    )
    def test_messages_are_bounded(self, error, expected):
        message = naming.exception_message(error)
        assert len(message) <= 200
        if expected is not None:
            assert message == expected
        order_paid.connect(fails)
        # send(), not send_robust(): Django's log of the failure would str() it.
        with signaltrace.capture() as trace, pytest.raises(Rejected) as raised:
            order_paid.send(sender="shop", error=error)
        assert raised.value is error
        (call,) = [c for c in trace.calls if c.error is not None]
        assert call.error.message == message
        assert len(serialised(trace)) < 5_000


class TestRenderNeverRaises:
    def test_one_bad_call_is_a_placeholder(self, caplog):
        """An item that cannot be formatted renders as a placeholder; the rest stays."""

        def other(sender, **kwargs):
            pass

        order_paid.connect(other)
        try:
            trace = sent(value=1)
        finally:
            order_paid.disconnect(other)
        bad = trace.calls[0]
        bad.error = ErrorInfo(5, "message")  # type: ignore[arg-type]
        bad.filename = Unformattable()  # type: ignore[assignment]
        with caplog.at_level(logging.WARNING, logger="signaltrace"):
            text = trace.render()
            data = trace.to_dict()
        assert "<unrenderable receiver call>" in text
        assert "tests.test_bounds.TestRenderNeverRaises" in text  # the other call
        calls_json = data["dispatches"][0]["calls"]
        assert calls_json[0]["receiver"] == "<unrenderable receiver call>"
        assert calls_json[1]["receiver"].endswith("other")
        json.dumps(data)
        assert any("rendering a trace" in r.getMessage() for r in caplog.records)

    def test_a_trace_that_cannot_be_read(self, monkeypatch):
        trace = sent(value=1)

        def broken(self):
            raise RuntimeError("broken")

        monkeypatch.setattr(Trace, "roots", property(broken))
        assert trace.render() == "<unrenderable trace>"
        data = trace.to_dict()
        assert data["schema"] == "signaltrace.trace/2"
        assert data["truncated"] is None
        json.dumps(data)

    def test_stored_huge_value_in_a_record(self):
        """A record made another way (not by the hot path) is still bounded on output."""
        trace = sent(value=1)
        trace.dispatches[0].kwargs["value"] = 10**5000
        trace.dispatches[0].kwargs["items"] = [10**5000, object()]
        assert "value=<int, 5001 digits>" in trace.render()
        kwargs = json.loads(serialised(trace))["dispatches"][0]["kwargs"]
        assert kwargs["items"] == ["<int, 5001 digits>", "<object>"]


class Unformattable:
    def __format__(self, spec):
        raise RuntimeError("no text")

    __str__ = __repr__ = lambda self: self.__format__("")


class TestTruncation:
    def test_marker_in_tree_and_json(self):
        with signaltrace.capture(max_events=4) as trace:
            for i in range(5):
                order_paid.send(sender="shop", n=i)
            inside = trace.render()
            open_field = trace.to_dict()["truncated"]
        lines = trace.render().splitlines()
        assert lines[-1] == f"⚠ truncated: {trace.truncated_at}"
        assert lines[-1].startswith("⚠ truncated: MAX_EVENTS reached after 4 events")
        assert trace.to_dict()["truncated"] == {
            "events": 4,
            "dispatches": 2,
            "what": "order_paid dispatch",
        }
        # While still open: what is known so far.
        assert inside.splitlines()[-1] == (
            "⚠ truncated: MAX_EVENTS=4 reached after 4 events (2 dispatches); "
            "6 events not recorded so far"
        )
        assert open_field == {"events": 4, "dispatches": 2, "what": "event"}

    def test_no_marker_without_truncation(self):
        trace = sent(value=1)
        assert "truncated" not in trace.render()
        assert trace.to_dict()["truncated"] is None


@pytest.mark.django_db
class TestViewer:
    @pytest.fixture(autouse=True)
    def _viewer(self, settings):
        settings.DEBUG = True
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
        buffer().clear()
        yield
        memory._buffer.clear()

    def test_detail_and_json_of_a_huge_int(self, client):
        """The issue's viewer case: the detail page and the JSON answer 200."""
        trace = sent(big=10**5000, blob=b"x" * 1_000_000, name="n" * 100_000)
        buffer().emit(trace)
        tid = trace.trace_id
        detail = client.get(f"/__signaltrace__/{tid}/")
        assert detail.status_code == 200
        assert b"&lt;int, 5001 digits&gt;" in detail.content
        data = client.get(f"/__signaltrace__/{tid}.json")
        assert data.status_code == 200
        assert data.json()["dispatches"][0]["kwargs"]["big"] == "<int, 5001 digits>"
        assert len(data.content) < 5_000
