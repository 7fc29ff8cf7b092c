"""Find the signals a project defines, named by the module attribute that holds them.

Scans the modules already imported (nothing is imported) under ``django`` and
under every installed app, plus blinker's default namespace. A signal held by
several modules (``from .signals import done`` re-exports it) is named after
the module that assigns it (``done = Signal()``), found by reading the
module's source with :mod:`ast`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.dispatch import Signal

from signaltrace import naming
from signaltrace.introspection import named_blinker_signals, signal_holders

from ._source import call_assignments

__all__ = ["SignalInfo", "discover_signals"]


@dataclass(frozen=True, slots=True)
class SignalInfo:
    """A signal and its name.

    .. versionadded:: 0.1.0
    """

    signal: Any
    #: The module attribute (or blinker name) that holds the signal.
    name: str
    #: ``module.attribute``, or ``blinker:<name>`` for blinker named signals.
    path: str
    #: ``"django"`` or ``"blinker"``.
    kind: str

    @property
    def class_name(self) -> str:
        """The signal's class, e.g. ``django.db.models.signals.ModelSignal``."""
        return naming.type_label(type(self.signal))


def _prefixes() -> tuple[str, ...]:
    from django.apps import apps

    names = {"django"} | {app_config.name for app_config in apps.get_app_configs()}
    return tuple(sorted(names))


def _in_scope(modname: str, prefixes: tuple[str, ...]) -> bool:
    return any(modname == p or modname.startswith(p + ".") for p in prefixes)


def _best_holder(signal: object, holders: list[tuple[str, str, str | None]]) -> tuple[str, str]:
    """Pick ``(module, attribute)``: public, then the assigning module, then first seen."""
    public = [h for h in holders if not h[1].startswith("_")] or holders
    if len(public) > 1:
        assigning = [h for h in public if h[2] is not None and h[1] in call_assignments(h[2])]
        if assigning:
            public = assigning
    modname, attr, _filename = public[0]
    return modname, attr


def discover_signals() -> list[SignalInfo]:
    """Every Django and blinker signal in scope, sorted by dotted path.

    .. versionadded:: 0.1.0
    """
    prefixes = _prefixes()
    found = {
        key: (signal, in_scope)
        for key, (signal, holders) in signal_holders().items()
        if (in_scope := [h for h in holders if _in_scope(h[0], prefixes)])
    }
    infos: list[SignalInfo] = []
    named = {id(signal): signal for signal in named_blinker_signals()}
    for key, signal in named.items():
        name = signal.name
        infos.append(SignalInfo(signal, name, f"blinker:{name}", "blinker"))
        found.pop(key, None)
    for signal, holders in found.values():
        modname, attr = _best_holder(signal, holders)
        kind = "django" if isinstance(signal, Signal) else "blinker"
        infos.append(SignalInfo(signal, attr, f"{modname}.{attr}", kind))
    infos.sort(key=lambda info: (info.kind == "blinker", info.path))
    return infos
