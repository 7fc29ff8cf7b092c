"""Sinks: where finished request traces go.

A sink is any object with an ``emit(trace)`` method (the :class:`Sink`
protocol). The middleware hands every finished request trace to :func:`emit`,
which gives it to the built-in sinks its settings turn on, then to the extra
sinks listed in ``SINKS``:

- the store (``STORE``, :mod:`signaltrace.stores`): the last ``BUFFER_SIZE``
  traces, read by the trace viewer (on unless ``BUFFER_SIZE`` is 0); named
  ``memory`` when it is kept in this process, ``store`` otherwise;
- :class:`~signaltrace.sinks.structlog.StructlogSink`: one
  ``signaltrace.request`` event per request (on unless ``LOG_LEVEL`` is None);
- :class:`~signaltrace.sinks.console.ConsoleSink`: the text tree on stderr
  (``CONSOLE``; by default, under ``runserver`` with ``DEBUG``, of the requests
  that dispatched or skipped something);
- :class:`~signaltrace.sinks.otel.OpenTelemetrySink`: one span per dispatch and
  per receiver call (``OTEL``; needs the ``otel`` extra, imported only when on).

Then the trace is announced on signaltrace's own blinker signals
(:mod:`signaltrace.signals`): ``receiver_failed``, ``slow_receiver`` and
``trace_finished``.

Where they run: the memory store and the structlog event run in the request,
as logging does (the viewer finds a trace as soon as its response is out; a
log event is handled where it is logged). Everything else (a shared store
such as ``CacheStore`` or ``DatabaseStore``, the console tree,
OpenTelemetry, the ``SINKS`` and the announcements, so the receivers of
signaltrace's signals too) runs on one background thread, the *sink worker*,
in a copy of the request's context (structlog's context variables, the current
OpenTelemetry span). The worker starts on first use, and again in a forked
child; its queue holds at most ``SINK_QUEUE_SIZE`` traces (more are dropped
and counted); a sink that takes longer than ``SINK_TIMEOUT_MS`` cannot be
interrupted, but is counted, logged once and skipped for :data:`COOL_DOWN_S`
seconds. :func:`flush` waits for the queue to drain (tests), and so does the
interpreter's exit, for up to :data:`EXIT_TIMEOUT_S` seconds.

A sink or signal receiver that raises is counted (:func:`signaltrace.stats`),
logged once and skipped: it never affects the request.

.. code-block:: python

    class PrintSink:
        def emit(self, trace: signaltrace.Trace) -> None:
            print(trace.meta["path"], len(trace.calls))

    SIGNALTRACE = {"SINKS": ["myproject.tracing.PrintSink"]}
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol, runtime_checkable

from django.db import close_old_connections
from django.utils.module_loading import import_string

from signaltrace import _stats
from signaltrace.conf import DEFAULTS, get_config
from signaltrace.context import CURSOR, log_failure, logger
from signaltrace.signals import receiver_failed, send_finished, slow_receiver, trace_finished
from signaltrace.stores import StoreSink, get_store, is_in_process

from .console import ConsoleSink, console_mode
from .structlog import StructlogSink

if TYPE_CHECKING:
    from collections.abc import Callable

    from signaltrace.traces import Trace

__all__ = ["Sink", "active_sinks", "emit", "flush", "keep", "load_sink"]

#: The name of the sink worker's thread.
WORKER_NAME: Final = "signaltrace-sinks"
#: How the announcements on :mod:`signaltrace.signals` are named in counts and logs.
ANNOUNCEMENTS: Final = "signaltrace.signals"
#: Seconds a worker sink is skipped after a call that overran ``SINK_TIMEOUT_MS``.
COOL_DOWN_S: float = 30.0
#: Seconds the flush at interpreter exit waits, at most, for the queue to drain.
EXIT_TIMEOUT_S: Final = 5.0


@runtime_checkable
class Sink(Protocol):
    """Receives finished traces. ``emit`` must not keep request objects alive.

    .. versionadded:: 0.1.0
    """

    def emit(self, trace: Trace) -> None:
        """Handle one finished trace: called once per trace, on the sink worker thread
        (only the built-in ring buffer and structlog sinks are called in the request)."""


def load_sink(path: str) -> Sink:
    """Import ``path``: a :class:`Sink` class (instantiated without arguments) or instance.

    :raises ImportError: if ``path`` does not import.
    :raises TypeError: if the object has no ``emit`` method.

    .. versionadded:: 0.1.0
    """
    obj = import_string(path)
    sink = obj() if isinstance(obj, type) else obj
    if not isinstance(sink, Sink):
        raise TypeError(f"{path} is not a sink: it has no emit(trace) method")
    return sink


Named = tuple[str, Sink]


class _Resolved(NamedTuple):
    """The sinks of one settings dict, split by where they run."""

    config: object
    every: tuple[Named, ...]
    in_request: tuple[Named, ...]
    on_worker: tuple[Named, ...]
    #: Worker sink name -> ``time.monotonic()`` until which it is skipped.
    #: Only the worker thread reads and writes it.
    cooling: dict[str, float]


_cache: _Resolved | None = None


def _builtin(config: dict[str, Any]) -> tuple[list[Named], list[Named]]:
    """The built-in sinks the settings turn on: ``(in the request, on the worker)``."""
    in_request: list[Named] = []
    on_worker: list[Named] = []
    store = _store_sink(config)
    if store is not None:
        (in_request if store[0] == "memory" else on_worker).append(store)
    if config["LOG_LEVEL"] is not None:
        in_request.append(("structlog", StructlogSink(config)))
    console = console_mode(config)
    if console is not None:
        on_worker.append(("console", ConsoleSink(mode=console)))
    if config["OTEL"]:
        try:
            from .otel import OpenTelemetrySink
        except ImportError as err:  # the otel extra is missing (check signaltrace.E002)
            log_failure("OTEL", err)
        else:
            on_worker.append(("otel", OpenTelemetrySink()))
    return in_request, on_worker


def _store_sink(config: dict[str, Any]) -> Named | None:
    """The configured store as a sink: ``("memory", store)`` if it is written in the
    request (the memory store, in process), else ``("store", StoreSink)`` for the worker."""
    store = get_store(config)
    if store is None:
        return None
    if is_in_process(store):
        return ("memory", store) if isinstance(store, Sink) else ("memory", StoreSink(store))
    return ("store", StoreSink(store))


def _resolve(config: dict[str, Any]) -> _Resolved:
    global _cache
    cached = _cache
    if cached is not None and cached.config is config:
        return cached
    in_request, on_worker = _builtin(config)
    for path in config["SINKS"]:
        try:
            on_worker.append((path, load_sink(path)))
        except Exception as err:
            log_failure(f"SINKS {path}", err)
    resolved = _Resolved(config, (*in_request, *on_worker), tuple(in_request), tuple(on_worker), {})
    _cache = resolved
    return resolved


def active_sinks(config: dict[str, Any] | None = None) -> tuple[tuple[str, Sink], ...]:
    """``(name, sink)`` pairs for the current settings, resolved once per settings dict.

    In the order they are given a trace: first the two that run in the request
    (``memory``, ``structlog``), then those the sink worker runs.

    :param config: the settings from :func:`~signaltrace.conf.get_config`, if at hand.

    .. versionadded:: 0.1.0
    """
    return _resolve(get_config() if config is None else config).every


def emit(trace: Trace, config: dict[str, Any] | None = None) -> None:
    """Hand ``trace`` to the active sinks, then announce it on :mod:`signaltrace.signals`.

    The ring buffer and the structlog event get it now, in the caller's flow;
    the other sinks and the announcements get it on the sink worker thread (see
    the module docstring), in a copy of the caller's context. A sink or signal
    receiver that raises is counted, logged once and skipped. Never raises
    because of a sink, a receiver or the worker.

    :param config: the settings from :func:`~signaltrace.conf.get_config`, if at hand.

    .. versionadded:: 0.1.0
    """
    if config is None:
        config = get_config()
    resolved = _resolve(config)
    _stats.count("traces")
    if trace.dropped:
        _stats.count("dropped_events", trace.dropped)
    for name, sink in resolved.in_request:
        try:
            sink.emit(trace)
        except Exception as err:
            _stats.count("sink_failures")
            log_failure(f"sink {name}", err)
    # With nothing connected, announcing is a no-op: queue only if there is work.
    announce = bool(
        trace_finished.receivers or receiver_failed.receivers or slow_receiver.receivers
    )
    if resolved.on_worker or announce:
        _enqueue(trace, config, resolved.on_worker, announce=announce, cooling=resolved.cooling)


def keep(trace: Trace, config: dict[str, Any] | None = None) -> None:
    """Hand ``trace`` to the configured store only (no other sink, no announcement).

    For traces that are not requests: ``signaltrace_run``, ``TRACE_COMMANDS``,
    a task. An in-process store (the memory store) keeps it now; any other
    store gets it on the sink worker thread, like the worker's sinks (a full
    queue drops it, counted as ``queue_dropped``). Nothing is kept while
    ``BUFFER_SIZE`` is 0. Never raises: a store failure is counted as
    ``store_failures`` and logged once.

    :param config: the settings from ``signaltrace.conf.get_config()``, if at hand.

    .. versionadded:: 0.1.0
    """
    try:
        if config is None:
            config = get_config()
        store = _store_sink(config)
        if store is None:
            return
        if store[0] == "memory":
            _stats_contained(store, trace)
        else:
            _enqueue(trace, config, (store,), announce=False)
    except Exception as err:
        log_failure("keeping a trace", err)


def _stats_contained(named: Named, trace: Trace) -> None:
    """An in-request sink call, as :func:`emit` makes it: a failure counted and logged once."""
    name, sink = named
    try:
        sink.emit(trace)
    except Exception as err:
        _stats.count("sink_failures")
        log_failure(f"sink {name}", err)


def flush(timeout: float | None = 10.0) -> bool:
    """Wait until the sink worker has handed every queued trace to its sinks.

    For tests (a sink's output is there once this returns ``True``) and for
    shutting down; the interpreter's exit does the same, for up to five
    seconds. Called from a sink, on the worker itself, it returns ``False`` at
    once. The ring buffer and the structlog event need no flush: they get the
    trace in the request.

    :param timeout: seconds to wait at most; ``None`` waits as long as it takes.
    :returns: whether the queue is drained (``False``: the time ran out).

    .. versionadded:: 0.1.0
    """
    return _worker.flush(timeout)


# -- the sink worker -----------------------------------------------------------


def _setting(config: dict[str, Any], key: str, valid: Callable[[Any], bool]) -> Any:
    """``config[key]``, or its default if it is missing or invalid (the checks report it)."""
    value = config.get(key, DEFAULTS[key])
    return value if valid(value) else DEFAULTS[key]


def _is_size(value: Any) -> bool:
    return type(value) is int and value >= 1


def _is_budget(value: Any) -> bool:
    return value is None or (type(value) in (int, float) and 0 < value < float("inf"))


class _Job:
    """One trace for the worker: the sinks to give it to, and the caller's context."""

    __slots__ = ("announce", "budget_s", "context", "cooling", "slow_ms", "targets", "trace")

    def __init__(
        self,
        trace: Trace,
        config: dict[str, Any],
        targets: tuple[Named, ...],
        announce: bool,
        cooling: dict[str, float],
    ) -> None:
        self.trace = trace
        self.targets = targets
        self.announce = announce
        self.cooling = cooling
        self.slow_ms: float = config["SLOW_MS"]
        budget_ms = _setting(config, "SINK_TIMEOUT_MS", _is_budget)
        self.budget_s: float | None = None if budget_ms is None else budget_ms / 1000
        self.context = contextvars.copy_context()

    def run(self) -> None:
        """Give the trace to each sink, then announce it (on the worker thread)."""
        self.context.run(self._run)

    def _run(self) -> None:
        CURSOR.set(None)  # what the sinks dispatch belongs to no request's trace
        for name, sink in self.targets:
            _timed(name, f"sink {name}", self, sink.emit, self.trace)
        if self.announce:
            _timed(ANNOUNCEMENTS, ANNOUNCEMENTS, self, _announce, self.trace, self.slow_ms)
        try:
            close_old_connections()  # as at the end of a request, for sinks using the ORM
        except Exception as err:
            log_failure("sink worker database connections", err)


def _announce(trace: Trace, slow_ms: float) -> None:
    send_finished(trace, slow_ms)  # looked up at each call (tests replace it)


_overruns_logged: set[str] = set()


def _timed(name: str, place: str, job: _Job, call: Callable[..., None], *args: Any) -> None:
    """``call(*args)`` unless ``name`` cools down; count and contain a failure or overrun."""
    cooling = job.cooling
    until = cooling.get(name)
    if until is not None:
        if time.monotonic() < until:
            _stats.count("sink_skipped")
            return
        del cooling[name]
    start = time.perf_counter()
    try:
        call(*args)
    except BaseException as err:  # even SystemExit: the worker must go on
        _stats.count("sink_failures")
        log_failure(place, err)
    elapsed = time.perf_counter() - start
    budget = job.budget_s
    if budget is not None and elapsed > budget:
        _stats.count("sink_overruns")
        cooling[name] = time.monotonic() + COOL_DOWN_S
        if name not in _overruns_logged:
            _overruns_logged.add(name)
            logger.warning(
                "signaltrace: sink %s took %.0f ms, more than SINK_TIMEOUT_MS (%.0f ms). It "
                "could not be interrupted; it is skipped for the next %g s (counted in "
                "signaltrace.stats()['sink_skipped']). Logged once per sink.",
                name,
                elapsed * 1000,
                budget * 1000,
                COOL_DOWN_S,
            )


class _Worker:
    """One daemon thread and its bounded queue of jobs; started on first use."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._jobs: deque[_Job] = deque()
        self._busy = False
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._jobs)

    def put(self, job: _Job, limit: int) -> bool:
        """Queue ``job``, starting the thread if needed; ``False`` if it was dropped."""
        with self._cond:
            if len(self._jobs) >= limit:
                return False
            if not self._alive() and not self._start():
                return False
            self._jobs.append(job)
            self._cond.notify()
        return True

    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _start(self) -> bool:
        """Start the thread (under the lock); ``False``, logged, if it cannot be started."""
        try:
            thread = threading.Thread(target=self._loop, name=WORKER_NAME, daemon=True)
            thread.start()
        except Exception as err:  # "can't start new thread", interpreter shutdown
            log_failure("sink worker", err)
            return False
        self._thread = thread
        _flush_at_exit.register()
        return True

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    self._cond.wait()
                job = self._jobs.popleft()
                self._busy = True
            try:
                job.run()
            except BaseException as err:  # _Job.run contains its sinks; this is a bug
                log_failure("sink worker", err)
            finally:
                del job  # drop the trace and its context before waiting again
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def flush(self, timeout: float | None) -> bool:
        if threading.current_thread() is self._thread:
            return False  # a sink waiting for itself
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._jobs or self._busy:
                if not self._alive() and not self._start():
                    return False  # nothing can drain it
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True


def _enqueue(
    trace: Trace,
    config: dict[str, Any],
    targets: tuple[Named, ...],
    *,
    announce: bool,
    cooling: dict[str, float] | None = None,
) -> bool:
    """Queue ``trace`` for ``targets`` (and the announcements); count it if dropped."""
    try:
        job = _Job(trace, config, targets, announce, {} if cooling is None else cooling)
        queued = _worker.put(job, _setting(config, "SINK_QUEUE_SIZE", _is_size))
    except Exception as err:
        log_failure("sink worker", err)
        queued = False
    if not queued:
        _stats.count("queue_dropped")
    return queued


class _ExitFlush:
    """Flush the queue when the interpreter exits (registered when the worker starts)."""

    registered = False

    def register(self) -> None:
        if not self.registered:
            self.registered = True
            atexit.register(self)

    def __call__(self) -> None:
        with contextlib.suppress(Exception):  # nothing is left to report it to
            _worker.flush(EXIT_TIMEOUT_S)


_flush_at_exit: Final = _ExitFlush()
_worker = _Worker()
_stats.gauge("queued", lambda: len(_worker))


def _after_fork_in_child() -> None:
    """A forked child gets its own worker and queue (the parent's jobs stay the parent's)."""
    global _worker
    _worker = _Worker()
    _overruns_logged.clear()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)
