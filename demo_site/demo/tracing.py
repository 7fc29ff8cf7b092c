"""Link each page to its own trace in signaltrace's viewer.

``SignalTraceMiddleware`` records one trace per request, gives it an id
(``trace.meta["id"]``), sends the id back in the ``X-Signaltrace-Id`` header
and keeps the finished trace in the ring buffer under that id, where the
viewer (``/__signaltrace__/<id>/``) finds it. A page is rendered before its
response exists, so it cannot read the header: it asks for the id of the
trace that is recording it instead (``signaltrace.current_trace()``).

:func:`find_trace` and :func:`keep_trace` are the demo's only access to where
the viewer's traces live (the ring buffer, ``signaltrace.sinks.memory.buffer()``).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

import signaltrace
from signaltrace.middleware import shown
from signaltrace.sinks.memory import buffer

__all__ = ["current_trace_id", "find_trace", "keep_trace", "trace_links", "trace_url"]


def find_trace(trace_id: str) -> signaltrace.Trace | None:
    """The finished trace the viewer shows under ``trace_id``, if it is still kept."""
    return buffer().get(trace_id)


def keep_trace(trace: signaltrace.Trace) -> str:
    """Hand a trace of our own (a ``capture()`` block) to the viewer; return its id.

    The middleware does this for every request; a capture inside a view is a
    trace of its own, listed in the viewer as kind ``capture``.
    """
    trace.meta.setdefault("id", trace.trace_id)
    buffer().emit(trace)
    return str(trace.meta["id"])


def current_trace_id() -> str | None:
    """The viewer id of the request trace recording this request, if any."""
    trace = signaltrace.current_trace()
    trace_id = trace.meta.get("id") if trace is not None else None
    return trace_id if isinstance(trace_id, str) else None


def trace_url(trace_id: str) -> str:
    """The viewer's page for one trace."""
    return reverse("signaltrace:trace_detail", args=[trace_id])


def trace_links(request: HttpRequest) -> dict[str, Any]:
    """Template context: the viewer's URL and this page's own trace URL.

    Empty unless ``SHOW_CALLBACK`` lets this request see traces, the same rule
    the viewer applies (here: ``DEBUG`` on and the client in ``INTERNAL_IPS``).
    """
    if not shown(request):
        return {}
    trace_id = current_trace_id()
    return {
        "signaltrace_viewer_url": reverse("signaltrace:trace_list"),
        "signaltrace_page_url": trace_url(trace_id) if trace_id else None,
    }
