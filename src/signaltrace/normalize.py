"""A trace as a deterministic tree: what snapshots store and what diffs compare.

:func:`normalize_trace` reads a :class:`~signaltrace.Trace` (through
:meth:`~signaltrace.Trace.to_dict`) or a dict in the ``signaltrace.trace/1`` or
``/2`` JSON format (a file written from ``to_dict()`` or the viewer's JSON link)
into one :class:`NormalTrace`: the same intermediate form for both, so a snapshot
taken in a test and a diff of two saved JSON files agree line for line.

What it keeps: each dispatch's signal, sender, method and keyword arguments
(flags such as ``created``), each receiver call's receiver, outcome (the
exception's type, and whether ``send_robust()`` swallowed it), whether it is
async, the Celery tasks it enqueued (a ``tasks`` list, when the JSON has one),
the nesting, the skipped operations and whether the trace was truncated; query
and ``on_commit`` counts only with ``queries=True``.

What it leaves out, so that the tree is the same on every run, machine and
Django version: times, file names and line numbers, origins, exception
messages, and memory addresses (``Signal@0x7f…`` becomes ``Signal@0x#1``).
Primary keys become numbers per model in order of appearance
(``auth.User pk=#1``, ``pk_set={#1, #2}``). The async receivers of one dispatch
run concurrently, so their order is not the order they were recorded in: a
dispatch lists its sync receivers in the order they ran, then its async
receivers sorted by name.

:func:`diff_traces` aligns two normalised trees and lists what changed as a
tree with ``+``/``-`` markers (``manage.py signaltrace_diff``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .traces import Trace

__all__ = [
    "SCHEMAS",
    "NormalCall",
    "NormalDispatch",
    "NormalSkipped",
    "NormalTrace",
    "TraceDiff",
    "diff_traces",
    "normalize_trace",
]

#: The trace JSON formats :func:`normalize_trace` reads.
SCHEMAS: Final = ("signaltrace.trace/1", "signaltrace.trace/2")

#: Keyword arguments whose usual value says nothing (as in the text tree).
_QUIET: Final[dict[str, Any]] = {"raw": False, "using": "default", "update_fields": None}
_INSTANCE: Final = re.compile(r"(?P<model>\S+) pk=(?P<pk>.*)", re.DOTALL)
_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]+")


# -- the intermediate form ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NormalCall:
    """One receiver call, without times or locations.

    .. versionadded:: 0.1.0
    """

    receiver: str
    is_async: bool
    #: ``"returned"``, ``"raised"``, ``"running"`` or ``"unknown"``.
    outcome: str
    #: The exception's type (dotted name; a builtin's plain name), or ``None``.
    error: str | None
    #: Whether ``send_robust()``/``asend_robust()`` caught the exception.
    swallowed: bool
    #: The dispatch's method, for the ``swallowed by`` note.
    method: str
    queries: int | None
    on_commit: int | None
    #: The tasks the receiver enqueued, in order: name, and how (``on commit``,
    #: ``eager``, ``inside atomic``).
    tasks: tuple[str, ...]
    dispatches: tuple[NormalDispatch, ...]

    @property
    def key(self) -> tuple[str, ...]:
        """What identifies the call when two trees are aligned."""
        return ("call", self.receiver)

    @property
    def children(self) -> tuple[NormalDispatch, ...]:
        return self.dispatches

    def line(self) -> str:
        parts = [self.receiver]
        if self.is_async:
            parts.append("async")
        if self.queries is not None:
            parts.append(f"{self.queries} quer{'y' if self.queries == 1 else 'ies'}")
        if self.on_commit:
            parts.append(f"{self.on_commit} on_commit")
        if self.outcome == "raised":
            text = f"✗ raised {self.error or '?'}"
            if self.swallowed:
                text += f" (swallowed by {self.method})"
            parts.append(text)
        elif self.outcome != "returned":
            parts.append(self.outcome)
        if self.tasks:
            parts.append(f"⇒ task{'s' if len(self.tasks) != 1 else ''} {', '.join(self.tasks)}")
        return "  ".join(parts)


@dataclass(frozen=True, slots=True)
class NormalDispatch:
    """One dispatch, its keyword arguments as text, with stable primary keys.

    .. versionadded:: 0.1.0
    """

    signal: str
    sender: str
    method: str
    #: ``(name, text)`` pairs in the order they were sent.
    kwargs: tuple[tuple[str, str], ...]
    calls: tuple[NormalCall, ...]

    @property
    def key(self) -> tuple[str, ...]:
        return ("dispatch", self.signal, self.sender, self.method)

    @property
    def children(self) -> tuple[NormalCall, ...]:
        return self.calls

    def line(self) -> str:
        parts = [self.signal, f"  sender={self.sender}"]
        for key, value in self.kwargs:
            if key == "instance" and value.startswith(self.sender + " "):
                parts.append(value[len(self.sender) :])
            else:
                parts.append(f" {key}={value}")
        if self.method != "send":
            parts.append(f" [{self.method}]")
        if not self.calls:
            parts.append("  (no receivers)")
        return "".join(parts)


@dataclass(frozen=True, slots=True)
class NormalSkipped:
    """An operation that skipped signals with receivers connected.

    .. versionadded:: 0.1.0
    """

    operation: str
    model: str
    signals: tuple[str, ...]
    receivers: tuple[str, ...]
    rows: int | None

    @property
    def key(self) -> tuple[str, ...]:
        return ("skipped", self.operation, self.model)

    @property
    def children(self) -> tuple[()]:
        return ()

    def line(self) -> str:
        rows = f" ({self.rows} row{'s' if self.rows != 1 else ''})" if self.rows is not None else ""
        return (
            f"⚠ {self.operation} on {self.model}{rows} skipped {', '.join(self.signals)}: "
            f"{', '.join(self.receivers)} did not run"
        )


Node = NormalDispatch | NormalCall | NormalSkipped


@dataclass(frozen=True, slots=True)
class NormalTrace:
    """A trace as a deterministic tree; :meth:`text` is what a snapshot file holds.

    .. versionadded:: 0.1.0
    """

    #: The top level: root dispatches and skipped operations, in the order they started.
    top: tuple[NormalDispatch | NormalSkipped, ...]
    truncated: bool = False

    @property
    def dispatches(self) -> tuple[NormalDispatch, ...]:
        """The root dispatches."""
        return tuple(item for item in self.top if isinstance(item, NormalDispatch))

    @property
    def skipped(self) -> tuple[NormalSkipped, ...]:
        return tuple(item for item in self.top if isinstance(item, NormalSkipped))

    def walk(self) -> Iterator[NormalDispatch | NormalCall]:
        """Every dispatch and call, depth first, in the order of the tree."""
        stack: list[NormalDispatch | NormalCall] = list(reversed(self.dispatches))
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def summary(self) -> str:
        """``2 dispatches, 3 receiver calls, 1 error``."""
        nodes = list(self.walk())
        dispatches = sum(1 for node in nodes if isinstance(node, NormalDispatch))
        calls = [node for node in nodes if isinstance(node, NormalCall)]
        errors = sum(1 for call in calls if call.outcome == "raised")
        text = (
            f"{dispatches} dispatch{'es' if dispatches != 1 else ''}, "
            f"{len(calls)} receiver call{'s' if len(calls) != 1 else ''}"
        )
        if errors:
            text += f", {errors} error{'s' if errors != 1 else ''}"
        if self.skipped:
            n = len(self.skipped)
            text += f", {n} skipped operation{'s' if n != 1 else ''}"
        return text

    def lines(self) -> list[str]:
        lines = [self.summary()]
        lines.extend(_tree_lines(self.top))
        if not self.top:
            lines.append("(no signals dispatched)")
        if self.truncated:
            lines.append("⚠ truncated: MAX_EVENTS reached, the rest was not recorded")
        return lines

    def text(self) -> str:
        """The lines, each ending with a newline."""
        return "".join(line + "\n" for line in self.lines())


def _tree_lines(nodes: Sequence[Node], prefix: str = "") -> Iterator[str]:
    for i, node in enumerate(nodes):
        last = i == len(nodes) - 1
        yield prefix + ("└─ " if last else "├─ ") + node.line()
        yield from _tree_lines(node.children, prefix + ("   " if last else "│  "))


# -- reading the JSON -------------------------------------------------------------


class _Numbers:
    """Stable per-trace stand-ins for primary keys and memory addresses."""

    def __init__(self) -> None:
        self.pks: dict[str, dict[str, int]] = {}
        self.addresses: dict[str, int] = {}

    def pk(self, model: str, pk: str) -> str:
        if pk == "None":
            return pk
        numbers = self.pks.setdefault(model, {})
        return f"#{numbers.setdefault(pk, len(numbers) + 1)}"

    def address(self, match: re.Match[str]) -> str:
        return f"0x#{self.addresses.setdefault(match.group(0), len(self.addresses) + 1)}"

    def text(self, value: str) -> str:
        """``value`` with memory addresses replaced and an instance's pk numbered."""
        value = _ADDRESS.sub(self.address, value)
        found = _INSTANCE.fullmatch(value)
        if found is None:
            return value
        model = found.group("model")
        return f"{model} pk={self.pk(model, found.group('pk'))}"


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int | float):
        return str(value)
    return f"<{type(value).__name__}>"  # not JSON: nothing else to say


@dataclass(slots=True)
class _RawDispatch:
    """A dispatch read from the JSON, before primary keys are numbered."""

    data: Mapping[str, Any]
    calls: list[_RawCall] = field(default_factory=list)

    def sort_key(self) -> str:
        return "\x00".join(
            [str(self.data.get("signal")), str(self.data.get("sender"))]
            + [call.sort_key() for call in self.calls]
        )


@dataclass(slots=True)
class _RawCall:
    data: Mapping[str, Any]
    dispatches: list[_RawDispatch] = field(default_factory=list)

    def sort_key(self) -> str:
        return "\x00".join(
            [str(self.data.get("receiver")), str(self.data.get("outcome"))]
            + [dispatch.sort_key() for dispatch in self.dispatches]
        )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _read_dispatch(data: Any) -> _RawDispatch:
    data = _mapping(data)
    dispatch = _RawDispatch(data)
    sync: list[_RawCall] = []
    concurrent: list[_RawCall] = []
    for item in _items(data.get("calls")):
        item = _mapping(item)
        call = _RawCall(item, [_read_dispatch(child) for child in _items(item.get("dispatches"))])
        (concurrent if item.get("async") is True else sync).append(call)
    # Async receivers run concurrently: their recorded order is the order they
    # happened to start or finish in. Sorted by name (then by what they did).
    concurrent.sort(key=_RawCall.sort_key)
    dispatch.calls = sync + concurrent
    return dispatch


def _number_order(text: str) -> tuple[int, str]:
    """``#2`` before ``#10``; anything else (``None``) after the numbers."""
    return (int(text[1:]), "") if text[1:].isdigit() else (1 << 62, text)


def _value(key: str, value: Any, kwargs: Mapping[str, Any], numbers: _Numbers) -> str:
    if isinstance(value, list | tuple):
        if key == "pk_set":
            model = _scalar(kwargs.get("model"))
            items = [numbers.pk(model, _scalar(item)) for item in value]
            return "{" + ", ".join(sorted(items, key=_number_order)) + "}"
        return "[" + ", ".join(numbers.text(_scalar(item)) for item in value) + "]"
    return numbers.text(_scalar(value))


def _kwargs(data: Mapping[str, Any], numbers: _Numbers) -> tuple[tuple[str, str], ...]:
    kwargs = _mapping(data.get("kwargs"))
    found = []
    for key, value in kwargs.items():
        if key in _QUIET and _QUIET[key] == value and type(_QUIET[key]) is type(value):
            continue
        if key == "origin" and value == kwargs.get("instance"):
            continue
        found.append((str(key), _value(str(key), value, kwargs, numbers)))
    return tuple(found)


def _task_text(task: Any) -> str:
    """``shop.tasks.send_receipt (on commit)``: the name and how, never the (random) id."""
    if not isinstance(task, Mapping):
        return _scalar(task)
    name = next((task[key] for key in ("name", "task") if isinstance(task.get(key), str)), "?")
    how = [
        text
        for flag, text in (("eager", "eager"), ("on_commit", "on commit"))
        if task.get(flag) is True
    ]
    if task.get("in_atomic") is True and task.get("eager") is not True:
        how.append("inside atomic")
    return f"{name} ({', '.join(how)})" if how else str(name)


def _int_or_none(value: Any) -> int | None:
    return value if type(value) is int else None


def _build_dispatch(raw: _RawDispatch, numbers: _Numbers, queries: bool) -> NormalDispatch:
    data = raw.data
    method = str(data.get("method", "send"))
    sender = numbers.text(_scalar(data.get("sender")))
    kwargs = _kwargs(data, numbers)
    return NormalDispatch(
        signal=numbers.text(_scalar(data.get("signal"))),
        sender=sender,
        method=method,
        kwargs=kwargs,
        calls=tuple(_build_call(call, method, numbers, queries) for call in raw.calls),
    )


def _build_call(raw: _RawCall, method: str, numbers: _Numbers, queries: bool) -> NormalCall:
    data = raw.data
    error = _mapping(data.get("error")) if data.get("error") is not None else None
    outcome = data.get("outcome")
    if outcome not in ("returned", "raised", "running"):
        outcome = "raised" if error is not None else "unknown"
    return NormalCall(
        receiver=numbers.text(_scalar(data.get("receiver"))),
        is_async=data.get("async") is True,
        outcome=str(outcome),
        error=_scalar(error.get("type")) if error is not None else None,
        swallowed=bool(error.get("swallowed")) if error is not None else False,
        method=method,
        queries=_int_or_none(data.get("queries")) if queries else None,
        on_commit=_int_or_none(data.get("on_commit")) if queries else None,
        tasks=tuple(_task_text(task) for task in _items(data.get("tasks"))),
        dispatches=tuple(_build_dispatch(child, numbers, queries) for child in raw.dispatches),
    )


def _start(item: Any) -> int:
    start = _mapping(item).get("start_ns")
    return start if type(start) is int else 0


def _build_skipped(data: Any, numbers: _Numbers) -> NormalSkipped:
    data = _mapping(data)
    return NormalSkipped(
        operation=_scalar(data.get("operation")),
        model=_scalar(data.get("model")),
        signals=tuple(_scalar(s) for s in _items(data.get("signals"))),
        receivers=tuple(numbers.text(_scalar(r)) for r in _items(data.get("receivers"))),
        rows=_int_or_none(data.get("rows")),
    )


def normalize_trace(source: Trace | Mapping[str, Any], *, queries: bool = False) -> NormalTrace:
    """The deterministic tree of a trace, or of its JSON (``signaltrace.trace/1`` or ``/2``).

    :param source: a :class:`~signaltrace.Trace`, or the dict of its JSON.
    :param queries: keep each receiver call's query and ``on_commit`` counts
        (recorded with :setting:`RECORD_DB`).
    :raises ValueError: for a dict that is not a trace in a known format.

    .. versionadded:: 0.1.0
    """
    data = source if isinstance(source, Mapping) else source.to_dict()
    schema = data.get("schema")
    if schema not in SCHEMAS:
        raise ValueError(
            f"not a signaltrace trace: schema is {schema!r}, expected one of {', '.join(SCHEMAS)}"
        )
    if not isinstance(data.get("dispatches"), list):
        raise ValueError("not a signaltrace trace: it has no 'dispatches' list")
    # Sort first, number afterwards: the numbers follow the normalised order.
    top: list[_RawDispatch | Mapping[str, Any]] = []
    pending = sorted((item for item in _items(data.get("skipped")) if item), key=_start)
    for item in data["dispatches"]:  # skipped operations go where they started, as in the tree
        start = _start(item)
        while pending and _start(pending[0]) < start:
            top.append(pending.pop(0))
        top.append(_read_dispatch(item))
    top.extend(pending)
    numbers = _Numbers()
    return NormalTrace(
        tuple(
            _build_dispatch(item, numbers, queries)
            if isinstance(item, _RawDispatch)
            else _build_skipped(item, numbers)
            for item in top
        ),
        truncated=data.get("truncated") is not None,
    )


# -- diffs --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    """One node of the merged tree: ``=`` same, ``~`` changed line, ``-`` removed, ``+`` added."""

    mark: str
    old: Node | None
    new: Node | None
    children: tuple[_Entry, ...]


def _align(old: Sequence[Node], new: Sequence[Node]) -> tuple[_Entry, ...]:
    matcher = difflib.SequenceMatcher(
        None, [node.key for node in old], [node.key for node in new], autojunk=False
    )
    entries: list[_Entry] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for a, b in zip(old[i1:i2], new[j1:j2], strict=True):
                children = _align(a.children, b.children)
                mark = "=" if a.line() == b.line() else "~"
                entries.append(_Entry(mark, a, b, children))
            continue
        entries.extend(_Entry("-", a, None, _one_side("-", a.children)) for a in old[i1:i2])
        entries.extend(_Entry("+", None, b, _one_side("+", b.children)) for b in new[j1:j2])
    return tuple(entries)


def _one_side(mark: str, nodes: Sequence[Node]) -> tuple[_Entry, ...]:
    old, new = (True, False) if mark == "-" else (False, True)
    return tuple(
        _Entry(mark, node if old else None, node if new else None, _one_side(mark, node.children))
        for node in nodes
    )


def _changed(entries: Sequence[_Entry]) -> bool:
    return any(entry.mark != "=" or _changed(entry.children) for entry in entries)


def _kind(node: Node) -> str:
    if isinstance(node, NormalDispatch):
        return "dispatch"
    return "receiver call" if isinstance(node, NormalCall) else "skipped operation"


@dataclass(frozen=True, slots=True)
class TraceDiff:
    """What changed from one normalised trace to another.

    ``str()`` of it is the merged tree, each line marked ``-`` (only in the
    old trace), ``+`` (only in the new one) or a space (in both); a changed
    dispatch or call shows its old line and its new line.

    .. versionadded:: 0.1.0
    """

    old: NormalTrace
    new: NormalTrace
    entries: tuple[_Entry, ...]

    @property
    def changed(self) -> bool:
        return _changed(self.entries) or self.old.truncated != self.new.truncated

    def counts(self) -> dict[str, int]:
        """``{"receiver call added": 1, "dispatch changed": 2, ...}`` (non-zero only)."""
        counts: dict[str, int] = {}
        stack = list(self.entries)
        while stack:
            entry = stack.pop()
            stack.extend(entry.children)
            node = entry.new if entry.new is not None else entry.old
            assert node is not None
            verb = {"-": "removed", "+": "added", "~": "changed"}.get(entry.mark)
            if verb is not None:
                what = f"{_kind(node)} {verb}"
                counts[what] = counts.get(what, 0) + 1
        return counts

    def summary(self) -> str:
        """``1 receiver call added, 1 dispatch changed`` or ``no changes``."""
        if not self.changed:
            return "no changes"
        order = ("dispatch", "receiver call", "skipped operation")
        counts = self.counts()
        parts = []
        for kind in order:
            for verb in ("added", "removed", "changed"):
                n = counts.get(f"{kind} {verb}", 0)
                if n:
                    noun = kind if n == 1 else ("dispatches" if kind == "dispatch" else kind + "s")
                    parts.append(f"{n} {noun} {verb}")
        if self.old.truncated != self.new.truncated:
            parts.append("truncated" if self.new.truncated else "no longer truncated")
        return ", ".join(parts)

    def lines(self) -> list[str]:
        lines = list(_diff_lines(self.entries, ""))
        for trace, mark in ((self.old, "-"), (self.new, "+")):
            if trace.truncated and self.old.truncated != self.new.truncated:
                lines.append(f"{mark} ⚠ truncated: MAX_EVENTS reached, the rest was not recorded")
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _entry_lines(entry: _Entry, head: str) -> Iterator[str]:
    if entry.mark == "~":
        assert entry.old is not None
        assert entry.new is not None
        yield f"- {head}{entry.old.line()}"
        yield f"+ {head}{entry.new.line()}"
        return
    node = entry.new if entry.new is not None else entry.old
    assert node is not None
    yield f"{' ' if entry.mark == '=' else entry.mark} {head}{node.line()}"


def _diff_lines(entries: Sequence[_Entry], prefix: str) -> Iterator[str]:
    for i, entry in enumerate(entries):
        last = i == len(entries) - 1
        yield from _entry_lines(entry, prefix + ("└─ " if last else "├─ "))
        yield from _diff_lines(entry.children, prefix + ("   " if last else "│  "))


def diff_traces(old: NormalTrace, new: NormalTrace) -> TraceDiff:
    """Align ``old`` and ``new`` (dispatches by signal, sender and method; calls by
    receiver) and say what was added, removed or changed.

    .. versionadded:: 0.1.0
    """
    return TraceDiff(old, new, _align(old.top, new.top))
