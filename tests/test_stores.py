"""Stores (``STORE``): memory, Django's caches (a real redis-server among them) and the ORM.

Every store keeps the newest ``BUFFER_SIZE`` traces, lists them newest first,
fetches one by id and clears; a stored trace reads back exactly as its live
trace renders; shared stores are written on the sink worker, never in the
request; they keep JSON text only, and what is read back from Redis is never
unpickled; and a store that fails (Redis down, the table missing) never
reaches the request: counted, logged once, shown in the viewer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import re
import threading
from pathlib import Path

import pytest
import redis
from django.contrib.auth.models import User
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection, connections

import signaltrace
from signaltrace import context, sinks, stores
from signaltrace.checks import check_middleware, check_settings
from signaltrace.conf import config_errors, get_config
from signaltrace.models import KeptTrace
from signaltrace.sinks.memory import buffer
from signaltrace.stores import CacheStore, DatabaseStore, Listing, MemoryStore, StoredTrace
from signaltrace.stores.base import dumps, listing_from_dict, listing_of, listing_to_dict, loads
from signaltrace.viewer import views
from tests.services import free_port, redis_server
from tests.testapp.views import async_signal, error_signal, view_signal

VIEWER = "/__signaltrace__/"
LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
REDIS = "django.core.cache.backends.redis.RedisCache"
#: The shared stores under test, by the cache (or ORM) behind them.
SHARED = ["redis", "locmem", "dbcache", "filecache", "database"]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(autouse=True)
def _clean(settings, monkeypatch):
    settings.DEBUG = True
    settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
    monkeypatch.setattr(context, "_logged", set())
    buffer().clear()
    yield
    assert sinks.flush(10)
    buffer().clear()


def configure(settings, request, kind, tmp_path, size=3, **signaltrace_settings):
    """Settings for one store; returns the store, cleared."""
    cache = dict(LOCMEM)
    path, options = "signaltrace.stores.CacheStore", {"CACHE": "traces"}
    if kind == "redis":
        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushdb()  # what other tests left (other sizes, probes)
        cache = {"BACKEND": REDIS, "LOCATION": url}
    elif kind == "locmem":
        cache = {**LOCMEM, "LOCATION": f"traces-{tmp_path.name}"}
    elif kind == "dbcache":
        cache = {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "st_cache"}
    elif kind == "filecache":
        cache = {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    elif kind == "database":
        path, options = "signaltrace.stores.DatabaseStore", {}
    elif kind == "memory":
        path, options = "signaltrace.stores.MemoryStore", {}
    settings.CACHES = {"default": LOCMEM, "traces": cache}
    if kind == "dbcache":
        call_command("createcachetable", "st_cache", verbosity=0)
    settings.SIGNALTRACE = {
        "ENABLED": True,
        "LOG_LEVEL": None,
        "BUFFER_SIZE": size,
        "STORE": path,
        "STORE_OPTIONS": options,
        **signaltrace_settings,
    }
    store = stores.get_store()
    store.clear()
    return store


class ForgetConnections:
    """A sink that drops its thread's database connections (in-memory SQLite ignores close())."""

    def emit(self, trace):
        for wrapper in connections.all(initialized_only=True):  # this thread's
            if wrapper.connection is not None:
                wrapper.connection.close()  # Django's close() leaves in-memory SQLite open
            del connections[wrapper.alias]


@pytest.fixture
def worker_forgets_connections():
    """After a test whose store wrote from the sink worker: the worker holds no connection.

    Left open, the next test that does not allow database access would see the
    worker's end-of-job ``close_old_connections()`` refused by pytest-django.
    """
    yield
    sinks._enqueue(
        traced("forget"), get_config(), (("forget", ForgetConnections()),), announce=False
    )
    assert sinks.flush(10)


def traced(label, kind="capture", parent=None, signal=view_signal, **meta):
    """A closed trace of one dispatch (and its nested one)."""
    with signaltrace.capture(label=label, kind=kind, parent=parent) as trace:
        signal.send(sender=label, marker=label)
    trace.meta.update(meta)
    return trace


def without_footer(html):
    return re.sub(r"<footer.*?</footer>", "", html, flags=re.S)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["memory", *SHARED])
class TestStoreContract:
    """What every store does: newest BUFFER_SIZE, newest first, by id, by kind, clear."""

    def test_keeps_the_newest_newest_first(self, settings, request, kind, tmp_path):
        store = configure(settings, request, kind, tmp_path, size=3)
        made = [traced(f"t{i}", kind="task" if i % 2 else "command") for i in range(5)]
        for trace in made:
            store.save(trace)
        listed = store.recent()
        assert [entry.label for entry in listed] == ["t4", "t3", "t2"]
        assert all(isinstance(entry, Listing) for entry in listed)
        assert listed[0] == listing_of(made[4])
        assert store.get(made[0].trace_id) is None  # dropped: only the newest 3 are kept
        assert store.get(made[4].trace_id).render() == made[4].render()
        assert [entry.label for entry in store.recent(kind="task")] == ["t3"]
        assert [entry.label for entry in store.recent(kind="command")] == ["t4", "t2"]
        assert store.get("0" * 32) is None
        store.clear()
        assert store.recent() == []
        assert store.get(made[4].trace_id) is None

    def test_a_listing_has_what_the_list_page_needs(self, settings, request, kind, tmp_path):
        store = configure(settings, request, kind, tmp_path)
        with signaltrace.capture(label="GET /robust/ 200", kind="request") as trace:
            error_signal.send_robust(sender="robust", note="n")
            view_signal.send(sender="s", marker="m")
        trace.meta.update(method="GET", path="/robust/", status=200, view="v.robust")
        store.save(trace)
        (entry,) = store.recent()
        assert entry.trace_id == trace.trace_id
        assert entry.kind == "request"
        assert entry.meta["path"] == "/robust/"
        assert entry.meta["status"] == 200
        assert (entry.dispatches, entry.calls, entry.errors) == (3, 3, 1)
        assert entry.signals == ("error_signal", "view_signal", "nested_signal")
        assert "tests.testapp.views.fails" in entry.receivers
        assert entry.slowest in entry.receivers
        assert entry.started_at == trace.started_at


@pytest.mark.django_db
@pytest.mark.parametrize("kind", SHARED)
class TestReadsBackAsItRenders:
    """A stored trace reads back exactly as its live trace renders."""

    def rich_traces(self):
        """A request with errors and nesting, a bulk_create that skipped, a truncated one."""
        with signaltrace.capture(label="POST /signup/ 302", kind="request") as signup:
            User.objects.create(username="ann")
            error_signal.send_robust(sender="signup", password="hunter2")
            view_signal.send(sender="signup", marker="m", pause=0)
            User.objects.bulk_create([User(username="bob")])
        signup.meta.update(method="POST", path="/signup/", status=302, view="v.signup")
        with signaltrace.capture(label="capped", max_events=3) as capped:
            for _ in range(3):
                view_signal.send(sender="capped", marker="c")

        async def both():
            with signaltrace.capture(label="async", kind="task", parent=PARENT) as trace:
                await async_signal.asend(sender="a", marker="a")
            return trace

        return [signup, capped, asyncio.run(both())]

    def test_text_json_and_viewer_are_the_same(self, settings, request, kind, tmp_path):
        store = configure(settings, request, kind, tmp_path, size=10)
        for live in self.rich_traces():
            store.save(live)
            stored = store.get(live.trace_id)
            assert isinstance(stored, StoredTrace)
            assert stored.render() == live.render()
            assert stored.render(numbered=True) == live.render(numbered=True)
            assert str(stored) == str(live)
            assert stored.to_dict() == json.loads(json.dumps(live.to_dict()))
            assert listing_of(stored) == listing_of(live)
            # The viewer's detail page, from the live trace and from the stored one.
            live_html = views._detail(live).content.decode()
            stored_html = views._detail(stored).content.decode()
            assert without_footer(stored_html) == without_footer(live_html)
            assert repr(stored).startswith(f"<StoredTrace {live.kind} {live.trace_id}")

    def test_the_list_page_is_the_same(self, settings, request, client, kind, tmp_path):
        live = self.rich_traces()
        store = configure(settings, request, kind, tmp_path, size=10)
        for trace in live:
            store.save(trace)
            buffer().save(trace)
        shared = client.get(VIEWER, {"all": "1"}).content.decode()
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "BUFFER_SIZE": 10}
        memory = client.get(VIEWER, {"all": "1"}).content.decode()
        body = re.compile(r'<tbody id="st-rows">.*?</tbody>', re.S)
        assert body.search(shared).group() == body.search(memory).group()
        assert "in the shared" in shared
        assert "in this process" in memory


PARENT = {"trace_id": "ab" * 16, "receiver": "shop.signals.enqueue_receipt"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker_forgets_connections")
class TestOffTheRequestPath:
    @pytest.mark.parametrize("kind", ["redis", "database"])
    def test_written_by_the_sink_worker(self, settings, request, client, kind, tmp_path):
        store = configure(settings, request, kind, tmp_path)
        threads = []
        real_save = type(store).save

        def save(self, trace):  # the real store's save, noting where it runs
            threads.append(threading.current_thread().name)
            real_save(self, trace)

        request.getfixturevalue("monkeypatch").setattr(type(store), "save", save)
        response = client.get("/signal/off-path/")
        tid = response.headers["X-Signaltrace-Id"]
        assert sinks.flush(10)
        assert threads == [sinks.WORKER_NAME]
        assert threading.current_thread().name not in threads
        assert store.get(tid).meta["path"] == "/signal/off-path/"
        html = client.get(VIEWER).content.decode()
        assert f'href="{tid}/"' in html
        assert client.get(f"{VIEWER}{tid}/").status_code == 200
        assert client.get(f"{VIEWER}{tid}.json").json()["trace_id"] == tid

    def test_the_memory_store_is_filled_in_the_request(self, client):
        """Nothing to wait for: the viewer finds the trace as soon as the response is out."""
        tid = client.get("/signal/now/").headers["X-Signaltrace-Id"]
        assert buffer().get(tid) is not None
        assert [name for name, _sink in sinks.active_sinks()] == ["memory"]

    def test_a_shared_store_is_a_worker_sink(self, settings, request, tmp_path):
        configure(settings, request, "redis", tmp_path)
        assert [name for name, _sink in sinks.active_sinks()] == ["store"]
        settings.SIGNALTRACE = {
            "BUFFER_SIZE": 0,
            "LOG_LEVEL": None,
            "STORE": "signaltrace.stores.CacheStore",
        }
        assert sinks.active_sinks() == ()
        assert stores.get_store() is None


@pytest.mark.django_db
class TestJsonOnly:
    def test_redis_holds_json_text(self, settings, request, tmp_path):
        store = configure(settings, request, "redis", tmp_path)
        trace = traced("json")
        store.save(trace)
        raw = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        values = {key: raw.get(key) for key in raw.keys("*signaltrace:*")}
        assert len(values) == 3  # the counter, one slot, one trace
        for key, value in values.items():
            if key.endswith(b":seq"):
                assert value == b"1"
            elif b":slot:" in key:
                slot = json.loads(value.decode())
                assert slot["seq"] == 1
                assert slot["listing"]["schema"] == "signaltrace.listing/1"
            else:
                assert json.loads(value.decode())["schema"] == "signaltrace.trace/2"
        assert raw.ttl(next(key for key in values if b":trace:" in key)) == -1  # kept

    def test_timeout_option(self, settings, request, tmp_path):
        options = {"CACHE": "traces", "TIMEOUT": 60}
        store = configure(settings, request, "redis", tmp_path, STORE_OPTIONS=options)
        store.save(traced("ttl"))
        raw = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        assert 0 < raw.ttl(next(iter(raw.keys("*signaltrace:trace:*")))) <= 60

    def test_database_rows_hold_json_text(self, settings, request, tmp_path):
        store = configure(settings, request, "database", tmp_path)
        child = traced("child", kind="task", parent=PARENT)
        store.save(child)
        row = KeptTrace.objects.get()
        assert (row.trace_id, row.kind) == (child.trace_id, "task")
        assert row.parent_trace_id == PARENT["trace_id"]
        assert json.loads(row.data)["schema"] == "signaltrace.trace/2"
        assert json.loads(row.listing)["schema"] == "signaltrace.listing/1"
        assert str(row) == f"task {child.trace_id}"

    def test_a_hostile_pickle_in_redis_is_never_unpickled(self, settings, request, tmp_path):
        """What Django's own API would run (shown first) the store only ever parses as JSON."""
        store = configure(settings, request, "redis", tmp_path)
        trace = traced("victim")
        store.save(trace)
        marker = tmp_path / "pwned"
        payload = pickle.dumps(Boom(marker))
        cache = caches["traces"]
        raw = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        raw.set(cache.make_and_validate_key("signaltrace:probe"), payload)
        cache.get("signaltrace:probe")  # Django's RedisCache unpickles what it reads...
        assert marker.exists()
        marker.unlink()
        for key in ("signaltrace:slot:1", f"signaltrace:trace:{trace.trace_id}"):
            raw.set(cache.make_and_validate_key(key), payload)
        (entry,) = store.recent()  # ...the store does not
        assert isinstance(entry.error, ValueError)
        with pytest.raises(UnicodeDecodeError):
            store.get(trace.trace_id)
        assert not marker.exists()

    def test_loads_refuses_what_is_not_text(self):
        assert loads(b'{"a": 1}') == {"a": 1}
        for value in (1, None, {"a": 1}, Boom(Path("/nonexistent"))):
            with pytest.raises(ValueError, match="must be JSON text"):
                loads(value)
        assert dumps({"x": object()}) == '{"x":"<object>"}'


class Boom:
    """A pickle that creates a file when it is unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


@pytest.mark.django_db
class TestStoredTraceValidation:
    def data(self):
        return json.loads(json.dumps(traced("v").to_dict()))

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            (lambda d: d.update(schema="signaltrace.trace/1"), "unknown trace schema"),
            (lambda d: d.update(trace_id="nope"), "32 hex digits"),
            (lambda d: d.update(kind="job"), "is not one of"),
            (lambda d: d.update(started_at="2025-01-01T00:00:00"), "no time zone"),
            (lambda d: d.update(parent={"trace_id": 5}), "wrong type"),
            (lambda d: d["dispatches"].append([]), "must be a JSON object"),
            (lambda d: d["dispatches"][0]["calls"][0].update(location=":3"), "not a location"),
            (lambda d: d["skipped"].append({"operation": 1}), "wrong type"),
        ],
    )
    def test_malformed_json_is_refused(self, change, message):
        data = self.data()
        change(data)
        with pytest.raises(ValueError, match=message):
            StoredTrace(data)

    def test_a_listing_reads_back(self):
        entry = listing_of(traced("l", kind="task", parent=PARENT))
        assert listing_from_dict(json.loads(dumps(listing_to_dict(entry)))) == entry
        with pytest.raises(ValueError, match="listing"):
            listing_from_dict({**listing_to_dict(entry), "schema": "x"})
        with pytest.raises(ValueError, match="strings only"):
            listing_from_dict({**listing_to_dict(entry), "signals": [1]})

    def test_error_location_and_truncation(self):
        with signaltrace.capture(max_events=2) as trace:
            error_signal.send_robust(sender="e")
            view_signal.send(sender="s", marker="m")
        data = json.loads(json.dumps(trace.to_dict()))
        stored = StoredTrace(data)
        (call,) = stored.calls
        assert call.error.lineno == trace.calls[0].error.lineno
        assert stored.truncated
        assert stored.truncated_at.what == trace.truncated_at.what
        assert stored.raw == stored.dispatches
        assert stored.closed

    def test_an_unreadable_slot_is_an_error_row(self, settings, request, client, tmp_path):
        store = configure(settings, request, "locmem", tmp_path)
        trace = traced("ok", method="GET", path="/ok/")
        store.save(trace)
        cache = caches["traces"]
        cache.set("signaltrace:slot:0", dumps({"seq": 9, "listing": {"trace_id": "c" * 32}}))
        cache.set("signaltrace:slot:2", dumps({"seq": "x", "listing": {}}))
        entries = store.recent()
        assert [entry.error is not None for entry in entries] == [False, True, True]
        html = client.get(VIEWER).content.decode()
        assert "/ok/" in html
        assert html.count("this trace could not be shown: <code>ValueError</code>") == 2
        assert f'href="{"c" * 32}/"' in html  # its id could still be read


@pytest.mark.django_db
class TestConcurrentWriters:
    def test_no_trace_is_lost(self, settings, request, tmp_path):
        """Threads saving at once into Redis: the counter is atomic, no slot is shared."""
        store = configure(settings, request, "redis", tmp_path, size=100)
        made = [traced(f"c{i}") for i in range(40)]
        chunks = [made[i::8] for i in range(8)]
        threads = [
            threading.Thread(target=lambda chunk=chunk: [store.save(t) for t in chunk])
            for chunk in chunks
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert {entry.trace_id for entry in store.recent()} == {t.trace_id for t in made}

    def test_the_database_store_prunes(self, settings, request, tmp_path):
        store = configure(settings, request, "database", tmp_path, size=4)
        for i in range(9):
            store.save(traced(f"p{i}"))
        assert KeptTrace.objects.count() == 4
        assert [entry.label for entry in store.recent()] == ["p8", "p7", "p6", "p5"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker_forgets_connections")
class TestFailuresStayAway:
    def test_redis_down(self, settings, client, caplog):
        # A CacheStore on a Redis that is not there: nothing listens on the port.
        settings.CACHES = {
            "default": LOCMEM,
            "traces": {"BACKEND": REDIS, "LOCATION": f"redis://127.0.0.1:{free_port()}/0"},
        }
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "LOG_LEVEL": None,
            "STORE": "signaltrace.stores.CacheStore",
            "STORE_OPTIONS": {"CACHE": "traces"},
        }
        before = signaltrace.stats()
        with caplog.at_level(logging.WARNING, logger="signaltrace"):
            for _ in range(2):
                response = client.get("/signal/down/")
                assert response.status_code == 200
                assert response.content == b"down"
            assert sinks.flush(10)
        after = signaltrace.stats()
        assert after["store_failures"] == before["store_failures"] + 2
        assert after["sink_failures"] == before["sink_failures"]
        assert caplog.text.count("internal error in store save") == 1  # logged once
        # The viewer says so, and still answers.
        listing = client.get(VIEWER)
        assert listing.status_code == 200
        html = listing.content.decode()
        assert (
            "The trace store could not be read: <code>redis.exceptions.ConnectionError</code>"
            in html
        )
        assert re.search(
            r'<div class="st-foot-alert"[^>]*><dt>store failures</dt><dd>\d+</dd>', html
        )
        tid = response.headers["X-Signaltrace-Id"]
        detail = client.get(f"{VIEWER}{tid}/")
        assert detail.status_code == 503
        assert "The trace store could not be read" in detail.content.decode()
        data = client.get(f"{VIEWER}{tid}.json")
        assert data.status_code == 503
        assert data.json() == {
            "error": "the trace store could not be read: redis.exceptions.ConnectionError",
            "id": tid,
        }

    def test_table_missing(self, settings, request, client, tmp_path, caplog):
        configure(settings, request, "database", tmp_path)
        with connection.schema_editor() as editor:
            editor.delete_model(KeptTrace)
        try:
            before = signaltrace.stats()["store_failures"]
            assert client.get("/signal/no-table/").status_code == 200
            assert sinks.flush(10)
            assert signaltrace.stats()["store_failures"] == before + 1
            assert "internal error in store save" in caplog.text
            assert "could not be read" in client.get(VIEWER).content.decode()
        finally:
            with connection.schema_editor() as editor:
                editor.create_model(KeptTrace)

    def test_a_store_that_does_not_load(self, settings, client, caplog):
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "STORE": "tests.nowhere.Store"}
        before = signaltrace.stats()["store_failures"]
        assert client.get("/signal/broken/").status_code == 200
        assert sinks.flush(10)
        assert signaltrace.stats()["store_failures"] >= before + 2  # loading, then saving
        assert "internal error in store loading tests.nowhere.Store" in caplog.text
        html = client.get(VIEWER).content.decode()
        assert "The trace store could not be read: <code>RuntimeError</code>" in html
        with pytest.raises(RuntimeError, match="could not be loaded"):
            stores.get_store().get("0" * 32)

    def test_keep_never_raises(self, monkeypatch, caplog):
        monkeypatch.setattr(sinks, "_store_sink", lambda config: 1 / 0)
        sinks.keep(traced("k"))
        assert "internal error in keeping a trace" in caplog.text

    def test_a_failing_in_process_store(self, settings, caplog):
        settings.SIGNALTRACE = {"LOG_LEVEL": None, "STORE": "tests.test_stores.FailingInProcess"}
        before = signaltrace.stats()
        sinks.keep(traced("f"))
        after = signaltrace.stats()
        assert after["store_failures"] == before["store_failures"] + 1
        assert [name for name, _sink in sinks.active_sinks()] == ["memory"]


class FailingInProcess:
    """A custom store kept in this process, whose save raises."""

    in_process = True

    def __init__(self, size, options):
        pass

    def save(self, trace):
        raise OSError("disk full")

    def get(self, trace_id):  # pragma: no cover - not read here
        return None

    def recent(self, *, kind=None):  # pragma: no cover - not read here
        return []

    def clear(self):  # pragma: no cover - not cleared here
        pass


class NotAStore:
    def __init__(self, size, options):
        pass


class TestSettings:
    def errors(self, **keys):
        return [(key, message) for key, message, _hint in config_errors(keys)]

    def test_defaults_need_nothing(self):
        assert self.errors() == []
        assert self.errors(STORE="signaltrace.stores.MemoryStore", TRACE_COMMANDS=True) == []

    @pytest.mark.parametrize(
        ("keys", "key", "text"),
        [
            ({"STORE": 5}, "STORE", "must be the dotted path of a store class"),
            ({"STORE_OPTIONS": []}, "STORE_OPTIONS", "must be a dict of the store's options"),
            ({"TRACE_COMMANDS": "yes"}, "TRACE_COMMANDS", "must be a bool"),
            (
                {"STORE": "tests.test_stores.NotAStore"},
                "STORE",
                "'tests.test_stores.NotAStore' must name a store class (with save, get, recent "
                "and clear methods), got type: <class 'tests.test_stores.NotAStore'>, without "
                "save, get, recent, clear.",
            ),
            ({"STORE": "signaltrace.stores.base.ID"}, "STORE", "must name a store class"),
            (
                {"STORE": "signaltrace.stores.CacheStore", "STORE_OPTIONS": {"CACHE": "nope"}},
                "STORE_OPTIONS",
                "SIGNALTRACE['STORE_OPTIONS']['CACHE'] 'nope' is not an alias in CACHES "
                "(aliases: default).",
            ),
            (
                {"STORE": "signaltrace.stores.CacheStore", "STORE_OPTIONS": {"CACHE": 1}},
                "STORE_OPTIONS",
                "must be the alias of a cache in CACHES, got int: 1.",
            ),
            (
                {"STORE": "signaltrace.stores.CacheStore", "STORE_OPTIONS": {"TIMEOUT": 0}},
                "STORE_OPTIONS",
                "['TIMEOUT'] must be None (keep until replaced) or a number of seconds > 0",
            ),
            (
                {"STORE": "signaltrace.stores.DatabaseStore", "STORE_OPTIONS": {"DATABASE": "x"}},
                "STORE_OPTIONS",
                "'x' is not an alias in DATABASES (aliases: default).",
            ),
            (
                {"STORE": "signaltrace.stores.DatabaseStore", "STORE_OPTIONS": {"DATABASE": 2}},
                "STORE_OPTIONS",
                "must be the alias of a database in DATABASES, got int: 2.",
            ),
            (
                {"STORE_OPTIONS": {"CACHE": "default"}},
                "STORE_OPTIONS",
                "SIGNALTRACE['STORE_OPTIONS']: 'CACHE' is not an option of this store "
                "(its options: none).",
            ),
            (
                {"STORE": "signaltrace.stores.CacheStore", "STORE_OPTIONS": {"LOCATION": "x"}},
                "STORE_OPTIONS",
                "'LOCATION' is not an option of this store (its options: CACHE, TIMEOUT).",
            ),
            ({"STORE": "tests.test_stores.Explodes"}, "STORE_OPTIONS", "could not be checked"),
            ({"STORE": "tests.test_stores_broken.X"}, "STORE", "does not import: RuntimeError"),
        ],
    )
    def test_errors_name_the_key(self, keys, key, text, monkeypatch):
        import sys
        import types

        broken = types.ModuleType("tests.test_stores_broken")
        broken.__getattr__ = lambda name: (_ for _ in ()).throw(RuntimeError("no"))
        monkeypatch.setitem(sys.modules, "tests.test_stores_broken", broken)
        ((found_key, message),) = self.errors(**keys)
        assert found_key == key
        assert text in message
        assert message.startswith(f"SIGNALTRACE[{key!r}]")

    def test_a_store_path_that_does_not_import_is_check_e102(self, settings):
        settings.SIGNALTRACE = {"STORE": "tests.nowhere.Store"}
        assert check_settings() == []
        (error,) = [m for m in check_middleware() if m.id == "signaltrace.E102"]
        assert error.msg.startswith("SIGNALTRACE['STORE'] 'tests.nowhere.Store' does not import")

    def test_a_bad_store_is_a_settings_error_of_the_checks(self, settings):
        settings.SIGNALTRACE = {"STORE": "tests.test_stores.NotAStore"}
        (error,) = check_settings()
        assert error.id == "signaltrace.E002"
        assert check_middleware() == []  # reported once, by check_settings

    def test_store_classes(self):
        assert MemoryStore.option_errors({}) == []
        assert CacheStore.option_errors({"CACHE": "default", "TIMEOUT": None}) == []
        assert DatabaseStore.option_errors({"DATABASE": "default"}) == []
        assert isinstance(MemoryStore(), stores.Store)
        with pytest.raises(TypeError, match="is not a store class"):
            stores.load_store("signaltrace.stores.base.ID", 3, {})
        with pytest.raises(TypeError, match="needs save, get, recent and clear"):
            stores.load_store("tests.test_stores.NotAStore", 3, {})
        memory = stores.load_store("signaltrace.stores.MemoryStore", 7, {})
        assert memory is stores.memory_store()  # the process-wide one, resized
        assert memory.size == 7


class Explodes:
    """A store class whose option check itself raises."""

    def __init__(self, size, options):  # pragma: no cover - never instantiated
        pass

    save = get = recent = clear = __init__

    @classmethod
    def option_errors(cls, options):
        raise KeyError("boom")


class FlakyStore(MemoryStore):
    """A store whose listing fails (its traces can still be read one by one)."""

    in_process = True

    def __init__(self, size, options):
        super().__init__(size, options)

    def recent(self, *, kind=None):
        raise ConnectionError("listing is down")


@pytest.mark.django_db
class TestEdges:
    def test_an_open_truncated_trace_is_listed_as_truncated(self):
        with signaltrace.capture(max_events=1) as trace:
            view_signal.send(sender="s", marker="m")
            entry = listing_of(trace)
        assert entry.truncated_at.what == "event"
        assert entry.truncated_at.events == trace.events

    def test_a_receiver_without_code(self):
        data = json.loads(json.dumps(traced("no code").to_dict()))
        data["dispatches"][0]["calls"][0]["location"] = None
        (call, *_rest) = StoredTrace(data).calls
        assert (call.filename, call.lineno, call.location) == (None, None, None)

    def test_size_zero_keeps_nothing(self, settings, request, tmp_path):
        for kind in ("redis", "database"):
            configure(settings, request, kind, tmp_path)
            store = type(stores.get_store())(0, settings.SIGNALTRACE["STORE_OPTIONS"])
            store.save(traced("zero"))
            assert store.recent() == []
        assert DatabaseStore(3, {}).get("not-an-id") is None
        assert CacheStore(3, {}).get("not-an-id") is None

    def test_an_unreadable_row_is_an_error_row(self, settings, request, tmp_path):
        store = configure(settings, request, "database", tmp_path)
        trace = traced("row")
        store.save(trace)
        KeptTrace.objects.update(listing="{not json")
        (entry,) = store.recent()
        assert entry.trace_id == trace.trace_id
        assert isinstance(entry.error, ValueError)

    def test_a_trace_that_cannot_even_say_when(self, monkeypatch):
        trace = traced("when")
        buffer().save(trace)

        def broken(self):
            raise RuntimeError("no clock")

        monkeypatch.setattr(signaltrace.Trace, "started_at", property(broken))
        (entry,) = buffer().recent()
        assert isinstance(entry.error, RuntimeError)
        assert (entry.trace_id, entry.started_at) == (trace.trace_id, None)

    def test_nothing_kept_with_buffer_size_zero(self, settings, client):
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "BUFFER_SIZE": 0}
        tid = client.get("/signal/zero/").headers["X-Signaltrace-Id"]
        sinks.keep(traced("zero"), get_config())
        assert "No requests recorded yet" in client.get(VIEWER).content.decode()
        assert client.get(f"{VIEWER}{tid}/").status_code == 404

    def test_the_detail_page_without_the_list(self, settings, client, caplog):
        """A store whose listing fails: the detail page still shows, without family links."""
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "LOG_LEVEL": None,
            "STORE": "tests.test_stores.FlakyStore",
        }
        store = stores.get_store()
        child = traced("child", kind="task", parent={"trace_id": "ab" * 16, "receiver": None})
        store.save(child)
        response = client.get(f"{VIEWER}{child.trace_id}/")
        assert response.status_code == 200
        assert "(not kept)" in response.content.decode()
        assert "internal error in store read" in caplog.text

    def test_an_in_process_sink_that_raises(self, monkeypatch, caplog):
        def broken(self, trace):
            raise OSError("no room")

        monkeypatch.setattr(MemoryStore, "emit", broken)
        before = signaltrace.stats()["sink_failures"]
        sinks.keep(traced("raises"))
        assert signaltrace.stats()["sink_failures"] == before + 1
        assert "internal error in sink memory" in caplog.text

    def test_a_store_class_without_an_option_check(self):
        assert config_errors({"STORE": "tests.test_stores.FailingInProcess"}) == []
