"""Always-on receiver metrics: the hot-path side.

With ``SIGNALTRACE["METRICS"]`` on, every dispatch in the process updates
per-receiver aggregates, whether or not a capture is open:

- ``send()``/``send_robust()`` with nothing capturing time their sync receivers
  in a loop of their own (one clock read per receiver boundary, no tree) and
  hand the boundaries to :func:`observe`;
- every other dispatch (async receivers, ``asend()``, blinker, or anything while
  a capture is open) is recorded as usual and read by :func:`observe_dispatch`
  when it ends. With nothing capturing, such a dispatch is recorded into
  a target that keeps nothing (``_Discard``), through :data:`STATE`'s cursor.

:data:`STATE` is checked once per dispatch that has receivers: it is refreshed
when Django's settings object changes (``override_settings``, pytest-django's
``settings`` fixture) and whenever a capture opens (a new ``SIGNALTRACE`` dict).
Reading the aggregates is :mod:`signaltrace.metrics`.
"""

from __future__ import annotations

import functools
import threading
import types
import weakref
from typing import Any, Final

from django.conf import settings

from . import naming
from ._hotpath import describe, resolve_receiver
from .conf import get_config
from .context import Options, current_options, log_failure
from .records import (
    C_END,
    C_ERROR,
    C_QUERIES,
    C_RECEIVER,
    C_START,
    D_CALLS,
    D_DB,
    D_EXTRA,
    D_FLAT,
    D_SIGNAL,
)

__all__ = ["SETTINGS_DICT", "STATE", "fold", "observe", "observe_dispatch", "refresh", "reset"]

#: ``LazySettings``' own ``__dict__``: its ``"_wrapped"`` entry is replaced by
#: ``override_settings`` (and cleared when settings are reconfigured).
SETTINGS_DICT: Final[dict[str, Any]] = settings.__dict__

#: ``[settings object seen, metrics on, cursor for untraced dispatches or None]``.
STATE: Final[list[Any]] = [object(), False, None]

_LOCK: Final = threading.Lock()

#: Receiver calls queued by :func:`observe` since the last :func:`fold`.
_PENDING: Final = [0]
FOLD_EVERY: Final = 4096

#: receiver label -> ``[calls, errors, total_ns, queries or None, histogram, location, signals]``
AGGREGATES: dict[str, list[Any]] = {}
#: signal name -> ``[name, dispatches]``
DISPATCHES: dict[str, list[Any]] = {}

#: Histogram buckets: bucket ``b`` counts durations of ``b`` bits, from
#: ``2**(b-1)`` up to ``2**b`` ns (a duration in ns has at most 64 bits).
BUCKETS: Final = 65


class _Discard:
    """A trace target that takes every dispatch and keeps none (metrics only).

    It reads as closed, so ``current_trace()`` and skipped-operation reports
    never see it; its :meth:`admit` takes dispatches regardless.
    """

    closed = True
    events = 0
    dropped = 0
    max_events = 1 << 62

    def __init__(self, options: Options) -> None:
        self.options = options

    def admit(self, item: Any, cost: int, skipped: bool = False) -> bool:
        return not skipped


def refresh() -> bool:
    """Re-read ``METRICS`` from the settings; whether metrics are on."""
    STATE[0] = SETTINGS_DICT.get("_wrapped")
    try:
        on = bool(get_config().get("METRICS"))
        if on:
            options = current_options()
            STATE[2] = [(_Discard(options),), None, options]
    except Exception as err:  # settings not configured, or broken
        log_failure("METRICS setting", err)
        on = False
    STATE[1] = on
    return on


def _entry(label: str, filename: str | None, lineno: int | None, signal: str) -> list[Any]:
    """``[calls, errors, total ns, queries, histogram, location, {signals}, last signal,
    durations not folded yet]``."""
    entry = AGGREGATES.get(label)
    if entry is None:
        location = f"{filename}:{lineno}" if filename else None
        entry = AGGREGATES[label] = [0, 0, 0, None, [0] * BUCKETS, location, {}, None, []]
    entry[6][signal] = None
    entry[7] = signal
    return entry


def _add(entry: list[Any], duration: int, failed: bool, queries: int | None) -> None:
    entry[0] += 1
    if failed:
        entry[1] += 1
    entry[2] += duration
    if queries is not None:
        entry[3] = (entry[3] or 0) + queries
    entry[4][duration.bit_length()] += 1


#: id(signal) -> (weak reference, name); id(function receiver) -> (weak reference,
#: {signal name: aggregate}). Entries go when their object dies, so a hit while
#: the object is alive is its own.
_SIGNAL_NAMES: dict[int, list[Any]] = {}
_FAST: dict[int, list[Any]] = {}
_REFS: list[Any] = []


def _forget(table: dict[int, Any], key: int, ref: Any) -> None:
    table.pop(key, None)


def _signal_counter(signal: Any) -> list[Any]:
    """``[name, dispatches]`` of a signal, cached while it lives."""
    key = id(signal)
    counter = _SIGNAL_NAMES.get(key)
    if counter is None:
        name = naming.signal_label(signal)[0]
        counter = DISPATCHES.setdefault(name, [name, 0])
        try:
            _REFS.append(weakref.ref(signal, functools.partial(_forget, _SIGNAL_NAMES, key)))
        except TypeError:  # not weakly referenceable: not cached
            return counter
        _SIGNAL_NAMES[key] = counter
    return counter


def _fast_entry(receiver: Any, name: str) -> list[Any]:
    """The aggregate of ``receiver`` (noting ``name`` among its signals), cached per live function."""
    label, filename, lineno, _identity = describe(receiver)
    entry = _entry(label, filename, lineno, name)
    if type(receiver) is types.FunctionType:
        key = id(receiver)
        if key not in _FAST:
            _REFS.append(weakref.ref(receiver, functools.partial(_forget, _FAST, key)))
        _FAST[key] = entry
    return entry


def observe(
    signal: Any, receivers: list[Any], times: list[int], failed: list[int] | None = None
) -> None:
    """Add one dispatch's sync receivers: ``times`` holds the receiver boundaries.

    ``times[i]`` is when receiver ``i`` started and ``times[i + 1]`` when it
    ended; ``failed`` lists the indices of receivers that raised.
    """
    try:
        counter = _SIGNAL_NAMES.get(id(signal)) or _signal_counter(signal)
        name = counter[0]
        fast = _FAST
        with _LOCK:
            counter[1] += 1
            start = times[0]
            for i in range(len(times) - 1):
                end = times[i + 1]
                entry = fast.get(id(receivers[i]))
                if entry is None or entry[7] is not name:
                    entry = _fast_entry(receivers[i], name)
                entry[8].append(end - start)
                start = end
            if failed is not None:
                for i in failed:
                    _fast_entry(receivers[i], name)[1] += 1
            _PENDING[0] += len(times) - 1
            if _PENDING[0] >= FOLD_EVERY:
                fold()
    except Exception as err:
        log_failure("metrics", err)


def fold() -> None:
    """Move the durations :func:`observe` queued into the counts and histograms.

    Called under :data:`_LOCK`: by :func:`observe` every :data:`FOLD_EVERY`
    receiver calls, and before the aggregates are read.
    """
    _PENDING[0] = 0
    for entry in AGGREGATES.values():
        pending = entry[8]
        if pending:
            entry[0] += len(pending)
            entry[2] += sum(pending)
            histogram = entry[4]
            for duration in pending:
                histogram[duration.bit_length()] += 1
            pending.clear()


def observe_dispatch(dispatch: list[Any]) -> None:
    """Add a recorded dispatch's calls (flat sync calls and one-list calls) once it ended."""
    try:
        ref = dispatch[D_SIGNAL]
        signal = ref() if type(ref) is not tuple else None
        if signal is not None:
            counter = _SIGNAL_NAMES.get(id(signal)) or _signal_counter(signal)
        else:
            name = ref[0] if type(ref) is tuple else "<dead signal>"
            counter = DISPATCHES.setdefault(name, [name, 0])
        name = counter[0]
        with _LOCK:
            counter[1] += 1
            flat = dispatch[D_FLAT]
            if flat is not None:
                extra = dispatch[D_EXTRA] or {}
                boundaries = dispatch[D_DB]
                n = len(flat)
                for i in range(n // 2):
                    facts = extra.get(i)
                    if facts is not None:
                        end = facts["end"]
                    elif 2 * i + 3 < n:
                        end = flat[2 * i + 3]
                    elif n % 2:
                        end = flat[n - 1]
                    else:
                        continue
                    queries = None
                    if boundaries is not None and 3 * i + 3 < len(boundaries):
                        queries = boundaries[3 * i + 3] - boundaries[3 * i]
                    label, filename, lineno, _identity = resolve_receiver(flat[2 * i])
                    _add(
                        _entry(label, filename, lineno, name),
                        end - flat[2 * i + 1],
                        facts is not None,
                        queries,
                    )
            for call in list(dispatch[D_CALLS]):
                if not call[C_END]:
                    continue
                label, filename, lineno, _identity = resolve_receiver(call[C_RECEIVER])
                _add(
                    _entry(label, filename, lineno, name),
                    call[C_END] - call[C_START],
                    call[C_ERROR] is not None,
                    call[C_QUERIES],
                )
    except Exception as err:
        log_failure("metrics", err)


def reset() -> None:
    """Forget every aggregate."""
    with _LOCK:
        AGGREGATES.clear()
        DISPATCHES.clear()
        _SIGNAL_NAMES.clear()
        _FAST.clear()
        _PENDING[0] = 0
