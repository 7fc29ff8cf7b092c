"""The viewer's views: request list, trace detail, trace JSON and the two assets.

All of them answer 404 unless ``SHOW_CALLBACK(request)`` allows, and 405 to
anything but GET. Nothing here writes anything.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import Context, Engine
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET

from signaltrace import __version__
from signaltrace._format import format_ms
from signaltrace.conf import get_config
from signaltrace.middleware import shown
from signaltrace.sinks.memory import buffer
from signaltrace.traces import Trace

from ._rows import list_row, receiver_table, signal_window, tree_rows

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
    html = _engine().get_template(f"signaltrace/{name}").render(Context(context))
    return HttpResponse(html)


def _get(trace_id: str) -> Trace:
    trace = buffer().get(trace_id)
    if trace is None:
        raise Http404("No such trace (it may have been dropped from the buffer).")
    return trace


def _matches(row: Any, path: str, errors: bool, signal: str, receiver: str) -> bool:
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
    rows = [list_row(trace, config["SLOW_MS"]) for trace in traces]
    signals = sorted({name for row in rows for name in row.summary.signals})
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
def trace_json(request: HttpRequest, trace_id: str) -> JsonResponse:
    """The trace as ``trace.to_dict()`` (schema ``signaltrace.trace/1``).

    .. versionadded:: 0.1.0
    """
    return JsonResponse(_get(trace_id).to_dict(), json_dumps_params={"indent": 2})


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
