"""Hot-path helpers the send replacements call to open a dispatch and a call.

Everything here is cheap or cached, holds no strong reference to user objects,
and never lets an exception escape: a failure is logged once and the dispatch
simply goes unrecorded.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import types
import weakref
from time import perf_counter_ns
from typing import Any, Final

from . import context as _ctx
from . import naming
from .context import K_OPTIONS, K_TRACES, TraceTarget, current_parent, log_failure
from .records import C_CHILDREN, D_CALLS, D_TRACES, REDACTED, ErrorInfo

__all__ = [
    "admit",
    "class_info",
    "describe",
    "error_info",
    "find_origin",
    "new_call",
    "open_dispatch",
    "resolve_receiver",
]

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


_DEAD: Final[naming.ReceiverDesc] = ("<dead receiver>", None, None)


def resolve_receiver(key: Any) -> naming.ReceiverDesc:
    """The description behind a call's receiver key.

    The hook stores a plain :class:`weakref.ref` for function receivers (CPython
    hands back the same ref object every time, so this costs no allocation and
    keeps nothing alive) and a ready description for everything else.
    """
    if type(key) is tuple:
        return key
    receiver = key()
    if receiver is None:
        return _DEAD
    return describe(receiver)


# -- classes --------------------------------------------------------------------

#: id(class) -> (weakref to it, label, pk attname or None for non-models).
_CLASS_INFO: dict[int, tuple[weakref.ref[Any], str, str | None]] = {}


def class_info(cls: type) -> tuple[weakref.ref[Any], str, str | None]:
    """``(ref, label, pk attname)`` of a class, cached while the class lives."""
    key = id(cls)
    entry = _CLASS_INFO.get(key)
    if entry is not None and entry[0]() is cls:
        return entry
    label = naming.sender_label(cls)
    attname = None
    meta = naming.model_meta(cls)
    if meta is not None:
        try:
            attname = meta.pk.attname
        except Exception:  # pragma: no cover - abstract or broken models
            attname = None
    entry = (weakref.ref(cls, functools.partial(_forget_class, key)), label, attname)
    _CLASS_INFO[key] = entry
    return entry


def _forget_class(key: int, ref: weakref.ref[Any]) -> None:
    entry = _CLASS_INFO.get(key)
    if entry is not None and entry[0] is ref:
        del _CLASS_INFO[key]


def _sender_label(sender: object) -> str:
    if sender is None:
        return "None"
    if isinstance(sender, type):
        return class_info(sender)[1]
    if type(sender) is str:
        return sender if len(sender) <= 200 else naming.sender_label(sender)
    return naming.sender_label(sender)


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


def _dir_of(module_name: str) -> str:
    module = importlib.import_module(module_name)
    return os.path.dirname(os.path.abspath(module.__file__ or "")) + os.sep


#: Frames from these are never a dispatch's origin.
_INTERNAL_DIRS: Final = tuple(
    _dir_of(name) for name in ("django", __package__ or "signaltrace", "asgiref", "asyncio")
)
#: The standard library (contextlib's folder), minus any site-packages inside it.
_STDLIB_DIR: Final = _dir_of("contextlib")


#: id(code) -> (code, kind). Keyed by id: hashing a code object hashes its
#: whole contents, which costs more than the rest of the walk.
_INTERNAL_CODE: dict[int, tuple[types.CodeType, int]] = {}


_EXTERNAL: Final = 0
_INTERNAL: Final = 1
_BOUNDARY: Final = 2  # a thread hop: what lies beyond is not the caller


def _classify(code: types.CodeType) -> int:
    filename = code.co_filename
    if filename.startswith(_INTERNAL_DIRS[2]) and code.co_name == "thread_handler":
        # asgiref's sync_to_async worker: the frames below belong to whatever the
        # thread was doing (under a sync test client, the test itself), not to
        # the async code that awaited. Stop rather than point somewhere wrong.
        kind = _BOUNDARY
    elif (
        filename.startswith(_INTERNAL_DIRS)
        or "/blinker/" in filename
        or (filename.startswith(_STDLIB_DIR) and "-packages" not in filename)
    ):
        kind = _INTERNAL
    else:
        kind = _EXTERNAL
    if len(_INTERNAL_CODE) > 50_000:  # pragma: no cover - bounded cache
        _INTERNAL_CODE.clear()
    _INTERNAL_CODE[id(code)] = (code, kind)
    return kind


def find_origin(frame: types.FrameType | None) -> tuple[types.CodeType, int] | None:
    cache = _INTERNAL_CODE
    while frame is not None:
        code = frame.f_code
        entry = cache.get(id(code))
        kind = entry[1] if entry is not None and entry[0] is code else _classify(code)
        if kind == _EXTERNAL:
            return (code, frame.f_lineno)
        if kind == _BOUNDARY:
            return None
        frame = frame.f_back
    return None


# -- kwargs -------------------------------------------------------------------

_SCALARS: Final = frozenset({bool, int, float, type(None)})


def _kwargs(named: dict[str, Any], options: Any) -> dict[str, Any]:
    redacted = options.redacted_keys
    classes = _CLASS_INFO
    out: dict[str, Any] = {}
    for key, value in named.items():
        hide = redacted.get(key)
        if hide is None:
            hide = redacted[key] = options.redact is not None and bool(options.redact.search(key))
            if len(redacted) > 1000:  # pragma: no cover - bounded cache
                redacted.clear()
        if hide:
            out[key] = REDACTED
            continue
        cls = type(value)
        if cls in _SCALARS:
            out[key] = value
            continue
        if cls is str:
            out[key] = value if len(value) <= 200 else naming.kwarg_value(value)
            continue
        info = classes.get(id(cls))
        if info is None or info[0]() is not cls:
            info = class_info(cls)
        attname = info[2]
        if attname is not None:
            hide = redacted.get(attname)
            if hide is None:
                hide = redacted[attname] = options.redact is not None and bool(
                    options.redact.search(attname)
                )
            if hide:  # e.g. sessions.Session, whose pk is the session key
                out[key] = f"{info[1]} pk={REDACTED}"
                continue
            pk = value.__dict__.get(attname)
            if type(pk) is int or pk is None:
                out[key] = f"{info[1]} pk={pk}"
                continue
        out[key] = naming.kwarg_value(value)
    return out


# -- dispatch -----------------------------------------------------------------


def new_call(receiver: object, is_async: bool, dispatch: list[Any]) -> list[Any]:
    """A raw receiver call (layout in :mod:`signaltrace.records`), appended.

    The sync loops in :mod:`signaltrace._send` build the same list inline.
    """
    key = weakref.ref(receiver) if type(receiver) is _FunctionType else describe(receiver)
    call = [key, is_async, 0, 0, None, None, dispatch, None, None, None]
    dispatch[D_CALLS].append(call)
    return call


def admit(
    traces: tuple[TraceTarget, ...], cost: int, item: object, skipped: bool = False
) -> tuple[TraceTarget, ...]:
    """Add ``item`` to every trace with room for ``cost`` events; the traces that took it.

    The one place that counts events against :setting:`MAX_EVENTS`. Each
    trace decides under its own lock (see :meth:`~signaltrace.Trace.admit`),
    so nothing lands in a trace after it closed, and once a trace has dropped
    one event it takes no more: a truncated trace has no gaps.
    """
    if len(traces) == 1:
        return traces if traces[0].admit(item, cost, skipped) else ()
    return tuple(trace for trace in traces if trace.admit(item, cost, skipped))


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
        parent = current_parent(cursor)
        dispatch = [
            weakref.ref(signal),
            _sender_label(sender),
            _kwargs(named, options) if named else {},
            method,
            perf_counter_ns(),
            0,
            find_origin(sys._getframe(2)) if parent is None and options.record_origin else None,
            [],
            parent,
            (),
            receivers,
        ]
        room = admit(_ctx.with_global(cursor[K_TRACES]), 1 + receivers, dispatch)
        if not room:
            return None
        dispatch[D_TRACES] = room
        if parent is not None:
            children = parent[C_CHILDREN]
            if children is None:
                parent[C_CHILDREN] = [dispatch]
            else:
                children.append(dispatch)
        return dispatch
    except Exception as err:
        log_failure("open_dispatch", err)
        return None
