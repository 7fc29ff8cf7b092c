"""Django's send methods with recording inline.

Each function here is Django's method of the same name (5.2 to 6.1: the sync
ones are identical across versions; the async receivers run through
:mod:`signaltrace._async`), reproduced line for line, with timing added
*inline*: receivers are called from the same frame Django calls them from,
with the same arguments, so stack depth, ``(receiver, response)`` pairs,
exceptions and logging are exactly Django's. Wrapping receivers (as some
tracers do) would put the wrapper into the responses and add frames; see
``explanation/architecture``. :mod:`signaltrace.hook` puts them on
:class:`~django.dispatch.Signal`.

With nothing capturing anywhere in the process and ``METRICS`` off, each method
costs one global read more than Django's (:data:`signaltrace.context.ACTIVE`);
while some capture is open, one :class:`~contextvars.ContextVar` lookup more.
``setting_changed`` always takes the second way: ``override_settings`` sends
it, and ``METRICS`` is read again then (see :func:`signaltrace._metrics.refresh`).
"""

from __future__ import annotations

import asyncio
import threading
import types
import weakref
from time import perf_counter_ns
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.core.signals import setting_changed
from django.dispatch import Signal
from django.dispatch.dispatcher import NO_RECEIVERS

from . import _db, _metrics
from . import context as _ctx
from ._async import async_runner
from ._compat import SHAPE
from ._hotpath import bound_to_function, describe, error_info, fail, new_call, open_dispatch
from .context import CURSOR, K_CALL, K_OPTIONS, K_OWNER, K_TRACES, wants_empty
from .records import C_END, C_ERROR, C_START, D_CALLS, D_DB, D_END, D_FLAT, D_SQL, D_START, D_TRACES

__all__ = ["REPLACEMENTS", "asend", "asend_robust", "send", "send_robust"]

_FUNCTION = types.FunctionType
key = weakref.ref
#: Sent by ``override_settings``: ``METRICS`` may have changed (see _metrics.refresh).
_SETTING_CHANGED = setting_changed
#: The owner test of an in-place cursor (gevent's greenlets each start with an
#: empty context, so they never share a cursor: the thread's ident is enough).
_get_ident = threading.get_ident
#: ... and never in a thread running an event loop: its tasks share the cursor
#: through copied contexts, and so do the threads of ``asyncio.to_thread()``,
#: which would see a sibling task's dispatch in it (see signaltrace.context).
_running_loop = asyncio.events._get_running_loop


def _record_empty(signal: Signal, sender: Any, named: dict[str, Any], method: str) -> None:
    cursor = (CURSOR.get() or _ctx.global_cursor()) if _ctx.CAPTURING else None
    if cursor is None or signal in cursor[K_OPTIONS].ignored or not wants_empty(cursor):
        return
    dispatch = open_dispatch(signal, sender, named, method, cursor, 0)
    if dispatch is not None:
        dispatch[D_END] = dispatch[D_START]


# In each function below, the first branches are Django's code verbatim; the
# last adds recording.
#
# _call_with: the recording loops call a receiver that is a Python function,
# or a method bound to one, with one keyword dict, ``{"signal": self,
# "sender": sender, **named}``, built once per dispatch, instead of Django's
# ``signal=self, sender=sender, **named``, which builds and merges a new dict
# for every receiver. CPython unpacks either into the call the same way (the
# same names, values and order, from the same frame; a bound method prepends
# its ``__self__`` to the vector either way); the function never sees the
# dict itself, as it gets its own ``**kwargs``. Other receivers (callable
# objects, partials, anything in C, which could be handed the dict and change
# it for the next receiver) keep Django's form, and so does every receiver
# when ``named`` holds a ``signal`` key, which Django's form refuses with a
# TypeError at each call.


def send(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
    if not self.receivers or self.sender_receivers_cache.get(sender) is NO_RECEIVERS:
        if _ctx.EMPTY_WATCHERS:
            _record_empty(self, sender, named, "send")
        return []
    responses = []
    sync_receivers, async_receivers = self._live_receivers(sender)
    if not _ctx.ACTIVE and self is not _SETTING_CHANGED:
        for receiver in sync_receivers:
            response = receiver(signal=self, sender=sender, **named)
            responses.append((receiver, response))
        if async_receivers:
            asend = async_runner(self, sender, named, async_receivers, False, None, None)
            responses.extend(zip(async_receivers, async_to_sync(asend)(), strict=True))
        return responses
    if self is _SETTING_CHANGED:
        _metrics.refresh()
    cursor = (CURSOR.get() or _ctx.global_cursor()) if _ctx.CAPTURING else None
    if cursor is None:
        cursor = _metrics.STATE[0]  # METRICS on: a cursor that keeps nothing
        if cursor is not None and not async_receivers:
            # METRICS with nothing capturing: time the receivers, record no tree.
            merged = {"signal": self, "sender": sender, **named}  # see _call_with
            call = merged if len(merged) == len(named) + 2 else None
            clock = perf_counter_ns
            times = [clock()]
            mark = times.append
            for receiver in sync_receivers:
                try:
                    if call is not None and (
                        type(receiver) is _FUNCTION or bound_to_function(receiver)
                    ):
                        response = receiver(**call)
                    else:
                        response = receiver(signal=self, sender=sender, **named)
                except BaseException:
                    mark(clock())
                    _metrics.observe(self, sync_receivers, times, {len(times) - 2: None})
                    raise
                mark(clock())
                responses.append((receiver, response))
            _metrics.observe(self, sync_receivers, times)
            return responses
    if (
        cursor is None
        or self in (options := cursor[K_OPTIONS]).ignored
        or not (sync_receivers or async_receivers or wants_empty(cursor))
        or (
            dispatch := open_dispatch(
                self, sender, named, "send", cursor, len(sync_receivers) + len(async_receivers)
            )
        )
        is None
    ):
        for receiver in sync_receivers:
            response = receiver(signal=self, sender=sender, **named)
            responses.append((receiver, response))
        if async_receivers:
            asend = async_runner(self, sender, named, async_receivers, False, None, None)
            responses.extend(zip(async_receivers, async_to_sync(asend)(), strict=True))
        return responses
    append = dispatch.append  # the flat calls (see records.D_FLAT)
    db: Any = None
    queries: Any = None
    sql: Any = None
    if options.record_db and sync_receivers:
        db = _db.probe(named)
        if db is not None:
            # Per receiver boundary: statements so far, on_commit callbacks, in atomic.
            boundaries: list[int | bool] = []
            dispatch[D_DB] = boundaries
            db_append = boundaries.append
            queries = _db.QUERIES
            if options.record_sql:
                # RECORD_SQL: this thread's statement entries, and their number
                # at each boundary (where the running call's own entries start).
                sql_state, sql_saved = _db.open_sql(options)
                statements = sql_state[0]
                sql = dispatch[D_SQL] = [statements]
                sql_append = sql.append
    # The cursor names this dispatch as the parent: a dispatch nested in the
    # receiver running now is placed under the flat call being recorded. In
    # place if this thread owns the cursor (see signaltrace.context), else in a
    # cursor of the dispatch's own.
    token = None
    end = 0
    if (
        cursor[K_OWNER] == _get_ident()
        and cursor[K_TRACES] is dispatch[D_TRACES]
        and not async_receivers
        and _running_loop() is None
    ):
        previous = cursor[K_CALL]
        cursor[K_CALL] = dispatch
    else:
        cursor = [dispatch[D_TRACES], dispatch, options, threading.get_ident()]
        token = CURSOR.set(cursor)
    merged = {"signal": self, "sender": sender, **named}  # see _call_with
    # (a "signal" kwarg, which Django's form refuses at each call, keeps it)
    call = merged if len(merged) == len(named) + 2 else None
    try:
        for receiver in sync_receivers:
            if type(receiver) is _FUNCTION:
                append(key(receiver))
                with_call = call
            else:
                append(describe(receiver))
                with_call = call if bound_to_function(receiver) else None
            if db is not None:
                db_append(queries.n)
                db_append(len(db.run_on_commit))
                db_append(db.in_atomic_block)
                if sql is not None:
                    sql_state[1] = at = len(statements)
                    sql_append(at)
            append(perf_counter_ns())
            try:
                if with_call is not None:
                    response = receiver(**with_call)
                else:
                    response = receiver(signal=self, sender=sender, **named)
            except BaseException as exc:
                fail(dispatch, (len(dispatch) - D_FLAT) // 2 - 1, exc, perf_counter_ns())
                if db is not None:
                    db_append(queries.n)
                    db_append(len(db.run_on_commit))
                    if sql is not None:
                        sql_state[1] = at = len(statements)
                        sql_append(at)
                raise
            responses.append((receiver, response))
        end = perf_counter_ns()
        append(end)
        if db is not None:
            db_append(queries.n)
            db_append(len(db.run_on_commit))
            if sql is not None:
                sql_state[1] = at = len(statements)
                sql_append(at)
        if async_receivers:
            end = 0  # the dispatch ends after them
            cursor[K_CALL] = None  # its own cursor (async receivers never run in place)
            dispatch[D_CALLS] = []
            asend = async_runner(
                self, sender, named, async_receivers, False, dispatch, cursor[K_OPTIONS]
            )
            responses.extend(zip(async_receivers, async_to_sync(asend)(), strict=True))
    finally:
        if token is None:
            cursor[K_CALL] = previous
        else:
            CURSOR.reset(token)
        if sql is not None:
            _db.close_sql(sql_state, sql_saved, dispatch)
        dispatch[D_END] = end or perf_counter_ns()
        if _ctx.METRICS:
            _metrics.observe_dispatch(dispatch)
    return responses


def send_robust(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
    if not self.receivers or self.sender_receivers_cache.get(sender) is NO_RECEIVERS:
        if _ctx.EMPTY_WATCHERS:
            _record_empty(self, sender, named, "send_robust")
        return []

    # Call each receiver with whatever arguments it can accept.
    # Return a list of tuple pairs [(receiver, response), ... ].
    responses: list[tuple[Any, Any]] = []
    sync_receivers, async_receivers = self._live_receivers(sender)
    if not _ctx.ACTIVE and self is not _SETTING_CHANGED:
        for receiver in sync_receivers:
            try:
                response = receiver(signal=self, sender=sender, **named)
            except Exception as err:
                self._log_robust_failure(receiver, err)  # type: ignore[attr-defined]
                responses.append((receiver, err))
            else:
                responses.append((receiver, response))
        if async_receivers:
            asend = async_runner(self, sender, named, async_receivers, True, None, None)
            responses.extend(zip(async_receivers, async_to_sync(asend)(), strict=True))
        return responses
    if self is _SETTING_CHANGED:
        _metrics.refresh()
    cursor = (CURSOR.get() or _ctx.global_cursor()) if _ctx.CAPTURING else None
    if cursor is None:
        cursor = _metrics.STATE[0]  # METRICS on: a cursor that keeps nothing
        if cursor is not None and not async_receivers:
            # METRICS with nothing capturing: time the receivers, record no tree.
            merged = {"signal": self, "sender": sender, **named}  # see _call_with
            call = merged if len(merged) == len(named) + 2 else None
            clock = perf_counter_ns
            times = [clock()]
            mark = times.append
            failed: dict[int, int | None] | None = None
            for receiver in sync_receivers:
                try:
                    if call is not None and (
                        type(receiver) is _FUNCTION or bound_to_function(receiver)
                    ):
                        response = receiver(**call)
                    else:
                        response = receiver(signal=self, sender=sender, **named)
                except Exception as err:
                    ended = clock()
                    if failed is None:
                        failed = {}
                    failed[len(times) - 1] = ended
                    self._log_robust_failure(receiver, err)  # type: ignore[attr-defined]
                    responses.append((receiver, err))
                    mark(clock())  # the next receiver starts after Django's log record
                except BaseException:
                    mark(clock())
                    if failed is None:
                        failed = {}
                    failed[len(times) - 2] = None
                    _metrics.observe(self, sync_receivers, times, failed)
                    raise
                else:
                    mark(clock())
                    responses.append((receiver, response))
            _metrics.observe(self, sync_receivers, times, failed)
            return responses
    if (
        cursor is None
        or self in (options := cursor[K_OPTIONS]).ignored
        or not (sync_receivers or async_receivers or wants_empty(cursor))
        or (
            dispatch := open_dispatch(
                self,
                sender,
                named,
                "send_robust",
                cursor,
                len(sync_receivers) + len(async_receivers),
            )
        )
        is None
    ):
        for receiver in sync_receivers:
            try:
                response = receiver(signal=self, sender=sender, **named)
            except Exception as err:
                self._log_robust_failure(receiver, err)  # type: ignore[attr-defined]
                responses.append((receiver, err))
            else:
                responses.append((receiver, response))
        if async_receivers:
            asend = async_runner(self, sender, named, async_receivers, True, None, None)
            responses.extend(zip(async_receivers, async_to_sync(asend)(), strict=True))
        return responses
    append = dispatch.append  # the flat calls (see records.D_FLAT)
    db: Any = None
    queries: Any = None
    sql: Any = None
    if options.record_db and sync_receivers:
        db = _db.probe(named)
        if db is not None:
            # Per receiver boundary: statements so far, on_commit callbacks, in atomic.
            boundaries: list[int | bool] = []
            dispatch[D_DB] = boundaries
            db_append = boundaries.append
            queries = _db.QUERIES
            if options.record_sql:
                # RECORD_SQL: this thread's statement entries, and their number
                # at each boundary (where the running call's own entries start).
                sql_state, sql_saved = _db.open_sql(options)
                statements = sql_state[0]
                sql = dispatch[D_SQL] = [statements]
                sql_append = sql.append
    # The cursor names this dispatch as the parent: a dispatch nested in the
    # receiver running now is placed under the flat call being recorded. In
    # place if this thread owns the cursor (see signaltrace.context), else in a
    # cursor of the dispatch's own.
    token = None
    end = 0
    if (
        cursor[K_OWNER] == _get_ident()
        and cursor[K_TRACES] is dispatch[D_TRACES]
        and not async_receivers
        and _running_loop() is None
    ):
        previous = cursor[K_CALL]
        cursor[K_CALL] = dispatch
    else:
        cursor = [dispatch[D_TRACES], dispatch, options, threading.get_ident()]
        token = CURSOR.set(cursor)
    merged = {"signal": self, "sender": sender, **named}  # see _call_with
    # (a "signal" kwarg, which Django's form refuses at each call, keeps it)
    call = merged if len(merged) == len(named) + 2 else None
    try:
        for receiver in sync_receivers:
            if type(receiver) is _FUNCTION:
                append(key(receiver))
                with_call = call
            else:
                append(describe(receiver))
                with_call = call if bound_to_function(receiver) else None
            if db is not None:
                db_append(queries.n)
                db_append(len(db.run_on_commit))
                db_append(db.in_atomic_block)
                if sql is not None:
                    sql_state[1] = at = len(statements)
                    sql_append(at)
            append(perf_counter_ns())
            try:
                if with_call is not None:
                    response = receiver(**with_call)
                else:
                    response = receiver(signal=self, sender=sender, **named)
            except Exception as err:
                fail(
                    dispatch, (len(dispatch) - D_FLAT) // 2 - 1, err, perf_counter_ns(), db, queries
                )
                self._log_robust_failure(receiver, err)  # type: ignore[attr-defined]
                responses.append((receiver, err))
            except BaseException as exc:
                fail(dispatch, (len(dispatch) - D_FLAT) // 2 - 1, exc, perf_counter_ns())
                if db is not None:
                    db_append(queries.n)
                    db_append(len(db.run_on_commit))
                    if sql is not None:
                        sql_state[1] = at = len(statements)
                        sql_append(at)
                raise
            else:
                responses.append((receiver, response))
        end = perf_counter_ns()
        append(end)
        if db is not None:
            db_append(queries.n)
            db_append(len(db.run_on_commit))
            if sql is not None:
                sql_state[1] = at = len(statements)
                sql_append(at)
        if async_receivers:
            end = 0  # the dispatch ends after them
            cursor[K_CALL] = None  # its own cursor (async receivers never run in place)
            dispatch[D_CALLS] = []
            asend = async_runner(
                self, sender, named, async_receivers, True, dispatch, cursor[K_OPTIONS]
            )
            responses.extend(zip(async_receivers, async_to_sync(asend)(), strict=True))
    finally:
        if token is None:
            cursor[K_CALL] = previous
        else:
            CURSOR.reset(token)
        if sql is not None:
            _db.close_sql(sql_state, sql_saved, dispatch)
        dispatch[D_END] = end or perf_counter_ns()
        if _ctx.METRICS:
            _metrics.observe_dispatch(dispatch)
    return responses


async def _no_sync_receivers() -> list[tuple[Any, Any]]:
    return []


def _sync_part(
    self: Signal,
    sender: Any,
    named: dict[str, Any],
    receivers: list[Any],
    robust: bool,
    dispatch: list[Any] | None,
    options: Any,
) -> Any:
    """The ``sync_send`` that ``asend``/``asend_robust`` run in a thread."""
    if not receivers:
        return _no_sync_receivers

    if dispatch is None:
        if robust:

            @sync_to_async
            def sync_send_robust() -> list[tuple[Any, Any]]:
                responses = []
                for receiver in receivers:
                    try:
                        response = receiver(signal=self, sender=sender, **named)
                    except Exception as err:
                        self._log_robust_failure(receiver, err)  # type: ignore[attr-defined]
                        responses.append((receiver, err))
                    else:
                        responses.append((receiver, response))
                return responses

            return sync_send_robust

        @sync_to_async
        def sync_send() -> list[tuple[Any, Any]]:
            responses = []
            for receiver in receivers:
                response = receiver(signal=self, sender=sender, **named)
                responses.append((receiver, response))
            return responses

        return sync_send

    @sync_to_async
    def sync_send_traced() -> list[tuple[Any, Any]]:
        responses = []
        own = [dispatch[D_TRACES], None, options, threading.get_ident()]
        db = _db.probe(named) if options.record_db else None
        sql = db is not None and options.record_sql
        if sql:
            sql_state, sql_saved = _db.open_sql(options)
            statements = sql_state[0]
        token = CURSOR.set(own)
        try:
            for receiver in receivers:
                call = own[K_CALL] = new_call(receiver, False, dispatch)
                if db is not None:
                    before = _db.snapshot(db)
                    if sql:
                        sql_state[1] = at = len(statements)
                call[C_START] = perf_counter_ns()
                try:
                    response = receiver(signal=self, sender=sender, **named)
                except Exception as err:
                    call[C_END] = perf_counter_ns()
                    call[C_ERROR] = error_info(err)
                    if db is not None:
                        _db.record(db, call, before)
                        if sql:
                            _db.record_sql(call, statements, at)
                    if not robust:
                        raise
                    self._log_robust_failure(receiver, err)  # type: ignore[attr-defined]
                    responses.append((receiver, err))
                except BaseException as exc:
                    call[C_END] = perf_counter_ns()
                    call[C_ERROR] = error_info(exc)
                    if db is not None:
                        _db.record(db, call, before)
                        if sql:
                            _db.record_sql(call, statements, at)
                    raise
                else:
                    call[C_END] = perf_counter_ns()
                    if db is not None:
                        _db.record(db, call, before)
                        if sql:
                            _db.record_sql(call, statements, at)
                    responses.append((receiver, response))
                if sql:
                    sql_state[1] = len(statements)
        finally:
            CURSOR.reset(token)
            if sql:
                _db.close_sql(sql_state, sql_saved)
        return responses

    return sync_send_traced


async def _asend(self: Signal, sender: Any, named: dict[str, Any], robust: bool) -> Any:
    sync_receivers, async_receivers = self._live_receivers(sender)
    if self is _SETTING_CHANGED:
        _metrics.refresh()
    cursor = (CURSOR.get() or _ctx.global_cursor()) if _ctx.CAPTURING else None
    if cursor is None:
        cursor = _metrics.STATE[0]  # METRICS on: a cursor that keeps nothing
    dispatch = None
    options = None
    if (
        cursor is not None
        and self not in cursor[K_OPTIONS].ignored
        and (sync_receivers or async_receivers or wants_empty(cursor))
    ):
        options = cursor[K_OPTIONS]
        dispatch = open_dispatch(
            self,
            sender,
            named,
            "asend_robust" if robust else "asend",
            cursor,
            len(sync_receivers) + len(async_receivers),
        )
        if dispatch is not None:
            dispatch[D_CALLS] = []  # the thread's calls and the tasks' are added at once
    sync_send = _sync_part(self, sender, named, sync_receivers, robust, dispatch, options)
    run_async = async_runner(self, sender, named, async_receivers, robust, dispatch, options)
    try:
        if SHAPE == "taskgroup":
            responses = await sync_send()
            async_responses = await run_async()
        else:
            responses, async_responses = await asyncio.gather(sync_send(), run_async())
        responses.extend(zip(async_receivers, async_responses, strict=True))
        return responses
    finally:
        if dispatch is not None:
            dispatch[D_END] = perf_counter_ns()
            if _ctx.METRICS:
                _metrics.observe_dispatch(dispatch)


async def asend(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
    if not self.receivers or self.sender_receivers_cache.get(sender) is NO_RECEIVERS:
        if _ctx.EMPTY_WATCHERS:
            _record_empty(self, sender, named, "asend")
        return []
    return await _asend(self, sender, named, False)  # type: ignore[no-any-return]


async def asend_robust(self: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
    if not self.receivers or self.sender_receivers_cache.get(sender) is NO_RECEIVERS:
        if _ctx.EMPTY_WATCHERS:
            _record_empty(self, sender, named, "asend_robust")
        return []
    return await _asend(self, sender, named, True)  # type: ignore[no-any-return]


REPLACEMENTS = {
    "send": send,
    "send_robust": send_robust,
    "asend": asend,
    "asend_robust": asend_robust,
}
