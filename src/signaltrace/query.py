"""What a filter given to :meth:`~signaltrace.Trace.find` or an assertion matches.

Signals match by object, name (``"post_save"``) or dotted path; senders by
object or label (``"auth.User"``).

Receivers match by identity when given as objects: a function, partial or
callable object matches only itself, a bound method the calls of the same
``__func__`` on the same ``__self__``. The trace keeps weak references only
(see :func:`signaltrace._hotpath.describe`), so a receiver that has died
matches nothing. Given as a string, a receiver matches by name: the dotted
name the trace shows, or a short name ending exactly one of the dotted names
in the trace (``"create_user_profile"``, ``"Notifier.on_save"``); a short
name that ends several raises :exc:`AmbiguousReceiverError`.
"""

from __future__ import annotations

import types
import weakref
from collections.abc import Iterable, Sequence

from . import naming
from .records import Dispatch, ReceiverCall

__all__ = [
    "AmbiguousReceiverError",
    "is_receiver",
    "receiver_calls",
    "receiver_name",
    "resolve_name",
    "same_receiver",
    "sender_matches",
    "signal_matches",
]


class AmbiguousReceiverError(ValueError):
    """A short receiver name ends more than one dotted name in the trace.

    :ivar name: the name given.
    :ivar candidates: the dotted names it ends, in the order they first ran.

    .. versionadded:: 0.1.0
    """

    def __init__(self, name: str, candidates: list[str]) -> None:
        self.name = name
        self.candidates = candidates
        super().__init__(ambiguous_text(name, candidates))


def ambiguous_text(name: str, candidates: Iterable[str]) -> str:
    """``The receiver name 'on_save' is ambiguous: it matches a.X.on_save and b.Y.on_save. …``"""
    listed = list(candidates)
    matches = ", ".join(listed[:-1]) + f" and {listed[-1]}" if len(listed) > 1 else listed[0]
    return (
        f"The receiver name {name!r} is ambiguous: it matches {matches}. "
        "Give the dotted name or the receiver object."
    )


def signal_matches(dispatch: Dispatch, signal: object) -> bool:
    """Whether ``dispatch`` was a send of ``signal`` (an object, name or dotted path)."""
    if isinstance(signal, str):
        return signal in (dispatch.signal_name, dispatch.signal_path)
    return dispatch.signal_path == naming.signal_label(signal)[1]


def sender_matches(dispatch: Dispatch, sender: object) -> bool:
    """Whether ``dispatch`` was sent by ``sender`` (an object or its label)."""
    if isinstance(sender, str):
        return dispatch.sender == sender
    return dispatch.sender == naming.sender_label(sender)


def receiver_name(receiver: object) -> str:
    """The dotted name a trace records for ``receiver`` (or the string itself)."""
    if isinstance(receiver, str):
        return receiver
    return naming.describe_receiver(receiver)[0]


def is_receiver(identity: object, receiver: object) -> bool:
    """Whether a recorded identity token (:attr:`ReceiverCall.receiver_identity`) is ``receiver``.

    Compares objects with ``is`` only, never ``==``, so no user code runs.
    """
    if type(identity) is weakref.ReferenceType:
        return receiver is not None and identity() is receiver
    if type(identity) is tuple and len(identity) == 3:
        kind, first, second = identity
        if kind == "method":
            return (
                type(receiver) is types.MethodType
                and is_receiver(first, receiver.__func__)
                and is_receiver(second, receiver.__self__)
            )
        if kind == "id":
            return type(second) is weakref.ReferenceType and (
                id(receiver) == first and type(receiver) is second()
            )
    return False


def same_receiver(one: object, other: object) -> bool:
    """Whether two live receiver objects are the same receiver (bound methods: same parts)."""
    if type(one) is types.MethodType and type(other) is types.MethodType:
        return same_receiver(one.__func__, other.__func__) and one.__self__ is other.__self__
    return one is other


def resolve_name(name: str, calls: Iterable[ReceiverCall]) -> str:
    """The dotted name that ``name`` stands for among ``calls``.

    ``name`` itself if a call has that dotted name or none ends with it; the one
    dotted name it ends (after a dot) otherwise.

    :raises AmbiguousReceiverError: if it ends several.
    """
    names = dict.fromkeys(call.receiver_name for call in calls)
    if name in names:
        return name
    suffix = "." + name
    candidates = [full for full in names if full.endswith(suffix)]
    if len(candidates) > 1:
        raise AmbiguousReceiverError(name, candidates)
    return candidates[0] if candidates else name


def receiver_calls(calls: Sequence[ReceiverCall], receiver: object) -> list[ReceiverCall]:
    """The calls of ``receiver`` (an object, by identity, or a name) among ``calls``, in order.

    :raises AmbiguousReceiverError: for a short name that ends several dotted names.
    """
    if isinstance(receiver, str):
        name = resolve_name(receiver, calls)
        return [call for call in calls if call.receiver_name == name]
    return [call for call in calls if is_receiver(call.receiver_identity, receiver)]
