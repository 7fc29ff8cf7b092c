"""``SignalTraceMiddleware``: one trace per request, for WSGI and ASGI.

.. code-block:: python

    MIDDLEWARE = ["signaltrace.middleware.SignalTraceMiddleware", *MIDDLEWARE]

For every request the middleware opens a :class:`~signaltrace.capture` of kind
``"request"``, runs
the rest of the stack, and closes the trace when the response is returned,
or, for a streaming response, when its content is exhausted or the response is
closed. The finished trace goes to the sinks (the store the viewer reads,
structlog event, console tree; see :mod:`signaltrace.sinks`). Where
``SHOW_CALLBACK(request)`` allows, the response gets a ``Server-Timing`` entry
and an ``X-Signaltrace-Id`` header (aggregates only) holding the trace's
:attr:`~signaltrace.Trace.trace_id`, which is also ``meta["id"]``.

The capture is entered in a private copy of the context and only the
recording cursor is set (and reset) around the view, so the request's own
context is left exactly as it was found: pooled WSGI threads never carry a
trace into the next request. A streaming response that is garbage collected
without being closed (a server that drops it) still ends its trace, so open
captures never pile up (see :meth:`_Run.abandon`).

Settings errors, which the system checks report but servers such as gunicorn
and uvicorn never run, are logged once by the middleware, naming the key; while
there are any, requests are not traced. A middleware used without
``"signaltrace"`` in ``INSTALLED_APPS`` logs a warning once and still traces.
"""

from __future__ import annotations

import contextvars
import os
import queue
import random
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import FrameType
from typing import Any, Final

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.apps import apps
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.urls import ResolverMatch
from django.utils.module_loading import import_string

from . import sinks
from .capturing import capture
from .conf import config_errors, get_config, user_settings
from .context import CURSOR, log_failure, logger
from .naming import type_label
from .summary import summarize
from .traces import Trace

__all__ = ["PATH", "SignalTraceMiddleware", "new_id", "settings_errors", "show_trace", "shown"]

PATH: Final = "signaltrace.middleware.SignalTraceMiddleware"
#: The URL namespace of the trace viewer, whose own requests are not recorded.
VIEWER_APP: Final = "signaltrace"
#: The app label ``INSTALLED_APPS`` must hold for checks, commands and the panel.
APP: Final = "signaltrace"
#: This package's directory: frames from files under it are signaltrace's own.
_PACKAGE_DIR: Final = os.path.dirname(os.path.abspath(__file__)) + os.sep
_FINALIZE_FILE: Final = weakref.finalize.__call__.__code__.co_filename


def show_trace(request: HttpRequest) -> bool:
    """The default ``SHOW_CALLBACK``: ``DEBUG`` is on and the client is in ``INTERNAL_IPS``.

    .. versionadded:: 0.1.0
    """
    return bool(settings.DEBUG) and request.META.get("REMOTE_ADDR") in settings.INTERNAL_IPS


_callback_cache: tuple[object, Callable[[HttpRequest], Any]] | None = None


def _show_callback(config: dict[str, Any]) -> Callable[[HttpRequest], Any]:
    global _callback_cache
    cached = _callback_cache
    if cached is not None and cached[0] is config:
        return cached[1]
    callback = config["SHOW_CALLBACK"]
    if isinstance(callback, str):
        callback = import_string(callback)
    _callback_cache = (config, callback)
    return callback  # type: ignore[no-any-return]


def shown(request: HttpRequest, config: dict[str, Any] | None = None) -> bool:
    """Whether ``SHOW_CALLBACK`` lets ``request`` see trace details (False if it fails).

    :param config: the settings from :func:`~signaltrace.conf.get_config`, if at hand.

    .. versionadded:: 0.1.0
    """
    try:
        return bool(_show_callback(config or get_config())(request))
    except Exception as err:
        log_failure("SHOW_CALLBACK", err)
        return False


def _view_name(match: ResolverMatch | None) -> str | None:
    if match is None:
        return None
    target = getattr(match.func, "view_class", match.func)
    module = getattr(target, "__module__", None)
    name = getattr(target, "__qualname__", None)
    if isinstance(module, str) and isinstance(name, str):
        return f"{module}.{name}"
    return str(match.view_name)


class _Run:
    """The trace of one request, from the view's start to the response's end."""

    __slots__ = (
        "_capture",
        "_context",
        "_done",
        "_finalizer",
        "_lock",
        "_snapshot",
        "config",
        "cursor",
        "trace",
    )

    def __init__(self, request: HttpRequest, config: dict[str, Any]) -> None:
        self.config = config
        method, path = request.method or "", request.path
        self._capture = capture(label=f"{method} {path}", kind="request")
        # Enter in a private context: the request's context only ever sees
        # CURSOR set and reset around the view (see the module docstring).
        self._context = contextvars.copy_context()
        self.trace, self.cursor = self._context.run(self._enter)
        try:
            meta = self.trace.meta
            meta["id"] = self.trace.trace_id  # the viewer id, as before trace ids
            meta["method"] = method
            meta["path"] = path
        except BaseException:
            self._context.run(self._capture.__exit__, None, None, None)
            raise
        self._lock: threading.Lock | None = None  # only streams can close from elsewhere
        self._done = False
        self._snapshot: contextvars.Context | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def _enter(self) -> tuple[Trace, list[Any] | None]:
        trace = self._capture.__enter__()
        return trace, CURSOR.get()

    def finish(
        self,
        request: HttpRequest,
        response: HttpResponseBase | None,
        exc: BaseException | None = None,
    ) -> None:
        """Record the outcome, add headers, and close (now or when the stream ends)."""
        try:
            trace = self.trace
            meta = trace.meta
            match = getattr(request, "resolver_match", None)
            meta["view"] = _view_name(match)
            if response is None:
                meta["status"] = None
                meta["exception"] = type_label(type(exc))
            else:
                meta["status"] = response.status_code
            meta["streaming"] = streaming = response is not None and response.streaming
            trace.label = f"{meta['method']} {meta['path']} {meta['status'] or 'exception'}"
            internal = match is not None and VIEWER_APP in match.app_names
            if response is not None and streaming and not internal:
                self._stream(response)
            else:
                self._close(emit=not internal)
            if response is not None and not internal and shown(request, self.config):
                _add_headers(response, trace, self.config)
        except Exception as err:
            log_failure("middleware", err)
            self.close_stream()  # never leave a capture open; idempotent

    def _close(self, *, emit: bool) -> None:
        if self._lock is None:  # not streaming: only the request's own flow closes
            if self._done:
                return
            self._done = True
        else:
            with self._lock:
                if self._done:
                    return
                self._done = True
        if self._finalizer is not None:
            self._finalizer.detach()
        # The private context the capture was entered in: its token resets there,
        # whichever thread this is, and the request's own context is not touched.
        self._context.run(self._capture.__exit__, None, None, None)
        if not emit:
            return
        if self._snapshot is None:
            sinks.emit(self.trace, self.config)
        else:
            self._snapshot.run(sinks.emit, self.trace, self.config)

    def close_stream(self) -> None:
        """Close the trace (if still open) and hand it to the sinks; never raises."""
        try:
            self._close(emit=True)
        except Exception as err:
            log_failure("middleware stream", err)

    def abandon(self) -> None:
        """Close the trace of a response that was dropped without being closed.

        Only the capture is closed (the trace, the open-capture counters); the
        trace is not sent to the sinks, as this runs wherever the garbage
        collector does. Idempotent, like :meth:`close_stream`; never raises.
        """
        try:
            self._close(emit=False)
        except Exception as err:
            log_failure("middleware abandoned stream", err)

    def _stream(self, response: Any) -> None:
        # Sinks run later, in this context (structlog's contextvars included).
        self._snapshot = contextvars.copy_context()
        self._lock = threading.Lock()
        response._resource_closers.append(self.close_stream)
        # A server that never closes the response must not leave the capture
        # open for good. The finalizer holds this run, never the response.
        finalizer = weakref.finalize(response, _collected, self)
        finalizer.atexit = False
        self._finalizer = finalizer
        if getattr(response, "file_to_stream", None) is not None:
            # Left alone so wsgi.file_wrapper/sendfile still applies; reading a
            # file sends no signals, and close() ends the trace.
            return
        if response.is_async:
            response.streaming_content = _AsyncTraced(response.streaming_content, self)
        else:
            response.streaming_content = _SyncTraced(response.streaming_content, self)


def _add_headers(response: HttpResponseBase, trace: Trace, config: dict[str, Any]) -> None:
    if config["SERVER_TIMING"]:
        summary = summarize(trace, config["SLOW_MS"])
        plural = "" if summary.calls == 1 else "s"
        entry = (
            f"signaltrace;dur={summary.receiver_time_ns / 1e6:.3f};"
            f'desc="{summary.calls} receiver call{plural}"'
        )
        existing = response.headers.get("Server-Timing")
        response.headers["Server-Timing"] = f"{existing}, {entry}" if existing else entry
    response.headers["X-Signaltrace-Id"] = trace.trace_id


class _SyncTraced:
    """Streaming content that records into the request's trace while it is read."""

    __slots__ = ("_inner", "_run")

    def __init__(self, inner: Iterator[bytes], run: _Run) -> None:
        self._inner = inner
        self._run = run

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        token = CURSOR.set(self._run.cursor)
        try:
            chunk = next(self._inner)
        except StopIteration:
            CURSOR.reset(token)
            self._run.close_stream()
            raise
        except BaseException:
            CURSOR.reset(token)
            raise
        CURSOR.reset(token)
        return chunk


class _AsyncTraced:
    """The async counterpart of :class:`_SyncTraced`."""

    __slots__ = ("_inner", "_run")

    def __init__(self, inner: AsyncIterator[bytes], run: _Run) -> None:
        self._inner = inner
        self._run = run

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        token = CURSOR.set(self._run.cursor)
        try:
            chunk = await anext(self._inner)
        except StopAsyncIteration:
            CURSOR.reset(token)
            self._run.close_stream()
            raise
        except BaseException:
            CURSOR.reset(token)
            raise
        CURSOR.reset(token)
        return chunk


#: Runs of collected responses, left for the next request to close (see
#: :func:`_collected`). ``SimpleQueue.put`` may be called from a finalizer.
_abandoned: Final[queue.SimpleQueue[_Run]] = queue.SimpleQueue()


def _collected(run: _Run) -> None:
    """The finalizer of a streaming response: close its run's capture.

    The garbage collector runs wherever this thread happens to be, and closing
    takes locks (the open-capture count's, the trace's, the run's) that are not
    reentrant. signaltrace holds them only around its own code, never while it
    calls out to other code, so the interrupted frame tells: if it is
    signaltrace's, the run is left to the next request through the middleware
    to close; otherwise it is closed here and now, in this thread.
    """
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == _FINALIZE_FILE:
        frame = frame.f_back  # weakref.finalize's own frames
    if frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        _abandoned.put(run)
        return
    run.abandon()


def _close_abandoned() -> None:
    """Close the runs :func:`_collected` could not close where it ran."""
    while True:
        try:
            run = _abandoned.get_nowait()
        except queue.Empty:
            return
        run.abandon()


def new_id() -> str:
    """A new trace id: 32 random hex digits (unique across processes, unguessable).

    What every :attr:`Trace.trace_id <signaltrace.Trace.trace_id>` is made of; the
    middleware's traces use their own (``X-Signaltrace-Id`` and ``meta["id"]`` too).

    .. versionadded:: 0.1.0
    """
    return os.urandom(16).hex()


_errors_cache: tuple[object, tuple[str, ...]] | None = None


def settings_errors() -> tuple[str, ...]:
    """The errors of the ``SIGNALTRACE`` setting, each logged once; empty if none.

    Each is a message of :func:`~signaltrace.conf.config_errors` (with its
    hint), which names the key. Worked out and logged once per ``SIGNALTRACE``
    value (a new dict, as from ``override_settings``, is checked again), so a
    request pays one identity test. While there are errors the middleware does
    not trace: the system checks that would report them do not run under
    servers such as gunicorn or uvicorn, so this log line is where they show
    (and the viewer's banner).
    """
    global _errors_cache
    user = user_settings()
    cached = _errors_cache
    if cached is not None and cached[0] is user:
        return cached[1]
    try:
        errors = tuple(
            f"{message} {hint}" if hint else message for _key, message, hint in config_errors(user)
        )
    except Exception as err:
        log_failure("settings validation", err)
        errors = ()
    _errors_cache = (user, errors)
    for error in errors:
        logger.error(
            "signaltrace: settings error, requests are not traced until it is fixed: %s",
            error,
        )
    return errors


_apps_checked: object = None


def _check_installed() -> None:
    """Warn once (per ``INSTALLED_APPS`` value) if the app is not installed."""
    global _apps_checked
    installed = getattr(settings, "INSTALLED_APPS", None)
    if installed is _apps_checked or not apps.apps_ready:
        return
    _apps_checked = installed
    if not apps.is_installed(APP):
        logger.warning(
            'signaltrace: %s is in MIDDLEWARE but "%s" is not in INSTALLED_APPS. Requests '
            "are still traced, but signaltrace's system checks (its settings checks "
            "included) do not run, its management commands (signaltrace_receivers, "
            "signaltrace_run) do not exist and the debug-toolbar panel cannot find its "
            'template. Add "%s" to INSTALLED_APPS.',
            PATH,
            APP,
            APP,
        )


def _start(request: HttpRequest) -> _Run | None:
    if not _abandoned.empty():
        _close_abandoned()
    if settings_errors():
        return None
    config = get_config()
    if not config["ENABLED"]:
        return None
    rate = config["SAMPLE_RATE"]
    if rate < 1 and random.random() >= rate:
        return None  # not sampled: the request runs exactly as without the middleware
    try:
        return _Run(request, config)
    except Exception as err:
        log_failure("middleware start", err)
        return None


class SignalTraceMiddleware:
    """Trace the signals of every request; sync- and async-capable.

    .. versionadded:: 0.1.0
    """

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]],
    ) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
        # Start-up (Django builds the middleware chain once per handler): report
        # what servers without system checks would otherwise keep quiet.
        _check_installed()
        settings_errors()

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        run = _start(request)
        if run is None:
            return self.get_response(request)
        run.trace.meta["async"] = False
        token = CURSOR.set(run.cursor)
        try:
            response: HttpResponseBase = self.get_response(request)  # type: ignore[assignment]
        except BaseException as exc:
            CURSOR.reset(token)
            run.finish(request, None, exc)
            raise
        CURSOR.reset(token)
        run.finish(request, response)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        run = _start(request)
        if run is None:
            return await self.get_response(request)  # type: ignore[no-any-return, misc]
        run.trace.meta["async"] = True
        token = CURSOR.set(run.cursor)
        try:
            response: HttpResponseBase = await self.get_response(request)  # type: ignore[misc]
        except BaseException as exc:
            CURSOR.reset(token)
            run.finish(request, None, exc)
            raise
        CURSOR.reset(token)
        run.finish(request, response)
        return response
