"""What people read outside the viewer: the console tree, the log event, headers, commands.

The ``CONSOLE`` modes, the level of a 5xx request's event, the ``Server-Timing``
wording, skipped operations in time order in the tree, ``signaltrace_run
--no-tree``'s summary, and one path rule wherever a file is named.
"""

from __future__ import annotations

import io
import os
import sys

import pytest
import structlog
from django.contrib.auth.models import User
from django.core.management import call_command
from django.http import HttpResponse
from django.test import RequestFactory

import signaltrace
from signaltrace import context, sinks
from signaltrace._format import format_ms
from signaltrace.conf import config_errors, get_config
from signaltrace.middleware import SignalTraceMiddleware
from signaltrace.sinks import console as console_sink
from signaltrace.sinks import memory
from signaltrace.sinks.memory import buffer
from signaltrace.sinks.structlog import request_fields
from tests.testapp.views import error_signal, view_signal

HERE = os.path.abspath(__file__)


@pytest.fixture(autouse=True)
def _tracing(settings, monkeypatch):
    settings.DEBUG = True
    settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
    monkeypatch.setattr(context, "_logged", set())
    buffer().clear()
    yield
    assert sinks.flush()
    memory._buffer.clear()


def quiet_trace(label="GET /quiet/ 200"):
    with signaltrace.capture(label=label) as trace:
        pass
    return trace


def dispatching_trace(label="GET /busy/ 200", **kwargs):
    with signaltrace.capture(label=label) as trace:
        view_signal.send(sender="busy", marker="busy", **kwargs)
    return trace


def error_trace():
    with signaltrace.capture(label="GET /robust/ 200") as trace:
        error_signal.send_robust(sender="robust")
    return trace


def skipped_trace():
    with signaltrace.capture(label="POST /bulk/ 302") as trace:
        User.objects.bulk_create([User(username="bulk-1"), User(username="bulk-2")])
    return trace


def truncated_trace():
    with signaltrace.capture(label="GET /capped/ 200", max_events=2) as trace:
        for _ in range(3):
            view_signal.send(sender="capped", marker="capped")
    return trace


def printed(trace, mode):
    stream = io.StringIO()
    console_sink.ConsoleSink(stream, mode=mode).emit(trace)
    return stream.getvalue()


class TestConsoleMode:
    @pytest.mark.parametrize(
        ("value", "mode"),
        [
            ("all", "all"),
            ("dispatches", "dispatches"),
            ("problems", "problems"),
            (None, None),
            (True, "all"),
            (False, None),
        ],
    )
    def test_values(self, value, mode):
        """None is off; True and False keep working, as "all" and off."""
        assert console_sink.console_mode({"CONSOLE": value}) == mode
        assert console_sink.console_enabled({"CONSOLE": value}) is (mode is not None)

    @pytest.mark.parametrize(
        ("argv", "debug", "mode"),
        [
            (["manage.py", "runserver"], True, "dispatches"),
            (["manage.py", "runserver_plus"], True, "dispatches"),
            (["manage.py", "runserver"], False, None),
            (["manage.py", "migrate"], True, None),
            (["gunicorn"], True, None),
        ],
    )
    def test_auto(self, settings, monkeypatch, argv, debug, mode):
        """The default, "auto", is "dispatches" under runserver with DEBUG, else off."""
        monkeypatch.setattr(sys, "argv", argv)
        settings.DEBUG = debug
        settings.SIGNALTRACE = {}
        assert get_config()["CONSOLE"] == "auto"
        assert console_sink.console_mode(get_config()) == mode

    @pytest.mark.parametrize("value", ["everything", "ALL", "", 1, 0.5, ["all"]])
    def test_invalid_values_name_the_key(self, value):
        (error,) = config_errors({"CONSOLE": value})
        key, message, _hint = error
        assert key == "CONSOLE"
        assert message.startswith("SIGNALTRACE['CONSOLE'] must be ")
        for mode in ('"auto"', '"all"', '"dispatches"', '"problems"', "None"):
            assert mode in message

    @pytest.mark.parametrize("value", ["auto", "all", "dispatches", "problems", None, True, False])
    def test_valid_values(self, value):
        assert config_errors({"CONSOLE": value}) == []


@pytest.mark.django_db
class TestConsoleFilter:
    def test_all_prints_every_request(self):
        assert printed(quiet_trace(), "all").startswith("GET /quiet/ 200   0 dispatches")
        assert "(no signals dispatched)" in printed(quiet_trace(), "all")

    def test_dispatches_skips_quiet_requests(self):
        assert printed(quiet_trace(), "dispatches") == ""
        assert "└─ view_signal" in printed(dispatching_trace(), "dispatches")
        assert "⚠ bulk_create on auth.User" in printed(skipped_trace(), "dispatches")

    @pytest.mark.parametrize(
        ("make", "shown"),
        [
            (quiet_trace, False),
            (dispatching_trace, False),
            (error_trace, True),
            (skipped_trace, True),
            (truncated_trace, True),
        ],
    )
    def test_problems(self, make, shown):
        """Errors, skipped operations and truncation are problems; a plain dispatch is not."""
        assert bool(printed(make(), "problems")) is shown

    def test_slow_receivers_are_problems(self, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "SLOW_MS": 1}
        assert "view_signal" in printed(dispatching_trace(pause=0.003), "problems")
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "SLOW_MS": 0}
        assert printed(dispatching_trace(pause=0.003), "problems") == ""

    def test_runserver_default_is_quiet_for_plain_requests(
        self, client, settings, monkeypatch, capsys
    ):
        """Under runserver, a request that dispatched nothing prints nothing."""
        monkeypatch.setattr(sys, "argv", ["manage.py", "runserver"])
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
        SignalTraceMiddleware(_responding(200))(RequestFactory().get("/plain/"))
        client.get("/signal/m/")
        assert sinks.flush()
        err = capsys.readouterr().err
        assert "(no signals dispatched)" not in err
        assert "/plain/" not in err
        assert "GET /signal/m/ 200   2 dispatches, 2 receiver calls" in err

    def test_none_is_off(self, client, settings, monkeypatch, capsys):
        monkeypatch.setattr(sys, "argv", ["manage.py", "runserver"])
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "CONSOLE": None}
        client.get("/signal/m/")
        assert sinks.flush()
        assert capsys.readouterr().err == ""

    def test_mode_all_in_a_request(self, settings, capsys):
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "CONSOLE": "all"}
        SignalTraceMiddleware(_responding(404))(RequestFactory().get("/plain/"))
        assert sinks.flush()
        assert "GET /plain/ 404   0 dispatches" in capsys.readouterr().err


def _responding(status):
    def get_response(request):
        return HttpResponse(status=status)

    return get_response


class TestLogLevelOf5xx:
    @pytest.mark.parametrize(("status", "level"), [(500, "warning"), (503, "warning")])
    def test_5xx_logs_at_the_problem_level(self, settings, status, level):
        settings.SIGNALTRACE = {"ENABLED": True}
        with structlog.testing.capture_logs() as logs:
            SignalTraceMiddleware(_responding(status))(RequestFactory().get("/down/"))
        (event,) = logs
        assert event["status"] == status
        assert event["log_level"] == level

    @pytest.mark.parametrize("status", [200, 302, 404, 499])
    def test_other_statuses_log_at_log_level(self, settings, status):
        settings.SIGNALTRACE = {"ENABLED": True}
        with structlog.testing.capture_logs() as logs:
            SignalTraceMiddleware(_responding(status))(RequestFactory().get("/fine/"))
        (event,) = logs
        assert event["log_level"] == "info"

    def test_custom_problem_level(self, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_PROBLEM_LEVEL": "error"}
        with structlog.testing.capture_logs() as logs:
            SignalTraceMiddleware(_responding(500))(RequestFactory().get("/down/"))
        assert logs[0]["log_level"] == "error"

    def test_request_fields_flag_5xx(self):
        trace = quiet_trace()
        trace.meta.update(status=502)
        assert request_fields(trace, 50)[1] is True
        trace.meta.update(status=404)
        assert request_fields(trace, 50)[1] is False
        trace.meta.update(status="500")  # not an int: not judged
        assert request_fields(trace, 50)[1] is False


class TestServerTiming:
    def _timing(self, get_response):
        response = SignalTraceMiddleware(get_response)(RequestFactory().get("/"))
        return response.headers["Server-Timing"]

    def test_counts_receiver_calls(self):
        def get_response(request):
            view_signal.send(sender="x", marker="x")  # announce, then record_marker
            view_signal.send(sender="x", marker="x")
            return HttpResponse()

        assert self._timing(get_response).endswith('desc="4 receiver calls"')

    def test_one_call(self):
        def get_response(request):
            error_signal.send_robust(sender="x")
            return HttpResponse()

        assert self._timing(get_response).endswith('desc="1 receiver call"')

    def test_no_call(self):
        assert self._timing(_responding(200)).endswith('desc="0 receiver calls"')


@pytest.mark.django_db
class TestSkippedInOrder:
    def test_between_the_dispatches_it_happened_between(self):
        with signaltrace.capture() as trace:
            view_signal.send(sender="before", marker="before")
            User.objects.bulk_create([User(username="between")])
            view_signal.send(sender="after", marker="after")
        lines = trace.render().splitlines()
        top = [line for line in lines if not line.startswith((" ", "│"))][1:]
        assert [line.split("  ")[0] for line in top] == [
            "├─ view_signal",
            "├─ ⚠ bulk_create on auth.User skipped post_save: tests.testapp.signals."
            "create_user_profile, tests.testapp.signals.save_user_profile did not run",
            "└─ view_signal",
        ]
        assert "sender=before" in top[0]
        assert top[1].startswith("├─ ⚠ bulk_create on auth.User skipped post_save: ")
        assert "sender=after" in top[2]

    def test_first_and_last(self):
        with signaltrace.capture() as trace:
            User.objects.bulk_create([User(username="first")])
            view_signal.send(sender="middle", marker="middle")
            User.objects.filter(username="first").update(first_name="F")
        top = [line for line in trace.render().splitlines() if line.startswith(("├", "└"))]
        assert top[0].startswith("├─ ⚠ bulk_create on auth.User")
        assert top[1].startswith("├─ view_signal")
        assert top[2].startswith("└─ ⚠ update on auth.User")

    def test_only_skipped(self):
        """Nothing dispatched but something skipped: the skipped lines are the tree."""
        trace = skipped_trace()
        lines = trace.render().splitlines()
        assert lines[0] == (
            f"POST /bulk/ 302   0 dispatches, 0 receiver calls, "
            f"{format_ms(0)} in receivers, 1 skipped operation"
        )
        assert lines[1].startswith("└─ ⚠ bulk_create on auth.User skipped post_save: ")
        assert "(no signals dispatched)" not in trace.render()
        assert len(lines) == 2

    def test_truncation_stays_last(self):
        with signaltrace.capture(max_events=3) as trace:
            User.objects.bulk_create([User(username="cut")])
            for _ in range(3):
                view_signal.send(sender="cut", marker="cut")
        lines = trace.render().splitlines()
        assert lines[-1].startswith("⚠ truncated: ")
        assert any(line.startswith("├─ ⚠ bulk_create") for line in lines)


@pytest.mark.django_db
class TestRunNoTree:
    def run(self, *args):
        out, err = io.StringIO(), io.StringIO()
        call_command("signaltrace_run", *args, stdout=out, stderr=err)
        return err.getvalue()

    def test_no_tree_lists_what_it_refers_to(self):
        err = self.run("--no-tree", "diag_touch")
        assert "above" not in err
        assert "└─" not in err
        assert "├─" not in err
        assert "  skipped: 1 operation skipped connected receivers:" in err
        assert "    ⚠ update on diagapp.Article skipped pre_save, post_save: " in err
        assert "  errors: 1 receiver call raised:" in err
        assert "    tests.diagapp.signals." in err

    def test_with_the_tree_it_points_at_it(self):
        err = self.run("diag_touch")
        assert "├─ ⚠ update on diagapp.Article" in err or "└─ ⚠ update on diagapp.Article" in err
        assert "  skipped: 1 operation skipped connected receivers (⚠ in the tree above)" in err


@pytest.mark.django_db
class TestOnePathRule:
    """Every place that names a file does it the same way, whatever the current directory."""

    @pytest.fixture
    def elsewhere(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        assert not HERE.startswith(str(tmp_path))
        return "tests/test_console_log.py"

    def _skipped_here(self):
        with signaltrace.capture(label="GET /paths/ 200") as trace:
            User.objects.bulk_create([User(username="paths")])
            error_signal.send_robust(sender="paths")
        trace.meta.update(id=trace.trace_id, method="GET", path="/paths/", status=200)
        return trace

    def test_tree(self, elsewhere):
        text = self._skipped_here().render()
        assert f"({elsewhere}:" in text
        assert HERE not in text

    def test_viewer_skipped_section(self, client, elsewhere):
        trace = self._skipped_here()
        buffer().emit(trace)
        html = client.get(f"/__signaltrace__/{trace.trace_id}/").content.decode()
        section = html.split('id="st-skipped-title"', 1)[1].split("</section>", 1)[0]
        assert f"<code>{elsewhere}:" in section
        assert HERE not in html
        assert os.path.dirname(HERE) not in html

    def test_log_event(self, elsewhere):
        fields, _problem = request_fields(self._skipped_here(), 50)
        (error,) = fields["errors"]
        assert error["location"].startswith("tests/testapp/views.py:")

    def test_run_summary(self, elsewhere):
        err = io.StringIO()
        call_command("signaltrace_run", "--no-tree", "diag_touch", stdout=io.StringIO(), stderr=err)
        text = err.getvalue()
        assert "(tests/diagapp/management/commands/diag_touch.py:" in text
        assert "(tests/diagapp/signals.py:" in text
        assert os.path.dirname(os.path.dirname(HERE)) + os.sep not in text
