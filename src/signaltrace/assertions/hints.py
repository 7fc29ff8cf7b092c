"""The near-miss hints that end a failure message: what came close (the
receiver ran with another ``created``), why a receiver never ran (not
connected, connected for other senders, its signal not sent) and what the
trace could not see (ignored signals, dropped events). Hints are best effort:
building them never hides the assertion that failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final

from signaltrace import naming
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
    return hints


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
    """Why ``receiver`` did not run at all: not connected, other senders, not sent."""
    hints: list[str] = []
    if isinstance(receiver, str):
        similar = sorted(
            {c.receiver_name for c in trace.calls if c.receiver_name.endswith("." + name)}
        )
        if similar:
            first = [lines.get(id(trace.find(receiver=similar[0])[0]))]
            return [
                f"no receiver named {name} ran; did you mean {similar[0]}{lines_text(first)}? "
                "Give receivers as objects or full dotted paths."
            ]
        receiver, problem = resolve(name)
        if problem is not None or receiver is None:
            return [problem] if problem else []
        name = naming.describe_receiver(receiver)[0]  # the path may be an alias
    signals = all_signals()
    if signal is not None and not isinstance(signal, str) and signal not in signals:
        signals.append(signal)
    candidates = sender_candidates(sender)
    connected = [(s, senders) for s in signals if (senders := connections(s, name, candidates))]
    if signal is None:
        targets = connected
    elif isinstance(signal, str):
        targets = [(s, senders) for s, senders in connected if signal in naming.signal_label(s)]
    else:
        targets = [(s, senders) for s, senders in connected if s is signal]
    where = f"to {signal_text(signal)}" if signal is not None else "to any signal"
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
            tip = (
                " QuerySet.update(), bulk_create(), bulk_update() and raw SQL send no model signals."
                if path in MODEL_SIGNALS
                else ""
            )
            for_text = "" if None in wanted else f" for {senders_text(wanted)}"
            hints.append(f"{label} was not sent{for_text}.{tip}")
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
