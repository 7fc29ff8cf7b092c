"""Kinds of traces: ids, kinds and parents in the JSON and the viewer; commands in the store.

Every trace has a ``trace_id`` (32 hex digits), a ``kind`` (request, task,
command, capture) and an optional ``parent``; the trace JSON
(``signaltrace.trace/2``) has them at the top. The middleware's traces are
``request`` ones, whose id is the viewer's id and ``X-Signaltrace-Id``. The
viewer lists the kind and filters on it (``?kind=task``) and links a trace to
its parent and children. ``signaltrace_run`` keeps its trace (kind
``command``) in the store, and ``TRACE_COMMANDS`` keeps every command's.
"""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

import signaltrace
from signaltrace import command_traces, context, middleware, render, sinks, stores
from signaltrace.sinks.memory import buffer
from tests.testapp.views import view_signal

VIEWER = "/__signaltrace__/"
ROW = re.compile(r'<td class="st-kind-cell"><span class="st-trace-kind st-k-(\w+)">')


@pytest.fixture(autouse=True)
def _clean(settings, monkeypatch):
    settings.DEBUG = True
    settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
    monkeypatch.setattr(context, "_logged", set())
    buffer().clear()
    yield
    assert sinks.flush(10)
    command_traces.uninstall()
    buffer().clear()


def task(parent=None, label="tasks.send_receipt"):
    """A task trace, as the Celery integration would keep it."""
    with signaltrace.capture(kind="task", label=label, parent=parent) as trace:
        view_signal.send(sender="task", marker="task")
    sinks.keep(trace)
    return trace


class TestTheJson:
    def test_id_kind_and_parent_at_the_top(self):
        parent = {"trace_id": "ab" * 16, "receiver": "shop.signals.enqueue"}
        with signaltrace.capture(kind="task", parent=parent) as trace:
            pass
        data = trace.to_dict()
        assert data["schema"] == render.SCHEMA == "signaltrace.trace/2"
        assert list(data)[:5] == ["schema", "trace_id", "kind", "parent", "label"]
        assert re.fullmatch(r"[0-9a-f]{32}", data["trace_id"])
        assert data["trace_id"] == trace.trace_id
        assert data["kind"] == "task"
        assert data["parent"] == parent
        assert data["parent"] is not parent  # a copy: the JSON never shares the trace's dict
        assert data["max_events"] == trace.max_events

    def test_a_plain_capture(self):
        with signaltrace.capture() as trace:
            pass
        data = trace.to_dict()
        assert (data["kind"], data["parent"]) == ("capture", None)

    def test_parent_values_are_bounded(self):
        parent = {"trace_id": "cd" * 16, "receiver": "r" * 500, 7: "not a name", "n": 10**50}
        with signaltrace.capture(parent=parent) as trace:
            pass
        data = trace.to_dict()["parent"]
        assert data == {"trace_id": "cd" * 16, "receiver": "r" * 199 + "…", "n": "<int, 51 digits>"}

    def test_an_unrenderable_trace_keeps_its_identity(self, monkeypatch):
        with signaltrace.capture(kind="command") as trace:
            pass

        def broken(self):
            raise RuntimeError("broken")

        monkeypatch.setattr(signaltrace.Trace, "roots", property(broken))
        data = trace.to_dict()
        assert (data["trace_id"], data["kind"], data["dispatches"]) == (
            trace.trace_id,
            "command",
            [],
        )


@pytest.mark.django_db
class TestRequests:
    def test_new_id_makes_trace_ids(self):
        ids = {middleware.new_id() for _ in range(3)}
        assert len(ids) == 3
        assert all(re.fullmatch(r"[0-9a-f]{32}", trace_id) for trace_id in ids)

    def test_request_traces_are_of_kind_request(self, client):
        response = client.get("/signal/kind/")
        tid = response.headers["X-Signaltrace-Id"]
        trace = buffer().get(tid)
        assert trace.kind == "request"
        assert trace.trace_id == tid == trace.meta["id"]
        assert client.get(f"{VIEWER}{tid}.json").json()["kind"] == "request"


@pytest.mark.django_db
class TestTheViewer:
    def test_lists_the_kind_and_filters_on_it(self, client):
        client.get("/signal/r/")
        child = task()
        html = client.get(VIEWER).content.decode()
        assert ROW.findall(html) == ["task", "request"]
        assert '<option value="task">task</option>' in html
        filtered = client.get(VIEWER, {"kind": "task"}).content.decode()
        assert ROW.findall(filtered) == ["task"]
        assert f'href="{child.trace_id}/"' in filtered
        assert '<option value="task" selected>task</option>' in filtered
        assert "1 of 2 requests kept" in filtered
        assert ROW.findall(client.get(VIEWER, {"kind": "request"}).content.decode()) == ["request"]
        assert ROW.findall(client.get(VIEWER, {"kind": "nonsense"}).content.decode()) == []

    def test_the_filter_reaches_a_shared_store(self, settings, client):
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "LOG_LEVEL": None,
            "STORE": "signaltrace.stores.CacheStore",
        }
        stores.get_store().clear()
        client.get("/signal/shared/")
        task()
        assert sinks.flush(10)
        assert ROW.findall(client.get(VIEWER).content.decode()) == ["task", "request"]
        assert ROW.findall(client.get(VIEWER, {"kind": "task"}).content.decode()) == ["task"]
        stores.get_store().clear()

    def test_parent_and_children_are_linked(self, client):
        response = client.get("/signal/parent/")
        tid = response.headers["X-Signaltrace-Id"]
        first = task({"trace_id": tid, "receiver": "tests.testapp.views.announce"}, "tasks.a")
        second = task({"trace_id": tid, "receiver": None}, "tasks.b")
        html = client.get(f"{VIEWER}{tid}/").content.decode()
        (family,) = re.findall(
            r'<p class="st-banner st-banner-info" id="st-family">.*?</p>', html, re.S
        )
        assert family.index(first.trace_id) < family.index(second.trace_id)  # as they started
        assert f'<a class="st-child" href="../{first.trace_id}/">task tasks.a</a>' in family
        assert "(from <code>tests.testapp.views.announce</code>)" in family
        child = client.get(f"{VIEWER}{first.trace_id}/").content.decode()
        assert f'<a class="st-parent" href="../{tid}/">request GET /signal/parent/ 200</a>' in child
        assert "from the receiver <code>tests.testapp.views.announce</code>" in child

    def test_a_parent_that_is_not_kept(self, client):
        orphan = task({"trace_id": "ef" * 16, "receiver": None})
        html = client.get(f"{VIEWER}{orphan.trace_id}/").content.decode()
        assert f"task's parent trace <code>{'ef' * 16}</code> (not kept)" in html

    def test_no_family_no_banner(self, client):
        tid = client.get("/signal/alone/").headers["X-Signaltrace-Id"]
        assert 'id="st-family"' not in client.get(f"{VIEWER}{tid}/").content.decode()


def run(*args, **options):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def kept(kind="command"):
    assert sinks.flush(10)
    return [trace for trace in buffer().traces() if trace.kind == kind]


@pytest.mark.django_db
class TestCommands:
    def test_signaltrace_run_keeps_a_command_trace(self, client):
        run(
            "signaltrace_run",
            "--no-tree",
            "createsuperuser",
            "--noinput",
            "--username=ann",
            "--email=x@example.com",
        )
        (trace,) = kept()
        assert trace.label == "createsuperuser --noinput --username=ann --email=x@example.com"
        assert trace.meta["outcome"] == "ok"
        assert [d.signal_name for d in trace.roots] == ["post_save"]
        html = client.get(VIEWER).content.decode()
        assert ROW.findall(html) == ["command"]
        assert "createsuperuser --noinput" in html

    def test_signaltrace_run_in_a_shared_store(self, settings):
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "LOG_LEVEL": None,
            "STORE": "signaltrace.stores.CacheStore",
        }
        store = stores.get_store()
        store.clear()
        run("signaltrace_run", "--no-tree", "check")
        assert sinks.flush(10)
        (entry,) = store.recent()
        assert (entry.kind, entry.label) == ("command", "check")
        store.clear()

    def test_commands_are_not_traced_by_default(self):
        run("createsuperuser", "--noinput", "--username=bob", "--email=x@example.com")
        assert kept() == []
        assert not command_traces.is_installed()


@pytest.fixture
def trace_commands(settings):
    settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "TRACE_COMMANDS": True}
    signaltrace.uninstall()
    signaltrace.install()
    assert command_traces.is_installed()
    yield
    signaltrace.uninstall()
    assert BaseCommand.__dict__["execute"] is ORIGINAL_EXECUTE
    signaltrace.install()


ORIGINAL_EXECUTE = BaseCommand.__dict__["execute"]


class Nested(BaseCommand):
    """A command that runs another one."""

    def handle(self, *args, **options):
        call_command("createsuperuser", "--noinput", "--username=nested", "--email=x@example.com")


class Fails(BaseCommand):
    def handle(self, *args, **options):
        view_signal.send(sender="fails", marker="fails")
        raise CommandError("no")


class Serves(BaseCommand):
    def handle(self, *args, **options):
        view_signal.send(sender="serves", marker="serves")


Serves.__module__ = "tests.management.commands.runserver"


@pytest.mark.django_db
@pytest.mark.usefixtures("trace_commands")
class TestTraceCommands:
    def test_every_command_is_kept(self):
        run("createsuperuser", "--noinput", "--username=cat", "--email=x@example.com")
        (trace,) = kept()
        assert trace.kind == "command"
        assert trace.label == "createsuperuser"  # the options are not recorded
        assert trace.meta == {
            "command": "createsuperuser",
            "args": [],
            "command_line": "createsuperuser",
            "outcome": "ok",
        }
        assert User.objects.filter(username="cat").exists()
        assert [d.signal_name for d in trace.roots] == ["post_save"]

    def test_positional_arguments_are_in_the_label(self):
        run("check", "auth")
        (trace,) = kept()
        assert trace.label == "check auth"
        assert trace.meta["args"] == ["auth"]

    def test_a_nested_command_belongs_to_the_outer_trace(self):
        Nested().execute(
            stdout=io.StringIO(),
            stderr=io.StringIO(),
            no_color=True,
            force_color=False,
            skip_checks=True,
        )
        (trace,) = kept()
        assert trace.meta["command"] == "test_trace_kinds"
        assert [d.signal_name for d in trace.roots] == ["post_save"]

    def test_signaltrace_run_keeps_one_trace(self):
        run(
            "signaltrace_run",
            "--no-tree",
            "createsuperuser",
            "--noinput",
            "--username=d",
            "--email=x@example.com",
        )
        (trace,) = kept()
        assert trace.label.startswith("createsuperuser --noinput")

    def test_a_failing_command_is_kept_and_still_fails(self):
        with pytest.raises(CommandError, match="no"):
            Fails().execute(
                stdout=io.StringIO(),
                stderr=io.StringIO(),
                no_color=True,
                force_color=False,
                skip_checks=True,
            )
        (trace,) = kept()
        assert trace.meta["outcome"] == "raised CommandError"
        assert [d.signal_name for d in trace.roots] == ["view_signal"]

    def test_serving_commands_are_not_traced(self):
        assert command_traces.command_name(Serves()) == "runserver"
        Serves().execute(
            stdout=io.StringIO(),
            stderr=io.StringIO(),
            no_color=True,
            force_color=False,
            skip_checks=True,
        )
        assert kept() == []

    def test_turned_off_later(self, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
        run("check")
        assert kept() == []

    def test_a_capture_that_cannot_open_leaves_the_command_alone(self, monkeypatch, caplog):
        def broken(**kwargs):
            raise RuntimeError("no capture")

        monkeypatch.setattr(command_traces, "capture", broken)
        run("createsuperuser", "--noinput", "--username=eve", "--email=x@example.com")
        assert User.objects.filter(username="eve").exists()
        assert kept() == []
        assert "internal error in TRACE_COMMANDS" in caplog.text

    def test_keeping_that_fails_leaves_the_command_alone(self, monkeypatch, caplog):
        monkeypatch.setattr(command_traces.sinks, "keep", lambda trace: 1 / 0)
        run("check")
        assert "internal error in TRACE_COMMANDS" in caplog.text

    def test_install_and_uninstall_are_idempotent(self):
        command_traces.install()
        assert BaseCommand.__dict__["execute"] is command_traces.traced_execute
        command_traces.uninstall()
        command_traces.uninstall()
        assert BaseCommand.__dict__["execute"] is ORIGINAL_EXECUTE
        assert not command_traces.is_installed()
        # A reference held across uninstall() still runs Django's own execute.
        command_traces.traced_execute(
            Serves(),
            stdout=io.StringIO(),
            stderr=io.StringIO(),
            no_color=True,
            force_color=False,
            skip_checks=True,
        )
        command_traces.install()
