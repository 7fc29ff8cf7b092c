"""What a filter given to :meth:`~signaltrace.Trace.find` or an assertion matches.

Signals match by object, name (``"post_save"``) or dotted path; senders by
object or label (``"auth.User"``); receivers by object or dotted name.
"""

from __future__ import annotations

from . import naming
from .records import Dispatch

__all__ = ["receiver_name", "sender_matches", "signal_matches"]


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
