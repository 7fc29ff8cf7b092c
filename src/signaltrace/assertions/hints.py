"""The near-miss hints that end a failure message: what came close (the
receiver ran with another ``created``, another object of the same name ran),
what looks misspelt (a keyword, a signal or receiver name), why a receiver
never ran (not connected, connected for other senders, its signal not sent,
a bulk operation skipped it) and what the trace could not see (ignored
signals, dropped events). Each hint states only what the trace or the
connected receivers show. Hints are best effort: building them never hides
the assertion that failed.
"""

from __future__ import annotations

import difflib
import sys
import types
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final

from signaltrace import naming
from signaltrace._format import short_path
from signaltrace.records import REDACTED, Dispatch, ReceiverCall

from .lookup import (
    READY_ADVICE,
    all_signals,
    connections,
    module_of,
    resolve,
    sender_candidates,
)
from .matching import mismatch, sender_text, signal_text
from .text import lines_text

if TYPE_CHECKING:
    from signaltrace.traces import Trace

__unittest = True  # unittest leaves this module's frames out of tracebacks

MAX_NEAR_MISSES: Final = 6
MODEL_SIGNALS: Final = frozenset(
    f"django.db.models.signals.{name}"
    for name in ("pre_save", "post_save", "pre_delete", "post_delete", "m2m_changed")
)
#: The hint of a check that a truncated trace cannot answer.
TRUNCATION_ADVICE: Final = (
    "Raise MAX_EVENTS for this trace: capture(max_events=...), "
    "@pytest.mark.signaltrace(max_events=...) or SIGNALTRACE['MAX_EVENTS']."
)


def near_misses(
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
        found = mismatch(dispatch, *filters)
        if found is not None:
            groups.setdefault(found, []).append(lines.get(id(record)))
    hints = [
        f"{subject} {verb} {had}{lines_text(numbers)}; expected {wanted}."
        for (had, wanted), numbers in list(groups.items())[:MAX_NEAR_MISSES]
    ]
    if len(groups) > MAX_NEAR_MISSES:
        hints.append(f"… and {len(groups) - MAX_NEAR_MISSES} more near misses.")
    redacted = sorted(
        key
        for key in filters[2]
        if any(
            (r if isinstance(r, Dispatch) else r.dispatch).kwargs.get(key) == REDACTED
            for r in records
        )
    )
    if redacted:
        hints.append(
            f"{', '.join(redacted)} {'is' if len(redacted) == 1 else 'are'} redacted in traces "
            f"(SIGNALTRACE['REDACT']), so {'it' if len(redacted) == 1 else 'they'} cannot be "
            "matched."
        )
    hints += keyword_hints(subject, records, filters[2])
    return hints


def keyword_hints(
    subject: str, records: Iterable[Dispatch | ReceiverCall], match: dict[str, object]
) -> list[str]:
    """``crated was never recorded for …; did you mean created?``"""
    recorded: dict[str, None] = {}
    for record in records:
        dispatch = record if isinstance(record, Dispatch) else record.dispatch
        recorded.update(dict.fromkeys(dispatch.kwargs))
    hints = []
    for key in match:
        if key not in recorded:
            close = difflib.get_close_matches(key, list(recorded), 1)
            if close:
                hints.append(f"{key} was never recorded for {subject}; did you mean {close[0]}?")
    return hints


def signal_name_hints(trace: Trace, signal: object) -> list[str]:
    """``no dispatch or known signal is named post_sav; did you mean post_save?``

    Only for a signal given as a string that names no recorded dispatch and no
    signal a module holds, and only with a close match to suggest.
    """
    if not isinstance(signal, str):
        return []
    labels = [(d.signal_name, d.signal_path) for d in trace.dispatches]
    labels += [naming.signal_label(s) for s in all_signals()]
    if any(signal in label for label in labels):
        return []
    index = 1 if "." in signal or ":" in signal else 0
    names = list(dict.fromkeys(label[index] for label in labels))
    close = difflib.get_close_matches(signal, names, 1)
    if not close:
        return []
    return [f"no dispatch or known signal is named {signal}; did you mean {close[0]}?"]


def identity_hints(
    receiver: object, name: str, others: list[ReceiverCall], lines: dict[int, int]
) -> list[str]:
    """Another object with the receiver's name ran: say so, and how to match by name."""
    where = lines_text(lines.get(id(c)) for c in others)
    if type(receiver) is types.MethodType:
        return [
            f"{name} ran{where}, but bound to another object than the method you passed: "
            "a bound method matches calls on its own object only. "
            f"Pass {name!r} to match calls on any object."
        ]
    return [
        f"{name} ran{where}, but as another object than the one you passed: a receiver "
        f"given as an object matches only itself. Pass {name!r} to match any receiver "
        "of that name."
    ]


def skipped_hint(trace: Trace, signal_name: str, senders: list[str | None]) -> list[str]:
    """The operations in ``trace`` that skipped ``signal_name`` for ``senders`` (None: any)."""
    ops: dict[str, None] = {}
    for item in trace.skipped:
        if signal_name in item.signals and (None in senders or item.model in senders):
            origin = item.origin
            where = (
                f" ({short_path(origin.filename)}:{origin.lineno} in {origin.function})"
                if origin is not None
                else ""
            )
            ops[f"{item.operation} on {item.model}{where}"] = None
    if not ops:
        return []
    for_text = "" if None in senders else f" for {senders_text(senders)}"
    ending = "that operation sends" if len(ops) == 1 else "those operations send"
    return [
        f"{signal_name} was not sent{for_text}: {' and '.join(ops)} skipped it; "
        f"{ending} no model signals."
    ]


def trace_hints(trace: Trace, signals: list[object]) -> list[str]:
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


def safe(hints: Callable[[], list[str]]) -> list[str]:
    """Hints are best effort: a failure while building them never hides the assertion."""
    try:
        return hints()
    except Exception:
        return []


def senders_text(senders: list[str | None]) -> str:
    if None in senders:
        return "any sender"
    labels = sorted({s for s in senders if s is not None})
    return "sender=" + labels[0] if len(labels) == 1 else "senders " + ", ".join(labels)


def uncalled_hints(
    trace: Trace, receiver: object, name: str, signal: object, sender: object, lines: dict[int, int]
) -> list[str]:
    """Why ``receiver`` did not run at all: not connected, other senders, not sent.

    A receiver object is looked up among the connections by identity, a name by
    name.
    """
    hints: list[str] = []
    by_object = not isinstance(receiver, str)
    if isinstance(receiver, str):
        similar = similar_name(trace, name)
        if similar is not None:
            first = [lines.get(id(c)) for c in trace.calls if c.receiver_name == similar][:1]
            return [f"no receiver named {name} ran; did you mean {similar}{lines_text(first)}?"]
        receiver, problem = resolve(name)
        if problem is not None or receiver is None:
            return [problem] if problem else []
        name = naming.describe_receiver(receiver)[0]  # the path may be an alias
    signals = all_signals()
    if signal is not None and not isinstance(signal, str) and signal not in signals:
        signals.append(signal)
    candidates = sender_candidates(sender)
    target = receiver if by_object else None
    connected = [
        (s, senders) for s in signals if (senders := connections(s, name, candidates, target))
    ]
    if signal is None:
        targets = connected
    elif isinstance(signal, str):
        targets = [(s, senders) for s, senders in connected if signal in naming.signal_label(s)]
    else:
        targets = [(s, senders) for s, senders in connected if s is signal]
    where = f"to {signal_text(signal)}" if signal is not None else "to any signal"
    if not connected and by_object:
        alike = [naming.signal_label(s)[0] for s in signals if connections(s, name, candidates)]
        if alike:
            return [
                f"{name} is not connected {where}, but another object of that name is, to "
                f"{', '.join(alike)}: a receiver given as an object matches only itself "
                f"(a bound method, its own object's). Pass {name!r} to match by name."
            ]
    if not connected:
        advice = READY_ADVICE.format(module=module_of(receiver))
        return [
            f"{name} is not connected {where}: no connect() or @receiver for it has run, "
            f"or it was disconnected, or another receiver took its dispatch_uid. {advice}"
        ]
    if not targets:
        others = "; ".join(
            f"{naming.signal_label(s)[0]} ({senders_text(senders)})" for s, senders in connected
        )
        return [f"{name} is not connected {where}, only to {others}."]
    for target, senders in targets:
        label, path = naming.signal_label(target)
        if target in trace.options.ignored:
            continue  # trace_hints explains
        if sender is not None and None not in senders and sender_text(sender) not in senders:
            hints.append(
                f"{name} is connected to {label} for {senders_text(senders)} only; "
                f"expected sender={sender_text(sender)}."
            )
            continue
        sent = [d for d in trace.dispatches if d.signal_path == path]
        wanted: list[str | None] = [sender_text(sender)] if sender is not None else senders
        relevant = [d for d in sent if None in wanted or d.sender in wanted]
        if not sent:
            skipped = skipped_hint(trace, label, wanted) if path in MODEL_SIGNALS else []
            for_text = "" if None in wanted else f" for {senders_text(wanted)}"
            hints += skipped or [f"{label} was not sent{for_text}."]
        elif not relevant:
            sent_for = ", ".join(sorted({d.sender for d in sent}))
            where_sent = f"sender={sent_for}{lines_text(lines.get(id(d)) for d in sent)}"
            if sender is not None:
                hints.append(
                    f"{label} was not sent for sender={sender_text(sender)}; "
                    f"it was sent for {where_sent}."
                )
            else:
                hints.append(
                    f"{name} is connected to {label} for {senders_text(senders)} only, "
                    f"but {label} was sent for {where_sent}."
                )
        else:
            stopped = [c for d in relevant if not d.robust for c in d.calls if c.error is not None]
            if stopped:
                hints.append(
                    f"{stopped[0].receiver_name} raised {stopped[0].error}"
                    f"{lines_text([lines.get(id(stopped[0]))])}, so "
                    f"{stopped[0].dispatch.method}() did not call the receivers after it."
                )
            else:
                hints.append(
                    f"{name} is connected to {label} now, but was not a receiver when "
                    f"{label} was sent{lines_text(lines.get(id(d)) for d in relevant)}; "
                    "was it connected later?"
                )
    return hints


def similar_name(trace: Trace, name: str) -> str | None:
    """The dotted name of a receiver that ran whose tail is closest to a misspelt ``name``.

    ``name`` is compared with as many trailing parts of each dotted name as it
    has. A dotted path into a loaded module is left to ``lookup.resolve()``,
    which knows the module's attributes.
    """
    if "." in name and name.split(".", 1)[0] in sys.modules:
        return None
    parts = name.count(".") + 1
    tails: dict[str, str] = {}
    for call in trace.calls:
        tails.setdefault(".".join(call.receiver_name.split(".")[-parts:]), call.receiver_name)
    close = difflib.get_close_matches(name, list(tails), 1)
    return tails[close[0]] if close else None
