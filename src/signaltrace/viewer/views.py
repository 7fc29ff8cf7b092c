"""The viewer's views: request list, trace detail, trace JSON and the two assets.

All of them answer 404 unless ``SHOW_CALLBACK(request)`` allows, and 405 to
anything but GET. Nothing here writes anything.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import Context, Engine
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET

from signaltrace import __version__
from signaltrace._format import format_ms
from signaltrace._stats import stats
from signaltrace.conf import get_config
from signaltrace.context import log_failure
from signaltrace.middleware import settings_errors, shown
from signaltrace.sinks.memory import buffer
from signaltrace.traces import Trace

from ._rows import (
    ListRow,
    list_row,
    list_row_or_error,
    receiver_table,
    signal_window,
    tree_rows,
    unshown,
)

__all__ = ["asset", "trace_detail", "trace_json", "trace_list"]

PACKAGE_DIR: Final = Path(__file__).resolve().parent.parent
#: Refresh interval of the list page's auto-refresh, in milliseconds.
REFRESH_MS: Final = 2000
_ASSETS: Final = {
    "viewer.css": "text/css; charset=utf-8",
    "viewer.js": "text/javascript; charset=utf-8",
}

View = Callable[..., HttpResponse]


def _guarded(view: View) -> View:
    """404 unless SHOW_CALLBACK allows (checked first, whatever the method); GET only."""
    get_only = require_GET(view)

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not shown(request):
            raise Http404()
        return get_only(request, *args, **kwargs)

    return wrapper


@functools.cache
def _engine() -> Engine:
    return Engine(dirs=[str(PACKAGE_DIR / "templates")], autoescape=True)


@functools.cache
def _asset(name: str) -> tuple[bytes, str]:
    content = (PACKAGE_DIR / "static" / "signaltrace" / name).read_bytes()
    return content, hashlib.sha256(content).hexdigest()[:12]


def _render(name: str, context: dict[str, Any], root: str) -> HttpResponse:
    context["root"] = root  # relative links: the viewer works wherever it is mounted
    context["assets"] = {key.replace(".", "_"): _asset(key)[1] for key in _ASSETS}
    context["version"] = __version__
    context["footer"] = _footer()
    html = _engine().get_template(f"signaltrace/{name}").render(Context(context))
    return HttpResponse(html)


#: The footer's counters: (key of signaltrace.stats(), label, explanation, a problem?).
_FOOTER: Final = (
    ("traces", "request traces", "finished request traces handed to the sinks", False),
    ("dropped_events", "events dropped", "events not recorded because of MAX_EVENTS", True),
    ("internal_failures", "internal failures", "failures signaltrace caught and logged", True),
    ("sink_failures", "sink failures", "sink or announcement calls that raised", True),
    ("sink_overruns", "slow sink calls", "sink calls longer than SINK_TIMEOUT_MS", True),
    ("sink_skipped", "sink skips", "traces a cooling-down sink was not given", True),
    ("queue_dropped", "queue drops", "traces dropped: the sink queue was full", True),
    ("queued", "queued", "traces waiting for the background sinks", False),
    ("open_captures", "open captures", "captures open now, in any thread", False),
)


def _footer() -> list[tuple[str, int, str, bool]]:
    """``(label, value, explanation, highlighted)`` per counter of :func:`signaltrace.stats`."""
    counts = stats()
    return [
        (label, counts[key], title, problem and counts[key] > 0)
        for key, label, title, problem in _FOOTER
    ]


def _get(trace_id: str) -> Trace:
    trace = buffer().get(trace_id)
    if trace is None:
        raise Http404("No such trace (it may have been dropped from the buffer).")
    return trace


def _matches(row: Any, path: str, errors: bool, signal: str, receiver: str) -> bool:
    if row.broken:
        return True  # nothing to match: always listed
    summary = row.summary
    if path and path.lower() not in row.path.lower():
        return False
    if errors and not (summary.errors or row.exception):
        return False
    if signal and signal not in summary.signals:
        return False
    return not receiver or any(receiver.lower() in name.lower() for name in summary.receivers)


@never_cache
@_guarded
def trace_list(request: HttpRequest) -> HttpResponse:
    """Recent requests, newest first, with filters: path, has errors, signal, receiver.

    .. versionadded:: 0.1.0
    """
    config = get_config()
    path = request.GET.get("path", "").strip()
    errors = request.GET.get("errors") == "1"
    signal = request.GET.get("signal", "").strip()
    receiver = request.GET.get("receiver", "").strip()
    traces = buffer().traces()
    rows = [list_row_or_error(trace, config["SLOW_MS"]) for trace in traces]
    signals = sorted(
        {name for row in rows if isinstance(row, ListRow) for name in row.summary.signals}
    )
    shown_rows = [row for row in rows if _matches(row, path, errors, signal, receiver)]
    return _render(
        "list.html",
        {
            "rows": shown_rows,
            "total": len(rows),
            "size": config["BUFFER_SIZE"],
            "signals": signals,
            "filters": {"path": path, "errors": errors, "signal": signal, "receiver": receiver},
            "filtered": bool(path or errors or signal or receiver),
            "refresh_ms": REFRESH_MS,
            # Read now: why nothing is recorded, where servers run no checks.
            "settings_errors": settings_errors(),
        },
        root="",
    )


@never_cache
@_guarded
def trace_detail(request: HttpRequest, trace_id: str) -> HttpResponse:
    """One request: summary, causal tree with waterfall, receiver details and table.

    .. versionadded:: 0.1.0
    """
    trace = _get(trace_id)
    try:
        return _detail(trace)
    except Exception as err:  # one trace that cannot be shown: say so, in a page of ours
        log_failure("viewer detail", err)
        return _render("unshown.html", {"trace_id": trace_id, "error": unshown(err)}, root="../")


def _detail(trace: Trace) -> HttpResponse:
    slow_ms = get_config()["SLOW_MS"]
    row = list_row(trace, slow_ms)
    ticks = [(f"{i * 25}", _tick(trace, i)) for i in range(5)]
    zoom_start, zoom_ns = signal_window(trace)
    zoom_offset = zoom_start - trace.start_ns
    zoom_ticks = [(f"{i * 25}", f"+{format_ms(zoom_offset + zoom_ns * i // 4)}") for i in range(5)]
    return _render(
        "detail.html",
        {
            "row": row,
            "meta": trace.meta,
            "trace": trace,
            "tree": tree_rows(trace, slow_ms),
            "receivers": receiver_table(trace),
            "ticks": ticks,
            "zoom_ticks": zoom_ticks,
            # Open zoomed to the signals when they take less than half the request.
            "zoomed": zoom_ns * 2 < trace.duration_ns,
            "slow_ms": slow_ms,
        },
        root="../",
    )


def _tick(trace: Trace, quarter: int) -> str:
    return format_ms(trace.duration_ns * quarter // 4) if quarter else "0"


@never_cache
@_guarded
def trace_json(request: HttpRequest, trace_id: str) -> HttpResponse:
    """The trace as ``trace.to_dict()`` (schema ``signaltrace.trace/1``).

    .. versionadded:: 0.1.0
    """
    trace = _get(trace_id)
    try:
        content = json.dumps(trace.to_dict(), cls=DjangoJSONEncoder, indent=2)
    except Exception as err:
        log_failure("viewer json", err)
        error = f"this trace could not be shown: {unshown(err)}"
        return JsonResponse({"error": error, "id": trace_id}, status=500)
    return HttpResponse(content, content_type="application/json")


@cache_control(private=True, max_age=86400)
@_guarded
def asset(request: HttpRequest, name: str) -> HttpResponse:
    """The viewer's stylesheet or script (served here so no static setup is needed).

    .. versionadded:: 0.1.0
    """
    if name not in _ASSETS:
        raise Http404()
    content, _digest = _asset(name)
    return HttpResponse(content, content_type=_ASSETS[name])
