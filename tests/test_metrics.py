"""Receiver metrics (METRICS): what the hot path counts, and what signaltrace.metrics reads.

Real signals and receivers throughout; METRICS is toggled through the settings
(pytest-django's ``settings`` fixture and ``override_settings``) with the hook
installed once, as in a process whose settings change.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import threading
import time
import warnings
import weakref
from datetime import UTC, datetime
from pathlib import Path

import blinker
import pytest
import redis
from django.contrib.auth.models import User
from django.dispatch import Signal
from django.test import Client, override_settings

import signaltrace
from signaltrace import _metrics, _stats, context, metrics, stores
from signaltrace.stores.cache import CacheStore
from tests.services import redis_server

ROOT = Path(__file__).resolve().parent.parent

#: Signals of these tests only (their names are the attribute names).
metrics_signal = Signal()
metrics_robust = Signal()
metrics_ignored = Signal()
metrics_async = Signal()
metrics_db = Signal()


def quick(sender, **kwargs):
    return None


def paused(sender, pause=0.0, **kwargs):
    if pause:
        time.sleep(pause)


def boom(sender, **kwargs):
    raise ValueError("boom")


def after_boom(sender, **kwargs):
    return None


def counts_users(sender, **kwargs):
    return User.objects.count()


async def async_quick(sender, **kwargs):
    await asyncio.sleep(0)


NAME = "tests.test_metrics."


@pytest.fixture(autouse=True)
def _metrics_on(settings, monkeypatch):
    """METRICS on, fresh aggregates, this module's receivers connected."""
    settings.SIGNALTRACE = {"ENABLED": True, "METRICS": True, "LOG_LEVEL": None}
    monkeypatch.setattr(context, "_logged", set())
    connections = [
        (metrics_signal, quick),
        (metrics_signal, paused),
        (metrics_robust, boom),
        (metrics_robust, after_boom),
        (metrics_ignored, quick),
        (metrics_async, quick),
        (metrics_async, async_quick),
        (metrics_db, counts_users),
    ]
    for signal, receiver in connections:
        signal.connect(receiver, weak=False, dispatch_uid=f"metrics-{receiver.__name__}")
    metrics.reset()
    yield
    for signal, receiver in connections:
        signal.disconnect(dispatch_uid=f"metrics-{receiver.__name__}")
    metrics.reset()


def collect_garbage():
    """``gc.collect()`` for this test's own cycles. Garbage other tests left (a
    client socket of a live-server test, unclosed) may be collected here too; its
    ResourceWarning belongs to that test, not to the one that happens to collect."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def row(name, snapshot=None):
    """The snapshot's row of this module's receiver ``name``, or ``None``."""
    for item in metrics.snapshot() if snapshot is None else snapshot:
        if item["receiver"] == NAME + name:
            return item
    return None


KEYS = {
    "receiver",
    "location",
    "signals",
    "calls",
    "errors",
    "total_ms",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "queries",
}


class TestCounting:
    def test_off_by_default(self, settings):
        settings.SIGNALTRACE = {"ENABLED": True}
        metrics_signal.send(sender=None)
        assert row("quick") is None
        assert _metrics.STATE[0] is None
        assert not context.METRICS

    def test_every_call_without_a_capture(self):
        for _ in range(50):
            metrics_signal.send(sender=None)
        quick_row = row("quick")
        assert set(quick_row) >= KEYS
        assert quick_row["calls"] == 50
        assert quick_row["errors"] == 0
        assert quick_row["signals"] == ["metrics_signal"]
        assert quick_row["total_ms"] > 0
        assert quick_row["location"].endswith(
            f"{Path(__file__).name}:{quick.__code__.co_firstlineno}"
        )
        assert quick_row["queries"] is None  # no trace was recording: not counted
        assert row("paused")["calls"] == 50

    def test_toggled_by_the_settings_without_reinstalling(self, settings):
        """The hook stays installed (the same send function); METRICS is re-read when the
        settings change."""
        settings.SIGNALTRACE = {"ENABLED": True, "METRICS": False}
        installed_send = Signal.__dict__["send"]
        metrics_signal.send(sender=None)
        assert row("quick") is None
        with override_settings(SIGNALTRACE={"ENABLED": True, "METRICS": True}):
            metrics_signal.send(sender=None)
            metrics_signal.send_robust(sender=None)
        metrics_signal.send(sender=None)  # off again
        assert row("quick")["calls"] == 2
        assert Signal.__dict__["send"] is installed_send
        assert signaltrace.is_installed()

    def test_a_dict_assigned_without_setting_changed(self, settings):
        """``django.conf.settings.SIGNALTRACE = {...}`` sends no ``setting_changed``:
        the next request (its middleware reads the settings) notices the new dict."""
        from django.conf import settings as django_settings

        settings.SIGNALTRACE = {"ENABLED": True, "METRICS": False}  # (restored after)
        metrics_signal.send(sender=None)
        django_settings.SIGNALTRACE = {"ENABLED": True, "METRICS": True, "LOG_LEVEL": None}
        metrics_signal.send(sender=None)  # nothing has read the settings yet
        assert row("quick") is None
        assert Client().get("/signal/a/").status_code == 200
        metrics_signal.send(sender=None)
        assert row("quick")["calls"] == 1
        django_settings.SIGNALTRACE = {"ENABLED": True, "METRICS": False}
        assert row("quick")["calls"] == 1  # snapshot() read the settings: off
        metrics_signal.send(sender=None)
        assert row("quick")["calls"] == 1

    def test_while_capturing(self):
        with signaltrace.capture() as trace:
            metrics_signal.send(sender=None)
            metrics_signal.send(sender=None)
        assert [call.receiver_name for call in trace.calls] == [NAME + "quick", NAME + "paused"] * 2
        assert row("quick")["calls"] == 2
        metrics_signal.send(sender=None)  # and after it, untraced
        assert row("quick")["calls"] == 3

    def test_signals_are_listed(self):
        other = Signal()
        other.connect(quick, weak=False)
        try:
            metrics_signal.send(sender=None)
            other.send(sender=None)
        finally:
            other.disconnect(quick)
        quick_row = row("quick")
        assert quick_row["calls"] == 2
        assert len(quick_row["signals"]) == 2
        assert "metrics_signal" in quick_row["signals"]

    def test_ignored_signals_are_not_counted(self, settings):
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "METRICS": True,
            "IGNORE_SIGNALS": ["tests.test_metrics.metrics_ignored"],
        }
        metrics_ignored.send(sender=None)
        metrics_ignored.send_robust(sender=None)
        assert row("quick") is None
        metrics_signal.send(sender=None)
        assert row("quick")["calls"] == 1

    def test_dead_receivers_are_not_kept_alive(self):
        def make():
            def short_lived(sender, **kwargs):
                return None

            return short_lived

        receiver = make()
        metrics_signal.connect(receiver)  # weak: the signal does not keep it alive
        metrics_signal.send(sender=None)
        ref = weakref.ref(receiver)
        del receiver
        collect_garbage()
        assert ref() is None
        metrics_signal.send(sender=None)
        (short_lived,) = [r for r in metrics.snapshot() if r["receiver"].endswith("short_lived")]
        assert short_lived["calls"] == 1  # its figures stay
        assert row("quick")["calls"] == 2

    def test_bound_methods(self):
        class Handler:
            def handle(self, sender, **kwargs):
                return None

        handler = Handler()
        metrics_signal.connect(handler.handle)
        try:
            for _ in range(3):
                metrics_signal.send(sender=None)
        finally:
            metrics_signal.disconnect(handler.handle)
        (method,) = [r for r in metrics.snapshot() if r["receiver"].endswith("Handler.handle")]
        assert method["calls"] == 3

    def test_bound_methods_are_found_by_their_function(self):
        """A weakly connected method is a new object at each dispatch: its function's
        key finds its queue, the methods of two instances share one row, and the
        table forgets the function when it dies."""

        def make():
            class Handler:
                def handle(self, sender, **kwargs):
                    return None

            return Handler

        handler_class = make()
        one, two = handler_class(), handler_class()
        metrics_signal.connect(one.handle)
        metrics_signal.connect(two.handle)
        for _ in range(3):
            metrics_signal.send(sender=None)
        table = _metrics._SIGNALS[id(metrics_signal)][1]
        function = handler_class.handle
        assert id(function) in table
        (method,) = [r for r in metrics.snapshot() if r["receiver"].endswith("Handler.handle")]
        assert method["calls"] == 6
        key, ref = id(function), weakref.ref(function)
        del one, two, handler_class, function
        collect_garbage()
        assert ref() is None
        assert key not in table
        metrics_signal.send(sender=None)
        (method,) = [r for r in metrics.snapshot() if r["receiver"].endswith("Handler.handle")]
        assert method["calls"] == 6  # its figures stay
        assert row("quick")["calls"] == 4


class TestErrors:
    def test_send_robust(self):
        for _ in range(10):
            metrics_robust.send_robust(sender=None)
        assert row("boom")["calls"] == 10
        assert row("boom")["errors"] == 10
        assert row("after_boom")["calls"] == 10
        assert row("after_boom")["errors"] == 0

    def test_send(self):
        with pytest.raises(ValueError, match="boom"):
            metrics_robust.send(sender=None)
        assert row("boom")["calls"] == 1
        assert row("boom")["errors"] == 1
        assert row("after_boom") is None  # never called

    def test_while_capturing(self):
        with signaltrace.capture():
            metrics_robust.send_robust(sender=None)
            with pytest.raises(ValueError, match="boom"):
                metrics_robust.send(sender=None)
        assert row("boom")["errors"] == 2
        assert row("after_boom")["calls"] == 1


@pytest.mark.django_db
class TestQueries:
    def test_counted_for_recorded_calls(self, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "METRICS": True, "RECORD_DB": True}
        with signaltrace.capture():
            metrics_db.send(sender=None)
            metrics_db.send(sender=None)
        counted = row("counts_users")
        assert counted["queries"] == 2
        assert counted["queried_calls"] == 2
        metrics_db.send(sender=None)  # untraced: timed, its statements not counted
        counted = row("counts_users")
        assert counted["calls"] == 3
        assert counted["queries"] == 2
        assert counted["queried_calls"] == 2

    def test_not_counted_without_record_db(self, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "METRICS": True, "RECORD_DB": False}
        with signaltrace.capture():
            metrics_db.send(sender=None)
        assert row("counts_users")["queries"] is None
        assert row("counts_users")["queried_calls"] == 0


class TestPercentiles:
    def test_one_duration(self):
        """Calls that all took 1000 ns: the median is exact, the rest close (the total
        places the calls inside their bucket, [512, 1024))."""
        histogram = [0] * _metrics.BUCKETS
        histogram[(1000).bit_length()] = 100
        assert metrics.percentile(histogram, 0.5, total_ns=100 * 1000) == pytest.approx(1000)
        for q in (0.95, 0.99, 1.0):
            assert metrics.percentile(histogram, q, total_ns=100 * 1000) == pytest.approx(
                1000, rel=0.03
            )

    def test_one_call_is_exact(self):
        histogram = [0] * _metrics.BUCKETS
        histogram[(1500).bit_length()] = 1
        for q in (0.5, 0.95, 0.99):
            assert metrics.percentile(histogram, q, total_ns=1500) == pytest.approx(1500)

    def test_interpolated_inside_the_bucket(self):
        histogram = [0] * _metrics.BUCKETS
        histogram[10] = 100  # [512, 1024)
        assert metrics.percentile(histogram, 0.5) == pytest.approx(768)
        assert metrics.percentile(histogram, 0.25) == pytest.approx(640)
        assert metrics.percentile(histogram, 1.0) == pytest.approx(1024)

    def test_within_a_factor_of_two(self):
        durations = [1000] * 90 + [100_000] * 10
        histogram = [0] * _metrics.BUCKETS
        for duration in durations:
            histogram[duration.bit_length()] += 1
        total = sum(durations)
        p50 = metrics.percentile(histogram, 0.50, total)
        p95 = metrics.percentile(histogram, 0.95, total)
        p99 = metrics.percentile(histogram, 0.99, total)
        assert 500 < p50 < 2000
        assert 50_000 < p95 < 200_000
        assert p50 <= p95 <= p99 < 200_000

    def test_empty(self):
        assert metrics.percentile([0] * _metrics.BUCKETS, 0.5) is None

    def test_real_calls(self):
        for _ in range(20):
            metrics_signal.send(sender=None, pause=0.002)
        slow = row("paused")
        assert slow["calls"] == 20
        assert slow["total_ms"] >= 20 * 2
        assert slow["mean_ms"] >= 2
        assert 1 <= slow["p50_ms"] <= slow["p95_ms"] <= slow["p99_ms"]
        assert slow["p50_ms"] >= slow["mean_ms"] / 2  # within a factor of two
        quick_row = row("quick")
        assert quick_row["p99_ms"] < slow["p50_ms"]


class TestReset:
    def test_reset(self):
        metrics_signal.send(sender=None)
        before = datetime.now(tz=UTC)
        metrics.reset()
        assert row("quick") is None
        assert metrics.since() >= before.replace(microsecond=0)
        metrics_signal.send(sender=None)
        assert row("quick")["calls"] == 1

    def test_since_and_process(self):
        assert metrics.since().tzinfo is UTC
        assert metrics.process() == {"pid": os.getpid(), "host": metrics.process()["host"]}
        assert metrics.process()["host"]


class TestSorting:
    def test_orders(self):
        for _ in range(30):
            metrics_robust.send_robust(sender=None)
        for _ in range(3):
            metrics_signal.send(sender=None, pause=0.003)
        names = {
            sort: [
                r["receiver"][len(NAME) :]
                for r in metrics.snapshot(sort)
                if r["receiver"].startswith(NAME)
            ]
            for sort in metrics.SORTS
        }
        # (not necessarily first: after_boom's time includes Django logging boom's error,
        # which the untraced send_robust() loop times as part of the next receiver)
        for sort in ("total", "p95"):
            assert names[sort].index("paused") < names[sort].index("quick")
            assert names[sort].index("paused") < names[sort].index("boom")
        assert names["errors"][0] == "boom"
        assert set(names["calls"][:2]) == {"boom", "after_boom"}

    def test_unknown(self):
        with pytest.raises(ValueError, match="sort must be one of"):
            metrics.snapshot("slowest")


class TestAsync:
    def test_async_receivers_through_send(self):
        """send() runs async receivers through async_to_sync: recorded, then counted."""
        metrics_async.send(sender=None)
        assert row("quick")["calls"] == 1
        assert row("async_quick")["calls"] == 1

    def test_asend(self):
        asyncio.run(metrics_async.asend(sender=None))
        asyncio.run(metrics_async.asend_robust(sender=None))
        assert row("quick")["calls"] == 2
        assert row("async_quick")["calls"] == 2

    def test_asend_robust_errors(self):
        asyncio.run(metrics_robust.asend_robust(sender=None))
        assert row("boom")["errors"] == 1
        assert row("after_boom")["calls"] == 1


class TestBlinker:
    def test_send_and_send_async(self):
        signal = blinker.Signal()
        signal.connect(quick)
        signal.connect(async_quick)
        try:
            signal.send(
                None, _async_wrapper=lambda func: lambda *a, **k: asyncio.run(func(*a, **k))
            )

            async def run():
                def wrap(func):
                    async def inner(*args, **kwargs):
                        return func(*args, **kwargs)

                    return inner

                await signal.send_async(None, _sync_wrapper=wrap)

            asyncio.run(run())
        finally:
            signal.receivers.clear()
        assert row("quick")["calls"] == 2
        assert row("async_quick")["calls"] == 2


class TestThreads:
    def test_concurrent_dispatches_and_reads(self, monkeypatch):
        """Threads dispatching while another reads: no call is lost or counted twice."""
        monkeypatch.setattr(_metrics, "FOLD_EVERY_NS", 0)  # fold at every dispatch it can
        threads, per_thread = 6, 400
        start = threading.Barrier(threads + 1)
        done = threading.Event()

        def send():
            start.wait()
            for _ in range(per_thread):
                metrics_signal.send(sender=None)
                metrics_robust.send_robust(sender=None)

        def read():
            start.wait()
            while not done.is_set():
                metrics.snapshot()

        reader = threading.Thread(target=read)
        senders = [threading.Thread(target=send) for _ in range(threads)]
        for thread in [reader, *senders]:
            thread.start()
        for thread in senders:
            thread.join()
        done.set()
        reader.join()
        expected = threads * per_thread
        assert row("quick")["calls"] == expected
        assert row("paused")["calls"] == expected
        assert row("boom")["calls"] == expected
        assert row("boom")["errors"] == expected


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_starts_empty():
    metrics_signal.send(sender=None)
    assert row("quick")["calls"] == 1
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, and leave without running anything of pytest's
        try:
            empty = row("quick") is None
            metrics_signal.send(sender=None)
            counted = row("quick")["calls"] == 1
            os.write(write, b"ok" if empty and counted else b"no")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 2) == b"ok"
    os.close(read)
    assert row("quick")["calls"] == 1  # the parent's are its own


# -- several processes: the shared store ----------------------------------------------


def use_cache_store(settings, cache, **signaltrace_settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "traces": cache,
    }
    settings.SIGNALTRACE = {
        "ENABLED": True,
        "METRICS": True,
        "LOG_LEVEL": None,
        "STORE": "signaltrace.stores.CacheStore",
        "STORE_OPTIONS": {"CACHE": "traces"},
        **signaltrace_settings,
    }
    store = stores.get_store()
    metrics._backend(store).delete_many([f"{metrics.PREFIX}:seq"])
    return store


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(params=["locmem", "redis"])
def cache_store(request, settings, tmp_path):
    """A CacheStore on a LocMemCache, and on a real Redis (bytes, never pickles)."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushdb()
        cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    else:
        cache = {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": tmp_path.name,
        }
    return use_cache_store(settings, cache)


def as_other_process(monkeypatch, pid):
    """From now on this process writes as another one (its own token, pid and aggregates)."""
    monkeypatch.setattr(metrics, "_token", [os.getpid(), f"other-{pid}"])
    monkeypatch.setattr(metrics, "_slot", [None, None, 0])
    monkeypatch.setattr(metrics, "process", lambda: {"pid": pid, "host": "elsewhere"})


class TestSharedStore:
    def test_memory_store_is_one_process(self, settings):
        metrics_signal.send(sender=None)
        assert metrics.flush() is False
        report = metrics.merged()
        assert report["shared"] is False
        assert [p["pid"] for p in report["processes"]] == [os.getpid()]
        assert row("quick", report["receivers"])["calls"] == 1

    def test_processes_are_added_up(self, cache_store, monkeypatch):
        token, slot = list(metrics._token), list(metrics._slot)
        with monkeypatch.context() as patched:
            as_other_process(patched, 4242)
            for _ in range(5):
                metrics_signal.send(sender=None)
            assert metrics.flush()
            metrics.reset()
        monkeypatch.setattr(metrics, "_token", token)
        monkeypatch.setattr(metrics, "_slot", slot)
        for _ in range(2):
            metrics_signal.send(sender=None)
        assert metrics.flush()  # its own entry is read live, not twice
        metrics_signal.send(sender=None)
        report = metrics.merged()
        assert report["shared"] is True
        assert row("quick", report["receivers"])["calls"] == 5 + 3
        by_pid = {p["pid"]: p for p in report["processes"]}
        assert set(by_pid) == {4242, os.getpid()}
        assert by_pid[os.getpid()]["current"] is True
        assert by_pid[4242]["host"] == "elsewhere"
        assert by_pid[4242]["flushed_at"] is not None
        assert report["since"] <= by_pid[os.getpid()]["since"]

    def test_unreadable_entries_are_skipped(self, cache_store):
        backend = metrics._backend(cache_store)
        number = backend.incr(f"{metrics.PREFIX}:seq")
        backend.set(f"{metrics.PREFIX}:process:{number}", '{"schema": "signaltrace.metrics/1"}')
        number = backend.incr(f"{metrics.PREFIX}:seq")
        backend.set(f"{metrics.PREFIX}:process:{number}", "not json")
        failures = _stats.stats()["store_failures"]
        metrics_signal.send(sender=None)
        report = metrics.merged()
        assert len(report["processes"]) == 1
        assert row("quick", report["receivers"])["calls"] == 1
        assert _stats.stats()["store_failures"] == failures + 2

    def test_a_cleared_cache_gets_a_new_number(self, cache_store):
        metrics_signal.send(sender=None)
        assert metrics.flush()
        first = metrics._slot[2]
        assert metrics.flush()
        assert metrics._slot[2] == first  # its own slot, written again
        metrics._backend(cache_store).delete_many([f"{metrics.PREFIX}:seq"])
        assert metrics.flush()
        assert metrics._slot[2] == 1
        assert first >= 1

    def test_the_flush_thread(self, cache_store, monkeypatch):
        monkeypatch.setattr(metrics, "FLUSH_INTERVAL_S", 0.02)
        metrics_signal.send(sender=None)
        metrics.start()
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not metrics._documents(
                metrics._backend(cache_store)
            ):
                time.sleep(0.02)
        finally:
            metrics.stop()
        (document,) = metrics._documents(metrics._backend(cache_store))
        assert document["process"]["pid"] == os.getpid()
        assert any(r["receiver"] == NAME + "quick" for r in document["rows"])


CHILD = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
import django
django.setup()
from django.test import override_settings
from signaltrace import metrics
from tests.test_metrics import metrics_signal, quick
metrics_signal.connect(quick, weak=False)
cache = {{"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": {url!r}}}
with override_settings(
    CACHES={{"default": cache, "traces": cache}},
    SIGNALTRACE={{"ENABLED": True, "METRICS": True, "STORE": "signaltrace.stores.CacheStore",
                 "STORE_OPTIONS": {{"CACHE": "traces"}}}},
):
    for _ in range({calls}):
        metrics_signal.send(sender=None)
    assert metrics.flush()
"""


def test_real_processes_through_redis(settings, redis_url):
    """Two other interpreters count and write to Redis; this one adds them up."""
    url = redis_url
    redis.Redis.from_url(url).flushdb()
    use_cache_store(
        settings, {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for calls in (3, 4):
        subprocess.run(
            [sys.executable, "-c", CHILD.format(url=url, calls=calls)],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=120,
        )
    metrics_signal.send(sender=None)
    report = metrics.merged()
    assert len(report["processes"]) == 3
    assert row("quick", report["receivers"])["calls"] == 3 + 4 + 1
    assert isinstance(stores.get_store(), CacheStore)


class TestSharedStoreEdges:
    def test_shared(self, cache_store, settings):
        assert metrics.shared() is True
        assert metrics.shared(cache_store) is True
        settings.SIGNALTRACE = {"ENABLED": True, "METRICS": True}
        assert metrics.shared() is False

    def test_a_slot_taken_by_another_process_is_left_to_it(self, cache_store):
        backend = metrics._backend(cache_store)
        metrics_signal.send(sender=None)
        assert metrics.flush()
        mine = metrics._slot[2]
        backend.set(f"{metrics.PREFIX}:process:{mine}", "garbage")  # not even a document
        assert metrics.flush()
        assert metrics._slot[2] != mine

    def test_a_fork_takes_a_new_token(self, monkeypatch):
        monkeypatch.setattr(metrics, "_token", [-1, "the parent's"])
        token = metrics._own_token()
        assert token != "the parent's"
        assert metrics._token == [os.getpid(), token]

    def test_a_failing_cache(self, cache_store, monkeypatch):
        def down(self, key, text):
            raise ConnectionError("the cache is down")

        monkeypatch.setattr(metrics._Cache, "set", down)
        failures = _stats.stats()["store_failures"]
        assert metrics.flush() is False
        assert _stats.stats()["store_failures"] == failures + 1

    def test_an_unreadable_counter(self, cache_store):
        backend = metrics._backend(cache_store)
        backend.delete_many([f"{metrics.PREFIX}:seq"])
        backend.set(f"{metrics.PREFIX}:seq", "many")
        metrics_signal.send(sender=None)
        report = metrics.merged()
        assert report["error"].startswith("ValueError")
        assert row("quick", report["receivers"])["calls"] == 1  # this process's, still

    def test_counters(self):
        assert metrics._counter(None) == 0
        assert metrics._counter(b"12") == 12
        assert metrics._counter("7") == 7
        assert metrics._counter(3) == 3
        with pytest.raises(ValueError, match="must be a number"):
            metrics._counter(1.5)

    def test_expired_entries_and_a_process_without_since(self, cache_store):
        backend = metrics._backend(cache_store)
        for _ in range(3):
            number = backend.incr(f"{metrics.PREFIX}:seq")
        document = {
            "schema": metrics.SCHEMA,
            "token": "other",
            "process": {"pid": 9, "host": "h"},
            "since": None,
            "flushed_at": time.time(),
            "rows": [],
        }
        backend.set(f"{metrics.PREFIX}:process:{number}", json.dumps(document))
        report = metrics.merged()
        assert [p["pid"] for p in report["processes"]] == [os.getpid(), 9]
        assert report["processes"][1]["since"] is None

    def test_unknown_sort(self):
        with pytest.raises(ValueError, match="sort must be one of"):
            metrics.merged("slowest")


GOOD_ROW = {
    "receiver": "r",
    "signal": "s",
    "location": None,
    "calls": 1,
    "errors": 0,
    "total_ns": 5,
    "queries": None,
    "queried_calls": 0,
    "histogram": [0, 0, 0, 1],
    "error_total_ns": 0,
    "error_histogram": [],
}


def document(**changes):
    data = {
        "schema": metrics.SCHEMA,
        "token": "t",
        "process": {"pid": 1, "host": "h"},
        "since": 1.0,
        "flushed_at": 2.0,
        "rows": [GOOD_ROW],
    }
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (document(schema="other"), "not a signaltrace.metrics/1 document"),
        (document(process={"host": "h"}), "must have a pid"),
        (document(rows={}), "rows must be a list"),
        (document(rows=[1]), "a row must be an object"),
        (document(rows=[{**GOOD_ROW, "signal": 1}]), "signal must be a string"),
        (document(rows=[{**GOOD_ROW, "location": 1}]), "location must be a string or null"),
        (document(rows=[{**GOOD_ROW, "calls": -1}]), "calls must be an int >= 0"),
        (document(rows=[{**GOOD_ROW, "queries": "2"}]), "queries must be an int or null"),
        (document(rows=[{**GOOD_ROW, "histogram": [1.5]}]), "histogram must be a list of ints"),
        (document(rows=[{**GOOD_ROW, "histogram": [0] * 66}]), "histogram must be a list of ints"),
    ],
)
def test_stored_documents_are_checked(text, message):
    with pytest.raises(ValueError, match=message):
        metrics._read_document(text)
    assert metrics._read_document(document())["rows"] == [GOOD_ROW]


class TestFlushThread:
    def test_started_once(self, monkeypatch):
        monkeypatch.setattr(metrics, "FLUSH_INTERVAL_S", 60)
        flusher = metrics._Flusher()
        flusher.start()
        thread = flusher.thread
        flusher.start()
        assert flusher.thread is thread
        flusher.stop()
        thread.join(5)
        assert not thread.is_alive()

    def test_a_thread_that_cannot_start(self, monkeypatch):
        def refuse(self):
            raise RuntimeError("can't start new thread")

        monkeypatch.setattr(threading.Thread, "start", refuse)
        flusher = metrics._Flusher()
        failures = context.FAILURES
        flusher.start()
        assert flusher.thread is None
        assert failures + 1 == context.FAILURES

    def test_its_failures_are_contained(self, monkeypatch, settings):
        calls = []

        def flush():
            calls.append(1)
            raise ConnectionError("down")

        monkeypatch.setattr(metrics, "FLUSH_INTERVAL_S", 0.01)
        monkeypatch.setattr(metrics, "flush", flush)
        flusher = metrics._Flusher()
        flusher.start()
        deadline = time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        settings.SIGNALTRACE = {"ENABLED": True}  # METRICS off: it writes nothing
        count = len(calls)
        time.sleep(0.1)
        flusher.stop()
        assert calls
        assert len(calls) <= count + 1

    def test_restarted_in_a_forked_child(self, monkeypatch):
        monkeypatch.setattr(metrics, "FLUSH_INTERVAL_S", 60)
        flusher = metrics._Flusher()
        flusher.after_fork_in_child()
        assert flusher.thread is None  # never started: not restarted
        flusher.wanted = True
        flusher.after_fork_in_child()
        assert flusher.thread.is_alive()
        flusher.stop()

    def test_otel_missing(self, settings, monkeypatch):
        from signaltrace.sinks import otel_metrics

        def missing(meter_provider=None):
            raise ImportError("no opentelemetry")

        settings.SIGNALTRACE = {"ENABLED": True, "METRICS": True, "OTEL": True}
        monkeypatch.setattr(otel_metrics, "install", missing)
        failures = context.FAILURES
        metrics.start()
        metrics.stop()
        assert failures + 1 == context.FAILURES

    def test_stop_without_otel_imported(self, monkeypatch):
        monkeypatch.delitem(sys.modules, "signaltrace.sinks.otel_metrics", raising=False)
        metrics.stop()
        assert "signaltrace.sinks.otel_metrics" not in sys.modules


class TestHotPathEdges:
    def test_broken_settings(self, monkeypatch):
        def broken():
            raise RuntimeError("settings are broken")

        monkeypatch.setattr(_metrics, "get_config", broken)
        failures = context.FAILURES
        assert _metrics.refresh() is False
        assert failures + 1 == context.FAILURES
        monkeypatch.undo()
        assert _metrics.refresh() is True

    def test_a_signal_that_cannot_be_weakly_referenced(self):
        class Slotted:
            __slots__ = ()

        signal = Slotted()
        _metrics.observe(signal, [quick], [0, 1500])
        _metrics.observe(signal, [quick], [0, 500])
        (item,) = [r for r in _metrics.collect() if r["receiver"] == NAME + "quick"]
        assert item["calls"] == 2
        assert item["total_ns"] == 2000

    def test_bad_boundaries_are_contained(self):
        failures = context.FAILURES
        _metrics.observe(metrics_signal, [quick, paused], [0, 10])  # one boundary short
        assert failures + 1 == context.FAILURES

    def test_an_ignored_signal_that_raises(self, settings):
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "METRICS": True,
            "IGNORE_SIGNALS": ["tests.test_metrics.metrics_ignored"],
        }
        metrics_ignored.connect(boom, weak=False, dispatch_uid="metrics-ignored-boom")
        try:
            metrics_ignored.send_robust(sender=None)
        finally:
            metrics_ignored.disconnect(dispatch_uid="metrics-ignored-boom")
        assert row("boom") is None
        settings.SIGNALTRACE = {"ENABLED": True, "METRICS": True}  # not ignored any more
        metrics_ignored.send(sender=None)
        assert row("quick")["calls"] == 1

    def test_forgetting_is_by_reference(self):
        """A weak reference's callback forgets only the entry it made."""
        metrics_signal.send(sender=None)
        key = id(metrics_signal)
        _metrics._signal_gone(key, object())
        _metrics._function_gone(id(quick), object())
        assert key in _metrics._SIGNALS

    def test_recorded_dispatches_at_their_edges(self):
        """Dispatches as the recorder leaves them: a dead or resolved signal, a call
        still running, a flat loop cut short, and one that cannot be read."""
        from signaltrace import records

        def raw(signal_ref, flat=None, calls=()):
            dispatch = [None] * records.D_SIZE
            dispatch[records.D_SIGNAL] = signal_ref
            dispatch[records.D_CALLS] = list(calls)
            return dispatch + list(flat or ())  # the flat calls follow the slots

        call = [None] * 10
        call[records.C_RECEIVER] = weakref.ref(quick)
        call[records.C_START], call[records.C_END] = 100, 0  # still running: not counted
        _metrics.observe_dispatch(raw(("resolved", "x.resolved"), calls=[call]))
        gone = weakref.ref(Signal())
        collect_garbage()
        cut = [weakref.ref(quick), 100, weakref.ref(paused), 300]  # no end: cut short
        _metrics.observe_dispatch(raw(gone, flat=cut))
        items = {r["receiver"]: r for r in _metrics.collect()}
        assert items[NAME + "quick"]["signal"] == "<dead signal>"
        assert items[NAME + "quick"]["calls"] == 1
        assert NAME + "paused" not in items
        failures = context.FAILURES
        _metrics.observe_dispatch(raw(("broken", "x"), flat=[1, 2, 3]))  # 1: no receiver key
        assert failures + 1 == context.FAILURES

    def test_zero_durations(self):
        histogram = [3] + [0] * (_metrics.BUCKETS - 1)
        assert metrics.percentile(histogram, 0.5, total_ns=0) == 0

    def test_past_the_last_call(self):
        histogram = [0] * _metrics.BUCKETS
        histogram[10] = 4
        assert metrics.percentile(histogram, 1.5) == 1024

    def test_the_fork_handler(self, monkeypatch):
        metrics_signal.send(sender=None)
        lock = _metrics._LOCK
        before = metrics.since()
        _metrics._after_fork_in_child()
        assert _metrics._LOCK is not lock
        assert row("quick") is None
        assert metrics.since() >= before
        monkeypatch.setattr(_metrics, "_SINCE", [None])  # metrics never on in the parent
        _metrics._after_fork_in_child()
        assert metrics.since() is None
