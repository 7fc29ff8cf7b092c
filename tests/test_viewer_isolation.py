"""One trace that cannot be shown never takes the viewer down (issue 6).

The broken traces are real traces, put into the real ring buffer with its own
``emit()``, whose data was then corrupted the way a bug elsewhere could leave it.
"""

from __future__ import annotations

import json
import re

import pytest

import signaltrace
from signaltrace import context
from signaltrace.sinks.memory import buffer
from tests.testapp.views import view_signal

VIEWER = "/__signaltrace__/"


class Unprintable:
    def __str__(self):
        raise RuntimeError("no text for you")

    __repr__ = __str__


@pytest.fixture(autouse=True)
def _viewer(settings, monkeypatch):
    settings.DEBUG = True
    settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
    monkeypatch.setattr(context, "_logged", set())
    buffer().clear()
    yield
    buffer().clear()


def kept(trace_id, path="/ok/", **meta):
    """A closed trace with one dispatch, kept in the ring buffer under ``trace_id``."""
    with signaltrace.capture(label=f"GET {path} 200") as trace:
        view_signal.send(sender="made", marker="made")
    trace.meta.update(id=trace_id, method="GET", path=path, status=200, **meta)
    trace.trace_id = trace_id
    buffer().emit(trace)
    return trace


def broken_records(trace_id):
    """A trace whose raw records are corrupted before anything read them."""
    trace = kept(trace_id, "/broken-records/")
    trace.raw.append(["not", "a", "dispatch"])
    return trace


def broken_meta(trace_id):
    """A trace whose meta holds a value that cannot even be turned into text."""
    return kept(trace_id, "/broken-meta/", view=Unprintable())


#: kind: (make it, what the list and detail report, what the JSON reports)
BROKEN = {
    "records": (broken_records, "IndexError", "IndexError"),
    "meta": (broken_meta, "RuntimeError", "TypeError"),  # the JSON encoder refuses it
}


@pytest.mark.parametrize("kind", list(BROKEN))
class TestIsolation:
    def test_list_shows_an_error_row(self, client, kind, caplog):
        """The list answers 200: the good traces as usual, the broken one as an error row."""
        make, error, _json_error = BROKEN[kind]
        kept("a" * 32, "/before/")
        make("b" * 32)
        kept("c" * 32, "/after/")
        before = signaltrace.stats()["internal_failures"]
        response = client.get(VIEWER)
        assert response.status_code == 200
        html = response.content.decode()
        assert "/before/" in html
        assert "/after/" in html
        (row,) = re.findall(r'<tr class="st-request st-broken[^"]*".*?</tr>', html, re.S)
        assert f"this trace could not be shown: <code>{error}</code>" in row
        assert f'href="{"b" * 32}/"' in row
        assert "3 requests kept" in html
        assert signaltrace.stats()["internal_failures"] == before + 1
        assert "internal error in viewer row" in caplog.text

    def test_filters_still_work(self, client, kind):
        make, _error, _json_error = BROKEN[kind]
        kept("a" * 32, "/before/")
        make("b" * 32)
        response = client.get(VIEWER, {"signal": "view_signal"})
        assert response.status_code == 200
        html = response.content.decode()
        assert "/before/" in html
        assert "could not be shown" in html  # shown whatever the filter: nothing to match

    def test_detail_explains(self, client, kind, caplog):
        make, error, _json_error = BROKEN[kind]
        make("b" * 32)
        response = client.get(f"{VIEWER}{'b' * 32}/")
        assert response.status_code == 200
        html = response.content.decode()
        assert f"This trace could not be shown: <code>{error}</code>" in html
        assert 'class="st-foot"' in html  # still our own page, footer and all
        assert "internal error in viewer detail" in caplog.text

    def test_json_never_crashes(self, client, kind):
        """The JSON answers, whatever the trace holds: never an exception."""
        make, _error, error = BROKEN[kind]
        make("b" * 32)
        response = client.get(f"{VIEWER}{'b' * 32}.json")
        assert response["Content-Type"] == "application/json"
        data = json.loads(response.content)
        if kind == "records":
            # Trace.to_dict() contains a failure itself (render.trace_to_dict).
            assert response.status_code == 200
            assert data["dispatches"] == []
        else:
            # What the JSON encoder refuses: the viewer's own error object.
            assert response.status_code == 500
            assert data == {"error": f"this trace could not be shown: {error}", "id": "b" * 32}


def test_unprintable_status_is_an_error_row(client):
    """Facts are turned into text while the row is built, never while the page renders."""
    kept("a" * 32, "/fine/")
    trace = kept("b" * 32, "/odd-status/")
    trace.meta["status"] = Unprintable()
    response = client.get(VIEWER)
    assert response.status_code == 200
    html = response.content.decode()
    assert "/fine/" in html
    assert "this trace could not be shown: <code>RuntimeError</code>" in html


def test_error_row_without_an_id(client):
    trace = broken_records("c" * 32)
    trace.trace_id = Unprintable()
    response = client.get(VIEWER)
    assert response.status_code == 200
    (row,) = re.findall(
        r'<tr class="st-request st-broken[^"]*".*?</tr>', response.content.decode(), re.S
    )
    assert "href" not in row
