"""Read who is connected to a signal, without changing the signal.

Django keeps ``signal.receivers`` as a list of entries that start with
``((receiver_key, sender_key), receiver_or_weakref, ...)`` and end with
``is_async`` (Django 6.0 and later put a weak reference to the sender in
between). blinker keeps a dict of receivers and a map of the senders each is
connected for. The functions here only read those structures: they never call
``has_listeners()`` or ``_live_receivers()`` (which fill the receivers cache and
clear dead entries), never take the signal's lock and never call user code.
"""

from __future__ import annotations

import sys
import types
import weakref
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from inspect import iscoroutinefunction
from typing import Any, Final

import blinker
from blinker.base import ANY_ID
from django.dispatch import Signal
from django.dispatch.dispatcher import (  # type: ignore[attr-defined]
    NO_RECEIVERS,
    NONE_ID,
    _make_id,
)

from . import naming
from ._compat import entry_sender_ref

__all__ = [
    "SIGNAL_CLASSES",
    "UNRESOLVED",
    "Connection",
    "connections",
    "named_blinker_signals",
    "receivers_for",
    "sender_candidates",
    "sender_text",
    "signal_holders",
]

#: The classes whose instances are signals signaltrace knows how to read.
SIGNAL_CLASSES: Final = (Signal, blinker.Signal)

#: ``(module name, attribute, module file or None)``: where a signal is held.
Holder = tuple[str, str, str | None]

#: A sender that is known only by its id (Django 5.2 keeps no reference to it).
UNRESOLVED: Final = object()


@dataclass(frozen=True, slots=True)
class Connection:
    """One live receiver connected to a signal, for one sender (or any).

    .. versionadded:: 0.1.0
    """

    receiver: Any
    #: The sender object, ``None`` for any sender, or :data:`UNRESOLVED`.
    sender: Any
    any_sender: bool
    sender_key: Hashable
    weak: bool
    dispatch_uid: Hashable | None
    is_async: bool


def _django_entries(
    signal: Signal, sender_key: Hashable | None = None
) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """``(entry, live receiver)`` per connection; ``sender_key`` narrows to a sender."""
    for entry in list(signal.receivers):
        key = entry[0][1]
        if sender_key is not None and key != NONE_ID and key != sender_key:
            continue
        receiver = entry[1]
        if isinstance(receiver, weakref.ReferenceType):
            receiver = receiver()
            if receiver is None:
                continue
        # A dead sender reference (Django 6.0+) means the entry is about to be cleared.
        sender_ref = entry_sender_ref(entry)
        if sender_ref is not None and sender_ref() is None:
            continue
        yield entry, receiver


def receivers_for(signal: Signal, sender: object) -> list[Any]:
    """The live receivers ``signal.send(sender)`` would call, in Django's order.

    Reads the receivers cache first (its ``NO_RECEIVERS`` marker means none),
    then scans ``signal.receivers``; the cache is never filled.

    .. versionadded:: 0.1.0
    """
    if not signal.receivers or signal.sender_receivers_cache.get(sender) is NO_RECEIVERS:
        return []
    return [receiver for _entry, receiver in _django_entries(signal, _make_id(sender))]


def _django_connections(
    signal: Signal, candidates: Mapping[Hashable, object] | None
) -> list[Connection]:
    found = []
    for entry, receiver in _django_entries(signal):
        receiver_key, sender_key = entry[0]
        any_sender = sender_key == NONE_ID
        sender: object = None
        if not any_sender:
            sender_ref = entry_sender_ref(entry)
            sender = sender_ref() if sender_ref is not None else None
            if sender is None:
                if candidates is None:
                    candidates = sender_candidates()
                sender = candidates.get(sender_key, UNRESOLVED)
        found.append(
            Connection(
                receiver=receiver,
                sender=sender,
                any_sender=any_sender,
                sender_key=sender_key,
                weak=isinstance(entry[1], weakref.ReferenceType),
                dispatch_uid=None if receiver_key == _make_id(receiver) else receiver_key,
                is_async=bool(entry[-1]),
            )
        )
    return found


def _blinker_connections(signal: Any) -> list[Connection]:
    found = []
    by_receiver = signal._by_receiver
    weak_senders = signal._weak_senders
    for receiver_id, value in list(signal.receivers.items()):
        weak = isinstance(value, weakref.ReferenceType)
        receiver = value() if weak else value
        if receiver is None:
            continue
        for sender_id in list(by_receiver.get(receiver_id, ())):
            any_sender = sender_id == ANY_ID
            sender: object = None
            if not any_sender:
                ref = weak_senders.get(sender_id)
                # blinker identifies str and int senders by value.
                sender = ref() if ref is not None else sender_id
                sender = UNRESOLVED if sender is None else sender
            found.append(
                Connection(
                    receiver=receiver,
                    sender=sender,
                    any_sender=any_sender,
                    sender_key=sender_id,
                    weak=weak,
                    dispatch_uid=None,
                    is_async=iscoroutinefunction(receiver),
                )
            )
    return found


def connections(
    signal: object, candidates: Mapping[Hashable, object] | None = None
) -> list[Connection]:
    """Every live connection of a Django or blinker signal, in connection order.

    :param candidates: objects by ``id()``, to name senders Django 5.2 knows
        only by id (default: :func:`sender_candidates`, built when needed).

    .. versionadded:: 0.1.0
    """
    if isinstance(signal, Signal):
        return _django_connections(signal, candidates)
    return _blinker_connections(signal)


def sender_candidates(extra: Iterable[object] = ()) -> dict[Hashable, object]:
    """Models and app configs by ``id()``: the senders receivers usually filter on.

    :param extra: more objects to name (a sender an assertion was given).

    .. versionadded:: 0.1.0
    """
    from django.apps import apps

    found: dict[Hashable, object] = {}
    if apps.ready:
        for app_config in apps.get_app_configs():
            found[id(app_config)] = app_config
        for model in apps.get_models(include_auto_created=True, include_swapped=True):
            found[id(model)] = model
    for obj in extra:
        found[id(obj)] = obj
    return found


def sender_text(connection: Connection) -> str | None:
    """A label for the connection's sender; ``None`` for any sender.

    .. versionadded:: 0.1.0
    """
    from django.apps import AppConfig

    sender = connection.sender
    if connection.any_sender:
        return None
    if sender is UNRESOLVED:
        return f"<unknown sender {connection.sender_key!r}>"
    if isinstance(sender, AppConfig):
        return f"<AppConfig {sender.label}>"
    return naming.sender_label(sender)


def named_blinker_signals() -> list[Any]:
    """The signals of blinker's default namespace (``blinker.signal("name")``)."""
    return list(blinker.default_namespace.values())


def signal_holders() -> dict[int, tuple[Any, list[Holder]]]:
    """Every Django and blinker signal held by a module attribute, by ``id()``.

    Scans ``sys.modules`` (real modules only: a stand-in could run code on
    attribute access) without calling user code: values are recognised by
    ``type()``, never ``isinstance()``, which would evaluate a lazy object.
    """
    found: dict[int, tuple[Any, list[Holder]]] = {}
    modules: dict[str, object] = dict(sys.modules)
    for modname, module in sorted(modules.items(), key=lambda item: item[0]):
        if not isinstance(module, types.ModuleType):
            continue
        namespace = module.__dict__
        filename = namespace.get("__file__")
        for attr, value in list(namespace.items()):
            if issubclass(type(value), SIGNAL_CLASSES):
                entry = found.setdefault(id(value), (value, []))
                entry[1].append((modname, attr, filename if isinstance(filename, str) else None))
    return found
