"""Labels for signals, senders, receivers, instances and kwargs.

Every function here builds a label **without calling user code** and **never
raises**: no ``str()``, ``repr()``, ``==``, ``hash()`` or ``bool()`` of user
objects, no ``isinstance()`` (it consults a ``__class__`` property), no
attribute access through a user class or metaclass. A class's name, module, MRO
and namespace are read through :class:`type`'s own descriptors (below), so a
metaclass defining ``__module__`` or ``__getattribute__`` is never consulted;
instances are read through ``object.__getattribute__``; strings and numbers are
copied through the base type's methods. Whatever still fails becomes a
placeholder such as ``<module.Type>`` or ``?``.

Every label is bounded: strings are cut at 200 characters (names at 300), ints
past 64 bits become ``<int, N digits>``, collections past 20 items ``<type of N>``,
exception messages are built from at most 20 arguments.
"""

from __future__ import annotations

import functools
import math
import sys
import types
import uuid
import weakref
from typing import Any, Final

from blinker import NamedSignal

__all__ = [
    "ReceiverDesc",
    "clamp_int",
    "clip_text",
    "describe_receiver",
    "exception_message",
    "instance_label",
    "kwarg_key",
    "kwarg_value",
    "model_meta",
    "pk_attname",
    "sender_label",
    "signal_label",
    "type_label",
]

#: ``(dotted name, filename or None, first line or None)``.
ReceiverDesc = tuple[str, "str | None", "int | None"]

_FunctionType: Final = types.FunctionType
_MAX_STR: Final = 200
#: Dotted names, file names: longer than values, still bounded.
_MAX_NAME: Final = 300
_MAX_ITEMS: Final = 20
#: Ints up to this many bits are kept exact (every 64-bit id fits).
_INT_BITS: Final = 64
#: Up to this many bits, an int's digit count is exact; past it, estimated.
_EXACT_DIGITS_BITS: Final = 20_000
_INT_LIMIT: Final = 1 << _INT_BITS
_LOG10_2: Final = math.log10(2)

# type's own descriptors: reading a class through them runs no metaclass code
# (a metaclass property named __module__ or a metaclass __getattribute__ is
# never consulted, unlike ``cls.__module__`` or even ``type.__getattribute__``).
_type_module: Final = type.__dict__["__module__"].__get__
_type_qualname: Final = type.__dict__["__qualname__"].__get__
_type_name: Final = type.__dict__["__name__"].__get__
_type_mro: Final = type.__dict__["__mro__"].__get__
_type_namespace: Final = type.__dict__["__dict__"].__get__
_exc_args: Final = BaseException.__dict__["args"].__get__
_partial_func: Final = functools.partial.__dict__["func"].__get__
_object_dict: Final = object.__getattribute__


def clip_text(value: Any, limit: int = _MAX_STR) -> str | None:
    """A plain ``str`` copy of a string cut at ``limit`` (``…`` last); ``None`` if not one.

    A ``str`` subclass is copied with ``str``'s own methods, never its overrides.
    """
    if type(value) is str:
        text = value
    elif issubclass(type(value), str):
        text = str.__getitem__(value, slice(0, limit + 1))
    else:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _name_part(value: object) -> str:
    if value is None:
        return "None"
    text = clip_text(value, _MAX_NAME)
    return "?" if text is None else text


def type_label(cls: type) -> str:
    """``module.QualName`` of a class (just ``QualName`` for builtins); never raises."""
    try:
        qualname = _name_part(_type_qualname(cls))
        try:
            module: str | None = _name_part(_type_module(cls))
        except AttributeError:  # a class whose namespace lost its __module__
            module = None
    except Exception:
        return "?"
    if module is None or module == "builtins":
        return qualname
    return _truncate(f"{module}.{qualname}", _MAX_NAME)


def model_meta(obj: object) -> Any:
    """The ``_meta`` found in the namespace of a class (or an instance's class), or ``None``."""
    cls = obj if issubclass(type(obj), type) else type(obj)
    try:
        for klass in _type_mro(cls):
            meta = _type_namespace(klass).get("_meta")
            if meta is not None:
                return meta
    except Exception:  # a class still being created has no MRO yet
        return None
    return None


@functools.cache
def _django_types() -> tuple[type, type]:
    # Imported on first use: importing signaltrace must not import Django's ORM.
    from django.db.models.options import Options
    from django.db.models.query import QuerySet

    return Options, QuerySet


def _model_options(cls: type) -> Any:
    """The ``_meta`` of a model class if it is Django's ``Options``, else ``None``."""
    meta = model_meta(cls)
    if meta is not None and issubclass(type(meta), _django_types()[0]):
        return meta
    return None


def _is_model_class(cls: type) -> bool:
    return _model_options(cls) is not None


def _model_label(meta: Any) -> str:
    return f"{_name_part(meta.app_label)}.{_name_part(meta.object_name)}"


def pk_attname(cls: type) -> str | None:
    """The attribute holding a model's primary key (``"id"``); ``None`` for other classes."""
    try:
        meta = _model_options(cls)
        if meta is None:
            return None
        attname = meta.pk.attname
    except Exception:  # abstract or broken models
        return None
    return attname if type(attname) is str else None


def clamp_int(value: int) -> int | str:
    """An int as itself up to 64 bits, else ``"<int, N digits>"``; never ``str()``.

    ``str()`` of an int is quadratic and refuses past 4,300 digits; the digit count
    comes from :meth:`int.bit_length` (exact up to 20,000 bits, estimated past it).
    """
    bits = int.bit_length(value)
    if bits <= _INT_BITS:
        return int.__int__(value)
    low = int((bits - 1) * _LOG10_2) + 1  # 2**(bits-1) <= |value| < 2**bits
    high = int(bits * _LOG10_2) + 1
    digits = low
    if high != low:
        if bits <= _EXACT_DIGITS_BITS:
            if abs(int.__int__(value)) >= 10**low:
                digits = high
        else:
            shift = bits - 64
            top = abs(int.__rshift__(value, shift))
            if math.log10(top) + shift * _LOG10_2 >= low:
                digits = high
    sign = "negative " if int.__lt__(value, 0) else ""
    return f"<{sign}int, {digits} digits>"


def _placeholder(value: object) -> str:
    """``<module.Type>``: what a value that could not be labelled becomes."""
    return f"<{type_label(type(value))}>"


def sender_label(sender: object) -> str:
    """Label a signal sender: ``app_label.Model`` for models, dotted for classes; never raises."""
    try:
        return _sender_label(sender)
    except Exception:
        return _placeholder(sender)


def _sender_label(sender: object) -> str:
    if sender is None:
        return "None"
    cls = type(sender)
    if issubclass(cls, type):
        meta = _model_options(sender)  # type: ignore[arg-type]
        return type_label(sender) if meta is None else _model_label(meta)  # type: ignore[arg-type]
    ok, scalar = _scalar(sender)
    if ok:
        return scalar if type(scalar) is str else repr(scalar)
    # An instance: label its model (with pk) or its type, never the object.
    if _is_model_class(cls):
        return instance_label(sender)
    return f"<{type_label(cls)} instance>"


def _pk_label(instance: object, meta: Any) -> str:
    try:
        attname = meta.pk.attname
        pk = _object_dict(instance, "__dict__").get(attname)
    except Exception:  # exotic models without a dict, abstract models
        return "?"
    if pk is None:
        return "None"
    ok, scalar = _scalar(pk)
    if ok:
        return scalar if type(scalar) is str else repr(scalar)
    if type(pk) is uuid.UUID:
        return str(pk)
    return f"<{type_label(type(pk))}>"


def instance_label(instance: object) -> str:
    """``app_label.Model pk=N`` for a model instance, read from its ``__dict__``; never raises."""
    try:
        meta = _model_options(type(instance))
        if meta is None:
            return _placeholder(instance)
        return f"{_model_label(meta)} pk={_pk_label(instance, meta)}"
    except Exception:
        return _placeholder(instance)


def _truncate(value: str, limit: int = _MAX_STR) -> str:
    if len(value) <= limit:
        return value
    return value[: limit - 1] + "…"


def _scalar(value: Any) -> tuple[bool, object]:
    """``(True, plain value)`` for None, bools, numbers and strings; ``(False, None)`` else.

    Plain means of the exact builtin type, bounded: subclasses (enums,
    ``IntegerChoices``, anything with a user ``__str__``) are copied through the
    base type's methods, ints past 64 bits become a label (:func:`clamp_int`),
    strings are cut at 200 characters.
    """
    cls = type(value)
    if value is None or cls is bool or cls is float:
        return True, value
    if cls is int:
        return True, value if -_INT_LIMIT < value < _INT_LIMIT else clamp_int(value)
    if cls is str:
        return True, _truncate(value)
    if issubclass(cls, int):  # bool cannot be subclassed
        return True, clamp_int(value)
    if issubclass(cls, float):
        return True, float.__float__(value)
    if issubclass(cls, str):
        return True, clip_text(value)
    return False, None


def kwarg_key(key: object) -> str:
    """A kwarg name as a plain ``str`` cut at 200 characters (a ``str`` subclass is copied)."""
    text = clip_text(key)
    return _placeholder(key) if text is None else text


def kwarg_value(value: object) -> object:
    """A JSON-friendly, reference-free, bounded stand-in for a signal kwarg value.

    Scalars are kept (strings cut at 200 characters, ints past 64 bits as
    ``<int, N digits>``), model instances become ``app_label.Model pk=N``, classes
    their label, lists, tuples and sets of at most 20 scalars a list (sets
    sorted), everything else ``<module.Type>`` (``<module.Type of N>`` for
    collections). Nested collections are not expanded. Never raises.
    """
    try:
        return _kwarg_value(value)
    except Exception:
        return _placeholder(value)


#: The collections expanded into a list, and their base types for subclasses.
_COLLECTIONS: Final = (list, tuple, set, frozenset)


def _kwarg_value(value: Any) -> object:
    ok, scalar = _scalar(value)
    if ok:
        return scalar
    cls = type(value)
    if issubclass(cls, type):
        return sender_label(value)
    if _is_model_class(cls):
        return instance_label(value)
    if cls is list or cls is tuple or cls is set or cls is frozenset:
        size = len(value)
        if size <= _MAX_ITEMS:
            items = []
            for item in value:
                ok, scalar = _scalar(item)
                if not ok:
                    break
                items.append(scalar)
            else:
                if cls is set or cls is frozenset:
                    items.sort(key=_sort_key)
                return items
        return f"<{type_label(cls)} of {size}>"
    for base in _COLLECTIONS:
        if issubclass(cls, base):  # a subclass: its own __len__ and __iter__ never run
            return f"<{type_label(cls)} of {base.__len__(value)}>"
    model = _queryset_model(value)
    if model is not None:
        return f"<QuerySet {sender_label(model)}>"
    return f"<{type_label(cls)}>"


def _sort_key(item: object) -> tuple[str, Any]:
    # Items are plain scalars here (and at most one None, sets being sets).
    return (type(item).__name__, item)


def _queryset_model(value: object) -> type | None:
    if issubclass(type(value), _django_types()[1]):
        model = _object_dict(value, "__dict__").get("model")
        return model if issubclass(type(model), type) else None
    return None


def exception_message(exc: BaseException) -> str:
    """The message of an exception, from its ``args`` without ``str(exc)``; never raises.

    One string argument as it is, other scalars as their ``repr()``, other objects
    as ``<module.Type>``; at most 20 arguments (then ``…``), cut at 200 characters.
    An ``args`` property of the exception's class is not consulted.
    """
    try:
        args = _exc_args(exc)
        parts: list[str] = []
        size = 0
        for arg in args[:_MAX_ITEMS]:
            ok, scalar = _scalar(arg)
            if not ok:
                part = f"<{type_label(type(arg))}>"
            elif type(scalar) is str:
                part = scalar
            else:
                part = repr(scalar)  # None, a bool, a float or an int of at most 64 bits
            parts.append(part)
            size += len(part) + 2
            if size > _MAX_STR:
                break
        text = ", ".join(parts)
        if len(parts) < len(args):
            text += ", …"
        return _truncate(text)
    except Exception:
        return "<unreadable message>"


def _code_location(code: object) -> tuple[str | None, int | None]:
    """``(filename, first line)`` of a function's code object, else ``(None, None)``."""
    if type(code) is not types.CodeType:
        return None, None
    return _truncate(code.co_filename, _MAX_NAME), code.co_firstlineno


def _function_code(func: object) -> object:
    return func.__code__ if type(func) is _FunctionType else None


def describe_receiver(receiver: object) -> ReceiverDesc:
    """``(dotted name, filename, line)`` for any receiver; never raises."""
    try:
        return _describe(receiver, 0)
    except Exception:  # labelling must never fail; type_label() cannot
        return (_placeholder(receiver), None, None)


def _describe(receiver: object, depth: int) -> ReceiverDesc:
    cls = type(receiver)
    if cls is _FunctionType:
        func = _unwrap(receiver)  # type: ignore[arg-type]
        filename, line = _code_location(func.__code__)
        name = f"{_name_part(func.__module__)}.{_name_part(func.__qualname__)}"
        return (_truncate(name, _MAX_NAME), filename, line)
    if depth >= 10:
        return (_placeholder(receiver), None, None)
    if cls is types.MethodType:
        return _describe(receiver.__func__, depth + 1)  # type: ignore[attr-defined]
    if cls is types.BuiltinFunctionType:  # also BuiltinMethodType: the same type
        return (_builtin_label(receiver), None, None)
    if issubclass(cls, functools.partial):
        inner, filename, line = _describe(_partial_func(receiver), depth + 1)
        return (f"functools.partial({inner})", filename, line)
    if issubclass(cls, type):
        init = _type_namespace(receiver).get("__init__")
        filename, line = _code_location(_function_code(init))
        return (type_label(receiver), filename, line)  # type: ignore[arg-type]
    # A callable object (or a mock): label its class's __call__.
    call = None
    for klass in _type_mro(cls):
        call = _type_namespace(klass).get("__call__")
        if call is not None:
            break
    filename, line = _code_location(_function_code(call))
    return (f"{type_label(cls)}.__call__", filename, line)


def _builtin_label(receiver: Any) -> str:
    """``module.Owner.name`` of a builtin function or method, from C-level fields only.

    (A builtin's ``__qualname__`` would read ``__qualname__`` from its owner's
    class through the metaclass.)
    """
    name = _name_part(receiver.__name__)
    owner = receiver.__self__
    if owner is not None and not issubclass(type(owner), types.ModuleType):
        cls = owner if issubclass(type(owner), type) else type(owner)
        name = f"{_name_part(_type_qualname(cls))}.{name}"
    module = clip_text(receiver.__module__, _MAX_NAME) or "builtins"
    return _truncate(f"{module}.{name}", _MAX_NAME)


def _unwrap(func: types.FunctionType) -> types.FunctionType:
    """Follow ``functools.wraps`` chains so file:line points at the real code."""
    seen = 0
    while seen < 10:
        wrapped = _object_dict(func, "__dict__").get("__wrapped__")
        if type(wrapped) is not _FunctionType:
            return func
        func = wrapped
        seen += 1
    return func  # pragma: no cover - pathological wrapper chains


# -- signal names -------------------------------------------------------------

_SIGNAL_NAMES: dict[int, tuple[weakref.ref[Any], tuple[str, str]]] = {}
_PREFERRED_MODULES: Final = (
    "django.db.models.signals",
    "django.core.signals",
    "django.test.signals",
    "django.db.backends.signals",
    "django.contrib.auth.signals",
)


def signal_label(signal: object) -> tuple[str, str]:
    """``(name, dotted path)`` of the module attribute holding ``signal``, cached.

    Django's :class:`~django.dispatch.Signal` has no name; the label is found by
    scanning loaded modules once (Django's own first). Unnamed signals get
    ``Signal@0x…``. blinker's named signals use their ``name`` (path
    ``blinker:<name>``).
    """
    key = id(signal)
    entry = _SIGNAL_NAMES.get(key)
    if entry is not None and entry[0]() is signal:
        return entry[1]
    try:
        name = _find_signal_name(signal)
    except Exception:  # labelling never fails
        name = (_unnamed(signal),) * 2
    try:
        ref = weakref.ref(signal, functools.partial(_forget_signal, key))
    except TypeError:  # pragma: no cover - signals are always weakref-able
        return name
    _SIGNAL_NAMES[key] = (ref, name)
    return name


def _forget_signal(key: int, ref: weakref.ref[Any]) -> None:
    entry = _SIGNAL_NAMES.get(key)
    if entry is not None and entry[0] is ref:
        del _SIGNAL_NAMES[key]


def _find_signal_name(signal: object) -> tuple[str, str]:
    blinker_name = _blinker_name(signal)
    if blinker_name is not None:
        return blinker_name, f"blinker:{blinker_name}"
    modules = sys.modules
    for modname in _PREFERRED_MODULES:
        found = _attr_holding(modules.get(modname), signal)
        if found is not None:
            return found
    for modname, module in list(modules.items()):
        if modname.startswith("signaltrace"):
            continue
        found = _attr_holding(module, signal)
        if found is not None:
            return found
    unnamed = _unnamed(signal)
    return unnamed, unnamed


def _unnamed(signal: object) -> str:
    return f"{_name_part(_type_name(type(signal)))}@{id(signal):#x}"


def _blinker_name(signal: object) -> str | None:
    if issubclass(type(signal), NamedSignal):
        return clip_text(_object_dict(signal, "__dict__").get("name"), _MAX_NAME)
    return None


def _attr_holding(module: object, signal: object) -> tuple[str, str] | None:
    # Only modules: sys.modules may hold other objects, whose __dict__ is theirs.
    if not issubclass(type(module), types.ModuleType):
        return None
    try:
        namespace = _object_dict(module, "__dict__")
    except Exception:  # pragma: no cover - modules always have a dict
        return None
    if type(namespace) is not dict:  # pragma: no cover
        return None
    for attr, value in list(namespace.items()):
        if value is signal and type(attr) is str and not attr.startswith("_"):
            attr = _truncate(attr, _MAX_NAME)
            modname = clip_text(namespace.get("__name__"), _MAX_NAME)
            return attr, attr if modname is None else f"{modname}.{attr}"
    return None
