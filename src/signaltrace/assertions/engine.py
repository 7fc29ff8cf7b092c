"""The assertion functions behind the ``trace.assert_*`` methods, and
:exc:`SignalTraceAssertionError`. Each function takes the trace first and
returns what matched; on failure it raises the error with a headline saying
what was expected and what happened instead, the numbered trace tree and the
near-miss hints.

Receivers given as objects match by identity, as names by dotted or short
name (:mod:`signaltrace.query`). On a trace that :setting:`MAX_EVENTS` cut
short, a check that would pass on absence, on a count or on an order cannot
be trusted (what it looks for may be in the part that was not recorded), so
it fails saying so; finding a call is still proof that it ran.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from signaltrace import naming
from signaltrace._format import short_path
from signaltrace.query import (
    AmbiguousReceiverError,
    ambiguous_text,
    receiver_calls,
    receiver_name,
    resolve_name,
    same_receiver,
)
from signaltrace.records import Dispatch, ReceiverCall

from .hints import (
    MODEL_SIGNALS,
    TRUNCATION_ADVICE,
    identity_hints,
    near_misses,
    safe,
    signal_name_hints,
    skipped_hint,
    trace_hints,
    uncalled_hints,
)
from .matching import mismatch, sender_text, signal_text
from .text import at, filters_text, lines_text, numbering, times_text, tree, truncation_text

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


def refusal(
    trace: Trace, claim: str, found: str | None, consequence: str
) -> SignalTraceAssertionError:
    """The failure of a check that a truncated trace cannot answer."""
    seen = f"{found} in the recorded part, but " if found is not None else ""
    return failure(
        trace,
        f"Cannot assert {claim}: {seen}the trace is truncated ({truncation_text(trace)}), "
        f"so {consequence}.",
        [TRUNCATION_ADVICE],
    )


def select(trace: Trace, receiver: object) -> tuple[str, list[ReceiverCall]]:
    """The dotted name to show for ``receiver`` and all its calls in ``trace``.

    :raises SignalTraceAssertionError: for a short name that ends several dotted names.
    """
    __tracebackhide__ = True
    calls = trace.calls
    try:
        if isinstance(receiver, str):
            name = resolve_name(receiver, calls)
            return name, [call for call in calls if call.receiver_name == name]
        return receiver_name(receiver), receiver_calls(calls, receiver)
    except AmbiguousReceiverError as err:
        lines = numbering(trace)
        candidates = [
            name + lines_text(lines.get(id(c)) for c in calls if c.receiver_name == name)
            for name in err.candidates
        ]
        raise failure(trace, ambiguous_text(err.name, candidates), []) from None


def namesakes(
    trace: Trace, receiver: object, name: str, ran: list[ReceiverCall]
) -> list[ReceiverCall]:
    """Calls of other objects with the name of ``receiver`` (an object)."""
    if isinstance(receiver, str):
        return []
    own = {id(call) for call in ran}
    return [c for c in trace.calls if c.receiver_name == name and id(c) not in own]


def why_not_called(
    trace: Trace,
    receiver: object,
    name: str,
    others: list[ReceiverCall],
    signal: object,
    sender: object,
    lines: dict[int, int],
) -> list[str]:
    """Hints for a receiver with no call at all: namesakes that ran, or why it did not."""
    if others:
        return safe(lambda: identity_hints(receiver, name, others, lines))
    return safe(lambda: uncalled_hints(trace, receiver, name, signal, sender, lines))


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

    :param receiver: a receiver object, matched by identity (a bound method:
        same function on the same object), or a name: its dotted name, or a
        short name that ends one dotted name in the trace only.
    :param signal: a signal object, its name (``"post_save"``) or dotted path.
    :param sender: a sender object (a model class) or its label (``"auth.User"``).
    :param match: recorded kwargs to match, such as ``created=True``.
    :raises ValueError: for a short name that ends several dotted names.

    .. versionadded:: 0.1.0
    """
    return [
        call
        for call in receiver_calls(trace.calls, receiver)
        if mismatch(call.dispatch, signal, sender, match) is None
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
    matched here; filter :func:`calls_of` yourself. On a truncated trace,
    ``times=`` fails unless more calls than ``times`` were recorded: the part
    that was not recorded may hold more.

    :raises SignalTraceAssertionError: with the trace and near-miss hints.

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    check_times(times)
    name, ran = select(trace, receiver)
    calls = [call for call in ran if mismatch(call.dispatch, signal, sender, match) is None]
    if times is None and calls:
        return calls
    lines = numbering(trace)
    filters_given = filters_text(signal, sender, match)
    if times is not None and len(calls) <= times:
        if trace.truncated:
            found = (
                f"it was called {times_text(len(calls))}"
                + lines_text(lines.get(id(c)) for c in calls)
                if calls
                else "it was not called"
            )
            raise refusal(
                trace,
                f"that {name} was called {times_text(times)}{filters_given}",
                found,
                "the part that was not recorded may hold more calls",
            )
        if len(calls) == times:
            return calls
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
    headline = f"Expected {name} to be called{expected}{filters_given}, but {actual}."
    filters = (signal, sender, match)
    hints = safe(lambda: near_misses(name, "ran", ran, lines, filters))
    others = namesakes(trace, receiver, name, ran)
    if not ran:
        hints += why_not_called(trace, receiver, name, others, signal, sender, lines)
    else:
        matching = [c for c in others if mismatch(c.dispatch, *filters) is None]
        if matching and not calls:
            hints += safe(lambda: identity_hints(receiver, name, matching, lines))
    hints += safe(lambda: signal_name_hints(trace, signal))
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

    On a truncated trace it fails even when no call matches: the receiver may
    have run in the part that was not recorded.

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    name, ran = select(trace, receiver)
    calls = [call for call in ran if mismatch(call.dispatch, signal, sender, match) is None]
    if not calls:
        if trace.truncated:
            raise refusal(
                trace,
                f"that {name} was not called{filters_text(signal, sender, match)}",
                None,
                "it may have been called in the part that was not recorded",
            )
        return trace
    lines = numbering(trace)
    raise failure(
        trace,
        f"Expected {name} not to be called"
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
    unless ``SIGNALTRACE["RECORD_EMPTY"]`` is true. On a truncated trace,
    ``times=`` fails unless more dispatches than ``times`` were recorded.

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    check_times(times)
    found = dispatches(trace, signal, sender, match)
    if times is None and found:
        return found
    label = signal_text(signal)
    lines = numbering(trace)
    if times is not None and len(found) <= times:
        if trace.truncated:
            raise refusal(
                trace,
                f"that {label} was sent {times_text(times)}{filters_text(None, sender, match)}",
                f"it was sent {times_text(len(found))}"
                + lines_text(lines.get(id(d)) for d in found)
                if found
                else "it was not sent",
                "the part that was not recorded may hold more dispatches",
            )
        if len(found) == times:
            return found
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
    misspelt = safe(lambda: signal_name_hints(trace, signal))
    record_empty = trace.options.record_empty
    if misspelt:
        hints += misspelt  # the name names no signal: the rest would mislead
    elif record_empty is not True and not dispatches(trace, signal, sender, {}):
        hints.append(
            "signaltrace records a dispatch only when it has receivers"
            + (" or is sent inside a receiver (RECORD_EMPTY='nested')" if record_empty else "")
            + f"; set SIGNALTRACE['RECORD_EMPTY'] = True to record {label} sent to no "
            "receivers too."
        )
    path = signal if isinstance(signal, str) else naming.signal_label(signal)[1]
    if not sent and (path in MODEL_SIGNALS or f"django.db.models.signals.{path}" in MODEL_SIGNALS):
        wanted: list[str | None] = [sender_text(sender)] if sender is not None else [None]
        hints += safe(lambda: skipped_hint(trace, path.rsplit(".", 1)[-1], wanted))
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

    On a truncated trace it fails even when none matches: the signal may have
    been sent in the part that was not recorded.

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    found = dispatches(trace, signal, sender, match)
    if not found:
        if trace.truncated:
            raise refusal(
                trace,
                f"that {signal_text(signal)} was not sent{filters_text(None, sender, match)}",
                None,
                "it may have been sent in the part that was not recorded",
            )
        return trace
    lines = numbering(trace)
    raise failure(
        trace,
        f"Expected {signal_text(signal)} not to be sent{filters_text(None, sender, match)}, "
        f"but it was sent {times_text(len(found))}{lines_text(lines.get(id(d)) for d in found)}.",
        [],
    )


def same_target(one: object, other: object, one_name: str, other_name: str) -> bool:
    """Whether two receivers given to :func:`assert_order` would match the same calls."""
    if one_name != other_name:
        return False
    if isinstance(one, str) or isinstance(other, str):
        return True
    return same_receiver(one, other)


def assert_order(trace: Trace, /, *receivers: object) -> list[ReceiverCall]:
    """Assert that the receivers' first calls started in the order given; return them.

    On a truncated trace it fails: a receiver's first call may be in the part
    that was not recorded.

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    if len(receivers) < 2:
        raise ValueError("assert_order() needs two or more different receivers")
    selected = [select(trace, r) for r in receivers]
    names = [name for name, _ in selected]
    for i, (one, one_name) in enumerate(zip(receivers, names, strict=True)):
        for other, other_name in zip(receivers[i + 1 :], names[i + 1 :], strict=True):
            if same_target(one, other, one_name, other_name):
                raise ValueError("assert_order() needs two or more different receivers")
    if trace.truncated:
        raise refusal(
            trace,
            "the order of first calls",
            None,
            "a receiver's first call may be in the part that was not recorded",
        )
    firsts = [calls[0] if calls else None for _, calls in selected]
    lines = numbering(trace)
    missing = [name for name, first in zip(names, firsts, strict=True) if first is None]
    expected = "\n".join(
        f"  {name}{lines_text([lines.get(id(first))]) if first is not None else ' (not called)'}"
        for name, first in zip(names, firsts, strict=True)
    )
    if missing:
        verb = "was" if len(missing) == 1 else "were"
        headline = (
            "Expected receivers to run in the order given, but "
            f"{' and '.join(missing)} {verb} not called."
        )
        hints: list[str] = []
        for receiver, name, first in zip(receivers, names, firsts, strict=True):
            if first is None:
                others = namesakes(trace, receiver, name, [])
                hints += why_not_called(trace, receiver, name, others, None, None, lines)
        hints += safe(lambda: trace_hints(trace, []))
        raise failure(trace, headline, hints, [f"Expected order:\n{expected}"])
    calls = [first for first in firsts if first is not None]
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


def assert_no_task_before_commit(trace: Trace, /) -> Trace:
    """Fail if a receiver published a Celery task inside ``transaction.atomic``.

    A worker may run such a task before the transaction commits, and not find
    the rows it was enqueued for (``DoesNotExist``). Publish from
    ``transaction.on_commit(lambda: task.delay(pk))`` instead. Needs the Celery
    integration (``signaltrace.integrations.celery``); ``TestCase``'s own
    transaction does not count, so it works in ``TestCase`` tests too.

    :raises SignalTraceAssertionError: listing each such task and its receiver.

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    early = [(call, task) for call in trace.calls for task in call.tasks if task.before_commit]
    if not early:
        return trace
    lines = numbering(trace)
    details = [
        f"  {task.name} (id {task.id}) by {call.receiver_name}{lines_text([lines.get(id(call))])}"
        for call, task in early
    ]
    count = f"{len(early)} task{'s were' if len(early) != 1 else ' was'}"
    headline = (
        f"Expected no Celery task published inside transaction.atomic, but {count}:\n"
        + "\n".join(details)
    )
    hint = (
        "A worker may run the task before the transaction commits, and not find its rows "
        "(DoesNotExist). Publish it from transaction.on_commit(lambda: task.delay(...))."
    )
    raise failure(trace, headline, [hint])


def _queries_text(count: int) -> str:
    return f"{count} quer{'y' if count == 1 else 'ies'}"


def statements_text(call: ReceiverCall, indent: str = "    ") -> list[str]:
    """The statements of ``call`` (``RECORD_SQL``), one a line, the same one as ``12 × ...``."""
    if call.sql is None:
        return []
    width = len(str(max((s.count for s in call.sql), default=1)))
    lines = [f"{indent}{s.count:>{width}} × {s.sql}" for s in call.sql]
    if call.sql_omitted:
        lines.append(
            f"{indent}… {call.sql_omitted} more statement{'s' if call.sql_omitted != 1 else ''}"
            " not kept (50 are kept per call)"
        )
    return lines


def assert_max_queries(
    trace: Trace,
    receiver: object,
    n: int,
    /,
    *,
    sender: object = None,
    signal: object = None,
    **match: object,
) -> list[ReceiverCall]:
    """Assert that each call of ``receiver`` ran at most ``n`` queries; return its calls.

    A call's queries are the database statements run while it ran, those of
    the receivers it caused to run included (:setting:`RECORD_DB`); with
    :setting:`RECORD_SQL` the failure message lists them, each one once with
    the number of times it ran (``12 × SELECT ...``: an N+1). Only calls
    matching ``signal``, ``sender`` and the recorded kwargs in ``match`` count.

    It fails if no call matches, if a matching call's queries were not counted
    (``RECORD_DB`` off, or an async receiver, whose queries run in other
    threads), and on a truncated trace unless a call over the limit was
    recorded.

    :raises SignalTraceAssertionError: with the statements, the trace and hints.

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    if type(n) is not int or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    name, ran = select(trace, receiver)
    calls = [call for call in ran if mismatch(call.dispatch, signal, sender, match) is None]
    lines = numbering(trace)
    filters_given = filters_text(signal, sender, match)
    limit = f"at most {_queries_text(n)}"
    filters = (signal, sender, match)
    if not calls:
        if ran:
            actual = (
                f"none of its {len(ran)} calls matched"
                if len(ran) > 1
                else "its call did not match"
            )
        else:
            actual = "it was not called"
        hints = safe(lambda: near_misses(name, "ran", ran, lines, filters))
        if not ran:
            others = namesakes(trace, receiver, name, ran)
            hints += why_not_called(trace, receiver, name, others, signal, sender, lines)
        signals = [signal] if signal is not None and not isinstance(signal, str) else []
        hints += safe(lambda: trace_hints(trace, signals))
        raise failure(trace, f"Expected {name}{filters_given} to run {limit}, but {actual}.", hints)
    over = [call for call in calls if call.queries is not None and call.queries > n]
    if over:
        details: list[str] = []
        for call in over:
            assert call.queries is not None
            details.append(
                f"  {name}{lines_text([lines.get(id(call))])} ran {_queries_text(call.queries)}"
                + (":" if call.sql is not None else "")
            )
            details.extend(statements_text(call))
        which = "its call" if len(calls) == 1 else f"{len(over)} of its {len(calls)} calls"
        headline = (
            f"Expected each call of {name}{filters_given} to run {limit}, but {which} ran more:\n"
            + "\n".join(details)
        )
        hints = []
        if any(call.sql is None for call in over):
            hints.append(
                "Set SIGNALTRACE['RECORD_SQL'] = True to see the statements each call ran."
            )
        raise failure(trace, headline, hints)
    uncounted = [call for call in calls if call.queries is None]
    if uncounted:
        call = uncounted[0]
        if call.is_async:
            why = "it is async: its queries run in other threads and are not counted"
        elif call.duration_ns is None:
            why = "it has not finished"
        else:
            why = "its queries were not counted (SIGNALTRACE['RECORD_DB'] is off)"
        raise failure(
            trace,
            f"Cannot assert that {name}{filters_given} ran {limit} per call: "
            f"{why}{lines_text(lines.get(id(c)) for c in uncounted)}.",
            ["RECORD_DB (default: DEBUG) counts the statements of each sync receiver call."]
            if not call.is_async and call.duration_ns is not None
            else [],
        )
    if trace.truncated:
        most = max(call.queries or 0 for call in calls)
        raise refusal(
            trace,
            f"that {name}{filters_given} ran {limit} per call",
            f"its {len(calls)} recorded call{'s' if len(calls) != 1 else ''} ran at most "
            f"{_queries_text(most)}",
            "a call in the part that was not recorded may have run more",
        )
    return calls
