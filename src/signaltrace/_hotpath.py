"""Hot-path helpers the send replacements call to open a dispatch and a call.

Everything here is cheap or cached, holds no strong reference to user objects,
and never lets an exception escape: a failure is logged once and the dispatch
simply goes unrecorded.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import os
import sys
import types
import weakref
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from time import perf_counter_ns
from typing import Any, Final

from asgiref.sync import markcoroutinefunction

from . import context as _ctx
from . import naming
from .context import K_CALL, K_OPTIONS, K_TRACES, TraceTarget, current_parent, log_failure
from .records import (
    C_DISPATCH,
    C_EXTRA,
    C_RECEIVER,
    D_CALLS,
    D_EXTRA,
    D_FLAT,
    D_SIZE,
    D_TRACES,
    MODEL_PK,
    REDACTED,
    ErrorInfo,
    Origin,
    running_flat_call,
)

__all__ = [
    "admit",
    "call_dispatch",
    "call_facts",
    "call_key",
    "class_info",
    "current_call_facts",
    "describe",
    "error_info",
    "fail",
    "find_origin",
    "hop_call",
    "make_origin",
    "new_call",
    "open_dispatch",
    "resolve_receiver",
    "running_call",
]

_FunctionType: Final = types.FunctionType
_getframe: Final = sys._getframe
_DESC_CACHE: dict[int, tuple[weakref.ref[Any], tuple[str, str | None, int | None, Any]]] = {}


def describe(receiver: object) -> tuple[str, str | None, int | None, Any]:
    """:func:`naming.describe_receiver` and an identity token, cached per live function.

    ``(label, filename, line, identity)``. The identity token is what an
    assertion given a receiver object compares it with
    (:func:`signaltrace.query.is_receiver`); it holds weak references only:

    - a function: ``weakref.ref(function)``, the very ref the send loops
      record (CPython hands out one shared callback-less ref per object);
    - a bound method: ``("method", token of __func__, token of __self__)``,
      since each attribute lookup makes a new bound method object;
    - anything else: ``weakref.ref(receiver)``; for an object that cannot be
      weakly referenced (only ``weak=False`` can connect one, and then the
      signal keeps it alive while connected),
      ``("id", id(receiver), weakref.ref(type(receiver)))``, which identifies
      it only while it lives.
    """
    if type(receiver) is _FunctionType:
        key = id(receiver)
        entry = _DESC_CACHE.get(key)
        if entry is not None and entry[0]() is receiver:
            return entry[1]
        desc = (*naming.describe_receiver(receiver), weakref.ref(receiver))
        _DESC_CACHE[key] = (weakref.ref(receiver, functools.partial(_forget, key)), desc)
        return desc
    if type(receiver) is types.MethodType:
        func = describe(receiver.__func__)
        owner = receiver.__self__
        try:
            owner_token: Any = weakref.ref(owner)
        except TypeError:
            owner_token = ("id", id(owner), weakref.ref(type(owner)))
        return (func[0], func[1], func[2], ("method", func[3], owner_token))
    try:
        token: Any = weakref.ref(receiver)
    except TypeError:
        token = ("id", id(receiver), weakref.ref(type(receiver)))
    return (*naming.describe_receiver(receiver), token)


def bound_to_function(receiver: object) -> bool:
    """Whether ``receiver`` is a method bound to a Python function.

    Such a method is labelled by its function (:func:`describe`), and calling it
    with a keyword dict unpacks it as a function call does (``_send``'s
    ``_call_with``). Attribute reads of C members only: no user code runs.
    """
    return type(receiver) is types.MethodType and type(receiver.__func__) is _FunctionType


def _forget(key: int, ref: weakref.ref[Any]) -> None:
    entry = _DESC_CACHE.get(key)
    if entry is not None and entry[0] is ref:
        del _DESC_CACHE[key]


def resolve_receiver(key: Any) -> tuple[str, str | None, int | None, Any]:
    """The description (with its identity token, see :func:`describe`) behind a receiver key.

    The hook stores a plain :class:`weakref.ref` for function receivers (CPython
    hands back the same ref object every time, so this costs no allocation and
    keeps nothing alive) and a ready description for everything else. A dead
    function keeps its (dead) ref as identity: it matches nothing any more.
    """
    if type(key) is tuple:
        return key
    receiver = key()
    if receiver is None:
        return ("<dead receiver>", None, None, key)
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
    # Neither call runs user code or raises (see naming).
    label = naming.sender_label(cls)
    attname = naming.pk_attname(cls)
    if attname is not None and not _plain_dict(cls):
        attname = None  # its instances' pk is read by naming.kwarg_value()
    entry = (weakref.ref(cls, functools.partial(_forget_class, key)), label, attname)
    _CLASS_INFO[key] = entry
    return entry


_type_mro: Final = type.__dict__["__mro__"].__get__
_type_dict: Final = type.__dict__["__dict__"].__get__


def _plain_dict(cls: type) -> bool:
    """Whether ``instance.__dict__`` runs no user code for instances of ``cls``.

    True unless a class in its MRO defines ``__getattribute__`` or replaces
    ``__dict__`` with something other than the interpreter's own descriptor.
    Reads the classes through ``type``'s descriptors (no metaclass code runs).
    """
    try:
        for klass in _type_mro(cls):
            if klass is object:
                continue
            namespace = _type_dict(klass)
            if "__getattribute__" in namespace:
                return False
            entry = namespace.get("__dict__")
            if entry is not None and type(entry) is not types.GetSetDescriptorType:
                return False
        return True
    except Exception:  # pragma: no cover - type's own descriptors do not raise
        return False


def _forget_class(key: int, ref: weakref.ref[Any]) -> None:
    entry = _CLASS_INFO.get(key)
    if entry is not None and entry[0] is ref:
        del _CLASS_INFO[key]


def _sender_label(sender: object) -> str:
    """:func:`naming.sender_label`, cached for classes; never raises, runs no user code.

    (``issubclass(type(x), type)``, not ``isinstance(x, type)``: ``isinstance``
    consults a ``__class__`` property.)
    """
    if sender is None:
        return "None"
    if type(sender) is str:
        return sender if len(sender) <= 200 else naming.sender_label(sender)
    if issubclass(type(sender), type):
        return class_info(sender)[1]  # type: ignore[arg-type]
    return naming.sender_label(sender)


_exc_traceback: Final = BaseException.__dict__["__traceback__"].__get__


def error_info(exc: BaseException) -> ErrorInfo:
    """Labels for an exception: type, message from ``args``, innermost frame.

    Called in the send loops' ``except`` clauses, so it must never raise (that
    would replace the receiver's exception) and runs no user code: the
    exception's ``__traceback__`` and ``args`` are read through
    :class:`BaseException`'s own descriptors, not properties of its class.
    """
    try:
        filename = lineno = None
        tb = _exc_traceback(exc)
        while tb is not None:
            filename, lineno = tb.tb_frame.f_code.co_filename, tb.tb_lineno
            tb = tb.tb_next
        return ErrorInfo(
            naming.type_label(type(exc)),
            naming.exception_message(exc),
            None if filename is None else naming.clip_text(filename, 300),
            lineno,
        )
    except Exception as err:  # pragma: no cover - the labels above never raise
        log_failure("error_info", err)
        return ErrorInfo(naming.type_label(type(exc)), "")


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


#: The last origin :func:`find_origin` found, ``(code, offset)``: a dispatch
#: sent straight from that code again needs no walk, and one sent from the same
#: instruction shares the tuple (see open_dispatch). One tuple, replaced whole,
#: so that another thread never sees one origin's code with another's offset.
_LAST_EXTERNAL: Final[list[tuple[types.CodeType | None, int]]] = [(None, -1)]

_EXTERNAL: Final = 0
_INTERNAL: Final = 1
_BOUNDARY: Final = 2  # a thread hop: what lies beyond is not the caller


def _classify(code: types.CodeType) -> int:
    filename = code.co_filename
    if filename.startswith(_INTERNAL_DIRS[2]) and code.co_name == "thread_handler":
        # asgiref's sync_to_async worker: the frames below belong to whatever the
        # thread was doing (under a sync test client, the test itself), not to
        # the async code that awaited. Stop there, and take the awaiting code's
        # origin that hop_call() carried across (or none, never a wrong frame).
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
    """``(code, instruction offset)`` of the first frame outside Django and signaltrace.

    The line number is worked out when it is read (:func:`make_origin`):
    ``f_lineno`` costs more than the rest of the walk.
    """
    cache = _INTERNAL_CODE
    while frame is not None:
        code = frame.f_code
        entry = cache.get(id(code))
        kind = entry[1] if entry is not None and entry[0] is code else _classify(code)
        if kind == _EXTERNAL:
            origin = _LAST_EXTERNAL[0] = (code, frame.f_lasti)
            return origin
        if kind == _BOUNDARY:
            return HOP_ORIGIN.get()
        frame = frame.f_back
    return None


#: What :func:`find_origin` found for the code that awaited the ``sync_to_async``
#: hop this flow runs behind (asgiref runs the function in a copy of the
#: awaiting context, so the worker thread sees it), or None.
HOP_ORIGIN: Final[ContextVar[tuple[types.CodeType, int] | None]] = ContextVar(
    "signaltrace_hop_origin", default=None
)


def hop_call(original: Callable[..., Any]) -> Callable[..., Any]:
    """asgiref's ``SyncToAsync.__call__``, carrying the caller's origin and cursor into the thread.

    While no capture is open it only calls ``original``. While one is, the
    thread gets, for the duration of the hop:

    - the origin of the code calling ``sync_to_async(func)(...)`` (``acreate()``'s
      caller, or the async view that wraps ``send_robust``), found when the hop
      starts, in :data:`HOP_ORIGIN`, so a dispatch sent in the thread, whose own
      stack reaches only asgiref's ``thread_handler``, gets it;
    - a copy of the awaiting flow's cursor that no thread changes in place (see
      :mod:`signaltrace.context`): the event loop's thread goes on running
      other tasks, whose sync dispatches may point the shared cursor at
      themselves for a moment, and the thread must not see that.

    A plain function returning the coroutine (marked as a coroutine function,
    like the original): the hop gets no frame of its own unless a capture is
    open somewhere in the process.
    """

    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _ctx.CAPTURING:
            return original(self, *args, **kwargs)
        found = find_origin(sys._getframe(1))
        return _hop(original(self, *args, **kwargs), found, _ctx.CURSOR.get())

    __call__.__qualname__ = getattr(original, "__qualname__", "__call__")
    __call__.__doc__ = original.__doc__
    __call__.__wrapped__ = original  # type: ignore[attr-defined]
    return markcoroutinefunction(__call__)


async def _hop(
    coro: Coroutine[Any, Any, Any],
    found: tuple[types.CodeType, int] | None,
    cursor: list[Any] | None,
) -> Any:
    __tracebackhide__ = True  # pytest
    __traceback_hide__ = True  # Django's debug page
    token = HOP_ORIGIN.set(found) if found is not None else None
    shared = None
    if cursor is not None:
        # asgiref copies this context for the thread when the hop starts.
        shared = _ctx.CURSOR.set([cursor[K_TRACES], cursor[K_CALL], cursor[K_OPTIONS], None])
    try:
        return await coro
    finally:
        if shared is not None:
            _ctx.CURSOR.reset(shared)
        if token is not None:
            HOP_ORIGIN.reset(token)


def make_origin(found: tuple[types.CodeType, int] | None) -> Origin | None:
    """The :class:`~signaltrace.records.Origin` of what :func:`find_origin` found."""
    if found is None:
        return None
    code, lasti = found
    lineno = code.co_firstlineno
    for start, end, line in code.co_lines():
        if start <= lasti < end:
            if line is not None:
                lineno = line
            break
    return Origin(code.co_filename, lineno, code.co_qualname)


# -- kwargs -------------------------------------------------------------------

#: Ints kept exact: at most 64 bits, ``_INT_MIN < i < _INT_MAX`` (see :func:`naming.clamp_int`).
_INT_MAX: Final = 1 << 64
_INT_MIN: Final = -_INT_MAX
#: Kwargs recorded per dispatch; the rest are counted in a ``"…"`` entry.
_MAX_KWARGS: Final = 64


def _kwargs(named: dict[str, Any], options: Any) -> dict[str, Any]:
    """The kwargs a dispatch records: redacted, plain and bounded; never raises.

    The common case, checked here in one pass: every name was seen before and is
    not redacted (:attr:`~signaltrace.context.Options.plain_keys`), and every
    value is ``None``, a bool, a float, an int of at most 64 bits, a string of at
    most 200 characters, or an instance of a model seen before whose pk is such
    an int or ``None``. Then the call's own dict is kept as it is (``send`` made
    it for this call and nothing changes it), or, with model instances, a copy
    in which each is ``(MODEL_PK, label, pk)`` (see
    :func:`~signaltrace.records.read_kwargs`). Anything else, the first time a
    name is seen included, goes through :func:`_label_kwargs`.

    No user code runs: types are compared with ``is`` (a ``__class__`` property
    or a metaclass ``__hash__`` is never consulted), a name must be an exact
    ``str`` before it is looked up, and a model's ``__dict__`` is read only if
    its class reads attributes the plain way (see :func:`class_info`).
    """
    if len(named) > _MAX_KWARGS:
        return _label_kwargs(named, options)
    plain = options.plain_keys
    out = None
    for key, value in named.items():
        if type(key) is not str or key not in plain:
            return _label_kwargs(named, options)
        cls = type(value)
        if value is None or cls is bool or cls is float:
            continue
        if cls is int:
            if _INT_MIN < value < _INT_MAX:
                continue
        elif cls is str:
            if len(value) <= 200:
                continue
        else:
            info = _CLASS_INFO.get(id(cls))
            if info is not None and info[2] in plain and info[0]() is cls:
                try:
                    pk = value.__dict__[info[2]]
                except KeyError:  # not loaded (an instance built without __init__)
                    return _label_kwargs(named, options)
                if (type(pk) is int and _INT_MIN < pk < _INT_MAX) or pk is None:
                    if out is None:
                        out = named.copy()
                    out[key] = (MODEL_PK, info[1], pk)
                    continue
        return _label_kwargs(named, options)
    return named if out is None else out


def _hidden(name: str, options: Any) -> bool:
    """Whether kwarg (or pk) name ``name`` is redacted; cached per :class:`Options`."""
    redacted: dict[str, bool] = options.redacted_keys
    hide = redacted.get(name)
    if hide is None:
        hide = options.redact is not None and bool(options.redact.search(name))
        if len(redacted) > 1000:  # pragma: no cover - bounded cache
            redacted.clear()
            options.plain_keys.clear()
        redacted[name] = hide
        if not hide:
            options.plain_keys.add(name)
    return hide


def _label_kwargs(named: dict[str, Any], options: Any) -> dict[str, Any]:
    """:func:`_kwargs` for any kwargs: a new dict of plain, bounded labels; never raises.

    Values are tested with ``type(x) is ...``, ints past 64 bits, long strings
    and keys are cut (see :func:`naming.kwarg_value`), and anything else is
    labelled by :func:`naming.kwarg_value`, which never raises.
    """
    if len(named) > _MAX_KWARGS:
        return _many_kwargs(named, options)
    classes = _CLASS_INFO
    out: dict[str, Any] = {}
    for key, value in named.items():
        if type(key) is not str:  # a str subclass: its own __hash__ and __eq__ must not run
            key = naming.kwarg_key(key)
        if len(key) > 200:  # recorded cut, and never cached
            hide = options.redact is not None and bool(options.redact.search(key))
            key = naming.kwarg_key(key)
        else:
            hide = _hidden(key, options)
        if hide:
            out[key] = REDACTED
            continue
        cls = type(value)
        if value is None or cls is bool or cls is float:
            out[key] = value
            continue
        if cls is int:
            out[key] = value if _INT_MIN < value < _INT_MAX else naming.clamp_int(value)
            continue
        if cls is str:
            out[key] = value if len(value) <= 200 else naming.kwarg_value(value)
            continue
        info = classes.get(id(cls))
        if info is None or info[0]() is not cls:
            info = class_info(cls)
        attname = info[2]
        if attname is not None:
            if _hidden(attname, options):  # e.g. sessions.Session, whose pk is the session key
                out[key] = f"{info[1]} pk={REDACTED}"
                continue
            pk = value.__dict__.get(attname)
            if (type(pk) is int and _INT_MIN < pk < _INT_MAX) or pk is None:
                out[key] = (MODEL_PK, info[1], pk)
                continue
        out[key] = naming.kwarg_value(value)
    return out


def _many_kwargs(named: dict[str, Any], options: Any) -> dict[str, Any]:
    """More than :data:`_MAX_KWARGS` kwargs: the first ones, and how many more."""
    first = {
        key if type(key) is str else naming.kwarg_key(key): value
        for key, value in itertools.islice(named.items(), _MAX_KWARGS)
    }
    out = _label_kwargs(first, options)
    out["…"] = f"<{len(named) - len(first)} more kwargs>"
    return out


# -- dispatch -----------------------------------------------------------------


def new_call(receiver: object, is_async: bool, dispatch: list[Any]) -> list[Any]:
    """A raw receiver call (layout in :mod:`signaltrace.records`), appended.

    The sync loops in :mod:`signaltrace._send` build the same list inline.
    """
    key = weakref.ref(receiver) if type(receiver) is _FunctionType else describe(receiver)
    call = [key, is_async, 0, 0, None, None, dispatch, None, None, None]
    dispatch[D_CALLS].append(call)  # a list by then: see open_dispatch
    return call


def fail(
    dispatch: list[Any],
    index: int,
    exc: BaseException,
    end_ns: int,
    db: Any = None,
    queries: Any = None,
) -> None:
    """Record that flat call ``index`` of ``dispatch`` raised ``exc`` and ended at ``end_ns``.

    With ``db`` (``RECORD_DB``, in ``send_robust``, whose loop goes on) it also
    records the statement and ``on_commit`` counts at that moment.
    """
    extra = dispatch[D_EXTRA]
    if extra is None:
        extra = dispatch[D_EXTRA] = {}
    facts = extra.get(index)
    if facts is None:
        facts = extra[index] = {}
    facts["error"] = error_info(exc)
    if db is not None:
        facts["db_end"] = (queries.n, len(db.run_on_commit))
    facts["end"] = end_ns  # last: readers take "end" to mean the other facts are there


# -- the receiver call running now ------------------------------------------------


def running_call(cursor: list[Any] | None) -> Any:
    """The raw receiver call running now in this flow, or ``None`` (none, or at the top).

    In the form a dispatch's ``D_PARENT`` takes: a ``(raw dispatch, flat index)``
    pair while a sync loop's receiver runs (the running call is index
    :func:`~signaltrace.records.running_flat_call`), else a raw call list (async receivers, ``asend``'s
    thread, blinker). Not for the hot path: for facts attached to a call while
    it runs (a Celery task it publishes, an ``on_commit`` callback it registers).
    """
    if cursor is None:
        return None
    call = cursor[K_CALL]
    if call is not None and type(call) is dict:
        call = current_parent(cursor)  # Django 6.1's shared TaskGroup context
    if call is None:
        return None
    if len(call) >= D_SIZE:
        index = running_flat_call(call)
        if index is None:  # no sync call running (the loop has not started, or ended)
            return None
        return (call, index)
    return call


def call_dispatch(call: Any) -> list[Any]:
    """The raw dispatch of a call :func:`running_call` returned."""
    return call[0] if type(call) is tuple else call[C_DISPATCH]  # type: ignore[no-any-return]


def call_key(call: Any) -> Any:
    """The receiver key (see :func:`resolve_receiver`) of a call :func:`running_call` returned."""
    if type(call) is tuple:
        dispatch, index = call
        return dispatch[D_FLAT + 2 * index]
    return call[C_RECEIVER]


def call_facts(call: Any) -> dict[str, Any]:
    """The facts dict of a call :func:`running_call` returned, created if needed.

    ``D_EXTRA[index]`` of a flat call (shared with :func:`fail`: ``"end"`` and
    ``"error"`` are set only when it raised), else the call list's ``C_EXTRA``.
    """
    if type(call) is tuple:
        dispatch, index = call
        extra = dispatch[D_EXTRA]
        if extra is None:
            extra = dispatch[D_EXTRA] = {}
        facts = extra.get(index)
        if facts is None:
            facts = extra[index] = {}
        return facts  # type: ignore[no-any-return]
    facts = call[C_EXTRA]
    if facts is None:
        facts = call[C_EXTRA] = {}
    return facts  # type: ignore[no-any-return]


def current_call_facts(cursor: list[Any] | None) -> dict[str, Any] | None:
    """The facts dict of the receiver call running now (created if needed), or ``None``."""
    call = running_call(cursor)
    return None if call is None else call_facts(call)


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
    no calls: ``D_CALLS`` is ``()``, which a sync loop never needs; a caller
    that adds calls with :func:`new_call` (async receivers, ``asend``'s thread,
    blinker) sets it to a list first, before any of them can run. The caller
    sets the end time.
    """
    try:
        options = cursor[K_OPTIONS]
        parent = cursor[K_CALL]
        if parent is not None:
            if type(parent) is dict:
                parent = current_parent(cursor)  # Django 6.1's shared TaskGroup context
            if parent is not None and len(parent) >= D_SIZE:
                # A raw dispatch: the flat call of its sync loop running now.
                parent = (parent, (len(parent) - D_FLAT) // 2 - 1)
        if parent is not None:
            origin = None
        elif options.record_origin:
            frame = _getframe(2)
            # find_origin()'s first step, inlined for a repeated call site.
            origin = _LAST_EXTERNAL[0]
            if frame.f_code is origin[0]:
                if origin[1] != frame.f_lasti:
                    origin = _LAST_EXTERNAL[0] = (origin[0], frame.f_lasti)
            else:
                origin = find_origin(frame)
        else:
            origin = None
        # The sender: a class is labelled from the class cache.
        info = _CLASS_INFO.get(id(sender))
        dispatch = [
            weakref.ref(signal),
            info[1] if info is not None and info[0]() is sender else _sender_label(sender),
            _kwargs(named, options) if named else {},
            method,
            perf_counter_ns(),
            0,
            origin,
            (),  # D_CALLS: a list once a call is added (before that, sync loops need none)
            parent,
            (),
            receivers,
            None,
            None,
            None,
        ]
        traces = cursor[K_TRACES] if not _ctx.GLOBAL_TRACES else _ctx.with_global(cursor[K_TRACES])
        if len(traces) == 1:
            # Trace.admit(), inlined for the common case: one open trace with
            # room. Anything else takes the method, which counts a drop.
            trace = traces[0]
            cost = 1 + receivers
            admitted = False
            if not trace.closed:
                lock = trace._lock
                lock.acquire()  # not ``with``: it costs twice as much
                try:
                    events = trace.events + cost
                    if (
                        events <= trace.max_events
                        and trace._truncated_raw is None
                        and not trace.closed
                    ):
                        trace.events = events
                        trace.raw.append(dispatch)
                        admitted = True
                finally:
                    lock.release()
            if not admitted and not trace.admit(dispatch, cost):
                return None
            room = traces
        else:
            room = admit(traces, 1 + receivers, dispatch)
            if not room:
                return None
        dispatch[D_TRACES] = room
        return dispatch
    except Exception as err:
        log_failure("open_dispatch", err)
        return None
