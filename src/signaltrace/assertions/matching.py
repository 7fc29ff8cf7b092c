"""Whether a recorded dispatch matches what an assertion expects, and why not.
Expected senders and signals may be objects, labels or dotted paths, and kwarg
values the objects they were recorded from or ``unittest.mock.ANY``;
:func:`mismatch` compares them as the trace records them and describes the
first difference, which failure messages and near-miss hints then quote.
"""

from __future__ import annotations

from typing import Any, Final
from unittest import mock

from signaltrace import naming
from signaltrace.query import sender_matches, signal_matches
from signaltrace.records import Dispatch

__unittest = True  # unittest leaves this module's frames out of tracebacks

MISSING: Final = object()


def expected(value: object) -> object:
    """An expected kwarg value in the form the trace records it."""
    return value if value is mock.ANY else naming.kwarg_value(value)


def same(recorded: object, expected: object) -> bool:
    if expected is mock.ANY:
        return True
    if (type(recorded) is bool) is not (type(expected) is bool):
        return False  # created=1 must not match created=True
    return bool(recorded == expected)


def kwarg_diffs(recorded: dict[str, Any], match: dict[str, object]) -> list[tuple[str, object]]:
    """``(key, recorded value or MISSING)`` for each expected kwarg that differs."""
    return [
        (key, recorded.get(key, MISSING))
        for key, value in match.items()
        if key not in recorded or not same(recorded[key], expected(value))
    ]


def mismatch(
    dispatch: Dispatch, signal: object, sender: object, match: dict[str, object]
) -> tuple[str, str] | None:
    """``None`` if ``dispatch`` matches; else ``(what it had, what was expected)``."""
    if signal is not None and not signal_matches(dispatch, signal):
        return f"for {dispatch.signal_name}", signal_text(signal)
    if sender is not None and not sender_matches(dispatch, sender):
        return f"for sender={dispatch.sender}", f"sender={sender_text(sender)}"
    diffs = kwarg_diffs(dispatch.kwargs, match)
    if not diffs:
        return None
    present = [f"{key}={value!r}" for key, value in diffs if value is not MISSING]
    absent = [key for key, value in diffs if value is MISSING]
    had = "with " + ", ".join(present) if present else ""
    if absent:
        had += (" and " if had else "") + "without " + ", ".join(absent)
    return had, ", ".join(f"{key}={value_text(match[key])}" for key, _ in diffs)


def signal_text(signal: object) -> str:
    return signal if isinstance(signal, str) else naming.signal_label(signal)[0]


def sender_text(sender: object) -> str:
    return sender if isinstance(sender, str) else naming.sender_label(sender)


def value_text(value: object) -> str:
    return "ANY" if value is mock.ANY else repr(expected(value))
