"""The assertion functions behind the ``trace.assert_*`` methods, and
:exc:`SignalTraceAssertionError`. Each function takes the trace first and
returns what matched; on failure it raises the error with a headline saying
what was expected and what happened instead, the numbered trace tree and the
near-miss hints.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING

from signaltrace import naming
from signaltrace._format import short_path
from signaltrace.query import receiver_name
from signaltrace.records import Dispatch, ReceiverCall

from .hints import MODEL_SIGNALS, near_misses, safe, trace_hints, uncalled_hints
from .matching import mismatch, signal_text
from .text import at, filters_text, lines_text, numbering, times_text, tree

if TYPE_CHECKING:
    from signaltrace.traces import Trace

__unittest = True  # unittest leaves this module's frames out of tracebacks


class SignalTraceAssertionError(AssertionError):
    """A trace assertion failed; ``str()`` is the full message.

    :ivar trace: the :class:`~signaltrace.Trace` the assertion looked at.
    :ivar hints: the near-miss hints at the end of the message.

    .. versionadded:: 0.1.0
    """

    def __init__(self, message: str, *, trace: Trace | None = None, hints: list[str] | None = None):
        super().__init__(message)
        self.trace = trace
        self.hints = hints or []


def failure(
    trace: Trace, headline: str, hints: list[str], details: Iterable[str] = ()
) -> SignalTraceAssertionError:
    parts = [headline, *details, f"Captured signal trace:\n{tree(trace)}"]
    if hints:
        parts.append("\n".join(f"Hint: {hint}" for hint in hints))
    return SignalTraceAssertionError("\n\n".join(parts), trace=trace, hints=hints)


def calls_of(
    trace: Trace,
    receiver: object,
    /,
    *,
    signal: object = None,
    sender: object = None,
    **match: object,
) -> list[ReceiverCall]:
    """The calls of ``receiver`` in ``trace`` that match every filter, in order.

    :param receiver: a receiver callable or its dotted name.
    :param signal: a signal object, its name (``"post_save"``) or dotted path.
    :param sender: a sender object (a model class) or its label (``"auth.User"``).
    :param match: recorded kwargs to match, such as ``created=True``.

    .. versionadded:: 0.1.0
    """
    name = receiver_name(receiver)
    return [
        call
        for call in trace.calls
        if call.receiver_name == name and mismatch(call.dispatch, signal, sender, match) is None
    ]


def check_times(times: int | None) -> None:
    if times is not None and (type(times) is not int or times < 0):
        raise ValueError(f"times must be a non-negative int, got {times!r}")


def assert_called(
    trace: Trace,
    receiver: object,
    /,
    *,
    sender: object = None,
    signal: object = None,
    times: int | None = None,
    **match: object,
) -> list[ReceiverCall]:
    """Assert that ``receiver`` ran (``times`` times, if given) and return its calls.

    Only calls matching ``signal``, ``sender`` and the recorded kwargs in
    ``match`` count. A kwarg named ``sender``, ``signal`` or ``times`` cannot be
    matched here; filter :func:`calls_of` yourself.

    :raises SignalTraceAssertionError: with the trace and near-miss hints.

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    check_times(times)
    calls = calls_of(trace, receiver, signal=signal, sender=sender, **match)
    if (len(calls) == times) if times is not None else calls:
        return calls
    name = receiver_name(receiver)
    lines = numbering(trace)
    ran = [call for call in trace.calls if call.receiver_name == name]
    expected = f" {times_text(times)}" if times is not None else ""
    if calls:
        actual = f"it was called {times_text(len(calls))}"
        actual += lines_text(lines.get(id(c)) for c in calls)
    elif ran:
        actual = (
            f"none of its {len(ran)} calls matched" if len(ran) > 1 else "its call did not match"
        )
    else:
        actual = "it was not called"
    headline = (
        f"Expected {name} to be called{expected}{filters_text(signal, sender, match)}, "
        f"but {actual}."
    )
    filters = (signal, sender, match)
    hints = safe(lambda: near_misses(name, "ran", ran, lines, filters))
    if not ran:
        hints += safe(lambda: uncalled_hints(trace, receiver, name, signal, sender, lines))
    signals = [signal] if signal is not None and not isinstance(signal, str) else []
    hints += safe(lambda: trace_hints(trace, signals))
    raise failure(trace, headline, hints)


def assert_called_once(
    trace: Trace,
    receiver: object,
    /,
    *,
    sender: object = None,
    signal: object = None,
    **match: object,
) -> ReceiverCall:
    """Assert that ``receiver`` ran exactly once (see :func:`assert_called`); return the call.

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    return assert_called(trace, receiver, sender=sender, signal=signal, times=1, **match)[0]


def assert_not_called(
    trace: Trace,
    receiver: object,
    /,
    *,
    sender: object = None,
    signal: object = None,
    **match: object,
) -> Trace:
    """Assert that no call of ``receiver`` matches the filters; return the trace.

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    calls = calls_of(trace, receiver, signal=signal, sender=sender, **match)
    if not calls:
        return trace
    lines = numbering(trace)
    raise failure(
        trace,
        f"Expected {receiver_name(receiver)} not to be called"
        f"{filters_text(signal, sender, match)}, but it was called "
        f"{times_text(len(calls))}{lines_text(lines.get(id(c)) for c in calls)}.",
        [],
    )


def dispatches(
    trace: Trace, signal: object, sender: object, match: dict[str, object]
) -> list[Dispatch]:
    return [d for d in trace.dispatches if mismatch(d, signal, sender, match) is None]


def assert_sent(
    trace: Trace,
    signal: object,
    /,
    *,
    sender: object = None,
    times: int | None = None,
    **match: object,
) -> list[Dispatch]:
    """Assert that ``signal`` was sent (``times`` times, if given); return the dispatches.

    signaltrace records a dispatch only if it has receivers for its sender,
    unless ``SIGNALTRACE["RECORD_EMPTY"]`` is true.

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    check_times(times)
    found = dispatches(trace, signal, sender, match)
    if (len(found) == times) if times is not None else found:
        return found
    label = signal_text(signal)
    lines = numbering(trace)
    sent = trace.find_dispatches(signal=signal)
    if found:
        actual = f"it was sent {times_text(len(found))}"
        actual += lines_text(lines.get(id(d)) for d in found)
    elif sent:
        actual = (
            f"none of its {len(sent)} dispatches matched"
            if len(sent) > 1
            else "its dispatch did not match"
        )
    else:
        actual = "it was not sent"
    expected = f" {times_text(times)}" if times is not None else ""
    headline = (
        f"Expected {label} to be sent{expected}{filters_text(None, sender, match)}, but {actual}."
    )
    hints = safe(lambda: near_misses(label, "was sent", sent, lines, (None, sender, match)))
    record_empty = trace.options.record_empty
    if record_empty is not True and not dispatches(trace, signal, sender, {}):
        hints.append(
            "signaltrace records a dispatch only when it has receivers"
            + (" or is sent inside a receiver (RECORD_EMPTY='nested')" if record_empty else "")
            + f"; set SIGNALTRACE['RECORD_EMPTY'] = True to record {label} sent to no "
            "receivers too."
        )
    path = signal if isinstance(signal, str) else naming.signal_label(signal)[1]
    if not sent and (path in MODEL_SIGNALS or f"django.db.models.signals.{path}" in MODEL_SIGNALS):
        hints.append(
            "QuerySet.update(), bulk_create(), bulk_update() and raw SQL send no model signals."
        )
    signals = [] if isinstance(signal, str) else [signal]
    hints += safe(lambda: trace_hints(trace, signals))
    raise failure(trace, headline, hints)


def assert_not_sent(
    trace: Trace,
    signal: object,
    /,
    *,
    sender: object = None,
    **match: object,
) -> Trace:
    """Assert that no recorded dispatch of ``signal`` matches the filters; return the trace.

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    found = dispatches(trace, signal, sender, match)
    if not found:
        return trace
    lines = numbering(trace)
    raise failure(
        trace,
        f"Expected {signal_text(signal)} not to be sent{filters_text(None, sender, match)}, "
        f"but it was sent {times_text(len(found))}{lines_text(lines.get(id(d)) for d in found)}.",
        [],
    )


def assert_order(trace: Trace, /, *receivers: object) -> list[ReceiverCall]:
    """Assert that the receivers' first calls started in the order given; return them.

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    names = [receiver_name(r) for r in receivers]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError("assert_order() needs two or more different receivers")
    first: dict[str, ReceiverCall] = {}
    for call in trace.calls:
        first.setdefault(call.receiver_name, call)
    lines = numbering(trace)
    missing = [name for name in names if name not in first]
    expected = "\n".join(
        f"  {name}{lines_text([lines.get(id(first[name]))]) if name in first else ' (not called)'}"
        for name in names
    )
    if missing:
        verb = "was" if len(missing) == 1 else "were"
        headline = (
            "Expected receivers to run in the order given, but "
            f"{' and '.join(missing)} {verb} not called."
        )
        hints: list[str] = []
        for receiver, name in zip(receivers, names, strict=True):
            if name in missing:
                hints += safe(
                    functools.partial(uncalled_hints, trace, receiver, name, None, None, lines)
                )
        hints += safe(lambda: trace_hints(trace, []))
        raise failure(trace, headline, hints, [f"Expected order:\n{expected}"])
    calls = [first[name] for name in names]
    for i, call in enumerate(calls):
        for later in calls[i + 1 :]:
            if later.start_ns < call.start_ns:
                actual = "\n".join(
                    f"  {c.receiver_name}{lines_text([lines.get(id(c))])}"
                    for c in sorted(calls, key=lambda c: c.start_ns)
                )
                raise failure(
                    trace,
                    f"Expected {call.receiver_name} to run before {later.receiver_name}, "
                    f"but it first ran{at(lines, call)}, after {later.receiver_name}"
                    f"{at(lines, later)}.",
                    [],
                    [f"Expected order:\n{expected}", f"Order of first calls:\n{actual}"],
                )
    return calls


def assert_no_errors(trace: Trace, /) -> Trace:
    """Assert that no receiver raised, including errors ``send_robust`` swallowed.

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    errors = trace.errors
    if not errors:
        return trace
    lines = numbering(trace)
    details = []
    for call in errors:
        error = call.error
        assert error is not None
        line = f"  {call.receiver_name}{lines_text([lines.get(id(call))])} raised {error}"
        if error.filename is not None:
            line += f" at {short_path(error.filename)}:{error.lineno}"
        if call.swallowed:
            line += f" (swallowed by {call.dispatch.method})"
        details.append(line)
    count = f"{len(errors)} receiver call{'s' if len(errors) != 1 else ''}"
    headline = f"Expected no receiver errors, but {count} raised:\n" + "\n".join(details)
    raise failure(trace, headline, [])


def assert_no_skipped(trace: Trace, /) -> Trace:
    """Fail if any operation in ``trace`` skipped signals that had receivers.

    :raises SignalTraceAssertionError: listing each skipped dispatch and where it happened.

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    if not trace.skipped:
        return trace
    count = len(trace.skipped)
    lines = [
        f"expected no skipped signals, but {count} operation{'s' if count != 1 else ''} "
        "skipped receivers that were connected:"
    ]
    lines.extend(f"  {item}" for item in trace.skipped)
    lines.append(
        "These operations send no model signals. Where the receivers must run, save() or "
        "delete() each object, or send the signal yourself; see the how-to "
        "'Hidden control flow'."
    )
    raise SignalTraceAssertionError("\n".join(lines), trace=trace)
