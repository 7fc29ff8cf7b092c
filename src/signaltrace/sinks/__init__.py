"""Sinks: where finished request traces go.

A sink is any object with an ``emit(trace)`` method (the :class:`Sink`
protocol). The middleware hands every finished request trace to the built-in
sinks its settings turn on, then to the extra sinks listed in ``SINKS``:

- :class:`~signaltrace.sinks.memory.RingBufferSink`: the last ``BUFFER_SIZE``
  traces, read by the trace viewer (on unless ``BUFFER_SIZE`` is 0);
- :class:`~signaltrace.sinks.structlog.StructlogSink`: one
  ``signaltrace.request`` event per request (on unless ``LOG_LEVEL`` is None);
- :class:`~signaltrace.sinks.console.ConsoleSink`: the text tree on stderr
  (``CONSOLE``; by default on under ``runserver`` with ``DEBUG``);
- :class:`~signaltrace.sinks.otel.OpenTelemetrySink`: one span per dispatch and
  per receiver call (``OTEL``; needs the ``otel`` extra, imported only when on).

Then the trace is announced on signaltrace's own blinker signals
(:mod:`signaltrace.signals`): ``receiver_failed``, ``slow_receiver`` and
``trace_finished``.

A sink or signal receiver that raises is logged once and skipped: it never
affects the request.

.. code-block:: python

    class PrintSink:
        def emit(self, trace: signaltrace.Trace) -> None:
            print(trace.meta["path"], len(trace.calls))

    SIGNALTRACE = {"SINKS": ["myproject.tracing.PrintSink"]}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from django.utils.module_loading import import_string

from signaltrace.conf import get_config
from signaltrace.context import log_failure
from signaltrace.signals import send_finished

from .console import ConsoleSink, console_enabled
from .memory import buffer
from .structlog import StructlogSink

if TYPE_CHECKING:
    from signaltrace.traces import Trace

__all__ = ["Sink", "active_sinks", "emit", "load_sink"]


@runtime_checkable
class Sink(Protocol):
    """Receives finished traces. ``emit`` must not keep request objects alive.

    .. versionadded:: 0.1.0
    """

    def emit(self, trace: Trace) -> None:
        """Handle one finished trace (called once per trace, in the request's flow)."""


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


_cache: tuple[object, tuple[tuple[str, Sink], ...]] | None = None


def _builtin(config: dict[str, Any]) -> list[tuple[str, Sink]]:
    sinks: list[tuple[str, Sink]] = []
    if config["BUFFER_SIZE"]:
        sinks.append(("memory", buffer()))
    if config["LOG_LEVEL"] is not None:
        sinks.append(("structlog", StructlogSink(config)))
    if console_enabled(config):
        sinks.append(("console", ConsoleSink()))
    if config["OTEL"]:
        try:
            from .otel import OpenTelemetrySink
        except ImportError as err:  # the otel extra is missing (check signaltrace.E002)
            log_failure("OTEL", err)
        else:
            sinks.append(("otel", OpenTelemetrySink()))
    return sinks


def active_sinks(config: dict[str, Any] | None = None) -> tuple[tuple[str, Sink], ...]:
    """``(name, sink)`` pairs for the current settings, resolved once per settings dict.

    :param config: the settings from :func:`~signaltrace.conf.get_config`, if at hand.

    .. versionadded:: 0.1.0
    """
    global _cache
    if config is None:
        config = get_config()
    cached = _cache
    if cached is not None and cached[0] is config:
        return cached[1]
    sinks = _builtin(config)
    for path in config["SINKS"]:
        try:
            sinks.append((path, load_sink(path)))
        except Exception as err:
            log_failure(f"SINKS {path}", err)
    resolved = tuple(sinks)
    _cache = (config, resolved)
    return resolved


def emit(trace: Trace, config: dict[str, Any] | None = None) -> None:
    """Hand ``trace`` to every active sink, then announce it on :mod:`signaltrace.signals`.

    A failing sink or signal receiver is logged once and skipped.

    :param config: the settings from :func:`~signaltrace.conf.get_config`, if at hand.

    .. versionadded:: 0.1.0
    """
    if config is None:
        config = get_config()
    for name, sink in active_sinks(config):
        try:
            sink.emit(trace)
        except Exception as err:
            log_failure(f"sink {name}", err)
    try:
        send_finished(trace, config["SLOW_MS"])
    except Exception as err:
        log_failure("signaltrace.signals", err)
