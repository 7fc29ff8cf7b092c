"""The trace viewer (list, detail, JSON, assets) and the ring buffer behind it."""

from __future__ import annotations

import asyncio
import json
import re
import threading

import pytest
from django.dispatch import Signal
from django.http import Http404
from django.test import RequestFactory

import signaltrace
from signaltrace import context
from signaltrace.sinks import memory
from signaltrace.sinks.memory import RingBufferSink, buffer
from signaltrace.viewer import _rows, views
from tests.testapp.signals import create_user_profile
from tests.testapp.views import error_signal, fails, nested_signal, view_signal

VIEWER = "/__signaltrace__/"


@pytest.fixture(autouse=True)
def _viewer(settings, monkeypatch):
    settings.DEBUG = True
    settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
    monkeypatch.setattr(context, "_logged", set())
    buffer().clear()
    yield
    memory._buffer.clear()


def trace_id(response):
    return response.headers["X-Signaltrace-Id"]


def make_trace(label="GET /x/ 200", **meta):
    """A closed trace recorded outside any request."""
    with signaltrace.capture(label=label) as trace:
        view_signal.send(sender="made", marker="made")
    trace.meta.update(meta)
    if "id" in meta:  # the viewer's id is the trace's own
        trace.trace_id = meta["id"]
    return trace


@pytest.mark.django_db
class TestAccess:
    @pytest.mark.parametrize(
        "suffix", ["", "0" * 32 + "/", "0" * 32 + ".json", "assets/viewer.css"]
    )
    @pytest.mark.parametrize(("debug", "remote_addr"), [(False, "127.0.0.1"), (True, "10.9.8.7")])
    def test_refused_is_404(self, client, settings, suffix, debug, remote_addr):
        """Unless SHOW_CALLBACK allows, every viewer URL is a plain 404 (any method)."""
        settings.DEBUG = debug
        assert client.get(VIEWER + suffix, REMOTE_ADDR=remote_addr).status_code == 404
        assert client.post(VIEWER + suffix, REMOTE_ADDR=remote_addr).status_code == 404

    def test_refused_request_has_no_headers_and_no_viewer(self, client, settings):
        """The issue's scenario: a refused client sees neither headers nor traces."""
        settings.DEBUG = False
        response = client.get("/signal/secret/")
        assert "X-Signaltrace-Id" not in response.headers
        assert "Server-Timing" not in response.headers
        (trace,) = buffer().traces()
        assert client.get(f"{VIEWER}{trace.meta['id']}/").status_code == 404
        assert client.get(f"{VIEWER}{trace.meta['id']}.json").status_code == 404

    def test_get_only(self, client):
        """Allowed clients may only GET."""
        tid = trace_id(client.get("/signal/m/"))
        for url in (VIEWER, f"{VIEWER}{tid}/", f"{VIEWER}{tid}.json"):
            assert client.post(url).status_code == 405
            assert client.put(url).status_code == 405
            assert client.delete(url).status_code == 405
            assert client.get(url).status_code == 200

    def test_never_cached(self, client):
        assert "no-cache" in client.get(VIEWER).headers["Cache-Control"]

    def test_unknown_trace(self, client):
        assert client.get(f"{VIEWER}{'a' * 32}/").status_code == 404
        assert client.get(f"{VIEWER}{'a' * 32}.json").status_code == 404
        assert client.get(f"{VIEWER}not-an-id/").status_code == 404


@pytest.mark.django_db
class TestList:
    def test_empty(self, client):
        html = client.get(VIEWER).content.decode()
        assert "No requests recorded yet" in html

    def test_rows(self, client):
        """Each request is a row: method, path, status, view, counts, slowest receiver."""
        tid = trace_id(client.get("/create-user/", {"username": "ann"}))
        client.raise_request_exception = False
        client.get("/raising/")
        html = client.get(VIEWER).content.decode()
        assert html.count('class="st-request') == 2
        assert f'href="{tid}/"' in html
        assert "/create-user/" in html
        assert "tests.testapp.views.create_user_view" in html
        assert "3 / 4" in html
        assert "2 requests kept (the last 100 in this process" in html
        assert 'st-request st-has-error"' in html
        assert '<span class="st-status st-s5">500</span>' in html
        assert '<span class="st-status st-s2">200</span>' in html
        assert re.search(
            r'<code title="tests\.testapp\.signals\.(\w+_user_profile)">\1</code>', html
        )
        assert '<span class="st-view">tests.testapp.signals</span>' in html

    def test_slow_rows_are_marked(self, client, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "SLOW_MS": 1}
        client.get("/signal/slow/", {"pause": "0.003"})
        html = client.get(VIEWER).content.decode()
        assert "st-has-slow" in html
        assert "st-slow-text" in html

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ({"path": "CREATE"}, ["/create-user/"]),
            ({"errors": "1"}, ["/robust/", "/raising/"]),
            ({"signal": "post_save"}, ["/create-user/"]),
            ({"signal": "nested_signal"}, ["/signal/m/", "/create-user/"]),
            ({"receiver": "FAILS"}, ["/robust/", "/raising/"]),
            ({"receiver": "record_marker", "path": "signal"}, ["/signal/m/"]),
            ({"signal": "never_sent"}, []),
        ],
    )
    def test_filters(self, client, query, expected):
        client.raise_request_exception = False
        for url in ("/create-user/?username=ann", "/raising/", "/robust/", "/signal/m/"):
            client.get(url)
        html = client.get(VIEWER, query).content.decode()
        paths = re.findall(r'class="st-path" href="[0-9a-f]{32}/">([^<]*)<', html)
        assert sorted(paths) == sorted(expected)
        assert f"{len(expected)} of 4 requests kept" in html
        if not expected:
            assert "No kept request matches these filters." in html
        for value in query.values():
            assert f'value="{value}"' in html

    def test_signal_options(self, client):
        client.get("/signal/m/")
        html = client.get(VIEWER).content.decode()
        assert '<option value="nested_signal">nested_signal</option>' in html
        assert '<option value="view_signal">view_signal</option>' in html

    def test_view_exception_row(self, client):
        buffer().emit(make_trace(id="b" * 32, method="GET", path="/x/", exception="KeyError"))
        html = client.get(VIEWER).content.decode()
        assert 'title="KeyError">view</span>' in html
        assert "st-has-error" in html
        assert '<span class="st-status st-s5">—</span>' in html


@pytest.mark.django_db
class TestDetail:
    def test_tree_waterfall_and_details(self, client):
        """The detail page has the ARIA tree, nested waterfall bars and receiver details."""
        tid = trace_id(client.get("/create-user/", {"username": "ann"}))
        html = client.get(f"{VIEWER}{tid}/").content.decode()
        assert 'role="tree"' in html
        items = re.findall(r'<li role="treeitem" id="(n\d+)"[^>]*aria-level="(\d)"', html)
        assert [level for _id, level in items] == ["1", "2", "2", "1", "2", "3", "4"]
        assert html.count('aria-expanded="true"') == 4  # two dispatches, one call, one nested
        bars = re.findall(r'class="st-bar" data-left="([\d.]+)" data-width="([\d.]+)"', html)
        assert len(bars) == 7
        for left, width in bars:
            assert 0 <= float(left) <= 100
            assert 0 <= float(width) <= 100 - float(left) + 0.001
        # Nested bars lie inside their parent's bar.
        (post_left, post_width), (create_left, create_width) = bars[0], bars[1]
        assert float(post_left) <= float(create_left)
        assert (
            float(create_left) + float(create_width) <= float(post_left) + float(post_width) + 0.001
        )
        line = create_user_profile.__code__.co_firstlineno
        assert f"tests/testapp/signals.py:{line}" in html  # create_user_profile's file:line
        assert '<th scope="row">created</th><td><code>true</code></td>' in html
        assert "auth.User pk=" in html
        assert f'href="../{tid}.json"' in html
        assert html.count('class="st-detail"') == 7
        assert "Receivers" in html

    @pytest.mark.parametrize("record_db", [True, False])
    def test_database_facts(self, client, settings, record_db):
        """With RECORD_DB, each receiver shows its queries, atomic block and on_commit count."""
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "RECORD_DB": record_db}
        tid = trace_id(client.get("/create-user/", {"username": "ann"}))
        html = client.get(f"{VIEWER}{tid}/").content.decode()
        if record_db:
            assert '<span class="st-badge st-b-muted">1 query</span>' in html
            assert "<dt>Queries</dt><dd>1</dd>" in html
            assert "<dt>In atomic block</dt>" in html
            assert "<dt>on_commit callbacks</dt><dd>0</dd>" in html
            assert 'title="RECORD_DB is off"' not in html
        else:
            assert "<dt>Queries</dt>" not in html
            assert 'title="RECORD_DB is off"' in html

    def test_errors_and_redaction(self, client):
        """Exceptions show type, message, location; redacted kwargs never show their value."""
        tid = trace_id(client.get("/robust/"))
        html = client.get(f"{VIEWER}{tid}/").content.decode()
        assert "<strong>ValueError</strong>: receiver failed &lt;b&gt;loudly&lt;/b&gt;" in html
        assert "Swallowed by <code>send_robust</code>" in html
        assert "swallowed ValueError" in html
        assert (
            '<th scope="row">password</th><td><span class="st-redacted">[redacted]</span>' in html
        )
        assert '<th scope="row">api_key</th><td><span class="st-redacted">[redacted]</span>' in html
        assert "hunter2" not in html
        assert "k-123" not in html
        assert "<script>x</script>" not in html
        assert "&quot;&lt;script&gt;x&lt;/script&gt;&quot;" in html

    def test_propagated_error(self, client):
        client.raise_request_exception = False
        tid = trace_id(client.get("/raising/"))
        html = client.get(f"{VIEWER}{tid}/").content.decode()
        assert "Propagated out of <code>send</code>" in html

    def test_user_controlled_text_is_escaped(self, client):
        """A path full of markup is shown as text, in the list and the detail page."""
        tid = trace_id(client.get("/signal/<img src=x onerror=alert(1)>/"))
        for url in (VIEWER, f"{VIEWER}{tid}/"):
            html = client.get(url).content.decode()
            assert "<img src=x" not in html
            assert "&lt;img src=x onerror=alert(1)&gt;" in html

    def test_unfinished_stream_is_not_listed_yet(self, client):
        response = client.get("/stream/")
        tid = trace_id(response)
        assert tid not in client.get(VIEWER).content.decode()  # not finished yet
        assert buffer().get(tid) is None
        response.close()
        assert buffer().get(tid) is not None

    def test_no_signals(self, client):
        with signaltrace.capture(label="GET /quiet/ 200") as trace:
            pass
        trace.meta.update(id="d" * 32, method="GET", path="/quiet/", status=200)
        trace.trace_id = "d" * 32
        buffer().emit(trace)
        tid = "d" * 32
        html = client.get(f"{VIEWER}{tid}/").content.decode()
        assert "No signals with receivers were dispatched" in html

    def test_dropped_and_exception_banners(self, client):
        with signaltrace.capture(label="GET /x/ exception", max_events=3) as trace:
            for _ in range(3):
                view_signal.send(sender="cap", marker="cap")
        trace.meta.update(id="c" * 32, method="GET", path="/x/", exception="KeyError", status=None)
        trace.trace_id = "c" * 32
        buffer().emit(trace)
        html = client.get(f"{VIEWER}{'c' * 32}/").content.decode()
        assert 'id="st-truncated"' in html
        assert "events in all, past <code>MAX_EVENTS</code> (3)" in html
        assert "The view raised <code>KeyError</code>" in html

    def test_async_receivers(self, client):
        """Async receivers are marked; the page shows both receivers of the async signal."""
        from django.test import AsyncClient

        response = asyncio.run(AsyncClient().get("/async-signal/a/"))
        html = client.get(f"{VIEWER}{trace_id(response)}/").content.decode()
        assert '<span class="st-badge st-b-muted">async</span>' in html
        assert "<dd>async</dd>" in html
        assert "<dd>sync</dd>" in html
        assert '<span class="st-badge st-b-method">asend</span>' in html

    def test_streaming_banner(self, client):
        response = client.get("/stream/")
        b"".join(response.streaming_content)
        html = client.get(f"{VIEWER}{trace_id(response)}/").content.decode()
        assert "Streaming response" in html


@pytest.mark.django_db
class TestJson:
    def test_json_is_to_dict(self, client):
        tid = trace_id(client.get("/robust/"))
        response = client.get(f"{VIEWER}{tid}.json")
        assert response.headers["Content-Type"] == "application/json"
        data = json.loads(response.content)
        assert data == json.loads(json.dumps(buffer().get(tid).to_dict()))
        assert data["schema"] == "signaltrace.trace/2"
        assert data["meta"]["id"] == tid
        kwargs = data["dispatches"][0]["kwargs"]
        assert kwargs["password"] == "[redacted]"


@pytest.mark.django_db
class TestAssets:
    @pytest.mark.parametrize(
        ("name", "content_type"),
        [
            ("viewer.css", "text/css; charset=utf-8"),
            ("viewer.js", "text/javascript; charset=utf-8"),
        ],
    )
    def test_served(self, client, name, content_type):
        response = client.get(f"{VIEWER}assets/{name}")
        assert response.status_code == 200
        assert response.headers["Content-Type"] == content_type
        assert len(response.content) > 1000
        html = client.get(VIEWER).content.decode()
        assert re.search(rf'assets/{re.escape(name)}\?v=[0-9a-f]{{12}}"', html)

    def test_unknown(self, client):
        assert client.get(f"{VIEWER}assets/other.js").status_code == 404
        request = RequestFactory().get("/")
        with pytest.raises(Http404):
            views.asset(request, name="../../settings.py")

    def test_no_external_urls(self):
        """Templates and assets reference nothing outside the viewer (works offline)."""
        root = views.PACKAGE_DIR
        for path in [
            *root.joinpath("templates").rglob("*.html"),
            *root.joinpath("static").rglob("*.*"),
        ]:
            text = path.read_text()
            assert "http://" not in text
            assert "https://" not in text
            assert "//cdn" not in text


class TestRows:
    def test_location(self):
        assert _rows.location(None, None) is None

    def test_value_text_never_calls_str(self):
        class Loud:
            def __str__(self):  # pragma: no cover - must not be called
                raise AssertionError("called")

        assert _rows.value_text(Loud()) == '"<Loud>"'
        assert _rows.value_text([1, "a"]) == '[1, "a"]'

    def test_split_name(self):
        assert _rows._split_name("pkg.mod.func") == ("pkg.mod", "func")
        assert _rows._split_name("functools.partial(pkg.f)") == ("", "functools.partial(pkg.f)")
        assert _rows._split_name("func") == ("", "func")

    def test_status_class(self):
        assert _rows._status_class(None) == "st-s5"
        assert _rows._status_class(101) == "st-s1"
        assert _rows._status_class(204) == "st-s2"
        assert _rows._status_class(999) == "st-s5"

    def test_big_trees_open_collapsed(self):
        """Past COLLAPSE_ABOVE rows, receivers that sent signals start collapsed."""
        with signaltrace.capture() as trace:
            for _ in range(_rows.COLLAPSE_ABOVE // 4 + 1):
                view_signal.send(sender="big", marker="big")
        rows = _rows.tree_rows(trace, 50)
        assert len(rows) > _rows.COLLAPSE_ABOVE
        announce = [row for row in rows if row.title.endswith(".announce")]
        assert all(not row.expanded for row in announce)
        assert all(row.hidden for row in rows if row.level > 2)
        assert not any(row.hidden for row in rows if row.level <= 2)

    def test_running_items(self):
        """A trace read while a receiver runs shows running bars that reach the end."""
        seen = []

        def peek(sender, **kwargs):
            seen.append(_rows.tree_rows(trace, 50))

        nested_signal.connect(peek)
        try:
            with signaltrace.capture() as trace:
                view_signal.send(sender="running", marker="running")
        finally:
            nested_signal.disconnect(peek)
        (rows,) = seen
        running = [row for row in rows if row.state == "running"]
        assert {row.kind for row in running} == {"dispatch", "call"}
        for row in running:
            assert row.duration == "running"
            assert abs(float(row.left) + float(row.width) - 100) < 0.01

    def test_slow_and_async_badges(self):
        with signaltrace.capture() as trace:
            view_signal.send(sender="slow", marker="slow", pause=0.002)
        rows = _rows.tree_rows(trace, 1)
        assert ("slow", "st-b-slow") in rows[1].badges
        assert rows[1].state == "slow"
        assert _rows.tree_rows(trace, 0)[1].state == "returned"

    def test_empty_dispatches(self, settings):
        """With RECORD_EMPTY, dispatches nobody received are rows marked 'no receivers'."""
        settings.SIGNALTRACE = {"ENABLED": True, "RECORD_EMPTY": True, "RECORD_ORIGIN": False}
        with signaltrace.capture() as trace:
            Signal().send(sender="empty")
        rows = _rows.tree_rows(trace, 50)
        empty = rows[-1]
        assert ("no receivers", "st-b-muted") in empty.badges
        assert not empty.expandable
        assert all(label != "Sent from" for label, _value in empty.facts)

    def test_signal_window(self):
        """The zoomed axis runs from the first dispatch to the end of the last one."""
        with signaltrace.capture() as empty:
            pass
        assert _rows.signal_window(empty) == (empty.start_ns, max(empty.duration_ns, 1))
        with signaltrace.capture() as trace:
            view_signal.send(sender="w", marker="w")
            error_signal.send_robust(sender="w")
        first, last = trace.roots[0], trace.roots[-1]
        assert _rows.signal_window(trace) == (
            first.start_ns,
            last.start_ns + last.duration_ns - first.start_ns,
        )
        rows = _rows.tree_rows(trace, 50)
        last_root = [row for row in rows if row.level == 1][-1]
        assert float(rows[0].zleft) == 0
        assert abs(float(last_root.zleft) + float(last_root.zwidth) - 100) < 0.01

    def test_receiver_table(self):
        with signaltrace.capture() as trace:
            view_signal.send(sender="t", marker="t")
            view_signal.send(sender="t", marker="t")
            error_signal.send_robust(sender="t")
        table = _rows.receiver_table(trace)
        by_name = {entry.name: entry for entry in table}
        assert by_name["tests.testapp.views.announce"].calls == 2
        assert by_name["tests.testapp.views.fails"].errors == 1
        line = fails.__code__.co_firstlineno
        assert by_name["tests.testapp.views.fails"].location.endswith(f"views.py:{line}")
        assert table == sorted(table, key=lambda entry: entry.total_ns, reverse=True)
        assert by_name["tests.testapp.views.announce"].total.endswith("s")
        assert by_name["tests.testapp.views.announce"].max.endswith("s")


class TestRingBufferSink:
    def test_keeps_the_newest(self):
        """Past its size the buffer drops the oldest trace; traces() is newest first."""
        ring = RingBufferSink(2)
        traces = [make_trace(id=f"{i:032x}") for i in range(3)]
        for trace in traces:
            ring.emit(trace)
        assert ring.traces() == [traces[2], traces[1]]
        assert ring.get(f"{0:032x}") is None
        assert ring.get(f"{2:032x}") is traces[2]
        assert len(ring) == 2

    def test_keeps_under_the_trace_id(self):
        ring = RingBufferSink()
        trace = make_trace()
        ring.emit(trace)
        assert re.fullmatch(r"[0-9a-f]{32}", trace.trace_id)
        assert ring.get(trace.trace_id) is trace

    def test_re_emit_moves_to_newest(self):
        ring = RingBufferSink(3)
        first, second = make_trace(id="1" * 32), make_trace(id="2" * 32)
        ring.emit(first)
        ring.emit(second)
        ring.emit(first)
        assert ring.traces() == [first, second]

    def test_resize_and_clear(self):
        ring = RingBufferSink(5)
        for i in range(5):
            ring.emit(make_trace(id=f"{i:032x}"))
        ring.size = 2
        assert [t.meta["id"] for t in ring.traces()] == [f"{4:032x}", f"{3:032x}"]
        ring.clear()
        assert ring.traces() == []
        with pytest.raises(ValueError, match="size must be an int >= 0"):
            ring.size = -1
        with pytest.raises(ValueError, match="size must be an int >= 0"):
            RingBufferSink(True)

    def test_zero_keeps_nothing(self):
        ring = RingBufferSink(0)
        ring.emit(make_trace())
        assert ring.traces() == []

    def test_follows_buffer_size(self, settings):
        settings.SIGNALTRACE = {"BUFFER_SIZE": 7}
        assert buffer().size == 7
        settings.SIGNALTRACE = {"BUFFER_SIZE": -3}  # invalid: reported by the checks
        assert buffer().size == 7
        settings.SIGNALTRACE = {}
        assert buffer().size == 100

    def test_thread_safe(self):
        """Many threads emitting and reading at once never break the size bound."""
        ring = RingBufferSink(50)
        trace = make_trace()
        errors = []

        def work(n):
            try:
                for i in range(300):
                    clone = signaltrace.Trace(trace.options)
                    clone.trace_id = clone.meta["id"] = f"{n:016x}{i:016x}"
                    ring.emit(clone)
                    ring.traces()
                    ring.get(clone.trace_id)
            except Exception as err:  # pragma: no cover - the failure we test for
                errors.append(err)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(ring) == 50
        assert len({t.meta["id"] for t in ring.traces()}) == 50


@pytest.mark.django_db
def test_detail_shows_skipped_receivers(client):
    """A request whose bulk_create skipped post_save lists the receivers that did not run."""
    from django.contrib.auth.models import User

    with signaltrace.capture() as trace:
        User.objects.bulk_create([User(username="bulk-a"), User(username="bulk-b")])
    buffer().emit(trace)
    response = client.get(f"{VIEWER}{trace.trace_id}/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "Receivers that did not run" in content
    assert "bulk_create" in content
    assert "tests.testapp.signals.create_user_profile" in content
