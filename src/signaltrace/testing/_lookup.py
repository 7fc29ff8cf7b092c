"""What is connected to what, found without importing or calling user code. The
near-miss hints need to know which signals exist, which receivers are connected
to them and for which senders, and what a dotted path names; this module reads
that from ``sys.modules`` and the signals' receiver lists only, and explains a
path that cannot be resolved (a typo, a module never imported).
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import pkgutil
import sys
import types
import weakref
from collections.abc import Iterator
from typing import Any, Final

from signaltrace import naming

from ._match import _MISSING

__unittest = True  # unittest leaves this module's frames out of tracebacks

_READY_ADVICE: Final = (
    "Receivers connect when the module holding their @receiver decorator is imported: "
    "import {module} in your AppConfig.ready()."
)


def _all_signals() -> list[object]:
    """Every Django and blinker signal held by a module attribute (no user code runs)."""
    from django.dispatch import Signal

    kinds: tuple[type, ...] = (Signal,)
    named: list[object] = []
    try:
        import blinker

        kinds += (blinker.Signal,)
        named = list(blinker.default_namespace.values())
    except ImportError:  # pragma: no cover - blinker is a dependency
        pass
    found: dict[int, object] = {id(signal): signal for signal in named}
    for module in list(sys.modules.values()):
        try:
            namespace = object.__getattribute__(module, "__dict__")
        except AttributeError:  # a None placeholder in sys.modules
            continue
        for value in list(namespace.values()):
            if issubclass(type(value), kinds):
                found.setdefault(id(value), value)
    return list(found.values())


def _deref(ref: object) -> object:
    return ref() if isinstance(ref, weakref.ref) else ref


def _entries(signal: Any, candidates: dict[int, object]) -> Iterator[tuple[object, str | None]]:
    """``(receiver or None if dead, sender label or None for any sender)`` per connection."""
    from django.dispatch import Signal
    from django.dispatch.dispatcher import NONE_ID

    if isinstance(signal, Signal):
        for entry in list(signal.receivers):
            sender_key = entry[0][1]
            if sender_key == NONE_ID:
                yield _deref(entry[1]), None
                continue
            # Django 6.0+ keeps a weak reference to the sender; before, only its id.
            sender = _deref(entry[2]) if len(entry) > 3 and entry[2] is not None else None
            sender = sender if sender is not None else candidates.get(sender_key)
            yield (
                _deref(entry[1]),
                naming.sender_label(sender) if sender is not None else "<another>",
            )
        return
    from blinker.base import ANY_ID

    for receiver_id, ref in list(signal.receivers.items()):
        for sender_id in signal._by_receiver.get(receiver_id, ()):
            if sender_id == ANY_ID:
                yield _deref(ref), None
                continue
            sender = _deref(signal._weak_senders.get(sender_id))
            yield _deref(ref), naming.sender_label(sender) if sender is not None else "<another>"


def _connections(signal: Any, name: str, candidates: dict[int, object]) -> list[str | None]:
    """Sender labels ``name`` is connected for on ``signal``; ``None`` means any sender."""
    return [
        sender
        for target, sender in _entries(signal, candidates)
        if target is not None and naming.describe_receiver(target)[0] == name
    ]


def _sender_candidates(sender: object) -> dict[int, object]:
    from django.apps import apps

    candidates: dict[int, object] = {}
    if apps.ready:
        candidates.update((id(model), model) for model in apps.get_models(True, True))
    if sender is not None and not isinstance(sender, str):
        candidates[id(sender)] = sender
    return candidates


def _never_imported(module: str) -> str:
    return (
        f"module {module} was never imported, so the receivers in it are not connected. "
        + _READY_ADVICE.format(module=module)
    )


def _resolve(path: str) -> tuple[object, str | None]:
    """The object at a dotted path, without importing anything; or a hint why not."""
    parts = path.split(".")
    if len(parts) < 2:
        return None, None
    for i in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:i]))
        if module is not None:
            break
    else:
        if importlib.util.find_spec(parts[0]) is None:
            return None, (
                f"no module named {parts[0]} can be imported; "
                "give receivers as objects or full dotted paths."
            )
        return None, _never_imported(".".join(parts[:-1]))
    obj: object = module
    for j in range(i, len(parts)):
        attr = parts[j]
        value = inspect.getattr_static(obj, attr, _MISSING)
        if value is _MISSING:
            where = ".".join(parts[:j])
            names = [a for a in dir(obj) if a[:1] != "_"]
            what = "attribute"
            package_path = (
                getattr(obj, "__path__", None) if isinstance(obj, types.ModuleType) else None
            )
            if package_path is not None:
                if importlib.util.find_spec(f"{where}.{attr}") is not None:
                    return None, _never_imported(f"{where}.{attr}")
                names += [m.name for m in pkgutil.iter_modules(package_path)]
                what = "module or attribute"
            close = difflib.get_close_matches(attr, names, 1)
            suggestion = f"; did you mean {where}.{close[0]}?" if close else "."
            return None, f"{where} has no {what} {attr}{suggestion}"
        obj = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
    return obj, None


def _module_of(receiver: object) -> str:
    func = receiver.__func__ if type(receiver) is types.MethodType else receiver
    if type(func) is types.FunctionType:
        return str(func.__module__)
    return str(type.__getattribute__(type(receiver), "__module__"))
