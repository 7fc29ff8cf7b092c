"""Record operations that skipped signals with receivers connected.

:func:`report` is called by the patches in :mod:`signaltrace._bulk` after an operation
succeeded. It appends a :class:`~signaltrace.records.SkippedDispatch` to every
open trace of the current thread or task (counted against
:setting:`MAX_EVENTS`) and, with :setting:`SKIPPED_WARNING`, emits a
:class:`SignalsSkippedWarning` pointing at the call site.
"""

from __future__ import annotations

import sys
import types
import warnings
from contextvars import ContextVar
from typing import Any, Final

from . import naming
from ._hotpath import admit, find_origin, make_origin
from .conf import get_config
from .context import TraceTarget, active_traces, log_failure
from .introspection import receivers_for
from .records import Origin, SkippedDispatch

__all__ = ["ASYNC_ORIGIN", "SignalsSkippedWarning", "report"]

#: The call site of an ``a*`` method (``aupdate()``...), for the sync method
#: it runs in a worker thread, where the caller's frames are out of reach.
ASYNC_ORIGIN: Final[ContextVar[Origin | None]] = ContextVar(
    "signaltrace_async_origin", default=None
)


class SignalsSkippedWarning(UserWarning):
    """An operation skipped signals that had receivers connected.

    Emitted when :setting:`SKIPPED_WARNING` is on, at the line that called
    ``update()``, ``bulk_create()``... Turn it into an error in tests with
    ``-W error::signaltrace.diagnostics.SignalsSkippedWarning``.

    .. versionadded:: 0.1.0
    """


def _connected(
    model: type, signals: tuple[Any, ...], traces: tuple[TraceTarget, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Names of the signals with receivers for ``model``, and of those receivers."""
    signal_names: list[str] = []
    receiver_names: dict[str, None] = {}
    for signal in signals:
        if all(signal in trace.options.ignored for trace in traces):
            continue
        receivers = receivers_for(signal, model)
        if receivers:
            signal_names.append(naming.signal_label(signal)[0])
            for receiver in receivers:
                receiver_names[naming.describe_receiver(receiver)[0]] = None
    return tuple(signal_names), tuple(receiver_names)


def _origin_of(frame: types.FrameType | None) -> tuple[Origin | None, types.FrameType | None]:
    """The call site (first frame outside Django and signaltrace) and its frame."""
    found = find_origin(frame)
    if found is None:
        return ASYNC_ORIGIN.get(), None
    code = found[0]
    while frame is not None and frame.f_code is not code:
        frame = frame.f_back
    return make_origin(found), frame


def report(
    operation: str,
    model: type,
    signals: tuple[Any, ...],
    *,
    rows: int | None,
    start_ns: int,
    frame: types.FrameType | None,
) -> None:
    """Record that ``operation`` on ``model`` skipped ``signals`` (if receivers were connected).

    Never raises, except for the :class:`SignalsSkippedWarning` itself when
    warnings are errors.

    .. versionadded:: 0.1.0
    """
    item = None
    warn = False
    origin: Origin | None = None
    origin_frame = None
    try:
        traces = active_traces()
        meta = naming.model_meta(model)
        if traces and meta is not None and not meta.auto_created:
            signal_names, receiver_names = _connected(model, signals, traces)
            if receiver_names:
                warn = bool(get_config()["SKIPPED_WARNING"])
                record_origin = any(trace.options.record_origin for trace in traces)
                if warn or record_origin:
                    origin, origin_frame = _origin_of(frame)
                item = SkippedDispatch(
                    operation=operation,
                    model=naming.sender_label(model),
                    signals=signal_names,
                    receivers=receiver_names,
                    origin=origin if record_origin else None,
                    start_ns=start_ns,
                    rows=rows,
                )
                admit(traces, 1, item, skipped=True)
    except Exception as err:
        log_failure("skipped-signal detection", err)
        return
    if warn and item is not None:
        _warn(item, origin, origin_frame)


def _warn(
    item: SkippedDispatch, origin: Origin | None, origin_frame: types.FrameType | None
) -> None:
    message = str(item)
    if origin_frame is not None:
        # Count frames up to the call site so the warnings registry and filters
        # see the caller's module, as with any stacklevel.
        level = 1
        frame: types.FrameType | None = sys._getframe()
        while frame is not None and frame is not origin_frame:
            frame = frame.f_back
            level += 1
        warnings.warn(message, SignalsSkippedWarning, stacklevel=level)
    elif origin is not None:
        # An a* method's caller, beyond the worker thread's stack.
        warnings.warn_explicit(message, SignalsSkippedWarning, origin.filename, origin.lineno)
    else:
        warnings.warn(message, SignalsSkippedWarning, stacklevel=4)  # the operation's caller
