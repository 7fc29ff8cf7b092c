"""blinker's ``Signal.send`` and ``send_async`` with recording inline.

The same approach as :mod:`signaltrace._send` for Django: blinker's own loop
(1.9), reproduced line for line, with timing added where the receivers are
called. Installed and removed by :func:`signaltrace.install` /
:func:`signaltrace.uninstall`.
"""

from __future__ import annotations

import threading
from inspect import iscoroutinefunction
from time import perf_counter_ns
from typing import Any

from . import _metrics
from . import context as _ctx
from ._hotpath import error_info, new_call, open_dispatch
from .context import CURSOR, K_OPTIONS, wants_empty
from .records import C_END, C_ERROR, C_START, D_CALLS, D_END, D_TRACES

__all__ = ["REPLACEMENTS", "blinker_send", "blinker_send_async"]


def blinker_send(
    self: Any, sender: Any = None, /, *, _async_wrapper: Any = None, **kwargs: Any
) -> list[tuple[Any, Any]]:
    if self.is_muted:
        return []

    results = []
    if not _ctx.ACTIVE:
        cursor = None
    else:
        cursor = (CURSOR.get() or _ctx.global_cursor()) if _ctx.CAPTURING else None
        if cursor is None:
            cursor = _metrics.STATE[0]  # METRICS on: a cursor that keeps nothing
    if (
        cursor is None
        or self in cursor[K_OPTIONS].ignored
        or not (self.has_receivers_for(sender) or wants_empty(cursor))
        or (
            dispatch := open_dispatch(
                self, sender, kwargs, "blinker.send", cursor, len(self.receivers)
            )
        )
        is None
    ):
        for receiver in self.receivers_for(sender):
            if iscoroutinefunction(receiver):
                if _async_wrapper is None:
                    raise RuntimeError("Cannot send to a coroutine function.")

                result = _async_wrapper(receiver)(sender, **kwargs)
            else:
                result = receiver(sender, **kwargs)

            results.append((receiver, result))

        return results
    dispatch[D_CALLS] = []
    own = [dispatch[D_TRACES], None, cursor[K_OPTIONS], threading.get_ident()]
    token = CURSOR.set(own)
    try:
        for receiver in self.receivers_for(sender):
            is_async = iscoroutinefunction(receiver)
            if is_async and _async_wrapper is None:
                raise RuntimeError("Cannot send to a coroutine function.")
            call = own[1] = new_call(receiver, is_async, dispatch)
            call[C_START] = perf_counter_ns()
            try:
                if is_async:
                    result = _async_wrapper(receiver)(sender, **kwargs)
                else:
                    result = receiver(sender, **kwargs)
            except BaseException as exc:
                call[C_END] = perf_counter_ns()
                call[C_ERROR] = error_info(exc)
                raise
            call[C_END] = perf_counter_ns()
            results.append((receiver, result))
    finally:
        CURSOR.reset(token)
        dispatch[D_END] = perf_counter_ns()
        if _ctx.METRICS:
            _metrics.observe_dispatch(dispatch)
    return results


async def blinker_send_async(
    self: Any, sender: Any = None, /, *, _sync_wrapper: Any = None, **kwargs: Any
) -> list[tuple[Any, Any]]:
    if self.is_muted:
        return []

    results = []
    if not _ctx.ACTIVE:
        cursor = None
    else:
        cursor = (CURSOR.get() or _ctx.global_cursor()) if _ctx.CAPTURING else None
        if cursor is None:
            cursor = _metrics.STATE[0]  # METRICS on: a cursor that keeps nothing
    if (
        cursor is None
        or self in cursor[K_OPTIONS].ignored
        or not (self.has_receivers_for(sender) or wants_empty(cursor))
        or (
            dispatch := open_dispatch(
                self, sender, kwargs, "blinker.send_async", cursor, len(self.receivers)
            )
        )
        is None
    ):
        for receiver in self.receivers_for(sender):
            if not iscoroutinefunction(receiver):
                if _sync_wrapper is None:
                    raise RuntimeError("Cannot send to a non-coroutine function.")

                result = await _sync_wrapper(receiver)(sender, **kwargs)
            else:
                result = await receiver(sender, **kwargs)

            results.append((receiver, result))

        return results
    dispatch[D_CALLS] = []
    own = [dispatch[D_TRACES], None, cursor[K_OPTIONS], threading.get_ident()]
    token = CURSOR.set(own)
    try:
        for receiver in self.receivers_for(sender):
            is_async = iscoroutinefunction(receiver)
            if not is_async and _sync_wrapper is None:
                raise RuntimeError("Cannot send to a non-coroutine function.")
            call = own[1] = new_call(receiver, is_async, dispatch)
            call[C_START] = perf_counter_ns()
            try:
                if is_async:
                    result = await receiver(sender, **kwargs)
                else:
                    result = await _sync_wrapper(receiver)(sender, **kwargs)
            except BaseException as exc:
                call[C_END] = perf_counter_ns()
                call[C_ERROR] = error_info(exc)
                raise
            call[C_END] = perf_counter_ns()
            results.append((receiver, result))
    finally:
        CURSOR.reset(token)
        dispatch[D_END] = perf_counter_ns()
        if _ctx.METRICS:
            _metrics.observe_dispatch(dispatch)
    return results


REPLACEMENTS = {"send": blinker_send, "send_async": blinker_send_async}
