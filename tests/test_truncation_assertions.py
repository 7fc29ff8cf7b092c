"""Assertions on a trace that MAX_EVENTS cut short.

What a truncated trace holds is real, so finding a call there proves it ran.
Not finding one proves nothing: the receiver may have run in the part that was
not recorded. So the assertions that pass on absence (``assert_not_called``,
``assert_not_sent``), on counts (``times=``, ``assert_called_once``) and on
the order of first calls refuse, naming MAX_EVENTS, instead of passing.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.dispatch import Signal

import signaltrace
from signaltrace.testing import SignalTraceAssertionError

MODULE = "tests.test_truncation_assertions"
FIRST = f"{MODULE}.first"
SECOND = f"{MODULE}.second"
LATE = f"{MODULE}.late"

early_signal = Signal()
late_signal = Signal()

WHERE = (
    "MAX_EVENTS reached after 9 events (3 dispatches): the early_signal dispatch and "
    "everything after it were not recorded"
)
ADVICE = (
    "Raise MAX_EVENTS for this trace: capture(max_events=...), "
    "@pytest.mark.signaltrace(max_events=...) or SIGNALTRACE['MAX_EVENTS']."
)


def first(sender: Any, **kwargs: Any) -> None:
    """Connected to early_signal."""


def second(sender: Any, **kwargs: Any) -> None:
    """Connected to early_signal, after first."""


def late(sender: Any, **kwargs: Any) -> None:
    """Connected to late_signal, which is sent only after the cap was reached."""


@pytest.fixture
def connected():
    early_signal.connect(first)
    early_signal.connect(second)
    late_signal.connect(late)
    yield
    early_signal.disconnect(first)
    early_signal.disconnect(second)
    late_signal.disconnect(late)


def send_all() -> None:
    """Four early_signal sends (3 events each), then late_signal: the cap is 10."""
    for n in range(4):
        early_signal.send(sender=None, n=n)
    late_signal.send(sender=None)


@pytest.fixture
def trace(connected, settings):
    settings.SIGNALTRACE = {"ENABLED": True, "RECORD_ORIGIN": False}
    with signaltrace.capture(max_events=10) as trace:
        send_all()
    assert trace.truncated
    assert str(trace.truncated_at) == WHERE
    return trace


def failure(func: Any, *args: Any, **kwargs: Any) -> SignalTraceAssertionError:
    with pytest.raises(SignalTraceAssertionError) as info:
        func(*args, **kwargs)
    return info.value


def test_not_called_refuses(trace):
    """assert_not_called() cannot pass: the receiver may have run after the cap."""
    err = failure(trace.assert_not_called, late)
    assert str(err).split("\n\n")[0] == (
        f"Cannot assert that {LATE} was not called: the trace is truncated ({WHERE}), so it "
        "may have been called in the part that was not recorded."
    )
    assert err.hints == [ADVICE]
    assert err.trace is trace
    err = failure(trace.assert_not_called, first, n=3)
    assert str(err).startswith(f"Cannot assert that {FIRST} was not called with n=3: ")
    # What was recorded is certain: a recorded call fails the usual way.
    err = failure(trace.assert_not_called, first, n=1)
    assert str(err).splitlines()[0] == (
        f"Expected {FIRST} not to be called with n=1, but it was called once (line 5)."
    )


def test_not_sent_refuses(trace):
    """assert_not_sent() cannot pass either."""
    err = failure(trace.assert_not_sent, late_signal)
    assert str(err).split("\n\n")[0] == (
        f"Cannot assert that late_signal was not sent: the trace is truncated ({WHERE}), so it "
        "may have been sent in the part that was not recorded."
    )
    assert err.hints == [ADVICE]
    err = failure(trace.assert_not_sent, "early_signal", n=3)
    assert str(err).startswith("Cannot assert that early_signal was not sent with n=3: ")


def test_times_refuses(trace):
    """times= and assert_called_once() cannot pass: more calls may be missing.

    Without times=, or with fewer than the calls recorded, the answer is certain.
    """
    err = failure(trace.assert_called, first, times=3)
    assert str(err).split("\n\n")[0] == (
        f"Cannot assert that {FIRST} was called 3 times: it was called 3 times "
        f"(lines 2, 5 and 8) in the recorded part, but the trace is truncated ({WHERE}), so "
        "the part that was not recorded may hold more calls."
    )
    assert err.hints == [ADVICE]
    err = failure(trace.assert_called_once, second, n=0)
    assert str(err).split("\n\n")[0] == (
        f"Cannot assert that {SECOND} was called once with n=0: it was called once (line 3) in "
        f"the recorded part, but the trace is truncated ({WHERE}), so the part that was not "
        "recorded may hold more calls."
    )
    err = failure(trace.assert_called, late, times=0)
    assert str(err).startswith(
        f"Cannot assert that {LATE} was called 0 times: it was not called in the recorded part, "
    )
    err = failure(trace.assert_sent, early_signal, times=3)
    assert str(err).split("\n\n")[0] == (
        "Cannot assert that early_signal was sent 3 times: it was sent 3 times "
        f"(lines 1, 4 and 7) in the recorded part, but the trace is truncated ({WHERE}), so "
        "the part that was not recorded may hold more dispatches."
    )

    # Found is found: without times=, what was recorded is enough.
    assert len(trace.assert_called(first)) == 3
    assert len(trace.assert_called(second, n=2)) == 1
    assert len(trace.assert_sent(early_signal)) == 3
    # More recorded calls than times= is certain: dropping can only add calls.
    err = failure(trace.assert_called, first, times=2)
    assert str(err).splitlines()[0] == (
        f"Expected {FIRST} to be called 2 times, but it was called 3 times (lines 2, 5 and 8)."
    )
    assert err.hints == [
        "5 events were dropped (MAX_EVENTS=10 reached); what you expect may be among them."
    ]
    err = failure(trace.assert_called_once, first)
    assert str(err).startswith(f"Expected {FIRST} to be called once, but it was called 3 times")


def test_order_refuses(trace):
    """The first calls in the recorded part need not be the first calls."""
    err = failure(trace.assert_order, first, second)
    assert str(err).split("\n\n")[0] == (
        "Cannot assert the order of first calls: the trace is truncated "
        f"({WHERE}), so a receiver's first call may be in the part that was not recorded."
    )
    assert err.hints == [ADVICE]
    err = failure(trace.assert_order, first, late)
    assert str(err).startswith("Cannot assert the order of first calls: the trace is truncated")


def test_an_open_trace(connected, settings):
    """Inside the block (the pytest fixture's trace), the refusal says what is known so far.

    With room for every event, the same checks pass.
    """
    settings.SIGNALTRACE = {"ENABLED": True, "RECORD_ORIGIN": False}
    with signaltrace.capture(max_events=10) as trace:
        send_all()
        err = failure(trace.assert_not_called, late)
        assert str(err).split("\n\n")[0] == (
            f"Cannot assert that {LATE} was not called: the trace is truncated (MAX_EVENTS=10 "
            "reached; 5 events were not recorded so far), so it may have been called in the part "
            "that was not recorded."
        )
        trace.assert_called(first)

    # With room for everything, the same checks pass.
    with signaltrace.capture(max_events=15) as trace:
        send_all()
    assert not trace.truncated
    trace.assert_not_called(late, n=1)
    trace.assert_called(first, times=4)
    trace.assert_order(first, second, late)
    trace.assert_not_sent(late_signal, n=1)
    trace.assert_sent(late_signal, times=1)
