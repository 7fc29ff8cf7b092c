"""Concurrent requests never mix: each trace holds its own request's receivers only.

Two servers: Django's threaded live server (WSGI, one thread per request) driven
by 60 simultaneous urllib requests, and the ASGI application driven directly
under asyncio with 50 concurrent requests. Every request carries a unique
marker that its view sends as a signal kwarg (and, for the user-creating view,
saves as the username), so a trace that picked up another request's dispatch
would show a foreign marker or pk.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.handlers.asgi import ASGIHandler

from signaltrace.sinks import memory
from signaltrace.sinks.memory import buffer

ANNOUNCE = "tests.testapp.views.announce"
RECORD = "tests.testapp.views.record_marker"
PROFILE = [
    "tests.testapp.signals.create_user_profile",
    "tests.testapp.signals.save_user_profile",
]


@pytest.fixture(autouse=True)
def _tracing(settings):
    settings.DEBUG = True
    settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "BUFFER_SIZE": 500}
    buffer().clear()
    yield
    memory._buffer.clear()


def fetch(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.headers["X-Signaltrace-Id"], response.read()


def max_overlap(traces):
    """How many of ``traces`` were open at the same moment, at most."""
    events = sorted(
        [(t.start_ns, 1) for t in traces] + [(t.end_ns, -1) for t in traces],
    )
    open_now = peak = 0
    for _time, delta in events:
        open_now += delta
        peak = max(peak, open_now)
    return peak


def check_marker_trace(trace, marker):
    """The trace of /signal/<marker>/: its two dispatches, its two receivers, nothing else."""
    assert [c.receiver_name for c in trace.calls] == [ANNOUNCE, RECORD]
    assert [(d.signal_name, d.kwargs["marker"]) for d in trace.dispatches] == [
        ("view_signal", marker),
        ("nested_signal", marker),
    ]
    (root,) = trace.roots
    assert root.calls[0].children[0].kwargs["marker"] == marker
    assert trace.meta["path"] == f"/signal/{marker}/"


@pytest.mark.django_db(transaction=True)
def test_threaded_live_server(live_server):
    """60 requests at once on the threaded live server: every trace is its own."""
    jobs = []
    for i in range(60):
        marker = f"live{i:03d}"
        if i % 3 == 0:
            jobs.append((marker, f"{live_server.url}/create-user/?username={marker}"))
        else:
            jobs.append((marker, f"{live_server.url}/signal/{marker}/?pause=0.01"))
    start = threading.Barrier(len(jobs))

    def run(job):
        start.wait(timeout=30)
        return fetch(job[1])

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(run, jobs))
    ids = set()
    for (marker, url), (trace_id, body) in zip(jobs, results, strict=True):
        ids.add(trace_id)
        trace = buffer().get(trace_id)
        assert trace is not None, url
        assert trace.closed
        if "create-user" in url:
            pk = json.loads(body)["pk"]
            assert [c.receiver_name for c in trace.calls] == [*PROFILE, ANNOUNCE, RECORD]
            (post_save,) = trace.find_dispatches(signal="post_save")
            assert post_save.kwargs["instance"] == f"auth.User pk={pk}"
            markers = [d.kwargs["marker"] for d in trace.dispatches if "marker" in d.kwargs]
            assert markers == [marker, marker]
        else:
            assert body == marker.encode()
            check_marker_trace(trace, marker)
    assert len(ids) == len(jobs)
    assert max_overlap([buffer().get(i) for i in ids]) >= 4  # they really ran at once
    # The JSON view, over HTTP, tells the same story.
    trace_id, _body = results[1]
    data = json.loads(fetch(f"{live_server.url}/__signaltrace__/{trace_id}.json")[1])
    assert data["meta"]["path"] == f"/signal/{jobs[1][0]}/"
    assert data["call_count"] == 2


async def asgi_request(app, path):
    """One request through the ASGI application, as a server would drive it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    done = asyncio.Event()
    sent = []
    requested = False

    async def receive():
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await app(scope, receive, send)
    done.set()
    start = sent[0]
    headers = {key.decode().lower(): value.decode() for key, value in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], headers, body


def test_asgi_concurrent():
    """50 concurrent requests to the ASGI app (async and sync views): no trace mixes."""
    app = ASGIHandler()
    paths = []
    for i in range(50):
        marker = f"asgi{i:03d}"
        paths.append((marker, f"/async-signal/{marker}/" if i % 2 else f"/signal/{marker}/"))

    async def main():
        return await asyncio.gather(*(asgi_request(app, path) for _marker, path in paths))

    results = asyncio.run(main())
    ids = set()
    for (marker, path), (status, headers, body) in zip(paths, results, strict=True):
        assert status == 200
        assert body == marker.encode()
        trace_id = headers["x-signaltrace-id"]
        ids.add(trace_id)
        trace = buffer().get(trace_id)
        assert trace.meta["path"] == path
        if path.startswith("/async-signal/"):
            assert trace.meta["async"] is True
            assert sorted(c.receiver_name for c in trace.calls) == [
                "tests.testapp.views.async_record",
                "tests.testapp.views.sync_record",
            ]
            assert [d.kwargs["marker"] for d in trace.dispatches] == [marker]
        else:
            check_marker_trace(trace, marker)
    assert len(ids) == len(paths)
    assert max_overlap([buffer().get(i) for i in ids]) >= 4
