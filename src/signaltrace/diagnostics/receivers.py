"""The receiver map: every signal and what is connected to it.

Used by ``manage.py signaltrace_receivers``; :func:`receiver_map` returns plain
records and :func:`render_map` formats them as text, JSON, Mermaid or Graphviz
dot. Reading the map changes nothing: no receivers cache is filled and no
dead entry is cleared.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from django.db.models.signals import ModelSignal
from django.dispatch.dispatcher import _make_id  # type: ignore[attr-defined]

from signaltrace import naming
from signaltrace.introspection import Connection, connections, sender_candidates, sender_text

from .discovery import SignalInfo, discover_signals

__all__ = [
    "FORMATS",
    "ReceiverEntry",
    "SignalEntry",
    "receiver_map",
    "render_dot",
    "render_json",
    "render_map",
    "render_mermaid",
    "render_text",
]

SCHEMA: Final = "signaltrace.receivers/1"
FORMATS: Final = ("text", "json", "mermaid", "dot")


@dataclass(frozen=True, slots=True)
class ReceiverEntry:
    """One receiver connected to a signal.

    .. versionadded:: 0.1.0
    """

    name: str
    filename: str | None
    lineno: int | None
    #: Sender label, or ``None`` when connected for any sender.
    sender: str | None
    weak: bool
    dispatch_uid: Hashable | None
    is_async: bool

    @property
    def location(self) -> str | None:
        return None if self.filename is None else f"{self.filename}:{self.lineno}"


@dataclass(frozen=True, slots=True)
class SignalEntry:
    """A signal and its receivers, in the order they were connected.

    .. versionadded:: 0.1.0
    """

    name: str
    path: str
    kind: str
    class_name: str
    receivers: tuple[ReceiverEntry, ...]


def _entry(connection: Connection) -> ReceiverEntry:
    name, filename, lineno = naming.describe_receiver(connection.receiver)
    return ReceiverEntry(
        name=name,
        filename=filename,
        lineno=lineno,
        sender=sender_text(connection),
        weak=connection.weak,
        dispatch_uid=connection.dispatch_uid,
        is_async=connection.is_async,
    )


def _matches_signal(info: SignalInfo, wanted: str) -> bool:
    return wanted in (info.name, info.path)


def _matches_sender(connection: Connection, sender_key: Hashable, model_signal: bool) -> bool:
    if connection.any_sender:
        return model_signal
    return connection.sender_key == sender_key


def receiver_map(
    *, signal: str | None = None, sender: object = None, signals: list[SignalInfo] | None = None
) -> list[SignalEntry]:
    """Every signal in scope with its live receivers.

    :param signal: keep only signals with this name or dotted path.
    :param sender: keep only receivers that run for this sender, and only
        signals that have some: those connected for it, and, on model signals
        (``pre_save``, ``post_delete``, ``m2m_changed``...), those connected for
        any sender.
    :param signals: the signals to list (default: :func:`discover_signals`).

    .. versionadded:: 0.1.0
    """
    candidates: Mapping[Hashable, object] = sender_candidates()
    sender_key = _make_id(sender) if sender is not None else None
    entries = []
    for info in discover_signals() if signals is None else signals:
        if signal is not None and not _matches_signal(info, signal):
            continue
        found = connections(info.signal, candidates)
        if sender_key is not None:
            model_signal = isinstance(info.signal, ModelSignal)
            found = [c for c in found if _matches_sender(c, sender_key, model_signal)]
            if not found:
                continue
        entries.append(
            SignalEntry(
                name=info.name,
                path=info.path,
                kind=info.kind,
                class_name=info.class_name,
                receivers=tuple(_entry(c) for c in found),
            )
        )
    return entries


# -- formats ------------------------------------------------------------------


def _short_path(filename: str) -> str:
    """Relative to the current directory, else to the ``sys.path`` entry holding it."""
    rel = os.path.relpath(filename)
    if not rel.startswith(".."):
        return rel
    roots = [os.path.join(os.path.abspath(p), "") for p in sys.path if p]
    roots = [root for root in roots if filename.startswith(root)]
    return filename[len(max(roots, key=len)) :] if roots else filename


def _uid_text(uid: Hashable) -> str:
    return repr(uid) if not isinstance(uid, str) else f"'{uid}'"


def render_text(entries: list[SignalEntry]) -> str:
    """One block per signal with receivers, then one line naming the rest.

    .. versionadded:: 0.1.0
    """
    lines: list[str] = []
    empty: list[str] = []
    for entry in entries:
        if not entry.receivers:
            empty.append(entry.name)
            continue
        count = len(entry.receivers)
        lines.append(
            f"{entry.name}  {entry.path}  "
            f"({entry.class_name.rsplit('.', 1)[-1]}, {count} receiver{'s' if count != 1 else ''})"
        )
        for i, receiver in enumerate(entry.receivers, 1):
            parts = [
                f"  {i}. {receiver.name}",
                f"sender={receiver.sender}" if receiver.sender is not None else "any sender",
                "async" if receiver.is_async else "sync",
                "weak" if receiver.weak else "strong",
            ]
            if receiver.dispatch_uid is not None:
                parts.append(f"dispatch_uid={_uid_text(receiver.dispatch_uid)}")
            if receiver.filename is not None:
                parts.append(f"{_short_path(receiver.filename)}:{receiver.lineno}")
            lines.append("  ".join(parts))
        lines.append("")
    if empty:
        lines.append(f"No receivers: {', '.join(empty)}")
    if not entries:
        lines.append("No signals found.")
    return "\n".join(lines).rstrip("\n")


def _json_uid(uid: Hashable | None) -> Any:
    if uid is None or isinstance(uid, (str, int, float, bool)):
        return uid
    return repr(uid)


def render_json(entries: list[SignalEntry]) -> str:
    """``{"schema": "signaltrace.receivers/1", "signals": [...]}``.

    .. versionadded:: 0.1.0
    """
    data = {
        "schema": SCHEMA,
        "signals": [
            {
                "name": entry.name,
                "path": entry.path,
                "kind": entry.kind,
                "class": entry.class_name,
                "receivers": [
                    {
                        "receiver": r.name,
                        "location": r.location,
                        "sender": r.sender,
                        "any_sender": r.sender is None,
                        "weak": r.weak,
                        "dispatch_uid": _json_uid(r.dispatch_uid),
                        "async": r.is_async,
                    }
                    for r in entry.receivers
                ],
            }
            for entry in entries
        ],
    }
    return json.dumps(data, indent=2)


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def render_mermaid(entries: list[SignalEntry]) -> str:
    """A ``flowchart LR``: signals (rounded) point at receivers, edges name the sender.

    .. versionadded:: 0.1.0
    """
    lines = ["flowchart LR"]
    receiver_ids: dict[str, str] = {}
    for s, entry in enumerate(e for e in entries if e.receivers):
        lines.append(f'    s{s}(["{_mermaid_text(entry.name)}"])')
        for receiver in entry.receivers:
            rid = receiver_ids.get(receiver.name)
            if rid is None:
                rid = receiver_ids[receiver.name] = f"r{len(receiver_ids)}"
                lines.append(f'    {rid}["{_mermaid_text(receiver.name)}"]')
            label = _mermaid_text(receiver.sender or "any sender")
            lines.append(f'    s{s} -->|"{label}"| {rid}')
    return "\n".join(lines)


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_dot(entries: list[SignalEntry]) -> str:
    """A Graphviz ``digraph``: signal ellipses, receiver boxes, sender-labelled edges.

    .. versionadded:: 0.1.0
    """
    lines = ["digraph signaltrace {", "    rankdir=LR;", "    node [shape=box];"]
    seen: set[str] = set()
    for entry in entries:
        if not entry.receivers:
            continue
        lines.append(f"    {_dot_text(entry.path)} [label={_dot_text(entry.name)}, shape=ellipse];")
        for receiver in entry.receivers:
            if receiver.name not in seen:
                seen.add(receiver.name)
                lines.append(f"    {_dot_text(receiver.name)};")
            label = _dot_text(receiver.sender or "any sender")
            lines.append(
                f"    {_dot_text(entry.path)} -> {_dot_text(receiver.name)} [label={label}];"
            )
    lines.append("}")
    return "\n".join(lines)


_RENDERERS: Final = {
    "text": render_text,
    "json": render_json,
    "mermaid": render_mermaid,
    "dot": render_dot,
}


def render_map(entries: list[SignalEntry], fmt: str = "text") -> str:
    """Format a receiver map; ``fmt`` is one of :data:`FORMATS`.

    .. versionadded:: 0.1.0
    """
    return _RENDERERS[fmt](entries)
