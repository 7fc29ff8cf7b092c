"""The django-debug-toolbar panel, rendered by the real toolbar.

Run by ``tests/test_panel.py`` in a pytest process of its own, with
``--ds tests.settings_toolbar`` (debug_toolbar installed).
"""

from __future__ import annotations

import asyncio
import html
import re

import pytest
from debug_toolbar.store import get_store
from debug_toolbar.toolbar import DebugToolbar
from django.core.management import call_command
from django.http import HttpResponse
from django.test import AsyncClient, RequestFactory

import signaltrace
from signaltrace import context
from signaltrace.panels import SignalTracePanel, _viewer_url, panel_stats
from signaltrace.sinks.memory import buffer
from tests.testapp.views import view_signal

PANEL = "SignalTracePanel"


@pytest.fixture(autouse=True)
def _fresh(settings, monkeypatch):
    settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
    monkeypatch.setattr(context, "_logged", set())
    get_store().clear()
    buffer().clear()
    yield
    buffer().clear()


@pytest.fixture
def toolbars():
    """The toolbars made for requests, as the toolbar's own tests catch them."""
    made = []

    def created(sender, toolbar, **kwargs):
        made.append(toolbar)

    DebugToolbar._created.connect(created)
    yield made
    DebugToolbar._created.disconnect(created)


def request_id(response):
    return re.search(r'data-request-id="([0-9a-f]+)"', response.content.decode()).group(1)


def subtitle(response):
    """The panel's side-bar subtitle in the toolbar's HTML."""
    text = response.content.decode()
    button = text[text.index(f'id="djdt-{PANEL}"') :]
    button = button[: button.index("</li>")]
    found = re.search(r"<small>(.*?)</small>", button)
    return html.unescape(found.group(1)) if found else None


def panel_content(client, response):
    """The panel's HTML as the toolbar's render_panel view serves it (from its store)."""
    reply = client.get(
        "/__debug__/render_panel/", {"request_id": request_id(response), "panel_id": PANEL}
    )
    assert reply.status_code == 200
    return reply.json()["content"]


@pytest.mark.django_db
class TestInTheToolbar:
    def test_nav_subtitle(self, client):
        """The side bar counts receiver calls, errors and skipped operations."""
        response = client.get("/page/")
        assert response.status_code == 200
        assert 'id="djDebug"' in response.content.decode()
        assert subtitle(response) == "3 receivers, 1 error, 1 skipped"

    def test_content(self, client):
        """The tree with timings, the error (escaped) and the skipped receivers."""
        response = client.get("/page/")
        content = panel_content(client, response)
        assert "3 receiver calls" in content
        for text in (
            "post_save</strong>",
            "sender=auth.User pk=1 created=True",
            "tests.testapp.signals.create_user_profile",
            "tests.testapp.signals.save_user_profile",
            "error_signal</strong>",
            "tests.testapp.views.fails",
            "ValueError: receiver failed &lt;b&gt;loudly&lt;/b&gt;",
            "(swallowed by send_robust)",
            "Receivers that raised",
            "Skipped receivers",
            "auth.User",
            'class="djDebugLineChart',
            'data-djdt-styles="paddingLeft:16px"',
            " ms</td>",
        ):
            assert text in content, text
        assert "<b>loudly" not in content
        assert "tests/urls_toolbar.py" in content  # where the signals were sent from

    def test_links_to_the_viewer(self, client):
        """With SignalTraceMiddleware, the panel links to the request's trace viewer page."""
        response = client.get("/page/")
        (trace,) = buffer().traces()
        content = panel_content(client, response)
        assert f'href="/__signaltrace__/{trace.meta["id"]}/"' in content
        # The middleware's trace also holds the toolbar rendering itself (the test
        # client listens to template_rendered); the panel's trace stops before that.
        assert [c.receiver_name for c in trace.calls][:3] == [
            "tests.testapp.signals.create_user_profile",
            "tests.testapp.signals.save_user_profile",
            "tests.testapp.views.fails",
        ]
        names = [d.signal_name for d in trace.dispatches]
        assert names[:2] == ["post_save", "error_signal"]
        assert set(names[2:]) == {"template_rendered"}
        assert "template_rendered" not in content

    def test_without_the_middleware(self, client, settings):
        """The panel records the request itself: the middleware is not needed."""
        settings.MIDDLEWARE = ["debug_toolbar.middleware.DebugToolbarMiddleware"]
        response = client.get("/page/")
        assert subtitle(response) == "3 receivers, 1 error, 1 skipped"
        assert len(buffer()) == 0
        content = panel_content(client, response)
        assert "tests.testapp.signals.create_user_profile" in content
        assert "trace viewer" not in content

    def test_inside_another_capture(self, client, settings):
        """Other open traces (a test's capture) are not taken for the middleware's."""
        settings.MIDDLEWARE = ["debug_toolbar.middleware.DebugToolbarMiddleware"]
        with signaltrace.capture() as outer:
            response = client.get("/page/")
        assert "trace viewer" not in panel_content(client, response)
        assert len(outer.calls) >= 3

    def test_async_view(self, toolbars):
        """Under ASGI the panel (async-capable) records the async view's receivers."""
        response = asyncio.run(AsyncClient().get("/async-page/"))
        assert response.status_code == 200
        assert subtitle(response) == "2 receivers"
        (toolbar,) = toolbars
        panel = toolbar.get_panel_by_id(PANEL)
        names = sorted(row["name"] for row in panel.get_stats()["rows"] if row["kind"] == "call")
        assert names == ["tests.testapp.views.async_record", "tests.testapp.views.sync_record"]
        assert "async" in panel.content

    def test_quiet_page(self, client):
        response = client.get("/quiet/")
        assert subtitle(response) == "0 receivers"
        assert "No signal was sent to a receiver" in panel_content(client, response)

    def test_server_timing(self, client):
        response = client.get("/page/")
        assert re.search(
            r'SignalTracePanel_receivers;dur=[0-9.]+;desc="Signal receivers \(3\)"',
            response.headers["Server-Timing"],
        )

    def test_disabled_panel_records_nothing(self, client, toolbars):
        """A panel switched off in the toolbar opens no capture."""
        client.cookies["djdt" + PANEL] = "off"
        response = client.get("/page/")
        assert subtitle(response) is None
        (toolbar,) = toolbars
        panel = toolbar.get_panel_by_id(PANEL)
        assert panel._capture is None
        assert panel.get_stats() == {}

    def test_rows_are_capped(self, client, monkeypatch):
        monkeypatch.setattr(SignalTracePanel, "max_rows", 4)
        response = client.get("/many/", {"n": "3"})
        assert subtitle(response) == "6 receivers"
        content = panel_content(client, response)
        assert "… 8 more rows not shown. See the" in content

    def test_dropped_events(self, client, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "MAX_EVENTS": 3}
        response = client.get("/many/", {"n": "3"})
        content = panel_content(client, response)
        assert "events were not recorded: the trace reached MAX_EVENTS (3)" in content

    def test_toolbar_checks_pass(self):
        """The toolbar's and signaltrace's system checks accept this setup."""
        call_command("check", fail_level="WARNING")


class TestPanel:
    def toolbar(self):
        request = RequestFactory().get("/quiet/")
        return DebugToolbar(request, lambda request: HttpResponse("ok"))

    def test_instrumentation_is_idempotent(self):
        panel = self.toolbar().get_panel_by_id(PANEL)
        panel.enable_instrumentation()
        first = panel._trace
        panel.enable_instrumentation()
        assert panel._trace is first
        view_signal.send(sender="test", marker="m")
        panel.disable_instrumentation()
        panel.disable_instrumentation()
        assert first.closed
        assert first.label == "GET /quiet/"
        assert [d.signal_name for d in first.dispatches] == ["view_signal", "nested_signal"]

    def test_no_stats_without_instrumentation(self):
        toolbar = self.toolbar()
        panel = toolbar.get_panel_by_id(PANEL)
        panel.disable_instrumentation()
        panel.generate_stats(toolbar.request, HttpResponse())
        panel.generate_server_timing(toolbar.request, HttpResponse())
        assert panel.get_stats() == {}
        assert panel.nav_subtitle == ""
        assert panel.get_server_timing_stats() == {}

    def test_viewer_url(self, settings):
        assert _viewer_url(None) is None
        assert _viewer_url("a" * 32) == f"/__signaltrace__/{'a' * 32}/"
        assert _viewer_url("not-an-id") is None  # no such URL
        settings.SIGNALTRACE = {"BUFFER_SIZE": 0}
        assert _viewer_url("a" * 32) is None


@pytest.mark.django_db
class TestStats:
    def test_json_only(self):
        """Stats are plain JSON types (the toolbar's store serialises them)."""
        import json

        from django.contrib.auth.models import User

        with signaltrace.capture() as trace:
            User.objects.create(username="ann")
        stats = panel_stats(trace)
        assert json.loads(json.dumps(stats)) == stats

    def test_slow_async_and_queries(self, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "RECORD_DB": True}
        from django.contrib.auth.models import User

        with signaltrace.capture() as trace:
            User.objects.create(username="ann")
        rows = panel_stats(trace, slow_ms=1e-6)["rows"]
        (create,) = [row for row in rows if row["name"].endswith("create_user_profile")]
        assert create["state"] == "slow"
        assert create["detail"] == "1 query · slow"
        (save,) = [row for row in rows if row["name"].endswith("save_user_profile")]
        assert save["detail"] == "1 query · slow"

    def test_queries_singular_and_plural(self, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "RECORD_DB": True}
        from django.contrib.auth.models import User

        from tests.testapp.models import Backup

        def two_queries(sender, **kwargs):
            Backup.objects.create(username="a")
            Backup.objects.create(username="b")

        view_signal.connect(two_queries)
        try:
            with signaltrace.capture() as trace:
                view_signal.send(sender="test", marker="m")
        finally:
            view_signal.disconnect(two_queries)
        rows = panel_stats(trace)["rows"]
        assert [row["detail"] for row in rows if row["name"].endswith("two_queries")] == [
            "2 queries"
        ]
        assert User.objects.count() == 0

    def test_running_calls(self):
        """Stats made while a receiver runs show it as running, to the trace's end."""
        seen = []
        with signaltrace.capture() as trace:

            def snapshot(sender, **kwargs):
                seen.append(panel_stats(trace))

            view_signal.connect(snapshot)
            try:
                view_signal.send(sender="test", marker="m")
            finally:
                view_signal.disconnect(snapshot)
        rows = seen[0]["rows"]
        assert rows[0]["duration"] == "running"
        (running,) = [row for row in rows if row["name"].endswith("snapshot")]
        assert running["duration"] == "running"
        assert running["state"] == "running"

    def test_receiver_without_code(self):
        """A receiver with no Python code (a class here) has no location."""
        view_signal.connect(dict, weak=False)
        try:
            with signaltrace.capture() as trace:
                view_signal.send(sender="test", marker="m")
        finally:
            view_signal.disconnect(dict)
        rows = panel_stats(trace)["rows"]
        (row,) = [row for row in rows if row["name"] == "dict"]
        assert row["where"] is None
        assert rows[0]["where"].startswith("tests/panel_cases.py:")

    def test_empty(self):
        with signaltrace.capture() as trace:
            pass
        stats = panel_stats(trace)
        assert stats["rows"] == []
        assert stats["call_count"] == 0

    def test_sql_statements(self, settings):
        """With RECORD_SQL each call lists its statements, and a repeated one is flagged."""
        settings.SIGNALTRACE = {"ENABLED": True, "RECORD_DB": True, "RECORD_SQL": True}
        from tests.testapp.models import Backup

        def n_plus_one(sender, **kwargs):
            for i in range(3):
                list(Backup.objects.filter(username=f"u{i}"))

        view_signal.connect(n_plus_one)
        try:
            with signaltrace.capture() as trace:
                view_signal.send(sender="test", marker="m")
        finally:
            view_signal.disconnect(n_plus_one)
        stats = panel_stats(trace)
        (row,) = [row for row in stats["rows"] if row["name"].endswith("n_plus_one")]
        assert row["detail"] == "3 queries · 3 × same query"
        (statement,) = row["sql"]
        assert statement["count"] == 3
        assert statement["sql"].startswith('SELECT "testapp_backup"."id"')
        assert statement["params"] == []
        assert row["sql_omitted"] == 0


@pytest.mark.django_db
def test_sql_in_the_panel(client, settings):
    """The rendered panel shows each call's statements, collapsed under a summary."""
    settings.SIGNALTRACE = {
        "ENABLED": True,
        "LOG_LEVEL": None,
        "RECORD_DB": True,
        "RECORD_SQL": True,
        "RECORD_SQL_PARAMS": True,
    }
    response = client.get("/page/")
    content = panel_content(client, response)
    assert '<details class="signaltrace-sql"><summary>SQL: 1 statement</summary>' in content
    assert "INSERT INTO &quot;testapp_profile&quot;" in content
    assert "<small>params [1, &quot;&quot;]</small>" in content
