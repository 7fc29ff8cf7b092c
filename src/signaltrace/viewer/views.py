"""The viewer's views: request list, trace detail, trace JSON and the two assets.

All of them answer 404 unless ``SHOW_CALLBACK(request)`` allows, and 405 to
anything but GET. Nothing here writes anything.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, cast

from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.template import Context, Engine
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET

from signaltrace import __version__
from signaltrace._format import format_ms
from signaltrace._stats import stats
from signaltrace.conf import get_config
from signaltrace.context import log_failure
from signaltrace.middleware import settings_errors, shown
from signaltrace.stores import Listing, failed, get_store, is_in_process
from signaltrace.traces import KINDS, Trace

from ._rows import (
    BrokenRow,
    ListRow,
    list_row,
    list_row_or_error,
    receiver_table,
    signal_window,
    skipped_rows,
    task_node,
    tree_rows,
    truncation_text,
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
    ("store_failures", "store failures", "trace store calls that failed (see the log)", True),
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


# -- where the traces come from: the one place that knows ----------------------


# The configured store (STORE): every process using a shared one sees every trace.


class _StoreError(Exception):
    """The store could not be read (counted as ``store_failures``, logged once)."""


def _recent() -> Sequence[Listing]:
    """The kept traces, newest first, as list entries.

    :raises _StoreError: if the store cannot be read.
    """
    store = get_store()
    if store is None:
        return []
    try:
        return store.recent()
    except Exception as err:
        failed("read", err)
        raise _StoreError(unshown(err)) from err


def _find(trace_id: str) -> Trace | None:
    """The kept trace with this id, or ``None``: a live :class:`~signaltrace.Trace`
    (memory store) or a :class:`~signaltrace.stores.StoredTrace` (shared store),
    which has a trace's reading side, all the pages read.

    :raises _StoreError: if the store cannot be read.
    """
    store = get_store()
    if store is None:
        return None
    try:
        return cast("Trace | None", store.get(trace_id))
    except Exception as err:
        failed("read", err)
        raise _StoreError(unshown(err)) from err


def _get(trace_id: str) -> Trace:
    trace = _find(trace_id)
    if trace is None:
        raise Http404("No such trace (it may have been dropped from the buffer).")
    return trace


def _where() -> str:
    """Where the list says the traces are kept: this process, or the shared store."""
    store = get_store()
    if store is None or is_in_process(store):
        return "in this process"
    return f"in the shared {type(store).__name__}"


def _family(trace: Trace) -> tuple[Listing | None, list[Listing]]:
    """The kept parent of ``trace`` and its kept children (traces whose parent it is).

    The store's failure here only leaves the links out (it is counted and logged).
    """
    try:
        entries = _recent()
    except _StoreError:
        return None, []
    parent_id = (trace.parent or {}).get("trace_id")
    parent = next((entry for entry in entries if entry.trace_id == parent_id), None)
    children = [
        entry
        for entry in entries
        if entry.parent is not None and entry.parent.get("trace_id") == trace.trace_id
    ]
    return parent, children[::-1]  # in the order they started


class _Filters:
    """The list page's query: what to show."""

    def __init__(self, query: QueryDict) -> None:
        self.path = query.get("path", "").strip()
        self.errors = query.get("errors") == "1"
        self.skipped = query.get("skipped") == "1"
        self.signal = query.get("signal", "").strip()
        self.receiver = query.get("receiver", "").strip()
        #: Only traces of this kind (``?kind=task``); an unknown kind matches nothing.
        self.kind = query.get("kind", "").strip()
        #: Also list requests that neither dispatched nor skipped anything.
        self.all = query.get("all") == "1"

    @property
    def active(self) -> bool:
        """Whether a filter narrows the list (``all`` widens it: not counted)."""
        return bool(
            self.path or self.errors or self.skipped or self.signal or self.receiver or self.kind
        )

    def matches(self, row: ListRow | BrokenRow) -> bool:
        if isinstance(row, BrokenRow):
            return True  # nothing to match: always listed
        summary = row.summary
        if self.kind and row.kind != self.kind:
            return False
        if self.path and self.path.lower() not in row.path.lower():
            return False
        if self.errors and not (summary.errors or row.exception):
            return False
        if self.skipped and not row.skipped:
            return False
        if self.signal and self.signal not in summary.signals:
            return False
        receiver = self.receiver.lower()
        return not receiver or any(receiver in name.lower() for name in summary.receivers)

    def query(self, **changes: str) -> str:
        """This query with ``changes``, as ``?a=1&b=2`` (``""`` when empty)."""
        query = QueryDict(mutable=True)
        for key in ("path", "signal", "receiver", "kind"):
            if getattr(self, key):
                query[key] = getattr(self, key)
        for key in ("errors", "skipped", "all"):
            if getattr(self, key):
                query[key] = "1"
        for key, value in changes.items():
            query[key] = value
        return f"?{query.urlencode()}" if query else ""


@never_cache
@_guarded
def trace_list(request: HttpRequest) -> HttpResponse:
    """Recent requests, newest first, with filters: path, has errors, has skipped, signal,
    receiver. Requests that neither dispatched nor skipped anything are left out
    (and counted) unless ``?all=1``.

    .. versionadded:: 0.1.0
    """
    config = get_config()
    filters = _Filters(request.GET)
    store_error = None
    try:
        entries = _recent()  # all of them: the count says how many the filters show
    except _StoreError as err:
        entries, store_error = [], str(err)
    rows = [list_row_or_error(entry, config["SLOW_MS"]) for entry in entries]
    signals = sorted(
        {name for row in rows if isinstance(row, ListRow) for name in row.summary.signals}
    )
    matching = [row for row in rows if filters.matches(row)]
    shown_rows = [
        row for row in matching if filters.all or isinstance(row, BrokenRow) or not row.quiet
    ]
    return _render(
        "list.html",
        {
            "rows": shown_rows,
            "total": len(rows),
            "hidden": len(matching) - len(shown_rows),
            "show_all_url": filters.query(all="1"),
            "size": config["BUFFER_SIZE"],
            "signals": signals,
            "filters": filters,
            "filtered": filters.active,
            "kinds": KINDS,
            "where": _where(),
            "store_error": store_error,
            "narrowed": len(shown_rows) != len(rows),
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
    try:
        trace = _get(trace_id)
    except _StoreError as err:
        context = {"trace_id": trace_id, "error": str(err), "store_error": True}
        response = _render("unshown.html", context, root="../")
        response.status_code = 503
        return response
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
    parent, children = _family(trace)
    tree = tree_rows(trace, slow_ms, kept={child.trace_id for child in children})
    return _render(
        "detail.html",
        {
            "row": row,
            "meta": trace.meta,
            "trace": trace,
            "tree": tree,
            # Expand all / Collapse all only when a row has children to show or hide.
            "expandable": any(node.expandable for node in tree),
            "skipped": skipped_rows(trace),
            "truncation": truncation_text(trace),
            "receivers": receiver_table(trace),
            "ticks": ticks,
            "zoom_ticks": zoom_ticks,
            # Open zoomed to the signals when they take less than half the request.
            "zoomed": zoom_ns * 2 < trace.duration_ns,
            "slow_ms": slow_ms,
            # The causal chain across processes: the parent's and children's entries.
            "parent": parent,
            "children": children,
            # The parent's row of the receiver call that enqueued this (Celery) task.
            "parent_node": _parent_node(trace, parent, slow_ms),
        },
        root="../",
    )


def _parent_node(trace: Trace, parent: Listing | None, slow_ms: float) -> str:
    """The id of the parent trace's tree row whose receiver call enqueued ``trace``, or ``""``.

    (A task's detail page links to that row: ``<parent id>/#n5``.) Reading the
    parent may fail like any store read: the link then points at the page only.
    """
    if parent is None or trace.kind != "task":
        return ""
    try:
        found = _find(parent.trace_id)
    except _StoreError:
        return ""
    if found is None:
        return ""
    return task_node(tree_rows(found, slow_ms), trace.trace_id)


def _tick(trace: Trace, quarter: int) -> str:
    return format_ms(trace.duration_ns * quarter // 4) if quarter else "0"


@never_cache
@_guarded
def trace_json(request: HttpRequest, trace_id: str) -> HttpResponse:
    """The trace as ``trace.to_dict()`` (schema ``signaltrace.trace/2``).

    .. versionadded:: 0.1.0
    """
    try:
        trace = _get(trace_id)
    except _StoreError as err:
        error = f"the trace store could not be read: {err}"
        return JsonResponse({"error": error, "id": trace_id}, status=503)
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
