"""Running a dispatch's async receivers, as Django's version does it.

Django 5.2 and 6.0 run async receivers with :func:`asyncio.gather` (and, in
``asend``, the sync receivers concurrently with them); Django 6.1 runs the sync
receivers first and then the async ones through ``_run_parallel``, an
:class:`asyncio.TaskGroup` whose tasks share one copied context that is copied
back into the caller (:data:`signaltrace._compat.SHAPE` tells which). The
functions here build the coroutine that runs a dispatch's async receivers,
untraced (Django's code, verbatim) or traced.

Traced variants keep the receiver at the same stack depth as Django does:
under ``gather`` the receiver coroutine is the task itself (its start is taken
when the task is created and its end by a done-callback); under ``TaskGroup``
the timing sits in the ``run(i, coro)`` frame that Django has there too.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from time import perf_counter_ns
from typing import Any

from django.dispatch import dispatcher

from ._compat import SHAPE
from ._hotpath import error_info, new_call
from .context import CURSOR
from .records import C_DISPATCH, C_END, C_ERROR, C_START, D_TRACES

__all__ = ["async_runner", "robust_wrapper"]

Receiver = Callable[..., Any]


def _task_done(call: list[Any], task: asyncio.Task[Any]) -> None:
    call[C_END] = perf_counter_ns()
    if not task.cancelled():
        exc = task.exception()
        if exc is not None:
            call[C_ERROR] = error_info(exc)


def _restore_context(context: contextvars.Context) -> None:
    """Django 6.1's ``_restore_context``, leaving signaltrace's own cursor alone."""
    for cvar in context:
        if cvar is CURSOR:
            continue
        cvalue = context.get(cvar)
        try:
            if cvar.get() != cvalue:
                cvar.set(cvalue)
        except LookupError:
            cvar.set(cvalue)


async def _run_parallel(
    calls: Sequence[list[Any]], coros: Sequence[Coroutine[Any, Any, Any]], options: Any
) -> list[Any]:
    """Django 6.1's ``_run_parallel`` with each receiver's call timed in ``run``."""
    context = contextvars.copy_context()

    if len(coros) == 0:
        return []

    by_task: dict[asyncio.Task[Any] | None, list[Any]] = {}
    context.run(
        CURSOR.set, [calls[0][C_DISPATCH][D_TRACES], by_task, options, threading.get_ident()]
    )

    async def run(i: int, coro: Awaitable[Any], call: list[Any]) -> None:
        call[C_START] = perf_counter_ns()
        try:
            results[i] = await coro
        except BaseException as exc:
            # Robust dispatch catches Exception in its wrapper, so what reaches
            # here is the receiver's own failure (or a BaseException).
            call[C_END] = perf_counter_ns()
            call[C_ERROR] = error_info(exc)
            raise
        call[C_END] = perf_counter_ns()

    try:
        async with asyncio.TaskGroup() as tg:
            results: list[Any] = [None] * len(coros)
            for i, coro in enumerate(coros):
                task = tg.create_task(run(i, coro, calls[i]), context=context)
                by_task[task] = calls[i]
        return results
    except BaseExceptionGroup as exception_group:
        if len(exception_group.exceptions) == 1:
            raise exception_group.exceptions[0]  # noqa: B904 - as Django does
        raise
    finally:
        by_task.clear()
        _restore_context(context=context)


def robust_wrapper(
    signal: Any, receiver: Receiver, call: list[Any] | None, sender: Any, named: Any
) -> Any:
    """Django's ``asend_and_wrap_exception``, recording the swallowed error."""

    async def asend_and_wrap_exception() -> Any:
        try:
            response = await receiver(signal=signal, sender=sender, **named)
        except Exception as err:
            if call is not None:
                call[C_ERROR] = error_info(err)
            signal._log_robust_failure(receiver, err)
            return err
        return response

    return asend_and_wrap_exception()


def async_runner(
    signal: Any,
    sender: Any,
    named: dict[str, Any],
    receivers: Sequence[Receiver],
    robust: bool,
    dispatch: list[Any] | None,
    options: Any,
) -> Callable[[], Coroutine[Any, Any, list[Any]]]:
    """An ``async def`` that runs ``receivers`` as Django's dispatch does.

    It returns the results in receiver order (exceptions in place, when
    ``robust``). With ``dispatch`` None it is Django's code; otherwise each
    receiver's call is recorded into ``dispatch``.
    """
    if dispatch is None:
        if robust:

            def make(receiver: Receiver) -> Any:
                return robust_wrapper(signal, receiver, None, sender, named)

        else:

            def make(receiver: Receiver) -> Any:
                return receiver(signal=signal, sender=sender, **named)

        if SHAPE == "taskgroup":

            async def run_plain() -> list[Any]:
                return await dispatcher._run_parallel(*(make(r) for r in receivers))  # type: ignore[attr-defined,no-any-return]

        else:

            async def run_plain() -> list[Any]:
                return await asyncio.gather(*(make(r) for r in receivers))

        return run_plain

    def make_coros() -> tuple[list[list[Any]], list[Coroutine[Any, Any, Any]]]:
        # Calls are created when the receivers start, so that on 6.1 (sync
        # receivers first) the dispatch lists them in the order they ran.
        calls = [new_call(receiver, True, dispatch) for receiver in receivers]
        if robust:
            return calls, [
                robust_wrapper(signal, r, c, sender, named)
                for r, c in zip(receivers, calls, strict=True)
            ]
        return calls, [receiver(signal=signal, sender=sender, **named) for receiver in receivers]

    if SHAPE == "taskgroup":

        async def run_traced() -> list[Any]:
            return await _run_parallel(*make_coros(), options)

        return run_traced

    traces = dispatch[D_TRACES]

    async def run_gathered() -> list[Any]:
        calls, coros = make_coros()
        loop = asyncio.get_running_loop()
        tasks = []
        for coro, call in zip(coros, calls, strict=True):
            context = contextvars.copy_context()
            context.run(CURSOR.set, [traces, call, options, threading.get_ident()])
            call[C_START] = perf_counter_ns()
            task = loop.create_task(coro, context=context)
            task.add_done_callback(functools.partial(_task_done, call))
            tasks.append(task)
        return await asyncio.gather(*tasks)

    return run_gathered
