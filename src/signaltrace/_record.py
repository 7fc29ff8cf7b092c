"""Hot-path helpers the hook calls to open a dispatch and describe a call.

Everything here is cheap or cached, holds no strong reference to user objects,
and never lets an exception escape: a failure is logged once and the dispatch
simply goes unrecorded.
"""

from __future__ import annotations

import functools
import os
import sys
import types
import weakref
from time import perf_counter_ns
from typing import Any, Final

from . import context as _ctx
from . import naming
from .context import K_OPTIONS, K_TRACES, current_parent, log_failure
from .records import C_CHILDREN, ErrorInfo

__all__ = ["describe", "error_info", "open_dispatch"]

_FunctionType: Final = types.FunctionType
_DESC_CACHE: dict[int, tuple[weakref.ref[Any], naming.ReceiverDesc]] = {}


def describe(receiver: object) -> naming.ReceiverDesc:
    """:func:`naming.describe_receiver`, cached per live function object."""
    if type(receiver) is _FunctionType:
        key = id(receiver)
        entry = _DESC_CACHE.get(key)
        if entry is not None and entry[0]() is receiver:
            return entry[1]
        desc = naming.describe_receiver(receiver)
        _DESC_CACHE[key] = (weakref.ref(receiver, functools.partial(_forget, key)), desc)
        return desc
    if type(receiver) is types.MethodType:
        return describe(receiver.__func__)
    return naming.describe_receiver(receiver)


def _forget(key: int, ref: weakref.ref[Any]) -> None:
    entry = _DESC_CACHE.get(key)
    if entry is not None and entry[0] is ref:
        del _DESC_CACHE[key]


def error_info(exc: BaseException) -> ErrorInfo:
    """Labels for an exception: type, message from ``args``, innermost frame."""
    try:
        filename = lineno = None
        tb = exc.__traceback__
        while tb is not None:
            filename, lineno = tb.tb_frame.f_code.co_filename, tb.tb_lineno
            tb = tb.tb_next
        return ErrorInfo(
            naming.type_label(type(exc)), naming.exception_message(exc), filename, lineno
        )
    except Exception as err:  # pragma: no cover - defensive
        log_failure("error_info", err)
        return ErrorInfo(type(exc).__name__, "")


# -- origin -------------------------------------------------------------------

_INTERNAL_DIRS: Final = tuple(
    os.path.dirname(os.path.abspath(path)) + os.sep
    for name in ("django", __package__ or "signaltrace", "asyncio", "contextlib")
    if (path := getattr(sys.modules[name], "__file__", None))
)
_INTERNAL_CODE: dict[types.CodeType, bool] = {}


def _is_internal(code: types.CodeType) -> bool:
    internal = _INTERNAL_CODE.get(code)
    if internal is None:
        filename = code.co_filename
        internal = filename.startswith(_INTERNAL_DIRS) or "/asgiref/" in filename
        if filename.startswith("<") and filename != "<stdin>" and "blinker" in filename:
            internal = True  # pragma: no cover
        if len(_INTERNAL_CODE) > 50_000:  # pragma: no cover - bounded cache
            _INTERNAL_CODE.clear()
        _INTERNAL_CODE[code] = internal
    return internal


def _origin(depth: int) -> tuple[str, int, str] | None:
    frame: types.FrameType | None = sys._getframe(depth)
    while frame is not None:
        code = frame.f_code
        if not _is_internal(code) and "/blinker/" not in code.co_filename:
            return (code.co_filename, frame.f_lineno, code.co_qualname)
        frame = frame.f_back
    return None


# -- kwargs -------------------------------------------------------------------

_SCALARS: Final = frozenset({bool, int, float, type(None)})
_REDACTED: Final = "[redacted]"


def _kwargs(named: dict[str, Any], options: Any) -> dict[str, Any]:
    redact = options.redact
    out: dict[str, Any] = {}
    for key, value in named.items():
        if redact is not None and redact.search(key):
            out[key] = _REDACTED
        elif type(value) in _SCALARS:
            out[key] = value
        else:
            out[key] = naming.kwarg_value(value)
    return out


# -- dispatch -----------------------------------------------------------------


def open_dispatch(
    signal: object,
    sender: object,
    named: dict[str, Any],
    method: str,
    cursor: list[Any],
    receivers: int,
) -> list[Any] | None:
    """Start recording a dispatch; ``None`` if no trace has room (or on failure).

    Returns the raw dispatch list (layout in :mod:`signaltrace.records`) with
    its calls list empty. The caller appends calls and sets the end time.
    """
    try:
        options = cursor[K_OPTIONS]
        traces = cursor[K_TRACES]
        if _ctx.GLOBAL_TRACES:
            traces = traces + tuple(t for t in _ctx.GLOBAL_TRACES if t not in traces)
        cost = 1 + receivers
        room = []
        for trace in traces:
            if trace.closed:
                continue
            if trace.events + cost > trace.max_events:
                trace.dropped += cost
                continue
            trace.events += cost
            room.append(trace)
        if not room:
            return None
        parent = current_parent(cursor)
        dispatch = [
            weakref.ref(signal),
            naming.sender_label(sender),
            _kwargs(named, options),
            method,
            perf_counter_ns(),
            0,
            _origin(2) if options.record_origin else None,
            [],
            parent,
            tuple(room),
            receivers,
        ]
        if parent is not None:
            children = parent[C_CHILDREN]
            if children is None:
                parent[C_CHILDREN] = [dispatch]
            else:
                children.append(dispatch)
        for trace in room:
            trace._raw.append(dispatch)
        return dispatch
    except Exception as err:
        log_failure("open_dispatch", err)
        return None
