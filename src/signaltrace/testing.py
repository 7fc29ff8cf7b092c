"""Assertions on a :class:`~signaltrace.Trace`, for pytest and ``unittest``.

.. code-block:: python

    with signaltrace.capture() as trace:
        User.objects.create(username="ann")
    trace.assert_called(create_user_profile, sender=User, created=True)
    trace.assert_not_called(backup_user_data)
    trace.assert_no_errors()

Every ``trace.assert_*`` method is the function of the same name here, taking
the trace first. A failure raises :exc:`SignalTraceAssertionError` whose
message states what was expected, shows the numbered tree of what ran and ends
with hints for near misses (another sender, another ``created``, a receiver
that is not connected at all). Receivers and signals are given as objects or
as dotted paths; senders as objects or labels (``"auth.User"``); kwarg values
as recorded, or as the objects they were recorded from (a model instance
matches ``"auth.User pk=7"``), or ``unittest.mock.ANY``.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import inspect
import os
import pkgutil
import sys
import types
import weakref
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Final, overload
from unittest import mock

from . import naming
from ._record import _REDACTED
from .capture import Trace, _sender_matches, _signal_matches, capture, receiver_name
from .records import Dispatch, ReceiverCall

__all__ = [
    "DeferredAssertion",
    "SignalTraceAssertionError",
    "SignalTraceTestMixin",
    "assert_called",
    "assert_called_once",
    "assert_no_errors",
    "assert_not_called",
    "assert_not_sent",
    "assert_order",
    "assert_sent",
    "calls_of",
]

__unittest = True  # unittest leaves this module's frames out of tracebacks

#: Lines of the trace tree shown in a failure message; the rest is elided.
MAX_TREE_LINES: Final = 400
_MAX_NEAR_MISSES: Final = 6
_MISSING: Final = object()
_MODEL_SIGNALS: Final = frozenset(
    f"django.db.models.signals.{name}"
    for name in ("pre_save", "post_save", "pre_delete", "post_delete", "m2m_changed")
)
_READY_ADVICE: Final = (
    "Receivers connect when the module holding their @receiver decorator is imported: "
    "import {module} in your AppConfig.ready()."
)


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


# -- matching -----------------------------------------------------------------


def _expected(value: object) -> object:
    """An expected kwarg value in the form the trace records it."""
    return value if value is mock.ANY else naming.kwarg_value(value)


def _same(recorded: object, expected: object) -> bool:
    if expected is mock.ANY:
        return True
    if (type(recorded) is bool) is not (type(expected) is bool):
        return False  # created=1 must not match created=True
    return bool(recorded == expected)


def _kwarg_diffs(recorded: dict[str, Any], match: dict[str, object]) -> list[tuple[str, object]]:
    """``(key, recorded value or _MISSING)`` for each expected kwarg that differs."""
    return [
        (key, recorded.get(key, _MISSING))
        for key, value in match.items()
        if key not in recorded or not _same(recorded[key], _expected(value))
    ]


def _mismatch(
    dispatch: Dispatch, signal: object, sender: object, match: dict[str, object]
) -> tuple[str, str] | None:
    """``None`` if ``dispatch`` matches; else ``(what it had, what was expected)``."""
    if signal is not None and not _signal_matches(dispatch, signal):
        return f"for {dispatch.signal_name}", _signal_text(signal)
    if sender is not None and not _sender_matches(dispatch, sender):
        return f"for sender={dispatch.sender}", f"sender={_sender_text(sender)}"
    diffs = _kwarg_diffs(dispatch.kwargs, match)
    if not diffs:
        return None
    present = [f"{key}={value!r}" for key, value in diffs if value is not _MISSING]
    absent = [key for key, value in diffs if value is _MISSING]
    had = "with " + ", ".join(present) if present else ""
    if absent:
        had += (" and " if had else "") + "without " + ", ".join(absent)
    return had, ", ".join(f"{key}={_value_text(match[key])}" for key, _ in diffs)


# -- text -----------------------------------------------------------------------


def _signal_text(signal: object) -> str:
    return signal if isinstance(signal, str) else naming.signal_label(signal)[0]


def _sender_text(sender: object) -> str:
    return sender if isinstance(sender, str) else naming.sender_label(sender)


def _value_text(value: object) -> str:
    return "ANY" if value is mock.ANY else repr(_expected(value))


def _filters_text(signal: object, sender: object, match: dict[str, object]) -> str:
    text = f" for {_signal_text(signal)}" if signal is not None else ""
    parts = [f"sender={_sender_text(sender)}"] if sender is not None else []
    parts += [f"{key}={_value_text(value)}" for key, value in match.items()]
    return text + (" with " + ", ".join(parts) if parts else "")


def _times_text(times: int) -> str:
    return "once" if times == 1 else f"{times} times"


def _lines_text(numbers: Iterable[int | None]) -> str:
    lines = [str(n) for n in numbers if n is not None]
    if not lines:
        return ""
    if len(lines) > 8:
        lines = [*lines[:7], f"{len(lines) - 7} more"]
    if len(lines) == 1:
        return f" (line {lines[0]})"
    return f" (lines {', '.join(lines[:-1])} and {lines[-1]})"


def _at(lines: dict[int, int], record: object) -> str:
    number = lines.get(id(record))
    return f" at line {number}" if number is not None else ""


def _numbering(trace: Trace) -> dict[int, int]:
    """``id(record) -> line number`` as in ``trace.render(numbered=True)``."""
    numbers: dict[int, int] = {}
    stack: list[Dispatch | ReceiverCall] = list(reversed(trace.roots))
    while stack:
        record = stack.pop()
        numbers[id(record)] = len(numbers) + 1
        if isinstance(record, Dispatch):
            stack.extend(reversed(record.calls))
        else:
            stack.extend(reversed(record.children))
    return numbers


def _tree(trace: Trace, *, numbered: bool = True) -> str:
    """``trace.render()``, cut after :data:`MAX_TREE_LINES` lines."""
    lines = trace.render(numbered=numbered).splitlines()
    if len(lines) > MAX_TREE_LINES + 1:
        more = len(lines) - MAX_TREE_LINES
        lines = [*lines[:MAX_TREE_LINES], f"… {more} more lines (print(trace) shows them all)"]
    return "\n".join(lines)


def _failure(
    trace: Trace, headline: str, hints: list[str], details: Iterable[str] = ()
) -> SignalTraceAssertionError:
    parts = [headline, *details, f"Captured signal trace:\n{_tree(trace)}"]
    if hints:
        parts.append("\n".join(f"Hint: {hint}" for hint in hints))
    return SignalTraceAssertionError("\n\n".join(parts), trace=trace, hints=hints)


# -- near misses ------------------------------------------------------------------


def _near_misses(
    subject: str,
    verb: str,
    records: Iterable[Dispatch | ReceiverCall],
    lines: dict[int, int],
    filters: tuple[object, object, dict[str, object]],
) -> list[str]:
    """``<subject> <verb> with created=False (line 5); expected created=True.``"""
    groups: dict[tuple[str, str], list[int | None]] = {}
    for record in records:
        dispatch = record if isinstance(record, Dispatch) else record.dispatch
        found = _mismatch(dispatch, *filters)
        if found is not None:
            groups.setdefault(found, []).append(lines.get(id(record)))
    hints = [
        f"{subject} {verb} {had}{_lines_text(numbers)}; expected {wanted}."
        for (had, wanted), numbers in list(groups.items())[:_MAX_NEAR_MISSES]
    ]
    if len(groups) > _MAX_NEAR_MISSES:
        hints.append(f"… and {len(groups) - _MAX_NEAR_MISSES} more near misses.")
    redacted = sorted(
        key
        for key in filters[2]
        if any(
            (r if isinstance(r, Dispatch) else r.dispatch).kwargs.get(key) == _REDACTED
            for r in records
        )
    )
    if redacted:
        hints.append(
            f"{', '.join(redacted)} {'is' if len(redacted) == 1 else 'are'} redacted in traces "
            f"(SIGNALTRACE['REDACT']), so {'it' if len(redacted) == 1 else 'they'} cannot be "
            "matched."
        )
    return hints


def _trace_hints(trace: Trace, signals: list[object]) -> list[str]:
    """Hints that do not depend on the receiver: ignored signals, dropped events."""
    hints = [
        f"{naming.signal_label(signal)[0]} is in SIGNALTRACE['IGNORE_SIGNALS'], "
        "so signaltrace never records it."
        for signal in signals
        if signal in trace.options.ignored
    ]
    if trace.dropped:
        hints.append(
            f"{trace.dropped} events were dropped (MAX_EVENTS={trace.max_events} reached); "
            "what you expect may be among them."
        )
    return hints


def _safe(hints: Callable[[], list[str]]) -> list[str]:
    """Hints are best effort: a failure while building them never hides the assertion."""
    try:
        return hints()
    except Exception:
        return []


def _all_signals() -> list[object]:
    """Every Django and blinker signal held by a module attribute (no user code runs)."""
    from django.dispatch import Signal

    kinds: tuple[type, ...] = (Signal,)
    named: list[object] = []
    try:
        import blinker

        kinds += (blinker.Signal,)
        named = list(blinker.default_namespace.values())
    except ImportError:  # pragma: no cover - blinker is a dependency
        pass
    found: dict[int, object] = {id(signal): signal for signal in named}
    for module in list(sys.modules.values()):
        try:
            namespace = object.__getattribute__(module, "__dict__")
        except AttributeError:  # a None placeholder in sys.modules
            continue
        for value in list(namespace.values()):
            if issubclass(type(value), kinds):
                found.setdefault(id(value), value)
    return list(found.values())


def _deref(ref: object) -> object:
    return ref() if isinstance(ref, weakref.ref) else ref


def _entries(signal: Any, candidates: dict[int, object]) -> Iterator[tuple[object, str | None]]:
    """``(receiver or None if dead, sender label or None for any sender)`` per connection."""
    from django.dispatch import Signal
    from django.dispatch.dispatcher import NONE_ID

    if isinstance(signal, Signal):
        for entry in list(signal.receivers):
            sender_key = entry[0][1]
            if sender_key == NONE_ID:
                yield _deref(entry[1]), None
                continue
            # Django 6.0+ keeps a weak reference to the sender; before, only its id.
            sender = _deref(entry[2]) if len(entry) > 3 and entry[2] is not None else None
            sender = sender if sender is not None else candidates.get(sender_key)
            yield (
                _deref(entry[1]),
                naming.sender_label(sender) if sender is not None else "<another>",
            )
        return
    from blinker.base import ANY_ID

    for receiver_id, ref in list(signal.receivers.items()):
        for sender_id in signal._by_receiver.get(receiver_id, ()):
            if sender_id == ANY_ID:
                yield _deref(ref), None
                continue
            sender = _deref(signal._weak_senders.get(sender_id))
            yield _deref(ref), naming.sender_label(sender) if sender is not None else "<another>"


def _connections(signal: Any, name: str, candidates: dict[int, object]) -> list[str | None]:
    """Sender labels ``name`` is connected for on ``signal``; ``None`` means any sender."""
    return [
        sender
        for target, sender in _entries(signal, candidates)
        if target is not None and naming.describe_receiver(target)[0] == name
    ]


def _sender_candidates(sender: object) -> dict[int, object]:
    from django.apps import apps

    candidates: dict[int, object] = {}
    if apps.ready:
        candidates.update((id(model), model) for model in apps.get_models(True, True))
    if sender is not None and not isinstance(sender, str):
        candidates[id(sender)] = sender
    return candidates


def _senders_text(senders: list[str | None]) -> str:
    if None in senders:
        return "any sender"
    labels = sorted({s for s in senders if s is not None})
    return "sender=" + labels[0] if len(labels) == 1 else "senders " + ", ".join(labels)


def _never_imported(module: str) -> str:
    return (
        f"module {module} was never imported, so the receivers in it are not connected. "
        + _READY_ADVICE.format(module=module)
    )


def _resolve(path: str) -> tuple[object, str | None]:
    """The object at a dotted path, without importing anything; or a hint why not."""
    parts = path.split(".")
    if len(parts) < 2:
        return None, None
    for i in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:i]))
        if module is not None:
            break
    else:
        if importlib.util.find_spec(parts[0]) is None:
            return None, (
                f"no module named {parts[0]} can be imported; "
                "give receivers as objects or full dotted paths."
            )
        return None, _never_imported(".".join(parts[:-1]))
    obj: object = module
    for j in range(i, len(parts)):
        attr = parts[j]
        value = inspect.getattr_static(obj, attr, _MISSING)
        if value is _MISSING:
            where = ".".join(parts[:j])
            names = [a for a in dir(obj) if a[:1] != "_"]
            what = "attribute"
            package_path = (
                getattr(obj, "__path__", None) if isinstance(obj, types.ModuleType) else None
            )
            if package_path is not None:
                if importlib.util.find_spec(f"{where}.{attr}") is not None:
                    return None, _never_imported(f"{where}.{attr}")
                names += [m.name for m in pkgutil.iter_modules(package_path)]
                what = "module or attribute"
            close = difflib.get_close_matches(attr, names, 1)
            suggestion = f"; did you mean {where}.{close[0]}?" if close else "."
            return None, f"{where} has no {what} {attr}{suggestion}"
        obj = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
    return obj, None


def _module_of(receiver: object) -> str:
    func = receiver.__func__ if type(receiver) is types.MethodType else receiver
    if type(func) is types.FunctionType:
        return str(func.__module__)
    return str(type.__getattribute__(type(receiver), "__module__"))


def _uncalled_hints(
    trace: Trace, receiver: object, name: str, signal: object, sender: object, lines: dict[int, int]
) -> list[str]:
    """Why ``receiver`` did not run at all: not connected, other senders, not sent."""
    hints: list[str] = []
    if isinstance(receiver, str):
        similar = sorted(
            {c.receiver_name for c in trace.calls if c.receiver_name.endswith("." + name)}
        )
        if similar:
            first = [lines.get(id(trace.find(receiver=similar[0])[0]))]
            return [
                f"no receiver named {name} ran; did you mean {similar[0]}{_lines_text(first)}? "
                "Give receivers as objects or full dotted paths."
            ]
        receiver, problem = _resolve(name)
        if problem is not None or receiver is None:
            return [problem] if problem else []
        name = naming.describe_receiver(receiver)[0]  # the path may be an alias
    signals = _all_signals()
    if signal is not None and not isinstance(signal, str) and signal not in signals:
        signals.append(signal)
    candidates = _sender_candidates(sender)
    connected = [(s, senders) for s in signals if (senders := _connections(s, name, candidates))]
    if signal is None:
        targets = connected
    elif isinstance(signal, str):
        targets = [(s, senders) for s, senders in connected if signal in naming.signal_label(s)]
    else:
        targets = [(s, senders) for s, senders in connected if s is signal]
    where = f"to {_signal_text(signal)}" if signal is not None else "to any signal"
    if not connected:
        advice = _READY_ADVICE.format(module=_module_of(receiver))
        return [f"{name} is not connected {where}. {advice}"]
    if not targets:
        others = "; ".join(
            f"{naming.signal_label(s)[0]} ({_senders_text(senders)})" for s, senders in connected
        )
        return [f"{name} is not connected {where}, only to {others}."]
    for target, senders in targets:
        label, path = naming.signal_label(target)
        if target in trace.options.ignored:
            continue  # _trace_hints explains
        if sender is not None and None not in senders and _sender_text(sender) not in senders:
            hints.append(
                f"{name} is connected to {label} for {_senders_text(senders)} only; "
                f"expected sender={_sender_text(sender)}."
            )
            continue
        sent = [d for d in trace.dispatches if d.signal_path == path]
        wanted: list[str | None] = [_sender_text(sender)] if sender is not None else senders
        relevant = [d for d in sent if None in wanted or d.sender in wanted]
        if not sent:
            tip = (
                " QuerySet.update(), bulk_create(), bulk_update() and raw SQL send no model signals."
                if path in _MODEL_SIGNALS
                else ""
            )
            for_text = "" if None in wanted else f" for {_senders_text(wanted)}"
            hints.append(f"{label} was not sent{for_text}.{tip}")
        elif not relevant:
            sent_for = ", ".join(sorted({d.sender for d in sent}))
            where_sent = f"sender={sent_for}{_lines_text(lines.get(id(d)) for d in sent)}"
            if sender is not None:
                hints.append(
                    f"{label} was not sent for sender={_sender_text(sender)}; "
                    f"it was sent for {where_sent}."
                )
            else:
                hints.append(
                    f"{name} is connected to {label} for {_senders_text(senders)} only, "
                    f"but {label} was sent for {where_sent}."
                )
        else:
            stopped = [c for d in relevant if not d.robust for c in d.calls if c.error is not None]
            if stopped:
                hints.append(
                    f"{stopped[0].receiver_name} raised {stopped[0].error}"
                    f"{_lines_text([lines.get(id(stopped[0]))])}, so "
                    f"{stopped[0].dispatch.method}() did not call the receivers after it."
                )
            else:
                hints.append(
                    f"{name} is connected to {label} now, but was not a receiver when "
                    f"{label} was sent{_lines_text(lines.get(id(d)) for d in relevant)}; "
                    "was it connected later?"
                )
    return hints


# -- assertions -------------------------------------------------------------------


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
        if call.receiver_name == name and _mismatch(call.dispatch, signal, sender, match) is None
    ]


def _check_times(times: int | None) -> None:
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
    _check_times(times)
    calls = calls_of(trace, receiver, signal=signal, sender=sender, **match)
    if (len(calls) == times) if times is not None else calls:
        return calls
    name = receiver_name(receiver)
    lines = _numbering(trace)
    ran = [call for call in trace.calls if call.receiver_name == name]
    expected = f" {_times_text(times)}" if times is not None else ""
    if calls:
        actual = f"it was called {_times_text(len(calls))}"
        actual += _lines_text(lines.get(id(c)) for c in calls)
    elif ran:
        actual = (
            f"none of its {len(ran)} calls matched" if len(ran) > 1 else "its call did not match"
        )
    else:
        actual = "it was not called"
    headline = (
        f"Expected {name} to be called{expected}{_filters_text(signal, sender, match)}, "
        f"but {actual}."
    )
    filters = (signal, sender, match)
    hints = _safe(lambda: _near_misses(name, "ran", ran, lines, filters))
    if not ran:
        hints += _safe(lambda: _uncalled_hints(trace, receiver, name, signal, sender, lines))
    signals = [signal] if signal is not None and not isinstance(signal, str) else []
    hints += _safe(lambda: _trace_hints(trace, signals))
    raise _failure(trace, headline, hints)


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
    lines = _numbering(trace)
    raise _failure(
        trace,
        f"Expected {receiver_name(receiver)} not to be called"
        f"{_filters_text(signal, sender, match)}, but it was called "
        f"{_times_text(len(calls))}{_lines_text(lines.get(id(c)) for c in calls)}.",
        [],
    )


def _dispatches(
    trace: Trace, signal: object, sender: object, match: dict[str, object]
) -> list[Dispatch]:
    return [d for d in trace.dispatches if _mismatch(d, signal, sender, match) is None]


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
    _check_times(times)
    found = _dispatches(trace, signal, sender, match)
    if (len(found) == times) if times is not None else found:
        return found
    label = _signal_text(signal)
    lines = _numbering(trace)
    sent = trace.find_dispatches(signal=signal)
    if found:
        actual = f"it was sent {_times_text(len(found))}"
        actual += _lines_text(lines.get(id(d)) for d in found)
    elif sent:
        actual = (
            f"none of its {len(sent)} dispatches matched"
            if len(sent) > 1
            else "its dispatch did not match"
        )
    else:
        actual = "it was not sent"
    expected = f" {_times_text(times)}" if times is not None else ""
    headline = (
        f"Expected {label} to be sent{expected}{_filters_text(None, sender, match)}, but {actual}."
    )
    hints = _safe(lambda: _near_misses(label, "was sent", sent, lines, (None, sender, match)))
    record_empty = trace.options.record_empty
    if record_empty is not True and not _dispatches(trace, signal, sender, {}):
        hints.append(
            "signaltrace records a dispatch only when it has receivers"
            + (" or is sent inside a receiver (RECORD_EMPTY='nested')" if record_empty else "")
            + f"; set SIGNALTRACE['RECORD_EMPTY'] = True to record {label} sent to no "
            "receivers too."
        )
    path = signal if isinstance(signal, str) else naming.signal_label(signal)[1]
    if not sent and (
        path in _MODEL_SIGNALS or f"django.db.models.signals.{path}" in _MODEL_SIGNALS
    ):
        hints.append(
            "QuerySet.update(), bulk_create(), bulk_update() and raw SQL send no model signals."
        )
    signals = [] if isinstance(signal, str) else [signal]
    hints += _safe(lambda: _trace_hints(trace, signals))
    raise _failure(trace, headline, hints)


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
    found = _dispatches(trace, signal, sender, match)
    if not found:
        return trace
    lines = _numbering(trace)
    raise _failure(
        trace,
        f"Expected {_signal_text(signal)} not to be sent{_filters_text(None, sender, match)}, "
        f"but it was sent {_times_text(len(found))}{_lines_text(lines.get(id(d)) for d in found)}.",
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
    lines = _numbering(trace)
    missing = [name for name in names if name not in first]
    expected = "\n".join(
        f"  {name}{_lines_text([lines.get(id(first[name]))]) if name in first else ' (not called)'}"
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
                hints += _safe(
                    functools.partial(_uncalled_hints, trace, receiver, name, None, None, lines)
                )
        hints += _safe(lambda: _trace_hints(trace, []))
        raise _failure(trace, headline, hints, [f"Expected order:\n{expected}"])
    calls = [first[name] for name in names]
    for i, call in enumerate(calls):
        for later in calls[i + 1 :]:
            if later.start_ns < call.start_ns:
                actual = "\n".join(
                    f"  {c.receiver_name}{_lines_text([lines.get(id(c))])}"
                    for c in sorted(calls, key=lambda c: c.start_ns)
                )
                raise _failure(
                    trace,
                    f"Expected {call.receiver_name} to run before {later.receiver_name}, "
                    f"but it first ran{_at(lines, call)}, after {later.receiver_name}"
                    f"{_at(lines, later)}.",
                    [],
                    [f"Expected order:\n{expected}", f"Order of first calls:\n{actual}"],
                )
    return calls


def _short_path(filename: str) -> str:
    rel = os.path.relpath(filename)
    return filename if rel.startswith("..") else rel


def assert_no_errors(trace: Trace, /) -> Trace:
    """Assert that no receiver raised, including errors ``send_robust`` swallowed.

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    errors = trace.errors
    if not errors:
        return trace
    lines = _numbering(trace)
    details = []
    for call in errors:
        error = call.error
        assert error is not None
        line = f"  {call.receiver_name}{_lines_text([lines.get(id(call))])} raised {error}"
        if error.filename is not None:
            line += f" at {_short_path(error.filename)}:{error.lineno}"
        if call.swallowed:
            line += f" (swallowed by {call.dispatch.method})"
        details.append(line)
    count = f"{len(errors)} receiver call{'s' if len(errors) != 1 else ''}"
    headline = f"Expected no receiver errors, but {count} raised:\n" + "\n".join(details)
    raise _failure(trace, headline, [])


# -- unittest ---------------------------------------------------------------------


def _checked(
    msg: str | None,
    func: Callable[..., Any],
    args: tuple[object, ...],
    kwargs: dict[str, object],
    trace: Trace,
) -> Any:
    __tracebackhide__ = True
    try:
        return func(trace, *args, **kwargs)
    except SignalTraceAssertionError as err:
        if msg:
            err.args = (f"{msg}: {err.args[0]}",)
        raise


class DeferredAssertion:
    """What the :class:`SignalTraceTestMixin` assertions return without ``trace=``.

    A context manager (``with`` or ``async with``) that captures its block and
    runs the assertion when the block ends without an exception. It yields the
    :class:`~signaltrace.Trace`; ``result`` is then the assertion's return value.

    .. versionadded:: 0.1.0
    """

    def __init__(self, name: str, check: Callable[[Trace], object], where: str = "?") -> None:
        #: The name of the mixin method, for messages.
        self.name = name
        #: ``file:line`` of the assertion call.
        self.where = where
        #: What the assertion returned, once the block has ended.
        self.result: object = None
        self._check = check
        self._capture: capture | None = None

    def __enter__(self) -> Trace:
        if self._capture is not None:
            raise RuntimeError(f"{self.name}() can be used in one with block only")
        self._capture = capture(label=self.name)
        return self._capture.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._capture is not None
        self._capture.__exit__(exc_type, exc, tb)
        if exc_type is None and self._capture.trace is not None:
            self.result = self._check(self._capture.trace)

    async def __aenter__(self) -> Trace:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def _verify_used(self) -> None:
        if self._capture is None:
            raise SignalTraceAssertionError(
                f"{self.name}() at {self.where} was called without trace= and not used as a "
                "context manager, "
                f"so nothing was checked. Write `with self.{self.name}(...):` around the code "
                f"under test, or pass trace= a trace from `with self.captureSignals() as trace:`."
            )


class SignalTraceTestMixin:
    """Signal assertions for ``unittest.TestCase`` and Django's test cases.

    Each assertion either checks a trace you pass as ``trace=`` (one from
    :meth:`captureSignals` or :func:`signaltrace.capture`) and returns what the
    ``Trace`` method returns, or, without ``trace=``, is a context manager that
    captures its block and checks it at the end::

        class RegisterTests(SignalTraceTestMixin, TestCase):
            def test_profile(self):
                with self.assertReceiverCalled(create_user_profile, created=True):
                    User.objects.create(username="ann")

            def test_many(self):
                with self.captureSignals() as trace:
                    User.objects.create(username="ann")
                self.assertReceiverCalled(create_user_profile, trace=trace, created=True)
                self.assertReceiverNotCalled(backup_user_data, trace=trace)

    An assertion called without ``trace=`` and never entered fails the test
    at cleanup, so a forgotten ``with`` cannot pass silently. ``msg`` is put in
    front of the failure message.

    .. versionadded:: 0.1.0
    """

    def captureSignals(
        self, *, all_threads: bool = False, label: str | None = None, max_events: int | None = None
    ) -> capture:
        """:func:`signaltrace.capture`: ``with self.captureSignals() as trace:``.

        .. versionadded:: 0.1.0
        """
        return capture(all_threads=all_threads, label=label, max_events=max_events)

    def _signaltrace_check(
        self,
        name: str,
        trace: Trace | None,
        msg: str | None,
        func: Callable[..., Any],
        *args: object,
        **kwargs: object,
    ) -> Any:
        __tracebackhide__ = True
        if trace is not None:
            return _checked(msg, func, args, kwargs, trace)
        caller = sys._getframe(2)
        deferred = DeferredAssertion(
            name,
            functools.partial(_checked, msg, func, args, kwargs),
            f"{_short_path(caller.f_code.co_filename)}:{caller.f_lineno}",
        )
        add_cleanup = getattr(self, "addCleanup", None)
        if add_cleanup is not None:
            add_cleanup(deferred._verify_used)
        return deferred

    @overload
    def assertReceiverCalled(
        self,
        receiver: object,
        /,
        *,
        trace: Trace,
        sender: object = ...,
        signal: object = ...,
        times: int | None = ...,
        msg: str | None = ...,
        **match: object,
    ) -> list[ReceiverCall]: ...
    @overload
    def assertReceiverCalled(
        self,
        receiver: object,
        /,
        *,
        trace: None = ...,
        sender: object = ...,
        signal: object = ...,
        times: int | None = ...,
        msg: str | None = ...,
        **match: object,
    ) -> DeferredAssertion: ...
    def assertReceiverCalled(
        self,
        receiver: object,
        /,
        *,
        trace: Trace | None = None,
        sender: object = None,
        signal: object = None,
        times: int | None = None,
        msg: str | None = None,
        **match: object,
    ) -> list[ReceiverCall] | DeferredAssertion:
        """Assert that ``receiver`` ran; see :func:`assert_called`.

        .. versionadded:: 0.1.0
        """
        __tracebackhide__ = True
        return self._signaltrace_check(  # type: ignore[no-any-return]
            "assertReceiverCalled",
            trace,
            msg,
            assert_called,
            receiver,
            sender=sender,
            signal=signal,
            times=times,
            **match,
        )

    @overload
    def assertReceiverNotCalled(
        self,
        receiver: object,
        /,
        *,
        trace: Trace,
        sender: object = ...,
        signal: object = ...,
        msg: str | None = ...,
        **match: object,
    ) -> Trace: ...
    @overload
    def assertReceiverNotCalled(
        self,
        receiver: object,
        /,
        *,
        trace: None = ...,
        sender: object = ...,
        signal: object = ...,
        msg: str | None = ...,
        **match: object,
    ) -> DeferredAssertion: ...
    def assertReceiverNotCalled(
        self,
        receiver: object,
        /,
        *,
        trace: Trace | None = None,
        sender: object = None,
        signal: object = None,
        msg: str | None = None,
        **match: object,
    ) -> Trace | DeferredAssertion:
        """Assert that ``receiver`` did not run; see :func:`assert_not_called`.

        .. versionadded:: 0.1.0
        """
        __tracebackhide__ = True
        return self._signaltrace_check(  # type: ignore[no-any-return]
            "assertReceiverNotCalled",
            trace,
            msg,
            assert_not_called,
            receiver,
            sender=sender,
            signal=signal,
            **match,
        )

    @overload
    def assertSignalSent(
        self,
        signal: object,
        /,
        *,
        trace: Trace,
        sender: object = ...,
        times: int | None = ...,
        msg: str | None = ...,
        **match: object,
    ) -> list[Dispatch]: ...
    @overload
    def assertSignalSent(
        self,
        signal: object,
        /,
        *,
        trace: None = ...,
        sender: object = ...,
        times: int | None = ...,
        msg: str | None = ...,
        **match: object,
    ) -> DeferredAssertion: ...
    def assertSignalSent(
        self,
        signal: object,
        /,
        *,
        trace: Trace | None = None,
        sender: object = None,
        times: int | None = None,
        msg: str | None = None,
        **match: object,
    ) -> list[Dispatch] | DeferredAssertion:
        """Assert that ``signal`` was sent; see :func:`assert_sent`.

        .. versionadded:: 0.1.0
        """
        __tracebackhide__ = True
        return self._signaltrace_check(  # type: ignore[no-any-return]
            "assertSignalSent",
            trace,
            msg,
            assert_sent,
            signal,
            sender=sender,
            times=times,
            **match,
        )

    @overload
    def assertNoReceiverErrors(self, *, trace: Trace, msg: str | None = ...) -> Trace: ...
    @overload
    def assertNoReceiverErrors(
        self, *, trace: None = ..., msg: str | None = ...
    ) -> DeferredAssertion: ...
    def assertNoReceiverErrors(
        self, *, trace: Trace | None = None, msg: str | None = None
    ) -> Trace | DeferredAssertion:
        """Assert that no receiver raised (even inside ``send_robust``); see :func:`assert_no_errors`.

        .. versionadded:: 0.1.0
        """
        __tracebackhide__ = True
        return self._signaltrace_check(  # type: ignore[no-any-return]
            "assertNoReceiverErrors", trace, msg, assert_no_errors
        )
