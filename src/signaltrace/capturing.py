"""``capture()``: record what a block of code dispatched into a :class:`~signaltrace.Trace`.

.. code-block:: python

    with signaltrace.capture() as trace:
        User.objects.create(username="ann")
    print(trace)
"""

from __future__ import annotations

import threading
from contextvars import Token
from types import TracebackType
from typing import Any, Final

from . import _metrics
from .context import (
    CURSOR,
    K_CALL,
    K_TRACES,
    add_global,
    current_options,
    remove_global,
    watch_captures,
    watch_db,
    watch_empty,
)
from .hook import install, is_installed
from .traces import KINDS, Trace

__all__ = ["capture", "current_options", "current_trace"]

_COUNT_LOCK: Final = threading.Lock()


def current_trace() -> Trace | None:
    """The innermost open trace recording the current thread or task, or ``None``.

    Inside a request traced by ``SignalTraceMiddleware``
    this is the request's trace (its viewer id is ``trace.trace_id``), unless a
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
    :param kind: what the trace records, one of ``signaltrace.traces.KINDS``
        (the middleware opens ``"request"`` traces, the Celery integration
        ``"task"`` ones).
    :param parent: the trace that caused this one, ``{"trace_id": ..., "receiver": ...}``.
    :param max_events: override :setting:`MAX_EVENTS` for this trace.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        *,
        all_threads: bool = False,
        label: str | None = None,
        max_events: int | None = None,
        kind: str = "capture",
        parent: dict[str, Any] | None = None,
    ) -> None:
        if max_events is not None and (type(max_events) is not int or max_events < 1):
            raise ValueError(f"max_events must be a positive int, got {max_events!r}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if parent is not None and not (
            type(parent) is dict and type(parent.get("trace_id")) is str
        ):
            raise ValueError(f'parent must be a dict with a "trace_id" string, got {parent!r}')
        self.all_threads = all_threads
        self.label = label
        self.kind = kind
        self.parent = parent
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
        _metrics.refresh()
        trace = self.trace = Trace(options, label=self.label, kind=self.kind, parent=self.parent)
        outer = CURSOR.get()
        self._previous = outer
        # Owned by this thread: its sync dispatches nest in place (see signaltrace.context).
        if outer is None:
            cursor = [(trace,), None, options, threading.get_ident()]
        else:
            cursor = [(*outer[K_TRACES], trace), outer[K_CALL], options, threading.get_ident()]
        self._token = CURSOR.set(cursor)
        with _COUNT_LOCK:
            watch_captures(1)
            if options.record_empty:
                watch_empty(1)
            if options.record_db:
                watch_db(1)
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
            if trace.options.record_db:
                watch_db(-1)
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
