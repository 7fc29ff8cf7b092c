"""The viewer's Receivers page: every receiver's calls, errors, time and percentiles.

``receivers/`` shows the aggregates of :mod:`signaltrace.metrics` (``METRICS``),
ranked by total time, calls, error rate or p95 (``?sort=``); ``receivers.json``
gives the same as JSON. Each receiver links to its slowest call among the kept
traces (the configured store). Like every viewer page, both answer 404 unless
``SHOW_CALLBACK(request)`` allows, and 405 to anything but GET.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache

from signaltrace import metrics
from signaltrace._format import format_ms, short_path
from signaltrace.conf import get_config
from signaltrace.stores import failed, get_store, is_in_process

from ._rows import unshown
from .views import _guarded, _render

__all__ = ["receivers_json", "receivers_page", "slowest_calls"]

#: The ``?sort=`` used when none (or an unknown one) is given.
DEFAULT_SORT: Final = "total"


def _sort(request: HttpRequest) -> str:
    sort = request.GET.get("sort", DEFAULT_SORT)
    return sort if sort in metrics.SORTS else DEFAULT_SORT


def slowest_calls(names: set[str]) -> tuple[dict[str, tuple[int, str]], str | None]:
    """Per receiver name, ``(duration ns, trace id)`` of its slowest call among the kept
    traces, and the store's error (``None`` if it could be read).

    Only the traces whose listing names one of the receivers are read.
    """
    store = get_store()
    if store is None or not names:
        return {}, None
    try:
        entries = store.recent()
    except Exception as err:
        failed("read", err)
        return {}, unshown(err)
    best: dict[str, tuple[int, str]] = {}
    for entry in entries:
        if entry.error is not None or names.isdisjoint(entry.receivers):
            continue
        try:
            trace = store.get(entry.trace_id)
            calls = [] if trace is None else list(trace.calls)
        except Exception as err:  # one trace that cannot be read: no link from it
            failed("read", err)
            continue
        for call in calls:
            name = call.receiver_name
            duration = call.duration_ns
            if name in names and duration is not None and duration > best.get(name, (-1, ""))[0]:
                best[name] = (duration, entry.trace_id)
    return best, None


def _report(request: HttpRequest) -> tuple[metrics.Merged, dict[str, tuple[int, str]], str | None]:
    report = metrics.merged(_sort(request))
    slowest, store_error = slowest_calls({row["receiver"] for row in report["receivers"]})
    return report, slowest, store_error


def _detail_url(request: HttpRequest, trace_id: str) -> str:
    """The trace's page, through the namespace this viewer is mounted under."""
    match = request.resolver_match
    name = f"{match.namespace}:trace_detail" if match and match.namespace else "trace_detail"
    try:
        return reverse(name, kwargs={"trace_id": trace_id})
    except NoReverseMatch:
        return f"{trace_id}/"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _ms(value: float | None) -> str:
    return "—" if value is None else format_ms(round(value * 1_000_000))


@dataclass
class ReceiverRow:
    """One receiver of the page: the snapshot's figures, formatted."""

    name: str
    module: str
    short: str
    location: str
    signals: list[str]
    calls: int
    errors: int
    error_rate: str
    total: str
    mean: str
    p50: str
    p95: str
    p99: str
    queries: str
    slowest_id: str
    slowest_time: str


def _row(data: dict[str, Any], slowest: dict[str, tuple[int, str]]) -> ReceiverRow:
    name = data["receiver"]
    module, _dot, short = name.rpartition(".")
    location = data["location"] or ""
    if location:
        filename, _colon, line = location.rpartition(":")
        location = f"{short_path(filename)}:{line}"
    calls = data["calls"]
    queried = data["queried_calls"]
    queries = "—"
    if data["queries"] is not None and queried:
        queries = f"{data['queries']} in {queried} call{'s' if queried != 1 else ''}"
    found = slowest.get(name)
    return ReceiverRow(
        name=name,
        module=module,
        short=short or name,
        location=location,
        signals=data["signals"],
        calls=calls,
        errors=data["errors"],
        error_rate=f"{data['errors'] / calls:.1%}" if calls and data["errors"] else "",
        total=_ms(data["total_ms"]),
        mean=_ms(data["mean_ms"]),
        p50=_ms(data["p50_ms"]),
        p95=_ms(data["p95_ms"]),
        p99=_ms(data["p99_ms"]),
        queries=queries,
        slowest_id=found[1] if found else "",
        slowest_time=format_ms(found[0]) if found else "",
    )


def _where(report: metrics.Merged) -> str:
    """Whose calls the page shows."""
    processes = report["processes"]
    if report["shared"]:
        count = len(processes)
        return f"{count} process{'es' if count != 1 else ''} sharing the trace store"
    store = get_store()
    if store is not None and not is_in_process(store):
        return f"this process only (the {type(store).__name__} cannot hold metrics)"
    return "this process only"


@never_cache
@_guarded
def receivers_page(request: HttpRequest) -> HttpResponse:
    """Every receiver, ranked (``?sort=total|calls|errors|p95``), with a link to its slowest
    kept trace.

    .. versionadded:: 0.1.0
    """
    report, slowest, store_error = _report(request)
    sort = _sort(request)
    rows = [_row(data, slowest) for data in report["receivers"]]
    return _render(
        "receivers.html",
        {
            "rows": rows,
            "sort": sort,
            "sorts": list(metrics.SORTS.items()),
            "since": report["since"],
            "since_iso": _iso(report["since"]),
            "process": report["process"],
            "processes": report["processes"],
            "shared": report["shared"],
            "where": _where(report),
            "metrics_on": bool(get_config().get("METRICS")),
            "store_error": store_error,
            "shared_error": report["error"],
        },
        root="../",
    )


@never_cache
@_guarded
def receivers_json(request: HttpRequest) -> HttpResponse:
    """The Receivers page as JSON: ``receivers`` (as :func:`signaltrace.metrics.snapshot`,
    each with ``slowest_trace``), ``since``, ``process``, ``processes``, ``merged``,
    ``metrics`` and ``sort``.

    .. versionadded:: 0.1.0
    """
    report, slowest, store_error = _report(request)
    receivers = []
    for data in report["receivers"]:
        found = slowest.get(data["receiver"])
        slowest_trace = None
        if found is not None:
            slowest_trace = {
                "trace_id": found[1],
                "duration_ms": round(found[0] / 1_000_000, 4),
                "url": _detail_url(request, found[1]),
            }
        receivers.append({**data, "slowest_trace": slowest_trace})
    content = {
        "receivers": receivers,
        "since": _iso(report["since"]),
        "process": report["process"],
        "processes": [
            {**item, "since": _iso(item["since"]), "flushed_at": _iso(item["flushed_at"])}
            for item in report["processes"]
        ],
        "merged": report["shared"],
        "metrics": bool(get_config().get("METRICS")),
        "sort": _sort(request),
        "errors": [error for error in (store_error, report["error"]) if error],
    }
    return HttpResponse(
        json.dumps(content, cls=DjangoJSONEncoder, indent=2), content_type="application/json"
    )
