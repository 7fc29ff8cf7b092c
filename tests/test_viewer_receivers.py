"""The viewer's Receivers page and its JSON, through the test client."""

from __future__ import annotations

import json
import os

import pytest
from django.test import override_settings

from signaltrace import context, metrics, sinks
from signaltrace.sinks.memory import buffer
from signaltrace.viewer import receivers
from tests.test_metrics import KEYS  # the keys issue #14 names, one list for both

VIEWER = "/__signaltrace__/"
PAGE = VIEWER + "receivers/"
JSON = VIEWER + "receivers.json"
TESTAPP = "tests.testapp."


@pytest.fixture(autouse=True)
def _viewer(settings, monkeypatch):
    settings.DEBUG = True
    settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "METRICS": True}
    monkeypatch.setattr(context, "_logged", set())
    buffer().clear()
    metrics.reset()
    yield
    assert sinks.flush(10)
    buffer().clear()
    metrics.reset()


def data(client, query=""):
    response = client.get(JSON + query)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


def ours(content):
    """The test app's receivers, in the order given."""
    return [r for r in content["receivers"] if r["receiver"].startswith(TESTAPP)]


def by_name(content):
    return {r["receiver"][len(TESTAPP) :]: r for r in ours(content)}


@pytest.mark.django_db
class TestAccess:
    @pytest.mark.parametrize("url", [PAGE, JSON])
    @pytest.mark.parametrize(("debug", "remote_addr"), [(False, "127.0.0.1"), (True, "10.9.8.7")])
    def test_refused_is_404(self, client, settings, url, debug, remote_addr):
        """As every viewer URL: unless SHOW_CALLBACK allows, a plain 404, whatever the method."""
        settings.DEBUG = debug
        client.get("/signal/m/")
        assert client.get(url, REMOTE_ADDR=remote_addr).status_code == 404
        assert client.post(url, REMOTE_ADDR=remote_addr).status_code == 404

    def test_custom_callback(self, client, settings):
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "METRICS": True,
            "LOG_LEVEL": None,
            "SHOW_CALLBACK": lambda request: request.GET.get("key") == "sesame",
        }
        assert client.get(PAGE).status_code == 404
        assert client.get(JSON + "?key=nope").status_code == 404
        assert client.get(PAGE + "?key=sesame").status_code == 200
        assert client.get(JSON + "?key=sesame").status_code == 200

    @pytest.mark.parametrize("url", [PAGE, JSON])
    def test_get_only(self, client, url):
        assert client.post(url).status_code == 405
        assert client.put(url).status_code == 405
        assert client.get(url).status_code == 200

    def test_never_cached(self, client):
        assert "no-cache" in client.get(PAGE).headers["Cache-Control"]
        assert "no-cache" in client.get(JSON).headers["Cache-Control"]


@pytest.mark.django_db
class TestPage:
    def test_lists_the_receivers(self, client):
        for marker in ("a", "b", "c"):
            client.get(f"/signal/{marker}/")
        client.get("/robust/")
        html = client.get(PAGE).content.decode()
        assert 'class="st-receiver"' in html
        assert '<code title="tests.testapp.views.record_marker">record_marker</code>' in html
        assert '<code title="tests.testapp.views.announce">announce</code>' in html
        assert "st-receiver st-has-error" in html  # fails raised
        assert "<code>nested_signal</code>" in html
        assert "this process only" in html
        assert 'aria-current="true">total time</a>' in html
        for key in metrics.SORTS:
            assert f'href="?sort={key}"' in html

    def test_metrics_off(self, client, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
        client.get("/signal/m/")
        html = client.get(PAGE).content.decode()
        assert 'id="st-metrics-off"' in html
        assert "No receiver calls counted yet" in html
        assert data(client)["metrics"] is False

    def test_navigation(self, client):
        """Every page links to it; it links back to the list."""
        trace_id = client.get("/signal/m/").headers["X-Signaltrace-Id"]
        assert 'href="receivers/"' in client.get(VIEWER).content.decode()
        assert 'href="../receivers/"' in client.get(f"{VIEWER}{trace_id}/").content.decode()
        page = client.get(PAGE).content.decode()
        assert 'href="../receivers/"' in page
        assert '<a href="../">Recent requests</a>' in page

    def test_escaped(self, client):
        client.get("/signal/%3Cscript%3E/")
        assert "<script>" not in client.get(PAGE).content.decode()

    def test_store_that_fails(self, client, monkeypatch):
        class Broken:
            def recent(self):
                raise ConnectionError("down")

        client.get("/signal/m/")
        monkeypatch.setattr(receivers, "get_store", Broken)
        response = client.get(PAGE)
        assert response.status_code == 200
        assert 'id="st-store-error"' in response.content.decode()
        assert data(client)["errors"] == ["ConnectionError"]
        assert by_name(data(client))["views.record_marker"]["slowest_trace"] is None


@pytest.mark.django_db
class TestJson:
    def test_keys(self, client):
        client.get("/create-user/", {"username": "ann"})
        content = data(client)
        assert {"receivers", "since", "process", "processes", "merged", "metrics", "sort"} <= set(
            content
        )
        assert content["process"] == {"pid": os.getpid(), "host": metrics.process()["host"]}
        assert content["since"].endswith("+00:00")
        assert content["merged"] is False
        assert content["metrics"] is True
        assert content["sort"] == "total"
        found = by_name(content)
        profile = found["signals.create_user_profile"]
        assert KEYS | {"slowest_trace"} <= set(profile)
        assert profile["calls"] == 1
        assert profile["signals"] == ["post_save"]
        assert profile["queries"] == 1  # the request was traced with RECORD_DB (DEBUG)
        assert profile["p50_ms"] > 0

    def test_matches_the_snapshot(self, client):
        client.get("/signal/m/")
        content = data(client)
        snapshot = {r["receiver"]: r for r in metrics.snapshot()}
        for item in ours(content):
            expected = snapshot[item["receiver"]]
            assert {k: item[k] for k in expected} == expected


@pytest.mark.django_db
class TestSorting:
    @pytest.fixture
    def made(self, client):
        """announce: quick; record_marker: one slow call; fails: raises, called most."""
        client.get("/signal/slow/", {"pause": "0.01"})
        client.get("/signal/quick/")
        for _ in range(4):
            client.get("/robust/")

    @pytest.mark.parametrize(
        ("sort", "first"),
        [
            ("total", "views.announce"),  # announce's time includes record_marker's (nested)
            ("p95", "views.announce"),
            ("errors", "views.fails"),
            ("calls", "views.fails"),
        ],
    )
    def test_ranked(self, client, made, sort, first):
        content = data(client, f"?sort={sort}")
        assert content["sort"] == sort
        assert ours(content)[0]["receiver"] == TESTAPP + first
        html = client.get(f"{PAGE}?sort={sort}").content.decode()
        assert f'href="?sort={sort}" aria-current="true">' in html

    def test_second_by_total_is_the_slow_one(self, client, made):
        names = [r["receiver"] for r in ours(data(client, "?sort=total"))]
        assert names[:2] == [TESTAPP + "views.announce", TESTAPP + "views.record_marker"]

    def test_unknown_sort_is_total(self, client, made):
        assert data(client, "?sort=nope")["sort"] == "total"
        assert client.get(f"{PAGE}?sort=nope").status_code == 200


@pytest.mark.django_db
class TestSlowestTrace:
    def test_link(self, client):
        ids = {}
        for marker, pause in (("a", "0"), ("b", "0.006"), ("c", "0.001")):
            ids[marker] = client.get(f"/signal/{marker}/", {"pause": pause}).headers[
                "X-Signaltrace-Id"
            ]
        content = data(client)
        slowest = by_name(content)["views.record_marker"]["slowest_trace"]
        assert slowest["trace_id"] == ids["b"]
        assert slowest["url"] == f"{VIEWER}{ids['b']}/"
        assert slowest["duration_ms"] >= 6
        html = client.get(PAGE).content.decode()
        assert f'<a class="st-slowest-trace" href="../{ids["b"]}/">' in html
        assert client.get(f"{VIEWER}{ids['b']}/").status_code == 200

    def test_none_kept(self, client):
        """Calls counted outside any kept trace: no link."""
        from tests.testapp.views import view_signal

        view_signal.send(sender="test", marker="untraced")
        item = by_name(data(client))["views.record_marker"]
        assert item["calls"] == 1
        assert item["slowest_trace"] is None
        assert (
            'title="No kept trace has a call of this receiver"' in client.get(PAGE).content.decode()
        )

    def test_dropped_from_the_buffer(self, client, settings):
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "LOG_LEVEL": None,
            "METRICS": True,
            "BUFFER_SIZE": 1,
        }
        client.get("/signal/old/", {"pause": "0.005"})
        newest = client.get("/signal/new/").headers["X-Signaltrace-Id"]
        slowest = by_name(data(client))["views.record_marker"]["slowest_trace"]
        assert slowest["trace_id"] == newest  # the slower one is no longer kept


@pytest.mark.django_db
def test_every_process_through_a_shared_store(client, settings, tmp_path, monkeypatch):
    """With a CacheStore the page adds up what every process wrote there."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "traces": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": tmp_path.name,
        },
    }
    settings.SIGNALTRACE = {
        "ENABLED": True,
        "LOG_LEVEL": None,
        "METRICS": True,
        "STORE": "signaltrace.stores.CacheStore",
        "STORE_OPTIONS": {"CACHE": "traces"},
    }
    with monkeypatch.context() as patched:  # another process: its own token and pid
        patched.setattr(metrics, "_token", [os.getpid(), "other"])
        patched.setattr(metrics, "_slot", [None, None, 0])
        patched.setattr(metrics, "process", lambda: {"pid": 7, "host": "web-2"})
        for _ in range(3):
            client.get("/signal/elsewhere/")
        assert metrics.flush()
        metrics.reset()
    trace_id = client.get("/signal/here/", {"pause": "0.004"}).headers["X-Signaltrace-Id"]
    assert sinks.flush(10)  # the shared store is written on the sink worker
    content = data(client)
    assert content["merged"] is True
    assert sorted(p["pid"] for p in content["processes"]) == sorted([7, os.getpid()])
    marker = by_name(content)["views.record_marker"]
    assert marker["calls"] == 4
    assert marker["slowest_trace"]["trace_id"] == trace_id
    html = client.get(PAGE).content.decode()
    assert "2 processes sharing the trace store" in html
    assert "web-2" in html


@pytest.mark.django_db
class TestEdges:
    def test_traces_that_cannot_be_read_give_no_link(self, client, monkeypatch):
        client.get("/signal/m/")
        store = receivers.get_store()

        class Failing:
            def recent(self):
                return store.recent()

            def get(self, trace_id):
                raise ValueError("not trace JSON")

        monkeypatch.setattr(receivers, "get_store", Failing)
        content = data(client)
        assert by_name(content)["views.record_marker"]["slowest_trace"] is None
        assert content["errors"] == []  # the page is fine: only the links are missing

    def test_unreadable_entries_are_skipped(self, monkeypatch):
        from signaltrace.stores import Listing

        class Store:
            def recent(self):
                return [
                    Listing("0" * 32, error=ValueError("bad")),
                    Listing("1" * 32, receivers=("x",)),
                ]

            get = None  # never called: neither entry names a receiver asked for

        monkeypatch.setattr(receivers, "get_store", Store)
        assert receivers.slowest_calls({"y"}) == ({}, None)

    def test_nothing_kept(self, client, settings):
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "LOG_LEVEL": None,
            "METRICS": True,
            "BUFFER_SIZE": 0,
        }
        client.get("/signal/m/")
        assert by_name(data(client))["views.record_marker"]["slowest_trace"] is None

    def test_mounted_elsewhere(self, rf):
        """Without the viewer's URLs to reverse, the link is relative to the viewer."""
        assert receivers._detail_url(rf.get("/"), "a" * 32).endswith("a" * 32 + "/")
        request = rf.get("/")
        request.resolver_match = None
        with override_settings(ROOT_URLCONF="tests.test_viewer_receivers"):
            assert receivers._detail_url(request, "b" * 32) == "b" * 32 + "/"

    def test_a_receiver_without_a_location(self):
        item = {
            "receiver": "len",
            "location": None,
            "signals": ["s"],
            "calls": 2,
            "errors": 1,
            "total_ms": 0.5,
            "mean_ms": 0.25,
            "p50_ms": None,
            "p95_ms": 0.3,
            "p99_ms": 0.3,
            "queries": 3,
            "queried_calls": 1,
        }
        row = receivers._row(item, {})
        assert row.location == ""
        assert row.short == "len"
        assert row.module == ""
        assert row.error_rate == "50.0%"
        assert row.p50 == "—"
        assert row.queries == "3 in 1 call"


urlpatterns: list[object] = []  # test_mounted_elsewhere: a URLconf without the viewer
