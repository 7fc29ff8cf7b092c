"""manage.py signaltrace_receivers and signaltrace_run."""

from __future__ import annotations

import gc
import io
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.signals import got_request_exception
from django.dispatch import Signal

import signaltrace
from signaltrace.diagnostics.discovery import discover_signals
from signaltrace.management.commands.signaltrace_run import summary
from tests.diagapp.models import Article

GOT_REQUEST_EXCEPTION = "django.core.signals.got_request_exception"


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def signal_state():
    """Everything a careless reader could change: receivers, caches, dead flags."""
    state = []
    for info in discover_signals():
        signal = info.signal
        if isinstance(signal, Signal):
            state.append(
                (
                    info.path,
                    list(signal.receivers),
                    dict(signal.sender_receivers_cache),
                    signal._dead_receivers,
                )
            )
        else:
            state.append((info.path, dict(signal.receivers), dict(signal._by_sender)))
    return state


class TestReceiversCommand:
    def test_text(self):
        out, _err = run("signaltrace_receivers")
        assert "post_save  django.db.models.signals.post_save  (ModelSignal, " in out
        assert (
            "tests.diagapp.signals.count_article  sender=diagapp.Article  sync  weak  "
            "dispatch_uid='diagapp.count_article'  tests/diagapp/signals.py:"
        ) in out
        assert "tests.diagapp.signals.notify_subscribers  any sender  async  weak" in out
        assert "tests.diagapp.signals.log_publication  any sender  sync  strong" in out
        assert "diagapp.exported  blinker:diagapp.exported  (NamedSignal, 1 receiver)" in out
        assert "\nNo receivers: " in out

    def test_changes_no_signal_state(self):
        """Listing never fills a receivers cache, clears a dead entry or connects anything.

        A dead entry is planted so that "clears" is tested, and the collector is
        kept from running meanwhile: a weak receiver that an earlier test left in a
        reference cycle would otherwise die mid-test and flip ``_dead_receivers``.
        """

        def doomed(sender, **kwargs):  # pragma: no cover - never sent
            pass

        got_request_exception.connect(doomed, dispatch_uid="test_commands.doomed")
        del doomed  # a dead weak entry, left for the next send or connect to clear
        gc.collect()
        gc.disable()
        try:
            before = signal_state()
            for fmt in ("text", "json", "mermaid", "dot"):
                run("signaltrace_receivers", "--format", fmt)
            run("signaltrace_receivers", "--sender", "auth.User")
            after = signal_state()
        finally:
            gc.enable()
            got_request_exception.disconnect(dispatch_uid="test_commands.doomed")
        assert got_request_exception._dead_receivers is False  # disconnect() cleared it
        assert after == before
        (planted,) = [entry for entry in before if entry[0] == GOT_REQUEST_EXCEPTION]
        assert planted[3] is True  # the dead entry was there all along

    def test_json(self):
        out, _err = run("signaltrace_receivers", "--format", "json", "--signal", "post_save")
        data = json.loads(out)
        (signal,) = data["signals"]
        assert signal["path"] == "django.db.models.signals.post_save"
        first = signal["receivers"][0]
        assert first["receiver"] == "tests.testapp.signals.create_user_profile"
        assert first["sender"] == "auth.User"
        assert first["location"].endswith("tests/testapp/signals.py:14")

    def test_sender(self):
        out, _err = run("signaltrace_receivers", "--sender", "auth.User")
        assert "create_user_profile" in out
        assert "backup_user_data" in out
        assert "diagapp" not in out
        assert "No receivers" not in out

    def test_mermaid_and_dot(self):
        out, _err = run("signaltrace_receivers", "--format", "mermaid", "--signal", "pre_delete")
        assert out.startswith("flowchart LR\n")
        assert '-->|"auth.User"|' in out
        out, _err = run("signaltrace_receivers", "--format", "dot", "--sender", "auth.User")
        assert out.startswith("digraph signaltrace {")
        assert '[label="auth.User"]' in out

    def test_unknown_signal(self):
        with pytest.raises(
            CommandError, match=r"No signal named 'post_sav'\. Did you mean post_save"
        ):
            run("signaltrace_receivers", "--signal", "post_sav")
        with pytest.raises(CommandError, match=r"No signal named 'zzzzzz'\.$"):
            run("signaltrace_receivers", "--signal", "zzzzzz")

    @pytest.mark.parametrize("label", ["diagapp.Nope", "no_dot", "nope.Model"])
    def test_unknown_sender(self, label):
        with pytest.raises(CommandError, match=f"--sender '{label}'"):
            run("signaltrace_receivers", "--sender", label)

    def test_bad_format(self):
        with pytest.raises(CommandError, match="invalid choice"):
            run("signaltrace_receivers", "--format", "yaml")


@pytest.mark.django_db
class TestRunCommand:
    def test_loaddata(self):
        """The fixture's raw saves and the receivers they ran, then a summary."""
        out, err = run("signaltrace_run", "loaddata", "diag.json", "--verbosity", "1")
        assert "Installed 2 object(s)" in out
        assert err.startswith("loaddata diag.json --verbosity 1   ")
        assert "post_save  sender=diagapp.Article pk=50 created=True raw=True" in err
        assert "tests.diagapp.signals.article_saved" in err
        assert "Summary of `loaddata diag.json --verbosity 1`: ok in " in err
        assert "post_save  sender=diagapp.Article  1 dispatch, 2 receiver calls" in err
        assert Article.objects.get(pk=50).title == "from a fixture"

    def test_createsuperuser(self):
        out, err = run(
            "signaltrace_run",
            "createsuperuser",
            "--noinput",
            "--username",
            "ann",
            "--email",
            "ann@example.com",
        )
        assert "Superuser created successfully." in out
        assert "post_save  sender=auth.User pk=" in err
        assert "tests.testapp.signals.create_user_profile" in err
        assert "receivers by total time:" in err
        assert User.objects.get().profile is not None

    def test_migrate(self):
        _out, err = run("signaltrace_run", "--no-tree", "migrate", "--noinput", "--verbosity", "0")
        assert "└─" not in err
        assert "post_migrate  sender=<django.contrib.auth.apps.AuthConfig instance>" in err
        assert "django.contrib.contenttypes.management.create_contenttypes" in err

    def test_json_file(self, tmp_path):
        path = tmp_path / "trace.json"
        _out, err = run("signaltrace_run", "--json", str(path), "loaddata", "diag.json")
        data = json.loads(path.read_text())
        assert data["schema"] == "signaltrace.trace/2"
        assert data["label"] == "loaddata diag.json"
        assert data["meta"]["command"] == "loaddata"
        assert data["meta"]["args"] == ["diag.json"]
        assert data["dispatches"][0]["signal"] == "pre_save"
        assert f"Trace written to {path}" in err

    def test_json_stdout(self):
        out, _err = run("signaltrace_run", "--json", "-", "diag_touch")
        text = out.split("touched\n", 1)[1]
        data = json.loads(text)
        assert data["skipped"][0]["operation"] == "update"
        assert data["error_count"] == 1

    def test_skipped_and_errors_in_summary(self):
        out, err = run("signaltrace_run", "diag_touch")
        assert out == "touched\n"
        assert "⚠ update on diagapp.Article skipped pre_save, post_save" in err
        assert "  errors: 1 receiver call raised" in err
        assert "  skipped: 1 operation skipped connected receivers" in err

    def test_failing_command(self):
        """The tree is printed, then the command's exception propagates unchanged."""
        err = io.StringIO()
        with pytest.raises(RuntimeError, match="diag_touch failed"):
            call_command(
                "signaltrace_run", "diag_touch", "--fail", stdout=io.StringIO(), stderr=err
            )
        assert "Summary of `diag_touch --fail`: raised RuntimeError in " in err.getvalue()
        assert "post_save  sender=diagapp.Article" in err.getvalue()

    def test_command_error_passes_through(self):
        err = io.StringIO()
        with pytest.raises(CommandError, match="No fixture named 'missing'"):
            call_command("signaltrace_run", "loaddata", "missing", stdout=io.StringIO(), stderr=err)
        assert "raised CommandError" in err.getvalue()
        assert "(no signals dispatched)" in err.getvalue()

    def test_unknown_command(self):
        with pytest.raises(CommandError, match="Unknown command: 'nope'"):
            run("signaltrace_run", "nope")

    def test_max_events(self):
        _out, err = run("signaltrace_run", "--max-events", "1", "diag_touch")
        assert "  dropped: " in err
        assert "past MAX_EVENTS=1" in err
        with pytest.raises(CommandError, match="must be a positive int"):
            run("signaltrace_run", "--max-events", "0", "diag_touch")


@pytest.mark.django_db
class TestSummary:
    def test_top(self):
        """Past `top` receivers, the rest are counted."""
        with signaltrace.capture(label="x") as trace:
            User.objects.create(username="u")
        text = summary(trace, top=1)
        assert text.startswith("Summary of `x`: ok in ")
        assert "    … 1 more" in text
        assert "1 call " in text

    def test_empty(self):
        with signaltrace.capture() as trace:
            pass
        assert summary(trace).startswith("Summary of `None`: ok in ")
        assert "signals:" not in summary(trace)
