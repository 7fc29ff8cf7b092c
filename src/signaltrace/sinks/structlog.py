"""The ``signaltrace.request`` structlog event: one per request.

.. code-block:: text

    signaltrace.request method=POST path=/accounts/register/ status=302
        view=accounts.views.register dispatches=3 receiver_calls=4 receiver_ms=2.1
        receivers=[...] slowest=[...] errors=[...] trace_id=9f…

Logged with ``structlog.get_logger("signaltrace")`` at ``LOG_LEVEL``, or at
``LOG_PROBLEM_LEVEL`` when a receiver raised (even inside ``send_robust``) or
took at least ``SLOW_MS``, the view raised, or the response is a 5xx. structlog's context variables (a request id bound by
your middleware, say) are merged in. ``LOG_FIELDS`` picks the fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import structlog

from signaltrace._format import location
from signaltrace.conf import LOG_FIELD_NAMES, get_config
from signaltrace.summary import summarize

if TYPE_CHECKING:
    from signaltrace.records import ReceiverCall
    from signaltrace.traces import Trace

__all__ = ["EVENT", "StructlogSink", "request_fields"]

#: The event name.
EVENT: Final = "signaltrace.request"
# A lazy proxy: resolves structlog's configuration when used (and caches the
# bound logger if ``cache_logger_on_first_use`` is set).
_logger: Final = structlog.get_logger("signaltrace")

#: At most this many exceptions are listed in one event (``error_count`` has them all).
MAX_ERRORS: Final = 50


def _ms(ns: int | None) -> float:
    return round((ns or 0) / 1e6, 3)


def _error(call: ReceiverCall) -> dict[str, Any]:
    error = call.error
    assert error is not None
    return {
        "receiver": call.receiver_name,
        "signal": call.dispatch.signal_name,
        "type": error.type,
        "message": error.message,
        "location": location(error.filename, error.lineno),
        "swallowed": call.swallowed,
    }


def request_fields(trace: Trace, slow_ms: float) -> tuple[dict[str, Any], bool]:
    """Every field of the event for ``trace``, and whether it is a problem request.

    A problem request is one where a receiver raised or was slow, the view
    raised, or the response is a 5xx: its event logs at ``LOG_PROBLEM_LEVEL``.

    .. versionadded:: 0.1.0
    """
    meta = trace.meta
    summary = summarize(trace, slow_ms)
    fields: dict[str, Any] = {
        "trace_id": meta.get("id"),
        "method": meta.get("method"),
        "path": meta.get("path"),
        "view": meta.get("view"),
        "status": meta.get("status"),
        "duration_ms": _ms(trace.duration_ns),
        "dispatches": summary.dispatches,
        "receiver_calls": summary.calls,
        "receiver_ms": _ms(summary.receiver_time_ns),
        "slowest": [
            {"receiver": call.receiver_name, "ms": _ms(call.duration_ns)}
            for call in summary.slowest
        ],
        "receivers": list(summary.receivers),
        "errors": [_error(call) for call in summary.errors[:MAX_ERRORS]],
        "skipped": [
            {
                "operation": item.operation,
                "model": item.model,
                "signals": list(item.signals),
                "receivers": list(item.receivers),
            }
            for item in trace.skipped
        ],
        "dropped": summary.dropped,
    }
    if len(summary.errors) > MAX_ERRORS:
        fields["error_count"] = len(summary.errors)
    if "exception" in meta:
        fields["exception"] = meta["exception"]
    return fields, summary.problem or "exception" in meta or _server_error(meta.get("status"))


def _server_error(status: object) -> bool:
    """A 5xx status (an int: anything else the middleware did not set)."""
    return type(status) is int and 500 <= status <= 599


class StructlogSink:
    """Log each finished request trace as the ``signaltrace.request`` event.

    :param config: settings to use (as from :func:`~signaltrace.conf.get_config`);
        ``None`` reads the current settings at each event.

    .. versionadded:: 0.1.0
    """

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = config

    def emit(self, trace: Trace) -> None:
        """Log ``trace`` (see the module docstring for levels and fields)."""
        config = self.config or get_config()
        level: str | None = config["LOG_LEVEL"]
        if level is None:
            return
        fields, problem = request_fields(trace, config["SLOW_MS"])
        wanted = config["LOG_FIELDS"]
        if wanted is not None:
            fields = {
                key: value
                for key, value in fields.items()
                if key in wanted or key not in LOG_FIELD_NAMES
            }
        if problem:
            level = config["LOG_PROBLEM_LEVEL"]
        context = structlog.contextvars.get_contextvars()
        if context:
            context.pop("event", None)
            fields = {**context, **fields}
        getattr(_logger, level)(EVENT, **fields)
