"""``manage.py signaltrace_diff A.json B.json`` on traces recorded here."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db.models.signals import post_save
from django.dispatch import Signal

import signaltrace
from signaltrace.sinks.memory import buffer
from tests.testapp.signals import save_user_profile

ROOT = Path(__file__).resolve().parent.parent

audit_logged = Signal()


def audit_user(sender, instance, created, **kwargs):
    audit_logged.send_robust(sender="audit", user=instance)


def audit_store(sender, **kwargs):
    raise ConnectionError("audit store down")


@pytest.fixture
def changed_receivers():
    """The second version of the code: one receiver more, one less, one failing."""
    post_save.connect(audit_user, sender=User)
    audit_logged.connect(audit_store)
    post_save.disconnect(save_user_profile, sender=User)
    yield
    post_save.disconnect(audit_user, sender=User)
    audit_logged.disconnect(audit_store)
    post_save.connect(save_user_profile, sender=User)


def write(path, trace_or_data):
    data = trace_or_data if isinstance(trace_or_data, dict) else trace_or_data.to_dict()
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return str(path)


def register(username):
    with signaltrace.capture(label="register") as trace:
        User.objects.create(username=username)
    return trace


def diff(*args):
    out = io.StringIO()
    call_command("signaltrace_diff", *args, stdout=out, no_color=True)
    return out.getvalue()


@pytest.fixture
def before(db, tmp_path):
    User.objects.create(username="someone")  # the keys differ from the other trace's
    return write(tmp_path / "before.json", register("ann"))


@pytest.fixture
def after(db, tmp_path, changed_receivers):
    return write(tmp_path / "after.json", register("bob"))


CHANGED = [
    "- └─ post_save  sender=auth.User pk=#1 created=True",
    "+ └─ post_save  sender=auth.User pk=#1 created=True",
]


class TestDiff:
    def test_same_flow(self, before, tmp_path):
        again = write(tmp_path / "again.json", register("cyd"))
        assert diff(before, again) == (
            "No differences in the signal flow (1 dispatch, 2 receiver calls).\n"
        )

    def test_what_changed(self, before, after):
        with pytest.raises(SystemExit) as info:
            diff(before, after)
        assert info.value.code == 1

    def test_output(self, before, after, capsys):
        out = io.StringIO()
        with pytest.raises(SystemExit):
            call_command("signaltrace_diff", before, after, stdout=out, no_color=True)
        assert out.getvalue().splitlines() == [
            f"--- {before}  (1 dispatch, 2 receiver calls)",
            f"+++ {after}  (2 dispatches, 3 receiver calls, 1 error)",
            "  └─ post_save  sender=auth.User pk=#1 created=True",
            "     ├─ tests.testapp.signals.create_user_profile",
            "-    ├─ tests.testapp.signals.save_user_profile",
            "+    └─ tests.test_signaltrace_diff.audit_user",
            "+       └─ audit_logged  sender=audit user=auth.User pk=#1 [send_robust]",
            "+          └─ tests.test_signaltrace_diff.audit_store  ✗ raised ConnectionError "
            "(swallowed by send_robust)",
            "Changes: 1 dispatch added, 2 receiver calls added, 1 receiver call removed.",
        ]

    def test_either_json_version(self, before, tmp_path):
        """A signaltrace.trace/1 file and a /2 file of the same flow do not differ."""
        data = json.loads(Path(before).read_text(encoding="utf-8"))
        v1 = {k: v for k, v in data.items() if k not in ("trace_id", "kind", "parent")}
        v1["schema"] = "signaltrace.trace/1"
        v2 = {**v1, "schema": "signaltrace.trace/2", "trace_id": "a" * 32, "kind": "capture"}
        v2["parent"] = None
        old, new = write(tmp_path / "v1.json", v1), write(tmp_path / "v2.json", v2)
        assert diff(old, new).startswith("No differences")
        assert diff(before, old).startswith("No differences")

    def test_query_counts_only_when_asked(self, before, tmp_path):
        data = json.loads(Path(before).read_text(encoding="utf-8"))
        for call in data["dispatches"][0]["calls"]:
            call["queries"] = (call["queries"] or 0) + 3
        more = write(tmp_path / "more.json", data)
        assert diff(before, more).startswith("No differences")
        out = io.StringIO()
        with pytest.raises(SystemExit):
            call_command("signaltrace_diff", before, more, "--queries", stdout=out, no_color=True)
        assert "Changes: 2 receiver calls changed." in out.getvalue()

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            ("{not json", "is not JSON: "),
            ("[1, 2]", "is not a trace: a JSON object was expected"),
            ('{"schema": "signaltrace.receivers/1"}', "not a signaltrace trace: schema is "),
        ],
    )
    def test_unreadable(self, before, tmp_path, content, message):
        bad = tmp_path / "bad.json"
        bad.write_text(content, encoding="utf-8")
        with pytest.raises(CommandError, match=message) as info:
            diff(before, str(bad))
        assert info.value.returncode == 2

    def test_missing_file(self, before, tmp_path):
        with pytest.raises(CommandError, match=r"cannot read .*nope\.json: No such file") as info:
            diff(before, str(tmp_path / "nope.json"))
        assert info.value.returncode == 2


@pytest.mark.django_db
class TestViewerJson:
    """The viewer's JSON link gives files signaltrace_diff reads."""

    @pytest.fixture(autouse=True)
    def _viewer(self, settings):
        settings.DEBUG = True
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "CONSOLE": False}
        buffer().clear()
        yield
        buffer().clear()

    def download(self, client, url, path):
        response = client.get(url)
        trace_id = response.headers["X-Signaltrace-Id"]
        data = json.loads(client.get(f"/__signaltrace__/{trace_id}.json").content)
        return write(path, data)

    def test_two_requests(self, client, tmp_path):
        """Other users (other keys), other markers: only the markers are changes."""
        ann = self.download(client, "/create-user/?username=ann", tmp_path / "ann.json")
        bob = self.download(client, "/create-user/?username=bob", tmp_path / "bob.json")
        assert json.loads(Path(ann).read_text(encoding="utf-8"))["meta"]["path"] == "/create-user/"
        assert diff(ann, ann).startswith("No differences in the signal flow")
        out = io.StringIO()
        with pytest.raises(SystemExit):
            call_command("signaltrace_diff", ann, bob, stdout=out, no_color=True)
        assert out.getvalue().splitlines()[2:] == [
            "  ├─ post_save  sender=auth.User pk=#1 created=True",
            "  │  ├─ tests.testapp.signals.create_user_profile",
            "  │  └─ tests.testapp.signals.save_user_profile",
            "- └─ view_signal  sender=create_user_view marker=ann",
            "+ └─ view_signal  sender=create_user_view marker=bob",
            "     └─ tests.testapp.views.announce",
            "-       └─ nested_signal  sender=announce marker=ann pause=0",
            "+       └─ nested_signal  sender=announce marker=bob pause=0",
            "           └─ tests.testapp.views.record_marker",
            "Changes: 2 dispatches changed.",
        ]


class TestExitStatus:
    """Run as manage.py would be: 0 same, 1 different, 2 trouble; never a traceback."""

    def run(self, *args):
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings")
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
        return subprocess.run(
            [sys.executable, "-m", "django", "signaltrace_diff", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def test_statuses(self, before, after, tmp_path):
        same = self.run(before, before)
        assert (same.returncode, same.stderr) == (0, "")
        assert same.stdout.startswith("No differences")

        different = self.run(before, after)
        assert different.returncode == 1
        assert different.stderr == ""
        assert "+    └─ tests.test_signaltrace_diff.audit_user" in different.stdout

        missing = self.run(before, str(tmp_path / "nope.json"))
        assert missing.returncode == 2
        assert missing.stderr.startswith("CommandError: cannot read ")
        assert "Traceback" not in missing.stderr
