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

import weakref
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from inspect import iscoroutinefunction
from typing import Any, Final

from django.dispatch import Signal
from django.dispatch.dispatcher import (  # type: ignore[attr-defined]
    NO_RECEIVERS,
    NONE_ID,
    _make_id,
)

from signaltrace import naming

__all__ = [
    "UNRESOLVED",
    "Connection",
    "connections",
    "receivers_for",
    "sender_candidates",
    "sender_text",
]

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
        # Django 6.0+: (key, receiver, sender_ref, is_async); a dead sender_ref
        # means the entry is about to be cleared.
        if len(entry) > 3 and entry[2] is not None and entry[2]() is None:
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
            sender_ref = entry[2] if len(entry) > 3 else None
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
    from blinker.base import ANY_ID

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


def sender_candidates() -> dict[Hashable, object]:
    """Models and app configs by ``id()``: the senders receivers usually filter on.

    .. versionadded:: 0.1.0
    """
    from django.apps import apps

    found: dict[Hashable, object] = {}
    for app_config in apps.get_app_configs():
        found[id(app_config)] = app_config
    for model in apps.get_models(include_auto_created=True, include_swapped=True):
        found[id(model)] = model
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
