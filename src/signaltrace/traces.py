"""The :class:`Trace` that ``capture()`` yields: what one unit of work dispatched.

.. code-block:: python

    with signaltrace.capture() as trace:
        User.objects.create(username="ann")
    print(trace)                        # the text tree
    trace.find(receiver=create_user_profile)

The send replacements append raw records to an open trace through
:meth:`Trace.admit`; reading it (:attr:`~Trace.dispatches`, :meth:`~Trace.render`,
the ``assert_*`` methods) builds the frozen records of :mod:`signaltrace.records`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter_ns, time_ns
from typing import Any, Final

from . import assertions, naming, render
from ._hotpath import make_origin, resolve_receiver
from .context import Options
from .query import receiver_calls, sender_matches, signal_matches
from .records import (
    C_ASYNC,
    C_ATOMIC,
    C_END,
    C_ERROR,
    C_EXTRA,
    C_ON_COMMIT,
    C_QUERIES,
    C_RECEIVER,
    C_START,
    D_CALLS,
    D_DB,
    D_END,
    D_EXTRA,
    D_FLAT,
    D_KWARGS,
    D_METHOD,
    D_ORIGIN,
    D_PARENT,
    D_RECEIVERS,
    D_SENDER,
    D_SIGNAL,
    D_SQL,
    D_START,
    MAX_PARAM_SETS,
    MAX_STATEMENTS,
    Dispatch,
    ReceiverCall,
    SkippedDispatch,
    Statement,
    flat_call_end,
    flat_calls,
    read_kwargs,
)

__all__ = ["KINDS", "Trace", "Truncation", "add_fact"]

#: What a trace can record: a request, a Celery task, a management command, a block.
KINDS: Final = ("request", "task", "command", "capture")

#: What a raw record becomes once a trace has released it (see ``Trace._release_raw``):
#: the layout's length, every slot ``None`` (so a dispatch reads as unfinished).
_RELEASED: Final[list[Any]] = [None] * (D_RECEIVERS + 1)


@dataclass(frozen=True, slots=True)
class Truncation:
    """Where a trace first hit :setting:`MAX_EVENTS`; nothing after it was recorded.

    .. versionadded:: 0.1.0
    """

    #: Events (dispatches, receiver calls, skipped operations) recorded before it.
    events: int
    #: Dispatches recorded before it.
    dispatches: int
    #: What was dropped first: ``"post_save dispatch"`` or ``"bulk_create skipped"``.
    what: str
    #: ``perf_counter_ns()`` when it was dropped.
    at_ns: int

    def __str__(self) -> str:
        return (
            f"MAX_EVENTS reached after {self.events} event{'s' if self.events != 1 else ''} "
            f"({self.dispatches} dispatch{'es' if self.dispatches != 1 else ''}): "
            f"the {self.what} and everything after it were not recorded"
        )


def _db_facts(
    boundaries: list[Any] | None, index: int, facts: dict[str, Any] | None
) -> tuple[int, bool, int] | None:
    """``(queries, in_atomic, on_commit)`` of flat call ``index`` (``RECORD_DB``).

    ``boundaries`` holds, at each receiver boundary, the statement count, the
    ``on_commit`` count and (at a call's start) whether it is in ``atomic``:
    ``[n0, c0, a0, n1, c1, a1, ..., nN, cN]``.
    """
    if boundaries is None or 3 * index + 2 >= len(boundaries):
        return None
    start = 3 * index
    if facts is not None and "db_end" in facts:
        end_n, end_c = facts["db_end"]
    elif start + 4 < len(boundaries):
        end_n, end_c = boundaries[start + 3], boundaries[start + 4]
    else:
        return None
    return (
        end_n - boundaries[start],
        boundaries[start + 2],
        max(end_c - boundaries[start + 1], 0),
    )


def _statements(
    entries: list[list[Any]] | None, queries: int | None
) -> tuple[tuple[Statement, ...] | None, int]:
    """``(sql, sql_omitted)`` of a call from its ``[sql, count, params]`` entries (``RECORD_SQL``).

    The entries of the call and of the receivers it caused to run, each text
    once (counts added up, in the order they first ran), at most
    :data:`~signaltrace.records.MAX_STATEMENTS`; ``sql_omitted`` is the rest of
    the call's ``queries``.
    """
    if entries is None:
        return None, 0
    groups: dict[str, list[Any]] = {}
    for text, count, params in list(entries):
        group = groups.get(text)
        if group is None:
            if len(groups) < MAX_STATEMENTS:
                groups[text] = [count, None if params is None else list(params[:MAX_PARAM_SETS])]
            continue
        group[0] += count
        kept = group[1]
        if params is not None and kept is not None and len(kept) < MAX_PARAM_SETS:
            kept.extend(params[: MAX_PARAM_SETS - len(kept)])
    statements = tuple(
        Statement(text, count, None if params is None else tuple(params))
        for text, (count, params) in groups.items()
    )
    shown = sum(statement.count for statement in statements)
    return statements, max((queries or 0) - shown, 0)


def _sql_facts(
    raw_sql: list[Any] | None, index: int, queries: int | None
) -> tuple[tuple[Statement, ...] | None, int]:
    """:func:`_statements` of flat call ``index``: ``[statements, m0, m1, ..., mN]``."""
    if raw_sql is None:
        return None, 0
    if len(raw_sql) == 1:  # _db.NO_STATEMENTS: the loop's receivers ran none
        return (), 0
    if index + 2 >= len(raw_sql):
        return None, 0
    return _statements(raw_sql[0][raw_sql[index + 1] : raw_sql[index + 2]], queries)


def add_fact(traces: tuple[Trace, ...], add: Callable[[], None]) -> bool:
    """Call ``add()``, which adds a fact to a raw record of ``traces``, if all are open.

    For facts that arrive while a receiver call runs or after it ended (a
    Celery task it published: ``signaltrace.integrations.celery``). Under the
    lock each trace's :meth:`~Trace.admit` and :meth:`~Trace.close` take, so a
    closed trace never changes; the built views are rebuilt when next read.

    :returns: whether every trace was open (and ``add()`` was called).
    """
    with ExitStack() as locks:
        for trace in sorted(traces, key=id):
            locks.enter_context(trace._lock)
            if trace.closed:
                return False
        add()
    for trace in traces:
        with trace._build_lock:
            trace._built = None
    return True


def _dropped_what(item: Any) -> str:
    if isinstance(item, SkippedDispatch):
        return f"{item.operation} skipped"
    ref = item[D_SIGNAL]
    signal = ref() if not isinstance(ref, tuple) else None
    name = naming.signal_label(signal)[0] if signal is not None else "signal"
    return f"{name} dispatch"


class Trace:
    """The receiver calls and dispatches of one unit of work, as a tree.

    Read it with :attr:`dispatches`, :attr:`calls`, :attr:`roots`,
    :meth:`find`, :meth:`to_dict` and :meth:`render` (also ``str(trace)``).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        options: Options,
        *,
        label: str | None = None,
        kind: str = "capture",
        parent: dict[str, Any] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.options = options
        self.label = label
        #: 32 hex digits, unique across processes: the id the viewer, the
        #: stores and a child trace's ``parent`` use.
        self.trace_id = os.urandom(16).hex()
        #: ``"request"``, ``"task"``, ``"command"`` or ``"capture"``.
        self.kind = kind
        #: The trace that caused this one, in another process or task:
        #: ``{"trace_id": ..., "receiver": dotted name or None}``, else ``None``.
        self.parent = parent
        self.max_events = options.max_events
        #: Events (dispatches and receiver calls) recorded so far.
        self.events = 0
        #: Events not recorded because :setting:`MAX_EVENTS` was reached.
        self.dropped = 0
        #: Where the trace first dropped an event (see :attr:`truncated`).
        self.truncated_at: Truncation | None = None
        self._truncated_raw: Any = None
        self.closed = False
        self._started_epoch_ns = time_ns()
        self.start_ns = perf_counter_ns()
        self.end_ns: int | None = None
        #: Free-form facts set by whoever opened the trace (the middleware
        #: puts method, path and status here).
        self.meta: dict[str, Any] = {}
        self.raw: list[list[Any]] = []
        #: Operations that skipped signals with connected receivers (bulk
        #: operations, ``QuerySet.update``), in the order they happened.
        self.skipped: list[SkippedDispatch] = []
        self._lock = threading.Lock()  # admit() and close()
        self._build_lock = threading.Lock()  # _build(), off the hot path
        #: (raw count, finished count, dispatches, roots, calls, built after close?)
        self._built: (
            tuple[int, int, list[Dispatch], list[Dispatch], list[ReceiverCall], bool] | None
        ) = None

    # -- lifecycle ------------------------------------------------------------

    @property
    def truncated(self) -> bool:
        """Whether :setting:`MAX_EVENTS` cut this trace short (sticky).

        Once one event is dropped, no later one is recorded, so what the trace
        holds is everything up to :attr:`truncated_at` and nothing after.
        """
        return self.truncated_at is not None or self._truncated_raw is not None

    def admit(self, item: Any, cost: int, skipped: bool = False) -> bool:
        """Record a raw dispatch (or a skipped operation) if there is room.

        Called by the send replacements. Appending and :meth:`close` take the
        same lock, so nothing lands in a closed trace; a closed trace never
        changes again.
        """
        lock = self._lock
        lock.acquire()  # not ``with``: this runs once per dispatch
        try:
            if self.closed:
                return False
            events = self.events + cost
            if events > self.max_events or self._truncated_raw is not None:
                self.dropped += cost
                if self._truncated_raw is None:
                    self._truncated_raw = (self.events, len(self.raw), item, perf_counter_ns())
                return False
            self.events = events
            if skipped:
                self.skipped.append(item)
            else:
                self.raw.append(item)
            return True
        finally:
            lock.release()

    def close(self) -> None:
        """Stop recording; resolve signal names while the signals are alive."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self.end_ns = perf_counter_ns()
        self._resolve_signals()
        if self._truncated_raw is not None:
            events, dispatches, item, at_ns = self._truncated_raw
            self.truncated_at = Truncation(events, dispatches, _dropped_what(item), at_ns)

    def _resolve_signals(self) -> None:
        """Turn weak references into labels while the objects are still alive.

        Each distinct signal and receiver is resolved once: the send loops
        record the same shared weak reference for every dispatch of a signal
        and every call of a function, so a memo keyed by the reference's id
        (alive for as long as the records hold it) makes closing a long trace
        cost a dict lookup per record.
        """
        signals: dict[int, tuple[str, str]] = {}
        receivers: dict[int, Any] = {}
        for raw in list(self.raw):
            ref = raw[D_SIGNAL]
            if type(ref) is not tuple:
                label = signals.get(id(ref))
                if label is None:
                    signal = ref()
                    label = signals[id(ref)] = (
                        naming.signal_label(signal)
                        if signal is not None
                        else ("<dead signal>", "<dead signal>")
                    )
                raw[D_SIGNAL] = label
            # The flat calls' keys sit at D_FLAT, D_FLAT + 2, ...; each is
            # followed by its start time.
            for j in range(D_FLAT, len(raw) - 1, 2):
                key = raw[j]
                if type(key) is tuple:
                    continue
                desc = receivers.get(id(key))
                if desc is None:
                    desc = receivers[id(key)] = resolve_receiver(key)
                raw[j] = desc
            for raw_call in list(raw[D_CALLS]):
                key = raw_call[C_RECEIVER]
                if type(key) is tuple:
                    continue
                desc = receivers.get(id(key))
                if desc is None:
                    desc = receivers[id(key)] = resolve_receiver(key)
                raw_call[C_RECEIVER] = desc

    @property
    def started_at(self) -> datetime:
        """When the trace was opened, as an aware UTC datetime."""
        return datetime.fromtimestamp(self._started_epoch_ns / 1e9, tz=UTC)

    @property
    def started_epoch_ns(self) -> int:
        """When the trace was opened, in nanoseconds since the Unix epoch."""
        return self._started_epoch_ns

    @property
    def duration_ns(self) -> int:
        """Wall time from opening the trace to closing it (or now)."""
        return (self.end_ns or perf_counter_ns()) - self.start_ns

    # -- materialised views ---------------------------------------------------

    def _build(self) -> tuple[list[Dispatch], list[Dispatch], list[ReceiverCall]]:
        built = self._built
        if built is not None and built[5] and built[1] == built[0]:
            # Built after close with every dispatch finished: nothing can change.
            return built[2], built[3], built[4]
        was_closed = self.closed  # read before the snapshot: nothing is added after close
        raws = list(self.raw)
        ends = sum(1 for raw in raws if raw[D_END])
        if built is not None and built[0] == len(raws) and built[1] == ends:
            return built[2], built[3], built[4]
        with self._build_lock:
            built = self._built  # another thread may have finished (and released raw)
            if built is not None and built[5] and built[1] == built[0]:
                return built[2], built[3], built[4]
            if not self.closed:
                self._resolve_signals()
            by_id: dict[int, Dispatch] = {}
            call_map: dict[int, ReceiverCall] = {}
            flat_map: dict[tuple[int, int], ReceiverCall] = {}
            dispatches: list[Dispatch] = []
            calls: list[ReceiverCall] = []
            for raw in raws:
                name, path = raw[D_SIGNAL]
                origin = make_origin(raw[D_ORIGIN])
                dispatch = Dispatch(
                    signal_name=name,
                    signal_path=path,
                    sender=raw[D_SENDER],
                    kwargs=read_kwargs(raw[D_KWARGS]),
                    method=raw[D_METHOD],
                    start_ns=raw[D_START],
                    duration_ns=raw[D_END] - raw[D_START] if raw[D_END] else None,
                    origin=origin,
                    receiver_count=raw[D_RECEIVERS],
                )
                by_id[id(raw)] = dispatch
                dispatches.append(dispatch)
                flat = flat_calls(raw)  # a snapshot: the loop may still be appending
                if flat is not None:
                    extra = raw[D_EXTRA] or {}
                    db_calls = raw[D_DB]
                    n = len(flat)
                    count = n // 2
                    for i in range(count):
                        label, filename, lineno, identity = resolve_receiver(flat[2 * i])
                        facts = extra.get(i)
                        tasks = () if facts is None else tuple(facts.get("tasks", ()))
                        end = flat_call_end(flat, facts, i)
                        if facts is not None and "end" not in facts:
                            facts = None  # the call did not raise
                        start = flat[2 * i + 1]
                        db = _db_facts(db_calls, i, facts)
                        sql, omitted = _sql_facts(raw[D_SQL], i, db[0] if db is not None else None)
                        call = ReceiverCall(
                            receiver_name=label,
                            filename=filename,
                            lineno=lineno,
                            is_async=False,
                            start_ns=start,
                            duration_ns=end - start if end is not None else None,
                            error=facts["error"] if facts is not None else None,
                            dispatch=dispatch,
                            queries=db[0] if db is not None else None,
                            in_atomic=db[1] if db is not None else None,
                            on_commit=db[2] if db is not None else None,
                            receiver_identity=identity,
                            tasks=tasks,
                            sql=sql,
                            sql_omitted=omitted,
                        )
                        dispatch.calls.append(call)
                        flat_map[(id(raw), i)] = call
                        calls.append(call)
                for raw_call in list(raw[D_CALLS]):
                    label, filename, lineno, identity = resolve_receiver(raw_call[C_RECEIVER])
                    sql, omitted = _statements(
                        (raw_call[C_EXTRA] or {}).get("sql"), raw_call[C_QUERIES]
                    )
                    call = ReceiverCall(
                        receiver_name=label,
                        filename=filename,
                        lineno=lineno,
                        is_async=raw_call[C_ASYNC],
                        start_ns=raw_call[C_START],
                        duration_ns=(
                            raw_call[C_END] - raw_call[C_START] if raw_call[C_END] else None
                        ),
                        error=raw_call[C_ERROR],
                        dispatch=dispatch,
                        queries=raw_call[C_QUERIES],
                        in_atomic=raw_call[C_ATOMIC],
                        on_commit=raw_call[C_ON_COMMIT],
                        receiver_identity=identity,
                        tasks=tuple((raw_call[C_EXTRA] or {}).get("tasks", ())),
                        sql=sql,
                        sql_omitted=omitted,
                    )
                    dispatch.calls.append(call)
                    call_map[id(raw_call)] = call
                    calls.append(call)
            roots = []
            for raw in raws:
                dispatch = by_id[id(raw)]
                parent = raw[D_PARENT]
                if parent is None:
                    parent_call = None
                elif type(parent) is tuple:  # (raw dispatch, flat call index)
                    parent_call = flat_map.get((id(parent[0]), parent[1]))
                else:
                    parent_call = call_map.get(id(parent))
                if parent_call is None:
                    roots.append(dispatch)
                else:
                    dispatch.parent = parent_call
                    parent_call.children.append(dispatch)
            calls.sort(key=lambda c: c.start_ns)
            self._built = (len(raws), ends, dispatches, roots, calls, was_closed)
            self._release_raw()
            return dispatches, roots, calls

    def _release_raw(self) -> None:
        """Drop the raw records once the built ones are final (under ``_build_lock``).

        A closed trace whose dispatches all finished never changes again, and
        :meth:`_build` then only returns what it built: the raw lists (about as
        big as the records) would be held for nothing. They are replaced by one
        shared placeholder each, so ``len(self.raw)`` still counts dispatches.
        """
        built = self._built
        if built is None or not built[5] or built[1] != built[0]:
            return
        self.raw = [_RELEASED] * len(self.raw)
        truncated = self._truncated_raw
        if truncated is not None and self.truncated_at is not None:
            self._truncated_raw = (*truncated[:2], None, truncated[3])  # the dropped item

    @property
    def dispatches(self) -> list[Dispatch]:
        """Every recorded dispatch, in the order they started."""
        return self._build()[0]

    @property
    def roots(self) -> list[Dispatch]:
        """Dispatches not nested in a recorded receiver call: the tree's top."""
        return self._build()[1]

    @property
    def calls(self) -> list[ReceiverCall]:
        """Every recorded receiver call, in the order they started."""
        return self._build()[2]

    @property
    def errors(self) -> list[ReceiverCall]:
        """Receiver calls that raised (including those ``send_robust`` swallowed)."""
        return [call for call in self.calls if call.error is not None]

    @property
    def receiver_time_ns(self) -> int:
        """Time spent in top-level receiver calls (nested time counted once)."""
        return sum(call.duration_ns or 0 for dispatch in self.roots for call in dispatch.calls)

    def find(
        self,
        *,
        signal: object = None,
        sender: object = None,
        receiver: object = None,
    ) -> list[ReceiverCall]:
        """Receiver calls matching every filter given.

        :param signal: a signal object, its name (``"post_save"``) or dotted path.
        :param sender: a sender object (a model class) or its label (``"auth.User"``).
        :param receiver: a receiver object, matched by identity (a bound method:
            same function, same object), or a name: its dotted name or a short
            name that ends one dotted name only (see ``signaltrace.query``).
        :raises ValueError: for a short name that ends several dotted names.
        """
        calls = self.calls if receiver is None else receiver_calls(self.calls, receiver)
        return [
            call
            for call in calls
            if (signal is None or signal_matches(call.dispatch, signal))
            and (sender is None or sender_matches(call.dispatch, sender))
        ]

    def find_dispatches(self, *, signal: object = None, sender: object = None) -> list[Dispatch]:
        """Dispatches matching every filter given (see :meth:`find`)."""
        return [
            dispatch
            for dispatch in self.dispatches
            if (signal is None or signal_matches(dispatch, signal))
            and (sender is None or sender_matches(dispatch, sender))
        ]

    # -- output ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable tree (schema ``signaltrace.trace/2``)."""
        return render.trace_to_dict(self)

    def render(self, *, numbered: bool = False, color: bool = False) -> str:
        """The text tree shown in the docs, one line per dispatch and call."""
        return render.render_trace(self, numbered=numbered, color=color)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return (
            f"<Trace {self.label or ''} dispatches={len(self.raw)} "
            f"events={self.events} dropped={self.dropped}>"
        )

    # -- assertions (signaltrace.testing) --

    def calls_of(
        self, receiver: object, /, *, signal: object = None, sender: object = None, **match: object
    ) -> list[ReceiverCall]:
        """See :func:`signaltrace.testing.calls_of`."""
        return assertions.calls_of(self, receiver, signal=signal, sender=sender, **match)

    def assert_called(
        self,
        receiver: object,
        /,
        *,
        sender: object = None,
        signal: object = None,
        times: int | None = None,
        **match: object,
    ) -> list[ReceiverCall]:
        """See :func:`signaltrace.testing.assert_called`."""
        __tracebackhide__ = True
        return assertions.assert_called(
            self, receiver, sender=sender, signal=signal, times=times, **match
        )

    def assert_called_once(
        self, receiver: object, /, *, sender: object = None, signal: object = None, **match: object
    ) -> ReceiverCall:
        """See :func:`signaltrace.testing.assert_called_once`."""
        __tracebackhide__ = True
        return assertions.assert_called_once(self, receiver, sender=sender, signal=signal, **match)

    def assert_not_called(
        self, receiver: object, /, *, sender: object = None, signal: object = None, **match: object
    ) -> Trace:
        """See :func:`signaltrace.testing.assert_not_called`."""
        __tracebackhide__ = True
        return assertions.assert_not_called(self, receiver, sender=sender, signal=signal, **match)

    def assert_sent(
        self, signal: object, /, *, sender: object = None, times: int | None = None, **match: object
    ) -> list[Dispatch]:
        """See :func:`signaltrace.testing.assert_sent`."""
        __tracebackhide__ = True
        return assertions.assert_sent(self, signal, sender=sender, times=times, **match)

    def assert_not_sent(
        self, signal: object, /, *, sender: object = None, **match: object
    ) -> Trace:
        """See :func:`signaltrace.testing.assert_not_sent`."""
        __tracebackhide__ = True
        return assertions.assert_not_sent(self, signal, sender=sender, **match)

    def assert_order(self, *receivers: object) -> list[ReceiverCall]:
        """See :func:`signaltrace.testing.assert_order`."""
        __tracebackhide__ = True
        return assertions.assert_order(self, *receivers)

    def assert_max_queries(
        self,
        receiver: object,
        n: int,
        /,
        *,
        sender: object = None,
        signal: object = None,
        **match: object,
    ) -> list[ReceiverCall]:
        """See :func:`signaltrace.testing.assert_max_queries`."""
        __tracebackhide__ = True
        return assertions.assert_max_queries(
            self, receiver, n, sender=sender, signal=signal, **match
        )

    def assert_no_errors(self) -> Trace:
        """See :func:`signaltrace.testing.assert_no_errors`."""
        __tracebackhide__ = True
        return assertions.assert_no_errors(self)

    def assert_no_skipped(self) -> Trace:
        """See :func:`signaltrace.diagnostics.assert_no_skipped`."""
        __tracebackhide__ = True
        return assertions.assert_no_skipped(self)

    def assert_no_task_before_commit(self) -> Trace:
        """See :func:`signaltrace.testing.assert_no_task_before_commit`."""
        __tracebackhide__ = True
        return assertions.assert_no_task_before_commit(self)

    def assert_matches_snapshot(self, name: str | None = None, *, queries: bool = False) -> Path:
        """See :func:`signaltrace.testing.assert_matches_snapshot`."""
        __tracebackhide__ = True
        return assertions.assert_matches_snapshot(self, name, queries=queries)

    # -- end assertions --
