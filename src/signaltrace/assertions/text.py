"""The shared parts of a failure message: filters, counts, line numbers and the
trace tree, and where a truncated trace stops. Line numbers are those of
``trace.render(numbered=True)``, so a message can point at the records it
means ("line 5"); the tree printed under the headline is cut after
:data:`MAX_TREE_LINES` lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from signaltrace.records import Dispatch, ReceiverCall

from .matching import sender_text, signal_text, value_text

if TYPE_CHECKING:
    from signaltrace.traces import Trace

__unittest = True  # unittest leaves this module's frames out of tracebacks

#: Lines of the trace tree shown in a failure message; the rest is elided.
MAX_TREE_LINES: Final = 400


def filters_text(signal: object, sender: object, match: dict[str, object]) -> str:
    text = f" for {signal_text(signal)}" if signal is not None else ""
    parts = [f"sender={sender_text(sender)}"] if sender is not None else []
    parts += [f"{key}={value_text(value)}" for key, value in match.items()]
    return text + (" with " + ", ".join(parts) if parts else "")


def truncation_text(trace: Trace) -> str:
    """Where :setting:`MAX_EVENTS` cut ``trace`` short, or, while it is open, what is known."""
    if trace.truncated_at is not None:
        return str(trace.truncated_at)
    dropped = trace.dropped
    were = "event was" if dropped == 1 else "events were"
    return f"MAX_EVENTS={trace.max_events} reached; {dropped} {were} not recorded so far"


def times_text(times: int) -> str:
    return "once" if times == 1 else f"{times} times"


def lines_text(numbers: Iterable[int | None]) -> str:
    lines = [str(n) for n in numbers if n is not None]
    if not lines:
        return ""
    if len(lines) > 8:
        lines = [*lines[:7], f"{len(lines) - 7} more"]
    if len(lines) == 1:
        return f" (line {lines[0]})"
    return f" (lines {', '.join(lines[:-1])} and {lines[-1]})"


def at(lines: dict[int, int], record: object) -> str:
    number = lines.get(id(record))
    return f" at line {number}" if number is not None else ""


def numbering(trace: Trace) -> dict[int, int]:
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


def tree(trace: Trace, *, numbered: bool = True) -> str:
    """``trace.render()``, cut after :data:`MAX_TREE_LINES` lines."""
    lines = trace.render(numbered=numbered).splitlines()
    if len(lines) > MAX_TREE_LINES + 1:
        more = len(lines) - MAX_TREE_LINES
        lines = [*lines[:MAX_TREE_LINES], f"… {more} more lines (print(trace) shows them all)"]
    return "\n".join(lines)
