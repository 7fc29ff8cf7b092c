"""``capture()`` and the :class:`Trace` it yields.

.. code-block:: python

    with signaltrace.capture() as trace:
        User.objects.create(username="ann")
    print(trace)                        # the text tree
    trace.find(receiver=create_user_profile)
"""

from __future__ import annotations

import dataclasses
import re
import threading
from contextvars import Token
from datetime import UTC, datetime
from time import perf_counter_ns, time_ns
from types import TracebackType
from typing import Any, Final

from django.utils.module_loading import import_string

from . import naming
from ._record import resolve_receiver
from .conf import get_config
from .context import CURSOR, K_CALL, K_TRACES, Options, add_global, log_failure, remove_global
from .hook import install, is_installed, watch_captures, watch_empty
from .records import (
    C_ASYNC,
    C_ATOMIC,
    C_END,
    C_ERROR,
    C_ON_COMMIT,
    C_QUERIES,
    C_RECEIVER,
    C_START,
    D_CALLS,
    D_END,
    D_KWARGS,
    D_METHOD,
    D_ORIGIN,
    D_PARENT,
    D_RECEIVERS,
    D_SENDER,
    D_SIGNAL,
    D_START,
    Dispatch,
    Origin,
    ReceiverCall,
    SkippedDispatch,
)

__all__ = ["Trace", "capture", "current_options", "current_trace"]

SCHEMA: Final = "signaltrace.trace/1"

_options_cache: tuple[object, Options] | None = None
_COUNT_LOCK: Final = threading.Lock()


def current_options(max_events: int | None = None) -> Options:
    """:class:`Options` from the current settings (cached per settings dict)."""
    global _options_cache
    config = get_config()
    cached = _options_cache
    if cached is None or cached[0] is not config:
        ignored = set()
        for path in config["IGNORE_SIGNALS"]:
            try:
                ignored.add(import_string(path))
            except ImportError as err:
                log_failure(f"IGNORE_SIGNALS {path}", err)
        patterns = [re.escape(p) for p in config["REDACT"] if p]
        options = Options(
            ignored=frozenset(ignored),
            record_empty=config["RECORD_EMPTY"],
            record_origin=config["RECORD_ORIGIN"],
            record_db=config["RECORD_DB"],
            redact=re.compile("|".join(patterns), re.IGNORECASE) if patterns else None,
            max_events=config["MAX_EVENTS"],
        )
        _options_cache = cached = (config, options)
    if max_events is not None:
        return dataclasses.replace(cached[1], max_events=max_events)
    return cached[1]


def _signal_matches(dispatch: Dispatch, signal: object) -> bool:
    if isinstance(signal, str):
        return signal in (dispatch.signal_name, dispatch.signal_path)
    return dispatch.signal_path == naming.signal_label(signal)[1]


def _sender_matches(dispatch: Dispatch, sender: object) -> bool:
    if isinstance(sender, str):
        return dispatch.sender == sender
    return dispatch.sender == naming.sender_label(sender)


def receiver_name(receiver: object) -> str:
    """The dotted name a trace records for ``receiver`` (or the string itself)."""
    if isinstance(receiver, str):
        return receiver
    return naming.describe_receiver(receiver)[0]


class Trace:
    """The receiver calls and dispatches of one unit of work, as a tree.

    Read it with :attr:`dispatches`, :attr:`calls`, :attr:`roots`,
    :meth:`find`, :meth:`to_dict` and :meth:`render` (also ``str(trace)``).

    .. versionadded:: 0.1.0
    """

    def __init__(self, options: Options, *, label: str | None = None) -> None:
        self.options = options
        self.label = label
        self.max_events = options.max_events
        #: Events (dispatches and receiver calls) recorded so far.
        self.events = 0
        #: Events not recorded because :setting:`MAX_EVENTS` was reached.
        self.dropped = 0
        self.closed = False
        self._started_epoch_ns = time_ns()
        self.start_ns = perf_counter_ns()
        self.end_ns: int | None = None
        #: Free-form facts set by whoever opened the trace (the middleware
        #: puts method, path and status here).
        self.meta: dict[str, Any] = {}
        self._raw: list[list[Any]] = []
        #: Operations that skipped signals with connected receivers (bulk
        #: operations, ``QuerySet.update``), in the order they happened.
        self.skipped: list[SkippedDispatch] = []
        self._lock = threading.Lock()
        #: (raw count, finished count, dispatches, roots, calls, built after close?)
        self._built: (
            tuple[int, int, list[Dispatch], list[Dispatch], list[ReceiverCall], bool] | None
        ) = None

    # -- lifecycle ------------------------------------------------------------

    def close(self) -> None:
        """Stop recording; resolve signal names while the signals are alive."""
        if self.closed:
            return
        self.closed = True
        self.end_ns = perf_counter_ns()
        self._resolve_signals()

    def _resolve_signals(self) -> None:
        """Turn weak references into labels while the objects are still alive."""
        for raw in list(self._raw):
            ref = raw[D_SIGNAL]
            if not isinstance(ref, tuple):
                signal = ref()
                raw[D_SIGNAL] = (
                    naming.signal_label(signal) if signal is not None else ("<dead signal>",) * 2
                )
            for raw_call in list(raw[D_CALLS]):
                raw_call[C_RECEIVER] = resolve_receiver(raw_call[C_RECEIVER])

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
        raws = list(self._raw)
        ends = sum(1 for raw in raws if raw[D_END])
        if built is not None and built[0] == len(raws) and built[1] == ends:
            return built[2], built[3], built[4]
        with self._lock:
            if not self.closed:
                self._resolve_signals()
            by_id: dict[int, Dispatch] = {}
            call_map: dict[int, ReceiverCall] = {}
            dispatches: list[Dispatch] = []
            calls: list[ReceiverCall] = []
            for raw in raws:
                name, path = raw[D_SIGNAL]
                origin = raw[D_ORIGIN]
                dispatch = Dispatch(
                    signal_name=name,
                    signal_path=path,
                    sender=raw[D_SENDER],
                    kwargs=raw[D_KWARGS],
                    method=raw[D_METHOD],
                    start_ns=raw[D_START],
                    duration_ns=raw[D_END] - raw[D_START] if raw[D_END] else None,
                    origin=Origin(origin[0].co_filename, origin[1], origin[0].co_qualname)
                    if origin
                    else None,
                    receiver_count=raw[D_RECEIVERS],
                )
                by_id[id(raw)] = dispatch
                dispatches.append(dispatch)
                for raw_call in list(raw[D_CALLS]):
                    label, filename, lineno = resolve_receiver(raw_call[C_RECEIVER])
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
                    )
                    dispatch.calls.append(call)
                    call_map[id(raw_call)] = call
                    calls.append(call)
            roots = []
            for raw in raws:
                dispatch = by_id[id(raw)]
                parent = raw[D_PARENT]
                parent_call = call_map.get(id(parent)) if parent is not None else None
                if parent_call is None:
                    roots.append(dispatch)
                else:
                    dispatch.parent = parent_call
                    parent_call.children.append(dispatch)
            calls.sort(key=lambda c: c.start_ns)
            self._built = (len(raws), ends, dispatches, roots, calls, was_closed)
            return dispatches, roots, calls

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
        :param receiver: a receiver callable or its dotted name.
        """
        name = receiver_name(receiver) if receiver is not None else None
        return [
            call
            for call in self.calls
            if (name is None or call.receiver_name == name)
            and (signal is None or _signal_matches(call.dispatch, signal))
            and (sender is None or _sender_matches(call.dispatch, sender))
        ]

    def find_dispatches(self, *, signal: object = None, sender: object = None) -> list[Dispatch]:
        """Dispatches matching every filter given (see :meth:`find`)."""
        return [
            dispatch
            for dispatch in self.dispatches
            if (signal is None or _signal_matches(dispatch, signal))
            and (sender is None or _sender_matches(dispatch, sender))
        ]

    # -- output ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable tree (schema ``signaltrace.trace/1``)."""
        from .render import trace_to_dict

        return trace_to_dict(self)

    def render(self, *, numbered: bool = False, color: bool = False) -> str:
        """The text tree shown in the docs, one line per dispatch and call."""
        from .render import render_trace

        return render_trace(self, numbered=numbered, color=color)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return (
            f"<Trace {self.label or ''} dispatches={len(self._raw)} "
            f"events={self.events} dropped={self.dropped}>"
        )

    # -- assertions (signaltrace.testing) --

    def calls_of(
        self, receiver: object, /, *, signal: object = None, sender: object = None, **match: object
    ) -> list[ReceiverCall]:
        """See :func:`signaltrace.testing.calls_of`."""
        from .testing import calls_of

        return calls_of(self, receiver, signal=signal, sender=sender, **match)

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
        from .testing import assert_called

        return assert_called(self, receiver, sender=sender, signal=signal, times=times, **match)

    def assert_called_once(
        self, receiver: object, /, *, sender: object = None, signal: object = None, **match: object
    ) -> ReceiverCall:
        """See :func:`signaltrace.testing.assert_called_once`."""
        __tracebackhide__ = True
        from .testing import assert_called_once

        return assert_called_once(self, receiver, sender=sender, signal=signal, **match)

    def assert_not_called(
        self, receiver: object, /, *, sender: object = None, signal: object = None, **match: object
    ) -> Trace:
        """See :func:`signaltrace.testing.assert_not_called`."""
        __tracebackhide__ = True
        from .testing import assert_not_called

        return assert_not_called(self, receiver, sender=sender, signal=signal, **match)

    def assert_sent(
        self, signal: object, /, *, sender: object = None, times: int | None = None, **match: object
    ) -> list[Dispatch]:
        """See :func:`signaltrace.testing.assert_sent`."""
        __tracebackhide__ = True
        from .testing import assert_sent

        return assert_sent(self, signal, sender=sender, times=times, **match)

    def assert_not_sent(
        self, signal: object, /, *, sender: object = None, **match: object
    ) -> Trace:
        """See :func:`signaltrace.testing.assert_not_sent`."""
        __tracebackhide__ = True
        from .testing import assert_not_sent

        return assert_not_sent(self, signal, sender=sender, **match)

    def assert_order(self, *receivers: object) -> list[ReceiverCall]:
        """See :func:`signaltrace.testing.assert_order`."""
        __tracebackhide__ = True
        from .testing import assert_order

        return assert_order(self, *receivers)

    def assert_no_errors(self) -> Trace:
        """See :func:`signaltrace.testing.assert_no_errors`."""
        __tracebackhide__ = True
        from .testing import assert_no_errors

        return assert_no_errors(self)

    def assert_no_skipped(self) -> Trace:
        """See :func:`signaltrace.diagnostics.assert_no_skipped`."""
        __tracebackhide__ = True
        from .diagnostics import assert_no_skipped

        return assert_no_skipped(self)

    # -- end assertions --


def current_trace() -> Trace | None:
    """The innermost open trace recording the current thread or task, or ``None``.

    Inside a request traced by ``SignalTraceMiddleware``
    this is the request's trace (its viewer id is ``trace.meta["id"]``), unless a
    ``capture()`` block is open inside it.

    .. versionadded:: 0.1.0
    """
    cursor = CURSOR.get()
    if cursor is not None:
        for trace in reversed(cursor[K_TRACES]):
            if not trace.closed:
                return trace  # type: ignore[no-any-return]
    return None


class capture:
    """Record every dispatch and receiver call made in this block.

    Works as ``with`` and ``async with``; yields a :class:`Trace`. Captures
    nest (each sees what happened while it was open). Installs the hook if it
    is not installed yet.

    :param all_threads: also record dispatches from every other thread and
        task while open, including those with captures of their own (for a live
        server in tests, whose requests the middleware traces separately).
    :param label: a name for the trace (shown by ``render()``).
    :param max_events: override :setting:`MAX_EVENTS` for this trace.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        *,
        all_threads: bool = False,
        label: str | None = None,
        max_events: int | None = None,
    ) -> None:
        if max_events is not None and (type(max_events) is not int or max_events < 1):
            raise ValueError(f"max_events must be a positive int, got {max_events!r}")
        self.all_threads = all_threads
        self.label = label
        self.max_events = max_events
        self.trace: Trace | None = None
        self._token: Token[list[Any] | None] | None = None
        self._previous: list[Any] | None = None

    def __enter__(self) -> Trace:
        if self.trace is not None:
            raise RuntimeError("this capture() is already in use; create a new one")
        if not is_installed():
            install()
        options = current_options(self.max_events)
        trace = self.trace = Trace(options, label=self.label)
        outer = CURSOR.get()
        self._previous = outer
        if outer is None:
            cursor = [(trace,), None, options]
        else:
            cursor = [(*outer[K_TRACES], trace), outer[K_CALL], options]
        self._token = CURSOR.set(cursor)
        with _COUNT_LOCK:
            watch_captures(1)
            if options.record_empty:
                watch_empty(1)
        if self.all_threads:
            add_global(trace)
        return trace

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        trace = self.trace
        if trace is None or self._token is None:
            raise RuntimeError("capture() was not entered")
        try:
            CURSOR.reset(self._token)
        except ValueError:
            # Exited in another context than it was entered in.
            CURSOR.set(self._previous)
        if self.all_threads:
            remove_global(trace)
        with _COUNT_LOCK:
            watch_captures(-1)
            if trace.options.record_empty:
                watch_empty(-1)
        trace.close()

    async def __aenter__(self) -> Trace:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
