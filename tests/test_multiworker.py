"""Several worker processes, one viewer: a shared store shows every worker's traces.

gunicorn runs ``tests.gunicorn_settings`` with three sync workers, on a real
``redis-server`` (``CacheStore``) or a SQLite file (``DatabaseStore``). The
requests land on different workers (``X-Worker-Pid``), each worker writes its
traces to the store on its own sink worker thread, and every worker's viewer
lists all of them, opens each one's detail page and JSON. With the memory
store, the default, a worker's viewer only knows its own traces: the reason
the shared stores exist, checked here too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.services import ROOT, get, gunicorn, redis_server, wait_until

WORKERS = 3
#: Rounds of concurrent requests, at most, until each worker has answered one.
ROUNDS = 10
#: Seconds each of those requests holds its worker.
PAUSE = 0.2
#: Seconds to wait for every trace to be written by the workers' sink threads.
FLUSH_S = 30.0
ROW = re.compile(r'class="st-path" href="([0-9a-f]{32})/"')


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def migrate(env):
    """``manage.py migrate`` for the test site's SQLite file (its own process and settings)."""
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env={
            **os.environ,
            **env,
            "DJANGO_SETTINGS_MODULE": "tests.gunicorn_settings",
            "PYTHONPATH": str(ROOT),
        },
        check=True,
        timeout=120,
    )


@pytest.fixture(params=["cache", "database", "memory"])
def site(request, tmp_path):
    """The gunicorn site with one store: ``(base URL, store name)``."""
    store = request.param
    env = {"SIGNALTRACE_TEST_STORE": store}
    if store == "cache":
        env["SIGNALTRACE_TEST_REDIS"] = request.getfixturevalue("redis_url")
    else:
        env["SIGNALTRACE_TEST_DB"] = str(tmp_path / "site.sqlite3")
        migrate(env)
    with gunicorn(env, workers=WORKERS) as base:
        yield base, store


def at_once(urls):
    """GET every URL at the same time (a thread each): ``[(status, headers, body), ...]``."""
    with ThreadPoolExecutor(len(urls)) as pool:
        return list(pool.map(get, urls))


def spread_requests(base):
    """``{trace id: worker pid}``: rounds of concurrent requests, each holding its worker
    for a moment, until every worker has answered some."""
    served: dict[str, str] = {}
    for _ in range(ROUNDS):  # pragma: no branch - some round reaches them all
        for status, headers, body in at_once([f"{base}/pid/?pause={PAUSE}"] * 2 * WORKERS):
            assert status == 200
            assert body.decode() == headers["X-Worker-Pid"]
            served[headers["X-Signaltrace-Id"]] = headers["X-Worker-Pid"]
        if len(set(served.values())) == WORKERS:
            break
    assert len(set(served.values())) == WORKERS, f"requests reached only {set(served.values())}"
    return served


def listed_by_each_worker(base, wanted):
    """``{worker pid: the wanted ids its viewer lists}``, every worker asked (concurrently)."""
    seen: dict[str, set[str]] = {}
    for _ in range(ROUNDS):  # pragma: no branch - some round reaches them all
        for status, headers, body in at_once(
            [f"{base}/__signaltrace__/?pause={PAUSE}"] * 2 * WORKERS
        ):
            assert status == 200
            seen[headers["X-Worker-Pid"]] = set(ROW.findall(body.decode())) & wanted
        if len(seen) == WORKERS:
            break
    return seen


def test_every_worker_lists_every_workers_traces(site):
    base, store = site
    served = spread_requests(base)
    wanted = set(served)
    if store == "memory":
        # Each process keeps its own: no worker's viewer lists the others' traces.
        seen = listed_by_each_worker(base, wanted)
        for pid, ids in seen.items():
            assert ids == {tid for tid, served_by in served.items() if served_by == pid}
        return

    def all_listed():
        seen = listed_by_each_worker(base, wanted)
        return len(seen) == WORKERS and all(ids == wanted for ids in seen.values())

    # Written off the request path, on each worker's sink thread: poll, bounded.
    wait_until(all_listed, FLUSH_S, f"every worker's viewer lists all {len(wanted)} traces")
    # And every worker can open every trace: detail page and JSON, whoever served it.
    for trace_id in served:
        for suffix in ("/", ".json"):
            status, _headers, body = get(f"{base}/__signaltrace__/{trace_id}{suffix}")
            assert status == 200, (trace_id, suffix)
            if suffix == ".json":
                data = json.loads(body)
                assert data["trace_id"] == trace_id
                assert data["kind"] == "request"
                assert data["meta"]["path"] == "/pid/"
                assert data["dispatches"][0]["calls"][0]["receiver"].endswith("answer_ping")
            else:
                assert "tests.gunicorn_settings.answer_ping" in body.decode()


def test_the_list_says_where_traces_are_kept(site):
    base, store = site
    status, _headers, body = get(f"{base}/__signaltrace__/")
    assert status == 200
    where = {
        "cache": "(the last 100 in the shared CacheStore, newest first)",
        "database": "(the last 100 in the shared DatabaseStore, newest first)",
        "memory": "(the last 100 in this process, newest first)",
    }[store]
    assert where in body.decode()
