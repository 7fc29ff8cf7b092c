"""The viewer's request list and detail page: skipped operations, noise, truncation, kinds.

Requests that skipped receivers are marked and filterable (``?skipped=1``);
requests that neither dispatched nor skipped anything are hidden unless
``?all=1``; truncated traces have a badge and a banner; the list shows each
trace's kind; a tree with nothing to expand has no expand/collapse/zoom tools.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.dispatch import Signal
from django.http import HttpResponse
from django.test import RequestFactory

import signaltrace
from signaltrace import context
from signaltrace.middleware import SignalTraceMiddleware
from signaltrace.sinks import memory
from signaltrace.sinks.memory import buffer
from signaltrace.viewer import _rows
from tests.testapp.views import view_signal

VIEWER = "/__signaltrace__/"
PATH_LINK = re.compile(r'class="st-path" href="[0-9a-f]{32}/">([^<]*)<')


@pytest.fixture(autouse=True)
def _viewer(settings, monkeypatch):
    settings.DEBUG = True
    settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
    monkeypatch.setattr(context, "_logged", set())
    buffer().clear()
    yield
    memory._buffer.clear()


def keep(trace, path, method="POST", status=302, **meta):
    """Put a captured trace in the viewer's buffer as if it were a request."""
    trace.meta.update(id=trace.trace_id, method=method, path=path, status=status, view="v", **meta)
    buffer().emit(trace)
    return trace.trace_id


def quiet_request(path="/plain/"):
    """A request through the middleware that sends no signal at all."""
    response = SignalTraceMiddleware(lambda request: HttpResponse())(RequestFactory().get(path))
    return response.headers["X-Signaltrace-Id"]


def bulk_trace():
    with signaltrace.capture(label="POST /bulk-import/ 302") as trace:
        User.objects.bulk_create([User(username="bulk-a"), User(username="bulk-b")])
    return trace


def capped_trace(max_events=3):
    with signaltrace.capture(label="GET /capped/ 200", max_events=max_events) as trace:
        for _ in range(4):
            view_signal.send(sender="capped", marker="capped")
    return trace


def listed(html):
    return PATH_LINK.findall(html)


@pytest.mark.django_db
class TestSkippedInTheList:
    def test_badge(self, client):
        """A request whose bulk_create skipped receivers says so, although it is 0 / 0."""
        tid = keep(bulk_trace(), "/bulk-import/")
        html = client.get(VIEWER).content.decode()
        row = html.split(f'data-href="{tid}/"', 1)[1].split("</tr>", 1)[0]
        assert "0 / 0" in row
        badge = re.search(r'<span class="st-badge st-b-skipped"[^>]*>([^<]*)</span>', row)
        assert badge is not None
        assert "skipped" in badge.group(1)
        assert badge.group(1) == "1 skipped"
        assert "bulk_create on auth.User skipped post_save" in row  # its title
        assert re.search(rf'<tr class="st-request st-has-skipped" data-href="{tid}/">', html)

    def test_filter(self, client):
        keep(bulk_trace(), "/bulk-import/")
        client.get("/signal/m/")
        html = client.get(VIEWER, {"skipped": "1"}).content.decode()
        assert listed(html) == ["/bulk-import/"]
        assert 'name="skipped" value="1" checked' in html
        assert "Has skipped" in html
        assert "1 of 2 requests kept" in html
        assert listed(client.get(VIEWER).content.decode()) == ["/signal/m/", "/bulk-import/"]


@pytest.mark.django_db
class TestQuietRequestsAreHidden:
    def test_hidden_and_counted(self, client):
        quiet_request("/plain/")
        quiet_request("/other/")
        client.get("/signal/m/")
        html = client.get(VIEWER).content.decode()
        assert listed(html) == ["/signal/m/"]
        assert "2 requests without signals hidden" in html
        assert "1 of 3 requests kept" in html
        assert 'href="?all=1"' in html

    def test_all_shows_them(self, client):
        quiet_request("/plain/")
        client.get("/signal/m/")
        html = client.get(VIEWER, {"all": "1"}).content.decode()
        assert sorted(listed(html)) == ["/plain/", "/signal/m/"]
        assert 'name="all" value="1" checked' in html
        assert "Show requests without signals" in html
        assert "hidden" not in html.split('id="st-hidden"', 1)[1].split("</p>", 1)[0]

    def test_all_keeps_the_other_filters(self, client):
        quiet_request("/plain/")
        quiet_request("/elsewhere/")
        client.get("/signal/m/")
        html = client.get(VIEWER, {"path": "plain"}).content.decode()
        assert listed(html) == []
        assert "1 request without signals hidden" in html
        assert 'href="?path=plain&amp;all=1"' in html
        assert "No request that dispatched or skipped anything matches" in html
        assert listed(client.get(VIEWER, {"path": "plain", "all": "1"}).content.decode()) == [
            "/plain/"
        ]

    def test_only_quiet_requests(self, client):
        quiet_request("/plain/")
        html = client.get(VIEWER).content.decode()
        assert listed(html) == []
        assert "No request recorded so far dispatched a signal or skipped receivers" in html
        assert "1 request without signals hidden" in html

    @pytest.mark.parametrize("kind", ["skipped", "truncated", "exception", "empty dispatch"])
    def test_never_hidden(self, client, settings, kind):
        """Skipped operations, truncation, a view exception or any dispatch keep a row."""
        if kind == "skipped":
            keep(bulk_trace(), "/kept/")
        elif kind == "truncated":
            keep(capped_trace(max_events=1), "/kept/")
        elif kind == "exception":
            with signaltrace.capture() as trace:
                pass
            keep(trace, "/kept/", status=None, exception="KeyError")
        else:
            settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "RECORD_EMPTY": True}
            with signaltrace.capture() as trace:
                Signal().send(sender="nobody listens")
            keep(trace, "/kept/")
        assert listed(client.get(VIEWER).content.decode()) == ["/kept/"]

    def test_auto_refresh_updates_the_note(self):
        """The hidden-count note is one of the parts auto-refresh replaces."""
        js = _rows.__file__.rsplit("/viewer/", 1)[0] + "/static/signaltrace/viewer.js"
        with open(js, encoding="utf-8") as script:
            assert '"st-hidden"' in script.read()


@pytest.mark.django_db
class TestTruncation:
    def test_badge_in_the_list(self, client):
        trace = capped_trace()
        tid = keep(trace, "/capped/", method="GET", status=200)
        html = client.get(VIEWER).content.decode()
        row = html.split(f'data-href="{tid}/"', 1)[1].split("</tr>", 1)[0]
        badge = re.search(r'<span class="st-badge st-b-truncated" title="([^"]*)">truncated<', row)
        assert badge is not None
        assert badge.group(1) == str(trace.truncated_at)

    def test_banner_in_the_detail(self, client):
        trace = capped_trace()
        tid = keep(trace, "/capped/", method="GET", status=200)
        html = client.get(f"{VIEWER}{tid}/").content.decode()
        banner = re.search(
            r'<p class="st-banner st-banner-warn" id="st-truncated"[^>]*>(.*?)</p>', html
        )
        assert banner is not None
        text = re.sub(r"<[^>]+>", "", banner.group(1))
        assert text.startswith("Truncated trace: MAX_EVENTS reached after 2 events (1 dispatch)")
        assert "the nested_signal dispatch and everything after it were not recorded" in text
        assert f"were not recorded: {trace.dropped} events in all, past MAX_EVENTS (3)." in text

    def test_no_banner_otherwise(self, client):
        tid = keep(bulk_trace(), "/bulk-import/")
        html = client.get(f"{VIEWER}{tid}/").content.decode()
        assert 'id="st-truncated"' not in html
        assert "st-b-truncated" not in client.get(VIEWER).content.decode()


@pytest.mark.django_db
class TestKind:
    def test_kind_column(self, client):
        keep(bulk_trace(), "/bulk-import/")
        with signaltrace.capture(kind="task", label="tasks.send_mail") as task:
            view_signal.send(sender="task", marker="task")
        task.meta["id"] = task.trace_id
        buffer().emit(task)
        html = client.get(VIEWER).content.decode()
        assert '<th scope="col">Kind</th>' in html
        kinds = re.findall(
            r'<td class="st-kind-cell"><span class="st-trace-kind st-k-(\w+)">(\w+)</span>', html
        )
        assert kinds == [("task", "task"), ("capture", "capture")]
        # A trace that is not a request has no method: its label stands for the path.
        assert "tasks.send_mail" in listed(html)

    def test_request_traces(self, client):
        tid = quiet_request()
        row = _rows.list_row(buffer().get(tid), 50)
        assert row.kind == buffer().get(tid).kind


@pytest.mark.django_db
class TestDetailTools:
    def tools(self, html):
        bar = html.split('class="st-trace-bar"', 1)[1].split("</div>", 2)
        return bar[0] + bar[1]

    def test_no_tools_without_a_tree(self, client):
        with signaltrace.capture() as trace:
            pass
        tid = keep(trace, "/quiet/", method="GET", status=200)
        html = client.get(f"{VIEWER}{tid}/").content.decode()
        assert "No signals with receivers were dispatched" in html
        assert "Expand all" not in html
        assert "Collapse all" not in html
        assert "data-zoom" not in html
        assert "data-tree-action" not in html

    def test_skipped_only(self, client):
        """The bulk import: nothing to expand, and the skipped receivers are listed."""
        tid = keep(bulk_trace(), "/bulk-import/")
        html = client.get(f"{VIEWER}{tid}/").content.decode()
        assert "Expand all" not in html
        assert "data-zoom" not in html
        assert "Receivers that did not run" in html

    def test_nothing_to_expand(self, client, settings):
        """Rows, but none with children: zoom stays, expand/collapse go."""
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "RECORD_EMPTY": True}
        with signaltrace.capture() as trace:
            Signal().send(sender="nobody listens")
        tid = keep(trace, "/empty/", method="GET", status=200)
        html = client.get(f"{VIEWER}{tid}/").content.decode()
        assert 'role="tree"' in html
        assert "Expand all" not in html
        assert "data-zoom" in html

    def test_tools_with_a_tree(self, client):
        html = client.get(f"{VIEWER}{client.get('/signal/m/').headers['X-Signaltrace-Id']}/")
        html = html.content.decode()
        assert 'data-tree-action="expand"' in html
        assert 'data-tree-action="collapse"' in html
        assert "data-zoom" in html
