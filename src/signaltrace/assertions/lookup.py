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
from collections.abc import Hashable, Mapping
from typing import Any, Final

from signaltrace import naming
from signaltrace.introspection import connections as signal_connections
from signaltrace.introspection import named_blinker_signals, sender_text, signal_holders
from signaltrace.introspection import sender_candidates as candidates_for
from signaltrace.query import same_receiver

from .matching import MISSING

__unittest = True  # unittest leaves this module's frames out of tracebacks

READY_ADVICE: Final = (
    "Receivers connect when the module holding their @receiver decorator is imported: "
    "import {module} in your AppConfig.ready()."
)


def all_signals() -> list[object]:
    """Every Django and blinker signal held by a module attribute (no user code runs)."""
    found: dict[int, object] = {id(signal): signal for signal in named_blinker_signals()}
    for key, (signal, _holders) in signal_holders().items():
        found.setdefault(key, signal)
    return list(found.values())


def connections(
    signal: Any, name: str, candidates: Mapping[Hashable, object], receiver: object = None
) -> list[str | None]:
    """Sender labels ``name`` is connected for on ``signal``; ``None`` means any sender.

    With ``receiver`` (an object), only its own connections count, by identity:
    another instance's bound method of the same name is not it.
    """
    return [
        sender_text(connection)
        for connection in signal_connections(signal, candidates)
        if (
            same_receiver(connection.receiver, receiver)
            if receiver is not None
            else naming.describe_receiver(connection.receiver)[0] == name
        )
    ]


def sender_candidates(sender: object) -> dict[Hashable, object]:
    """Objects to name senders by, including ``sender`` itself."""
    return candidates_for(() if sender is None or isinstance(sender, str) else (sender,))


def never_imported(module: str) -> str:
    return (
        f"module {module} was never imported, so the receivers in it are not connected. "
        + READY_ADVICE.format(module=module)
    )


def resolve(path: str) -> tuple[object, str | None]:
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
        return None, never_imported(".".join(parts[:-1]))
    obj: object = module
    for j in range(i, len(parts)):
        attr = parts[j]
        value = inspect.getattr_static(obj, attr, MISSING)
        if value is MISSING:
            where = ".".join(parts[:j])
            names = [a for a in dir(obj) if a[:1] != "_"]
            what = "attribute"
            package_path = (
                getattr(obj, "__path__", None) if isinstance(obj, types.ModuleType) else None
            )
            if package_path is not None:
                if importlib.util.find_spec(f"{where}.{attr}") is not None:
                    return None, never_imported(f"{where}.{attr}")
                names += [m.name for m in pkgutil.iter_modules(package_path)]
                what = "module or attribute"
            close = difflib.get_close_matches(attr, names, 1)
            suggestion = f"; did you mean {where}.{close[0]}?" if close else "."
            return None, f"{where} has no {what} {attr}{suggestion}"
        obj = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
    return obj, None


def module_of(receiver: object) -> str:
    func = receiver.__func__ if type(receiver) is types.MethodType else receiver
    if type(func) is types.FunctionType:
        return str(func.__module__)
    return str(type.__getattribute__(type(receiver), "__module__"))
