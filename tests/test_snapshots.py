"""Snapshot assertions: assert_matches_snapshot(), the Trace method and the unittest mixin.

The end-to-end runs of the pytest plugin (create, pass, change, fail, update,
stale files, xdist) are in test_pytest_plugin.py. Here the running test is set
by hand, so the files go to a temporary directory; the one exception is
:class:`TestCommittedSnapshot`, whose snapshot is in the repository and must
match on every Python and Django version of the matrix.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import types
import unittest
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.dispatch import Signal

import signaltrace
from signaltrace._testrun import ENV_UPDATE, STATE, SnapshotTest
from signaltrace.assertions.snapshot import SNAPSHOT_DIR, file_stem, snapshot_path
from signaltrace.testing import SignalTraceAssertionError, assert_matches_snapshot

ROOT = Path(__file__).resolve().parent.parent

order_paid = Signal()


def charge(sender, **kwargs):
    if kwargs.get("fail"):
        raise ValueError("card declined")


async def notify(sender, **kwargs):
    await asyncio.sleep(0)


async def audit(sender, **kwargs):
    pass


@pytest.fixture
def paid():
    order_paid.connect(charge)
    yield
    order_paid.disconnect(charge)


@pytest.fixture
def current(tmp_path, monkeypatch):
    """The running test, as the plugin would set it, with its module in tmp_path."""
    test = SnapshotTest(
        str(tmp_path / "test_shop.py"), "test_checkout", "test_shop.py::test_checkout"
    )
    monkeypatch.setattr(STATE, "current", test)
    monkeypatch.setattr(STATE, "update", False)
    for name, value in (("used", set()), ("written", []), ("updated", []), ("taken", {})):
        monkeypatch.setattr(STATE, name, value)
    monkeypatch.delenv(ENV_UPDATE, raising=False)
    return test


def checkout(fail=False):
    with signaltrace.capture() as trace:
        order_paid.send_robust(sender="shop", order_id=42, fail=fail)
    return trace


SNAPSHOT = (
    "1 dispatch, 1 receiver call\n"
    "└─ order_paid  sender=shop order_id=42 fail=False [send_robust]\n"
    "   └─ tests.test_snapshots.charge\n"
)


@pytest.mark.usefixtures("paid")
class TestAssertMatchesSnapshot:
    def test_missing_fails_with_instructions(self, current, tmp_path):
        with pytest.raises(SignalTraceAssertionError) as info:
            assert_matches_snapshot(checkout())
        path = tmp_path / SNAPSHOT_DIR / "test_shop" / "test_checkout.txt"
        message = str(info.value)
        assert message.startswith(
            f"No signal snapshot for test_shop.py::test_checkout yet: {path} does not exist."
        )
        assert (
            "Write it with pytest --signaltrace-update-snapshots (outside pytest: the environment "
            "variable SIGNALTRACE_UPDATE_SNAPSHOTS=1), check that it shows what should happen, "
            "and commit it. This run's tree:\n\n" + SNAPSHOT
        ) in message
        assert not path.exists()
        assert info.value.trace is not None

    def test_update_writes_then_it_matches(self, current, tmp_path):
        STATE.update = True
        path = assert_matches_snapshot(checkout())
        assert path == tmp_path / SNAPSHOT_DIR / "test_shop" / "test_checkout.txt"
        assert path.read_text(encoding="utf-8") == SNAPSHOT
        assert STATE.written == [str(path.resolve())]
        STATE.update, STATE.taken = False, {}
        assert assert_matches_snapshot(checkout()) == path
        assert STATE.used == {str(path.resolve())}

    def test_mismatch_shows_a_unified_diff(self, current):
        path = snapshot_path(current)
        path.parent.mkdir(parents=True)
        path.write_text(SNAPSHOT, encoding="utf-8")
        with pytest.raises(SignalTraceAssertionError) as info:
            assert_matches_snapshot(checkout(fail=True))
        assert str(info.value) == (
            f"The signal trace of test_shop.py::test_checkout does not match its snapshot {path} "
            "(- snapshot, + this run):\n\n"
            "--- snapshot\n"
            "+++ this run\n"
            "@@ -1,3 +1,3 @@\n"
            "-1 dispatch, 1 receiver call\n"
            "-└─ order_paid  sender=shop order_id=42 fail=False [send_robust]\n"
            "-   └─ tests.test_snapshots.charge\n"
            "+1 dispatch, 1 receiver call, 1 error\n"
            "+└─ order_paid  sender=shop order_id=42 fail=True [send_robust]\n"
            "+   └─ tests.test_snapshots.charge  ✗ raised ValueError (swallowed by send_robust)\n\n"
            "If the change is intended, rewrite the snapshot with pytest "
            "--signaltrace-update-snapshots (outside pytest: the environment variable "
            "SIGNALTRACE_UPDATE_SNAPSHOTS=1)."
        )
        assert path.read_text(encoding="utf-8") == SNAPSHOT  # untouched

    def test_the_environment_variable_rewrites(self, current, monkeypatch):
        path = snapshot_path(current)
        path.parent.mkdir(parents=True)
        path.write_text(SNAPSHOT, encoding="utf-8")
        monkeypatch.setenv(ENV_UPDATE, "1")
        assert assert_matches_snapshot(checkout(fail=True)) == path
        assert "✗ raised ValueError" in path.read_text(encoding="utf-8")
        assert STATE.updated == [str(path.resolve())]

    def test_windows_line_endings_still_match(self, current):
        path = snapshot_path(current)
        path.parent.mkdir(parents=True)
        path.write_bytes(SNAPSHOT.replace("\n", "\r\n").encode("utf-8"))
        assert assert_matches_snapshot(checkout()) == path

    def test_several_snapshots_need_names(self, current, tmp_path):
        STATE.update = True
        first = signaltrace_trace = checkout()
        assert assert_matches_snapshot(first).name == "test_checkout.txt"
        assert assert_matches_snapshot(checkout(fail=True), "failed").name == (
            "test_checkout.failed.txt"
        )
        with pytest.raises(TypeError, match=r"already took the snapshot .*test_checkout\.txt: "):
            assert_matches_snapshot(signaltrace_trace)
        with pytest.raises(TypeError, match="name must be a non-empty string, got ''"):
            assert_matches_snapshot(first, "")

    def test_the_trace_method(self, current):
        """``signal_trace.assert_matches_snapshot()``: the fixture's object is a Trace."""
        STATE.update = True
        path = checkout().assert_matches_snapshot(name="method")
        assert path.name == "test_checkout.method.txt"

    def test_query_counts(self, current, settings, db):
        settings.SIGNALTRACE = {"ENABLED": True, "RECORD_DB": True}
        STATE.update = True
        with signaltrace.capture() as trace:
            User.objects.create(username="ann")
        path = assert_matches_snapshot(trace, queries=True)
        assert "tests.testapp.signals.create_user_profile  1 query\n" in path.read_text("utf-8")


class TestFileNames:
    @pytest.mark.parametrize(
        ("name", "stem"),
        [
            ("test_it", "test_it"),
            ("TestShop::test_it", "TestShop.test_it"),
            ("TestShop::Inner::test_it[a/b c]", "TestShop.Inner.test_it[a_b_c]"),
            ("test_it[é-1]", "test_it[_-1]"),
        ],
    )
    def test_stems(self, name, stem):
        assert file_stem(name) == stem

    def test_long_names_are_cut_with_a_hash(self):
        one, two = file_stem("test_" + "x" * 200 + "1"), file_stem("test_" + "x" * 200 + "2")
        assert len(one) == len(two) == 120
        assert one != two

    def test_path(self, tmp_path):
        test = SnapshotTest(str(tmp_path / "tests" / "test_shop.py"), "TestShop::test_pay")
        assert snapshot_path(test, "after refund") == (
            tmp_path / "tests" / SNAPSHOT_DIR / "test_shop" / "TestShop.test_pay.after_refund.txt"
        )


UNITTEST_MODULE = """
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

import unittest

from django.dispatch import Signal

import signaltrace
from signaltrace.testing import SignalTraceTestMixin, assert_matches_snapshot

order_paid = Signal()


def charge(sender, **kwargs):
    pass


order_paid.connect(charge)


class CheckoutTests(SignalTraceTestMixin, unittest.TestCase):
    def test_mixin(self):
        with self.captureSignals():
            order_paid.send(sender="shop", order_id=int(os.environ.get("ORDER", "1")))
        self.assertTraceMatchesSnapshot()

    def test_function(self):
        with signaltrace.capture() as trace:
            order_paid.send(sender="shop")
        assert_matches_snapshot(trace, name="plain")


if __name__ == "__main__":
    with signaltrace.capture() as trace:
        order_paid.send(sender="script")
    try:
        assert_matches_snapshot(trace)
    except TypeError as err:
        print("TypeError:", err)
    print(assert_matches_snapshot(trace, name="script run"))
"""


class TestOutsidePytest:
    """unittest finds the test on the call stack; a script must name its snapshots."""

    def run(self, tmp_path, *command, **env):
        (tmp_path / "test_checkout.py").write_text(UNITTEST_MODULE, encoding="utf-8")
        environ = {
            k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", ENV_UPDATE)
        }
        environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(tmp_path)])
        environ.update(env)
        return subprocess.run(
            [sys.executable, *(command or ["-m", "unittest", "test_checkout"])],
            cwd=tmp_path,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def test_unittest(self, tmp_path):
        folder = tmp_path / SNAPSHOT_DIR / "test_checkout"
        missing = self.run(tmp_path)
        assert missing.returncode == 1
        assert (
            "No signal snapshot for test_checkout.CheckoutTests.test_mixin yet: "
            f"{SNAPSHOT_DIR}/test_checkout/CheckoutTests.test_mixin.txt does not exist."
        ) in missing.stderr
        assert "FAILED (failures=2)" in missing.stderr
        assert not folder.exists()

        written = self.run(tmp_path, **{ENV_UPDATE: "1"})
        assert written.returncode == 0, written.stderr
        assert sorted(p.name for p in folder.iterdir()) == [
            "CheckoutTests.test_function.plain.txt",
            "CheckoutTests.test_mixin.txt",
        ]
        assert (folder / "CheckoutTests.test_mixin.txt").read_text(encoding="utf-8") == (
            "1 dispatch, 1 receiver call\n"
            "└─ order_paid  sender=shop order_id=1\n"
            "   └─ test_checkout.charge\n"
        )
        assert self.run(tmp_path).returncode == 0

        changed = self.run(tmp_path, ORDER="2")
        assert changed.returncode == 1
        assert "-└─ order_paid  sender=shop order_id=1\n+└─ order_paid  sender=shop order_id=2" in (
            changed.stderr
        )
        assert "FAILED (failures=1)" in changed.stderr

    def test_script_needs_a_name(self, tmp_path):
        result = self.run(tmp_path, "test_checkout.py", **{ENV_UPDATE: "1"})
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == (
            "TypeError: assert_matches_snapshot() outside a test needs name=: the snapshot file "
            "is named after it, beside the calling module"
        )
        path = tmp_path / SNAPSHOT_DIR / "test_checkout" / "script_run.txt"
        assert lines[1] == str(path)
        assert "order_paid  sender=script" in path.read_text(encoding="utf-8")


order_placed = Signal()
robust_signal = Signal()


def nested(sender, **kwargs):
    robust_signal.send_robust(sender="nested", user=kwargs["user"])


def fragile(sender, **kwargs):
    raise KeyError("boom")


@pytest.fixture
def flow_receivers():
    order_placed.connect(nested)
    order_placed.connect(notify)
    order_placed.connect(audit)
    robust_signal.connect(fragile)
    yield
    order_placed.disconnect(nested)
    order_placed.disconnect(notify)
    order_placed.disconnect(audit)
    robust_signal.disconnect(fragile)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("flow_receivers")
class TestCommittedSnapshot:
    """A flow whose snapshot is in the repository: the same tree on every version.

    It has primary keys (other tests run before it, in random order), a nested
    robust dispatch that swallows an error, concurrent async receivers, a sync
    one sent through ``asend`` and a skipped bulk operation.
    """

    def test_flow(self, signal_trace):
        user = User.objects.create(username="ann")
        User.objects.bulk_create([User(username="bob")])
        asyncio.run(order_placed.asend(sender="shop", user=user))
        user.delete()
        signal_trace.assert_matches_snapshot()
        assert Path(
            ROOT, "tests", SNAPSHOT_DIR, "test_snapshots", "TestCommittedSnapshot.test_flow.txt"
        ).resolve() in {Path(p) for p in STATE.used}


INPROCESS_CASES = """
import unittest

import signaltrace
from signaltrace.testing import SignalTraceTestMixin, assert_matches_snapshot
from tests.test_snapshots import order_paid


class Tests(SignalTraceTestMixin, unittest.TestCase):
    def test_mixin(self):
        with self.captureSignals():
            order_paid.send_robust(sender="unittest", order_id=5)
        self.assertTraceMatchesSnapshot(msg="checkout flow")

    def test_function(self):
        with signaltrace.capture() as trace:
            order_paid.send_robust(sender="unittest", order_id=6)
        assert_matches_snapshot(trace, "named")

    def test_without_a_trace(self):
        self.assertTraceMatchesSnapshot()
"""


@pytest.mark.usefixtures("paid")
class TestOutsidePytestInProcess:
    """The same lookups in this process, with no running test recorded by the plugin."""

    @pytest.fixture
    def no_test(self, current, monkeypatch):
        monkeypatch.setattr(STATE, "current", None)

    @pytest.fixture
    def cases(self, tmp_path, monkeypatch):
        path = tmp_path / "test_inproc_cases.py"
        path.write_text(INPROCESS_CASES, encoding="utf-8")
        spec = importlib.util.spec_from_file_location("test_inproc_cases", path)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, "test_inproc_cases", module)
        spec.loader.exec_module(module)
        return module.Tests

    def run(self, cases, name):
        result = unittest.TestResult()
        cases(name).run(result)
        return result

    def test_unittest(self, no_test, cases, tmp_path):
        folder = tmp_path / SNAPSHOT_DIR / "test_inproc_cases"
        missing = self.run(cases, "test_mixin")
        (failure,) = [text for _case, text in missing.failures]
        assert (
            "SignalTraceAssertionError: checkout flow: No signal snapshot for "
            "test_inproc_cases.Tests.test_mixin yet: "
        ) in failure
        STATE.update = True
        assert self.run(cases, "test_mixin").wasSuccessful()
        assert self.run(cases, "test_function").wasSuccessful()
        assert sorted(p.name for p in folder.iterdir()) == [
            "Tests.test_function.named.txt",
            "Tests.test_mixin.txt",
        ]
        (error,) = [text for _case, text in self.run(cases, "test_without_a_trace").errors]
        assert (
            "TypeError: assertTraceMatchesSnapshot() needs a trace: pass one, or call it after "
            "a `with self.captureSignals():` block"
        ) in error

    def test_script(self, no_test, tmp_path):
        """Outside a test: name= is required, and the file goes beside the calling module."""
        namespace = {"assert_matches_snapshot": assert_matches_snapshot, "trace": checkout()}
        script = tmp_path / "nightly.py"
        code = compile("path = assert_matches_snapshot(trace, 'paid')", str(script), "exec")
        with pytest.raises(
            SignalTraceAssertionError, match=r"^No signal snapshot named 'paid' yet"
        ):
            exec(code, namespace)
        STATE.update = True
        exec(code, namespace)
        assert namespace["path"] == tmp_path / SNAPSHOT_DIR / "nightly" / "paid.txt"
        assert namespace["path"].read_text(encoding="utf-8") == SNAPSHOT
        # Through the Trace method: signaltrace's own frames are skipped.
        exec(compile("path = trace.assert_matches_snapshot('m')", str(script), "exec"), namespace)
        assert namespace["path"] == tmp_path / SNAPSHOT_DIR / "nightly" / "m.txt"
        with pytest.raises(TypeError, match=r"outside a test needs name=: the snapshot file is"):
            exec(compile("assert_matches_snapshot(trace)", str(script), "exec"), namespace)

    def test_a_test_case_without_a_module_file(self, no_test, tmp_path, monkeypatch):
        """A TestCase whose module has no file is no help: the caller's file is used."""
        module = types.ModuleType("no_file_module")
        monkeypatch.setitem(sys.modules, "no_file_module", module)
        script = tmp_path / "generated.py"
        source = (
            "class Generated(unittest.TestCase):\n"
            "    def test_it(self):\n"
            "        return assert_matches_snapshot(trace, 'gen')\n"
        )
        namespace = {
            "__name__": "no_file_module",
            "unittest": unittest,
            "assert_matches_snapshot": assert_matches_snapshot,
            "trace": checkout(),
        }
        exec(compile(source, str(script), "exec"), namespace)
        STATE.update = True
        path = namespace["Generated"]("test_it").test_it()
        assert path == tmp_path / SNAPSHOT_DIR / "generated" / "gen.txt"
