"""Always-on receiver metrics: the hot-path side, and the raw read of the aggregates.

With ``SIGNALTRACE["METRICS"]`` on, every dispatch in the process updates
per-receiver aggregates, whether or not a capture is open:

- ``send()``/``send_robust()`` with nothing capturing time their sync receivers
  in a loop of their own (one clock read per receiver boundary, no tree) and
  hand the boundaries to :func:`observe`;
- every other dispatch (async receivers, ``asend()``, blinker, or anything while
  a capture is open) is recorded as usual and read by :func:`observe_dispatch`
  when it ends. With nothing capturing, such a dispatch is recorded into
  a target that keeps nothing (``_Discard``), through :data:`STATE`'s cursor.

:data:`STATE` is read by a dispatch that has receivers while
:data:`signaltrace.context.ACTIVE` is set (which ``METRICS`` sets). It is
refreshed (:func:`refresh`) when the hook is installed, whenever a capture opens
(a new ``SIGNALTRACE`` dict), and whenever ``setting_changed`` is sent
(``override_settings``, pytest-django's ``settings`` fixture).

**What the hot path does.** An aggregate exists per (receiver label, signal
name). Each signal has a table, ``id(function) -> append`` of the pending list
of that function's aggregate for that signal; :func:`observe` looks each
receiver up there and appends its duration: no lock, no name, no histogram.
Appending to a list is atomic, so concurrent dispatches need no lock;
:func:`fold` (under :data:`_LOCK`) moves the queued durations into the counts
and histograms, every :data:`FOLD_EVERY_NS` at most and before any read,
taking only the items that were there when it started (a duration appended
meanwhile stays queued). Everything else (creating an aggregate, a receiver
that raised, :func:`observe_dispatch`) is rare or off the fast path and runs
under the lock.

Signals in ``IGNORE_SIGNALS`` are not aggregated (their table takes nothing),
as they are never recorded in traces.

Reading the aggregates is :func:`collect`; presenting them (percentiles,
merging processes, OpenTelemetry) is :mod:`signaltrace.metrics`.
"""

from __future__ import annotations

import collections
import functools
import os
import threading
import time
import types
import weakref
from collections.abc import Iterable
from typing import Any, Final

from . import naming
from ._hotpath import bound_to_function, describe, resolve_receiver
from .conf import ON_CHANGE, get_config
from .context import Options, current_options, log_failure, watch_metrics
from .records import (
    C_END,
    C_ERROR,
    C_QUERIES,
    C_RECEIVER,
    C_START,
    D_CALLS,
    D_DB,
    D_EXTRA,
    D_SIGNAL,
    flat_call_end,
    flat_calls,
)

__all__ = [
    "AGGREGATES",
    "BUCKETS",
    "STATE",
    "bucket_bounds",
    "collect",
    "fold",
    "observe",
    "observe_dispatch",
    "placement",
    "refresh",
    "reset",
    "since",
]

#: ``[cursor]``: while ``METRICS`` is on, the cursor of untraced dispatches (into a
#: target that keeps nothing), else None. Whether metrics are on is
#: :data:`signaltrace.context.METRICS`.
STATE: Final[list[Any]] = [None]

#: Guards the aggregates' counts (not the fast path's appends); replaced in a forked child.
_LOCK = threading.Lock()

#: When :func:`observe` folds next (``perf_counter_ns``): at most every
#: :data:`FOLD_EVERY_NS`, which bounds what is queued to what a process can call
#: in that time (a few hundred kilobytes at most).
_NEXT_FOLD: Final = [0]
FOLD_EVERY_NS: Final = 100_000_000

#: Histogram buckets: bucket ``b`` counts durations of ``b`` bits, from
#: ``2**(b-1)`` up to ``2**b`` ns (a duration in ns has at most 64 bits).
BUCKETS: Final = 65

# An aggregate, per (receiver label, signal name):
A_CALLS: Final = 0  # receiver calls, every outcome (folded)
A_ERRORS: Final = 1  # calls that raised
A_TOTAL: Final = 2  # ns in all calls (folded)
A_QUERIES: Final = 3  # statements run by the calls counted (RECORD_DB), or None
A_HISTOGRAM: Final = 4  # BUCKETS counts of every call's duration (folded)
A_LOCATION: Final = 5  # "file:line" of the receiver, or None
A_SIGNAL: Final = 6  # the signal's name
A_RECEIVER: Final = 7  # the receiver's label
A_PENDING: Final = 8  # durations queued by observe(), not folded yet
A_ERROR_TOTAL: Final = 9  # ns in the calls that raised
A_ERROR_HISTOGRAM: Final = 10  # BUCKETS counts of the calls that raised
A_QUERIED: Final = 11  # calls whose statements were counted

#: (receiver label, signal name) -> aggregate (see ``A_*``).
AGGREGATES: Final[dict[tuple[str, str], list[Any]]] = {}
#: signal name -> ``[name, {id(function): append}]`` (see :func:`observe`).
DISPATCHES: Final[dict[str, list[Any]]] = {}

#: Epoch seconds when the aggregates started (metrics first on) or were last reset.
_SINCE: Final[list[float | None]] = [None]
#: Incremented by :func:`reset` (and in a forked child): readers of deltas start over.
_GENERATION: Final = [0]


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


class _Ignored(dict[int, Any]):
    """The table of a signal in ``IGNORE_SIGNALS``: every receiver adds to nothing."""

    def get(self, key: int, default: Any = None) -> Any:
        return _NOTHING


#: Takes one argument and does nothing with it (a C function: cheap).
_NOTHING: Final = frozenset().__contains__
_IGNORED: Final = _Ignored()
#: The ``IGNORE_SIGNALS`` of the last refresh.
_ignored: list[frozenset[object]] = [frozenset()]


def refresh() -> bool:
    """Re-read ``METRICS`` from the settings; whether metrics are on.

    Called by :func:`~signaltrace.install`, by every ``capture()``, by the send
    replacements when ``setting_changed`` is sent (``override_settings``,
    pytest-django's ``settings`` fixture): signaltrace connects no receiver of
    its own (see :mod:`signaltrace.conf`), and by
    :func:`~signaltrace.conf.get_config` when it finds a new ``SIGNALTRACE`` dict
    that no ``setting_changed`` announced (at the next request, capture or
    metrics read).
    """
    cursor = None
    try:
        on = bool(get_config().get("METRICS"))
        if on:
            options = current_options()
            # Shared by every thread: never changed in place (owner None).
            cursor = [(_Discard(options),), None, options, None]
            if options.ignored != _ignored[0]:
                _ignored[0] = options.ignored
                _SIGNALS.clear()  # each signal's table is chosen again
            if _SINCE[0] is None:
                _SINCE[0] = time.time()
    except Exception as err:  # settings not configured, or broken
        log_failure("METRICS setting", err)
        on = False
    STATE[0] = cursor if on else None
    watch_metrics(on)
    return on


ON_CHANGE.append(refresh)  # a new SIGNALTRACE dict however it came (see conf.ON_CHANGE)


def _entry(label: str, filename: str | None, lineno: int | None, signal: str) -> list[Any]:
    """The aggregate of ``label`` for ``signal``, created if needed."""
    key = (label, signal)
    entry = AGGREGATES.get(key)
    if entry is None:
        location = f"{filename}:{lineno}" if filename else None
        new = [0, 0, 0, None, [0] * BUCKETS, location, signal, label, [], 0, [0] * BUCKETS, 0]
        entry = AGGREGATES.setdefault(key, new)  # atomic: two threads get the same one
    return entry


def _add(entry: list[Any], duration: int, failed: bool, queries: int | None) -> None:
    """Count one call (under :data:`_LOCK`)."""
    entry[A_CALLS] += 1
    entry[A_TOTAL] += duration
    entry[A_HISTOGRAM][duration.bit_length()] += 1
    if failed:
        _add_error(entry, duration)
    if queries is not None:
        entry[A_QUERIES] = (entry[A_QUERIES] or 0) + queries
        entry[A_QUERIED] += 1


def _add_error(entry: list[Any], duration: int) -> None:
    entry[A_ERRORS] += 1
    entry[A_ERROR_TOTAL] += duration
    entry[A_ERROR_HISTOGRAM][duration.bit_length()] += 1


#: id(signal) -> its ``DISPATCHES`` counter, while the signal lives (its weak
#: reference, whose callback forgets it, is kept in ``_SIGNAL_REFS``).
_SIGNALS: Final[dict[int, list[Any]]] = {}
_SIGNAL_REFS: Final[dict[int, Any]] = {}
#: id(function receiver) -> its weak reference (the callback takes the function
#: out of every signal's table when it dies, so a hit is always the live function).
_FUNCTION_REFS: Final[dict[int, Any]] = {}


def _signal_gone(key: int, ref: Any) -> None:
    if _SIGNAL_REFS.get(key) is ref:
        _SIGNAL_REFS.pop(key, None)
        _SIGNALS.pop(key, None)


def _function_gone(key: int, ref: Any) -> None:
    if _FUNCTION_REFS.get(key) is ref:
        _FUNCTION_REFS.pop(key, None)
        for counter in list(DISPATCHES.values()):
            counter[1].pop(key, None)


def _signal_counter(signal: Any) -> list[Any]:
    """``[name, table]`` of a signal, cached while it lives."""
    key = id(signal)
    name = naming.signal_label(signal)[0]
    counter = DISPATCHES.get(name)
    if counter is None:
        counter = DISPATCHES.setdefault(name, [name, {}])
    if signal in _ignored[0]:
        counter[1] = _IGNORED
    elif counter[1] is _IGNORED:
        counter[1] = {}
    try:
        ref = weakref.ref(signal, functools.partial(_signal_gone, key))
    except TypeError:  # not weakly referenceable: not cached
        return counter
    _SIGNAL_REFS[key] = ref
    _SIGNALS[key] = counter
    return counter


def _receiver_add(receiver: Any, counter: list[Any]) -> Any:
    """The ``append`` of ``receiver``'s queue for ``counter``'s signal; a function's is
    kept in the signal's table. A method bound to a Python function (a new object
    at each dispatch of a weakly connected one) is labelled and placed by its
    function (:func:`~signaltrace._hotpath.describe`), so it is found under the
    function's key; other receivers are looked up again each time."""
    if bound_to_function(receiver):
        receiver = receiver.__func__
        add = counter[1].get(id(receiver))
        if add is not None:
            return add
    label, filename, lineno, _identity = describe(receiver)
    add = _entry(label, filename, lineno, counter[0])[A_PENDING].append
    if type(receiver) is types.FunctionType:
        key = id(receiver)
        if key not in _FUNCTION_REFS:
            _FUNCTION_REFS[key] = weakref.ref(receiver, functools.partial(_function_gone, key))
        counter[1][key] = add  # (an ignored signal's table never misses: never here)
    return add


def observe(
    signal: Any, receivers: list[Any], times: list[int], failed: dict[int, int | None] | None = None
) -> None:
    """Add one dispatch's sync receivers: ``times`` holds the receiver boundaries.

    ``times[i]`` is when receiver ``i`` started and ``times[i + 1]`` when it
    ended; ``failed`` maps the index of each receiver that raised to when it
    ended, or to None if that is ``times[i + 1]`` (``send_robust`` starts the
    next receiver after Django's log record, so that the logging is no
    receiver's time; ``times`` may stop at the one that raised).
    """
    try:
        counter = _SIGNALS.get(id(signal)) or _signal_counter(signal)
        if failed is not None:
            _observe_failed(counter, receivers, times, failed)
            return
        get = counter[1].get
        start = end = times[0]
        i = 0
        for receiver in receivers:
            add = get(id(receiver))
            if add is None:
                add = _receiver_add(receiver, counter)
            i += 1  # noqa: SIM113 - cheaper than enumerate() (measured)
            end = times[i]
            add(end - start)
            start = end
        if end >= _NEXT_FOLD[0] and _LOCK.acquire(blocking=False):
            try:
                fold()
            finally:
                _LOCK.release()
    except Exception as err:
        log_failure("metrics", err)


def _observe_failed(
    counter: list[Any],
    receivers: list[Any],
    times: list[int],
    failed: dict[int, int | None],
) -> None:
    """:func:`observe` for a dispatch in which receivers raised (under the lock)."""
    if counter[1] is _IGNORED:
        return
    name = counter[0]
    with _LOCK:
        for i in range(len(times) - 1):
            end = failed.get(i)
            if end is None:
                end = times[i + 1]
            label, filename, lineno, _identity = describe(receivers[i])
            _add(_entry(label, filename, lineno, name), end - times[i], i in failed, None)


def fold() -> None:
    """Move the durations :func:`observe` queued into the counts and histograms.

    Called under :data:`_LOCK`: by :func:`observe` every :data:`FOLD_EVERY_NS`
    at most, and by :func:`collect` before the aggregates are read.
    """
    _NEXT_FOLD[0] = time.perf_counter_ns() + FOLD_EVERY_NS
    for entry in list(AGGREGATES.values()):
        pending = entry[A_PENDING]
        n = len(pending)
        if n:
            chunk = pending[:n]
            del pending[:n]  # what was appended since stays queued
            entry[A_CALLS] += n
            entry[A_TOTAL] += sum(chunk)
            histogram = entry[A_HISTOGRAM]
            for bucket, count in collections.Counter(map(int.bit_length, chunk)).items():
                histogram[bucket] += count


def observe_dispatch(dispatch: list[Any]) -> None:
    """Add a recorded dispatch's calls (flat sync calls and one-list calls) once it ended."""
    try:
        ref = dispatch[D_SIGNAL]
        signal = ref() if type(ref) is not tuple else None
        if signal is not None:
            counter = _SIGNALS.get(id(signal)) or _signal_counter(signal)
        else:
            name = ref[0] if type(ref) is tuple else "<dead signal>"
            counter = DISPATCHES.setdefault(name, [name, {}])
        name = counter[0]
        with _LOCK:
            flat = flat_calls(dispatch)
            if flat is not None:
                extra = dispatch[D_EXTRA] or {}
                boundaries = dispatch[D_DB]
                n = len(flat)
                for i in range(n // 2):
                    facts = extra.get(i)
                    end = flat_call_end(flat, facts, i)
                    if end is None:
                        continue
                    queries = None
                    if boundaries is not None and 3 * i + 3 < len(boundaries):
                        queries = boundaries[3 * i + 3] - boundaries[3 * i]
                    label, filename, lineno, _identity = resolve_receiver(flat[2 * i])
                    _add(
                        _entry(label, filename, lineno, name),
                        end - flat[2 * i + 1],
                        facts is not None and "error" in facts,
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


# -- reading ---------------------------------------------------------------------


def collect() -> list[dict[str, Any]]:
    """A folded copy of every aggregate, one dict per (receiver, signal).

    Keys: ``receiver``, ``signal``, ``location``, ``calls``, ``errors``,
    ``total_ns``, ``queries`` (``None`` unless some call's statements were
    counted), ``queried_calls``, ``histogram`` and ``error_histogram``
    (:data:`BUCKETS` counts each), ``error_total_ns``.
    """
    with _LOCK:
        fold()
        return [
            {
                "receiver": entry[A_RECEIVER],
                "signal": entry[A_SIGNAL],
                "location": entry[A_LOCATION],
                "calls": entry[A_CALLS],
                "errors": entry[A_ERRORS],
                "total_ns": entry[A_TOTAL],
                "queries": entry[A_QUERIES],
                "queried_calls": entry[A_QUERIED],
                "histogram": list(entry[A_HISTOGRAM]),
                "error_total_ns": entry[A_ERROR_TOTAL],
                "error_histogram": list(entry[A_ERROR_HISTOGRAM]),
            }
            for entry in list(AGGREGATES.values())
            if entry[A_CALLS]
        ]


def bucket_bounds(bucket: int) -> tuple[int, int]:
    """``(low, width)`` in ns of histogram bucket ``bucket``: it holds ``[low, low + width)``."""
    if bucket <= 0:
        return 0, 0
    low = 1 << (bucket - 1)
    return low, low


def placement(counts: Iterable[tuple[int, int]], total_ns: int) -> tuple[float, float]:
    """Where the calls sit inside their buckets, given ``(bucket, calls)`` pairs and
    their exact total: ``(fraction, spread)``.

    The model: the calls of each bucket are spread evenly over ``spread`` of its
    width, centred ``fraction`` of the way up, the same for every bucket, with
    ``fraction`` chosen so that the calls add up to ``total_ns`` (the widest such
    spread that stays inside the buckets). Calls spread evenly over whole
    buckets give ``(0.5, 1.0)``, plain linear interpolation; the closer the
    calls' mean is to a bucket's edge, the narrower the spread.
    """
    low_sum = width_sum = 0
    for bucket, calls in counts:
        low, width = bucket_bounds(bucket)
        low_sum += low * calls
        width_sum += width * calls
    if not width_sum:
        return 0.5, 1.0
    fraction = min(max((total_ns - low_sum) / width_sum, 0.0), 1.0)
    return fraction, 2 * min(fraction, 1.0 - fraction)


def since() -> float | None:
    """Epoch seconds when the aggregates started (metrics first on) or were last reset."""
    return _SINCE[0]


def generation() -> int:
    """How many times the aggregates were reset (readers of deltas start over when it changes)."""
    return _GENERATION[0]


def reset() -> None:
    """Forget every aggregate; :func:`since` is now."""
    with _LOCK:
        _forget_all()
        _SINCE[0] = time.time()


def _forget_all() -> None:
    AGGREGATES.clear()
    DISPATCHES.clear()
    _SIGNALS.clear()
    _SIGNAL_REFS.clear()
    _FUNCTION_REFS.clear()
    _GENERATION[0] += 1


def _after_fork_in_child() -> None:
    """A forked child counts its own calls from now (the parent's stay the parent's)."""
    global _LOCK
    _LOCK = threading.Lock()
    _forget_all()
    if _SINCE[0] is not None:
        _SINCE[0] = time.time()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)
