"""Labels for signals, senders, receivers, instances and kwargs.

Every function here builds a label **without calling user code**: no ``str()``
or ``repr()`` of user objects, no ``getattr`` on instances whose class may
define ``__getattr__``. Only ``__module__``, ``__qualname__``, code objects,
``_meta`` and ``pk`` are read, and always through the *type* where an instance
could intercept attribute access.
"""

from __future__ import annotations

import functools
import sys
import types
import weakref
from typing import Any, Final

from blinker import NamedSignal

__all__ = [
    "ReceiverDesc",
    "describe_receiver",
    "exception_message",
    "instance_label",
    "kwarg_value",
    "model_meta",
    "sender_label",
    "signal_label",
    "type_label",
]

#: ``(dotted name, filename or None, first line or None)``.
ReceiverDesc = tuple[str, "str | None", "int | None"]

_FunctionType: Final = types.FunctionType
_MAX_STR: Final = 200
_MAX_ITEMS: Final = 20


def type_label(cls: type) -> str:
    """``module.QualName`` of a class, read from the class's own ``__dict__``."""
    module = type.__getattribute__(cls, "__module__")
    qualname = type.__getattribute__(cls, "__qualname__")
    if module == "builtins":
        return str(qualname)
    return f"{module}.{qualname}"


def model_meta(obj: object) -> Any:
    """The ``_meta`` of a model class or instance, or ``None``; no user code."""
    cls = obj if isinstance(obj, type) else type(obj)
    for klass in cls.__mro__:
        meta = klass.__dict__.get("_meta")
        if meta is not None:
            return meta
    return None


def _is_model_class(cls: type) -> bool:
    meta = model_meta(cls)
    return meta is not None and hasattr(meta, "app_label") and hasattr(meta, "object_name")


def sender_label(sender: object) -> str:
    """Label a signal sender: ``app_label.Model`` for models, dotted for classes."""
    if sender is None:
        return "None"
    if isinstance(sender, type):
        if _is_model_class(sender):
            meta = model_meta(sender)
            return f"{meta.app_label}.{meta.object_name}"
        return type_label(sender)
    if isinstance(sender, str):
        return _truncate(sender)
    if isinstance(sender, (int, float, bool)):
        return str(sender)
    # An instance: label its model (with pk) or its type, never the object.
    if _is_model_class(type(sender)):
        return instance_label(sender)
    return f"<{type_label(type(sender))} instance>"


def _pk_label(instance: object) -> str:
    meta = model_meta(instance)
    try:
        attname = meta.pk.attname
        pk = object.__getattribute__(instance, "__dict__").get(attname)
    except Exception:  # pragma: no cover - exotic models without a dict
        return "?"
    if pk is None:
        return "None"
    if isinstance(pk, (int, str)):
        return str(pk) if not isinstance(pk, str) else _truncate(pk)
    import uuid

    if isinstance(pk, uuid.UUID):
        return str(pk)
    return f"<{type_label(type(pk))}>"


def instance_label(instance: object) -> str:
    """``app_label.Model pk=N`` for a model instance, read from its ``__dict__``."""
    meta = model_meta(instance)
    return f"{meta.app_label}.{meta.object_name} pk={_pk_label(instance)}"


def _truncate(value: str) -> str:
    if len(value) <= _MAX_STR:
        return value
    return value[: _MAX_STR - 1] + "…"


def _scalar(value: object) -> tuple[bool, object]:
    cls = type(value)
    if value is None or cls is bool or cls is int or cls is float:
        return True, value
    # Subclasses (enums, IntegerChoices) could carry a user __str__: keep the
    # plain value only.
    if isinstance(value, int):
        return True, int.__int__(value)
    if isinstance(value, float):
        return True, float.__float__(value)
    if isinstance(value, str):
        return True, _truncate(str.__str__(value))
    return False, None


def kwarg_value(value: object) -> object:
    """A JSON-friendly, reference-free stand-in for a signal kwarg value.

    Scalars are kept (strings truncated), model instances become
    ``app_label.Model pk=N``, classes their label, small collections of scalars
    a sorted list, everything else ``<module.Type>``.
    """
    ok, scalar = _scalar(value)
    if ok:
        return scalar
    if isinstance(value, type):
        return sender_label(value)
    cls = type(value)
    if _is_model_class(cls):
        return instance_label(value)
    if isinstance(value, (set, frozenset, list, tuple)):
        items = []
        if len(value) <= _MAX_ITEMS:
            for item in value:
                ok, scalar = _scalar(item)
                if not ok:
                    break
                items.append(scalar)
            else:
                if isinstance(value, (set, frozenset)):
                    items.sort(key=lambda x: (type(x).__name__, x))
                return items
        return f"<{type_label(cls)} of {len(value)}>"
    model = _queryset_model(value)
    if model is not None:
        return f"<QuerySet {sender_label(model)}>"
    return f"<{type_label(cls)}>"


def _queryset_model(value: object) -> type | None:
    from django.db.models.query import QuerySet

    if isinstance(value, QuerySet):
        model = object.__getattribute__(value, "__dict__").get("model")
        return model if isinstance(model, type) else None
    return None


def exception_message(exc: BaseException) -> str:
    """The message of an exception, built from its ``args`` without ``str(exc)``."""
    args = exc.args
    if not args:
        return ""
    parts: list[str] = []
    for arg in args:
        ok, scalar = _scalar(arg)
        if ok:
            parts.append(scalar if isinstance(scalar, str) else repr(scalar))
        else:
            parts.append(f"<{type_label(type(arg))}>")
    return _truncate(parts[0] if len(parts) == 1 else ", ".join(parts))


def _code_location(code: types.CodeType | None) -> tuple[str | None, int | None]:
    if code is None:
        return None, None
    return code.co_filename, code.co_firstlineno


def describe_receiver(receiver: object) -> ReceiverDesc:
    """``(dotted name, filename, line)`` for any receiver; never raises."""
    try:
        return _describe(receiver, 0)
    except Exception:  # pragma: no cover - defensive: labelling must never fail
        return (f"<{type_label(type(receiver))}>", None, None)


def _describe(receiver: object, depth: int) -> ReceiverDesc:
    cls = type(receiver)
    if cls is _FunctionType:
        func: types.FunctionType = receiver  # type: ignore[assignment]
        func = _unwrap(func)
        filename, line = _code_location(func.__code__)
        return (f"{func.__module__}.{func.__qualname__}", filename, line)
    if cls is types.MethodType:
        method: types.MethodType = receiver  # type: ignore[assignment]
        return _describe(method.__func__, depth + 1)
    if cls is types.BuiltinFunctionType or cls is types.BuiltinMethodType:
        module = getattr(receiver, "__module__", None) or "builtins"
        return (f"{module}.{receiver.__qualname__}", None, None)  # type: ignore[attr-defined]
    if isinstance(receiver, functools.partial) and depth < 10:
        inner, filename, line = _describe(receiver.func, depth + 1)
        return (f"functools.partial({inner})", filename, line)
    if isinstance(receiver, type):
        init = receiver.__dict__.get("__init__")
        filename, line = _code_location(getattr(init, "__code__", None))
        return (type_label(receiver), filename, line)
    # A callable object (or a mock): label its class's __call__.
    call = None
    for klass in cls.__mro__:
        call = klass.__dict__.get("__call__")
        if call is not None:
            break
    filename, line = _code_location(getattr(call, "__code__", None))
    return (f"{type_label(cls)}.__call__", filename, line)


def _unwrap(func: types.FunctionType) -> types.FunctionType:
    """Follow ``functools.wraps`` chains so file:line points at the real code."""
    seen = 0
    while seen < 10:
        wrapped = func.__dict__.get("__wrapped__")
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
    name = _find_signal_name(signal)
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
    unnamed = f"{type(signal).__name__}@{id(signal):#x}"
    return unnamed, unnamed


def _blinker_name(signal: object) -> str | None:
    if isinstance(signal, NamedSignal):
        name = signal.__dict__.get("name")
        if isinstance(name, str):
            return name
    return None


def _attr_holding(module: object, signal: object) -> tuple[str, str] | None:
    if module is None:
        return None
    try:
        namespace = object.__getattribute__(module, "__dict__")
    except Exception:  # pragma: no cover - modules always have a dict
        return None
    if not isinstance(namespace, dict):  # pragma: no cover
        return None
    for attr, value in list(namespace.items()):
        if value is signal and not attr.startswith("_"):
            modname = namespace.get("__name__")
            return attr, f"{modname}.{attr}" if isinstance(modname, str) else attr
    return None
