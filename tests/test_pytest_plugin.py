"""The pytest plugin: fixture, marker, report section, ini option (pytester-based)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

# -- end to end, in a subprocess with pytest-django --------------------------------

E2E_SETTINGS = """
from tests.settings import *  # noqa: F403

MIDDLEWARE = []
ROOT_URLCONF = "e2e_urls"
"""

E2E_URLS = """
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.urls import path


def register(request):
    User.objects.create(username=request.POST["username"])
    return HttpResponse("ok")


async def aregister(request):
    await User.objects.acreate(username=request.POST["username"])
    return HttpResponse("ok")


urlpatterns = [path("register/", register), path("aregister/", aregister)]
"""

E2E_TESTS = """
import asyncio

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.dispatch import Signal, receiver

from tests.testapp.signals import backup_user_data, create_user_profile, save_user_profile

robust_signal = Signal()


@receiver(robust_signal)
def fragile(sender, **kwargs):
    raise ValueError("fragile failed")


def test_db(db, signal_trace):
    User.objects.create(username="ann")
    signal_trace.assert_called(create_user_profile, sender=User, created=True)
    signal_trace.assert_not_called(backup_user_data)


def test_fixtures_set_up_before_the_trace(signal_trace, admin_user):
    User.objects.create(username="ann")
    signal_trace.assert_called_once(create_user_profile, created=True)


def test_transactional_db(transactional_db, signal_trace):
    User.objects.create(username="ann").delete()
    signal_trace.assert_order(create_user_profile, save_user_profile, backup_user_data)


def test_client(client, db, signal_trace):
    assert client.post("/register/", {"username": "ann"}).status_code == 200
    signal_trace.assert_called_once(create_user_profile, sender=User, created=True)


def test_async_client(async_client, transactional_db, signal_trace):
    response = asyncio.run(async_client.post("/aregister/", {"username": "ann"}))
    assert response.status_code == 200
    signal_trace.assert_called_once(create_user_profile, sender=User, created=True)


def test_async_to_sync(transactional_db, signal_trace):
    async def create():
        await User.objects.acreate(username="ann")

    async_to_sync(create)()
    signal_trace.assert_called_once(create_user_profile, created=True)


def test_assertion_fails(db, signal_trace):
    User.objects.create(username="ann")
    signal_trace.assert_called(create_user_profile, created=False)


def test_plain_assert_fails(db, signal_trace):
    User.objects.create(username="bob")
    assert User.objects.count() == 0


@pytest.mark.signaltrace(fail_on_errors=True)
def test_marker_fail_on_errors():
    robust_signal.send_robust(sender=None)


@pytest.mark.signaltrace(report=False)
def test_marker_report_off(db):
    User.objects.create(username="cyd")
    assert False
"""


@pytest.fixture
def e2e(pytester, monkeypatch):
    """A pytester dir using pytest-django with the test app's settings."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    pytester.makepyfile(e2e_settings=E2E_SETTINGS, e2e_urls=E2E_URLS)
    return pytester


def run_e2e(pytester, *args):
    return pytester.runpytest_subprocess(
        "--ds=e2e_settings",
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "--strict-markers",
        "-W",
        "error",
        *args,
    )


class TestEndToEnd:
    def test_pytest_django(self, e2e):
        """Fixture, marker and report with db, transactional_db, client and async_client."""
        e2e.makepyfile(test_e2e=E2E_TESTS)
        result = run_e2e(e2e)
        result.assert_outcomes(passed=6, failed=4)
        result.stdout.fnmatch_lines(
            [
                "*_ test_assertion_fails _*",
                "E   *SignalTraceAssertionError: Expected tests.testapp.signals.create_user_profile"
                " to be called with created=False, but its call did not match.",
                "E *Captured signal trace:",
                "E *test_assertion_fails   1 dispatch, 2 receiver calls, * ms in receivers",
                "E *  1. └─ post_save  sender=auth.User pk=* created=True  "
                "(test_e2e.py:* in test_assertion_fails)",
                "E *  2.    ├─ tests.testapp.signals.create_user_profile  * ms",
                "E *  3.    └─ tests.testapp.signals.save_user_profile  * ms",
                "E *Hint: tests.testapp.signals.create_user_profile ran with created=True (line 2);"
                " expected created=False.",
                "test_e2e.py:*: SignalTraceAssertionError",
                "*_ test_plain_assert_fails _*",
                "*assert 1 == 0*",
                "*- signal trace -*",
                "test_plain_assert_fails   1 dispatch, 2 receiver calls, * ms in receivers",
                "└─ post_save  sender=auth.User pk=* created=True  "
                "(test_e2e.py:* in test_plain_assert_fails)",
                "   ├─ tests.testapp.signals.create_user_profile  * ms",
                "   └─ tests.testapp.signals.save_user_profile  * ms",
                # pytest-django runs db tests, then transactional ones, then the others.
                "*_ test_marker_report_off _*",
                "*_ test_marker_fail_on_errors _*",
                "@pytest.mark.signaltrace(fail_on_errors=True): Expected no receiver errors, "
                "but 1 receiver call raised:",
                "  test_e2e.fragile (line 2) raised ValueError: fragile failed "
                "at test_e2e.py:* (swallowed by send_robust)",
                "",
                "Captured signal trace:",
                "test_marker_fail_on_errors   1 dispatch, 1 receiver call, * ms in receivers, "
                "1 error",
            ]
        )
        output = result.stdout.str()
        # One tree per failing test with a trace, never a duplicate section.
        assert output.count("- signal trace -") == 1
        assert output.count("test_marker_report_off   1 dispatch") == 0

    def test_ini_option(self, e2e):
        """signaltrace_report = false turns the section off; the marker turns it back on."""
        e2e.makeini("[pytest]\nsignaltrace_report = false\n")
        e2e.makepyfile(
            test_ini="""
            import pytest


            def test_off(signal_trace):
                assert False


            @pytest.mark.signaltrace(report=True)
            def test_on(signal_trace):
                assert False
            """
        )
        result = run_e2e(e2e)
        result.assert_outcomes(failed=2)
        result.stdout.fnmatch_lines(
            ["*_ test_on _*", "*- signal trace -*", "test_on   0 dispatches, *"]
        )
        assert result.stdout.str().count("- signal trace -") == 1

    def test_without_django_settings(self, e2e):
        """Without configured settings the fixture skips the test."""
        e2e.makepyfile(test_plain="def test_it(signal_trace):\n    pass\n")
        result = e2e.runpytest_subprocess("-p", "no:django", "-p", "no:randomly", "-rs")
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(["SKIPPED *signal_trace needs Django settings*"])

    def test_importing_the_plugin_configures_nothing(self):
        """Importing the plugin leaves Django unconfigured; the module imports no Django."""
        code = (
            "import types\n"
            "import signaltrace.pytest_plugin as plugin\n"
            "from django.conf import settings\n"
            "assert not settings.configured\n"
            "modules = [v.__name__ for v in vars(plugin).values() if isinstance(v, types.ModuleType)]\n"
            "assert not [m for m in modules if m.startswith('django')], modules\n"
        )
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)


# -- the receiver checks at session start (end to end) ------------------------------

CHECKS_SETTINGS = """
from tests.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.unimportedapp"]  # noqa: F405
MIDDLEWARE = []
"""

# The test imports the forgotten module itself, so its receiver runs in the test:
# the test passes while production (where nothing imports it) is broken.
CHECKS_TESTS = """
from django.dispatch import Signal

from tests.unimportedapp import signals


def test_passes_only_because_it_imports_the_module():
    assert signals.count_tally
"""

W001_LINES = [
    "*= warnings summary =*",
    "*SignalTraceCheckWarning: signaltrace.W001: tests.unimportedapp.signals defines "
    "@receiver functions (count_tally) but was never imported, so they are not connected "
    "and never run.",
    "  HINT: Import it in tests.unimportedapp.apps.UnimportedAppConfig.ready(): "
    "`from . import signals  # noqa: F401`.",
]


@pytest.fixture
def unimported(e2e):
    """A pytester dir whose settings install tests.unimportedapp (W001 twice)."""
    e2e.makepyfile(checks_settings=CHECKS_SETTINGS, test_checks=CHECKS_TESTS)
    return e2e


def run_checks(pytester, *args):
    return pytester.runpytest_subprocess(
        "--ds=checks_settings", "-p", "no:randomly", "-p", "no:cacheprovider", *args
    )


class TestSessionChecks:
    def test_warns_before_the_test_imports_the_module(self, unimported):
        """W001 shows in the warnings summary though the test module imports signals.py."""
        result = run_checks(unimported)
        result.assert_outcomes(passed=1, warnings=2)
        result.stdout.fnmatch_lines(W001_LINES)
        result.stdout.fnmatch_lines(
            ["*SignalTraceCheckWarning: signaltrace.W001: tests.unimportedapp.receivers.audit *"]
        )

    def test_ini_option_off(self, unimported):
        unimported.makeini("[pytest]\nsignaltrace_checks = false\n")
        result = run_checks(unimported)
        result.assert_outcomes(passed=1)
        assert "SignalTraceCheckWarning" not in result.stdout.str()

    def test_filtered_like_any_warning(self, unimported):
        unimported.makeini(
            "[pytest]\nfilterwarnings =\n"
            "    ignore::signaltrace.pytest_plugin.SignalTraceCheckWarning\n"
        )
        result = run_checks(unimported)
        result.assert_outcomes(passed=1)
        assert "SignalTraceCheckWarning" not in result.stdout.str()

    def test_as_an_error(self, unimported):
        """Under -W error (or filterwarnings = error), a clean usage error, no traceback."""
        result = run_checks(unimported, "-W", "error")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            [
                "ERROR: signaltrace.W001: tests.unimportedapp.signals defines *",
                "HINT: *",
                "(This SignalTraceCheckWarning is an error under your warning filters: fix it, "
                "filter it, or set the signaltrace_checks ini option to false.)",
            ]
        )
        assert "Traceback" not in result.stderr.str()

    def test_a_clean_project_is_quiet(self, e2e):
        """The test app's own settings have nothing to report (run_e2e uses -W error)."""
        e2e.makepyfile(test_quiet="def test_it():\n    pass\n")
        result = run_e2e(e2e)
        result.assert_outcomes(passed=1)


# -- in process, for coverage of the hooks --------------------------------------------

INPROCESS_TESTS = """
import pytest
from django.dispatch import Signal, receiver as connect

signal = Signal()


@connect(signal)
def receiver(sender, **kwargs):
    if kwargs.get("fail"):
        raise ValueError("receiver failed")


def test_passes(signal_trace):
    signal.send(sender="s")
    signal_trace.assert_called_once(receiver, sender="s")


def test_trace_assertion_fails(signal_trace):
    signal.send(sender="s")
    signal_trace.assert_called(receiver, sender="t")


def test_plain_failure(signal_trace):
    signal.send(sender="s")
    assert False


@pytest.mark.signaltrace(fail_on_errors=True)
def test_fail_on_errors():
    signal.send_robust(sender="s", fail=True)


@pytest.mark.signaltrace(fail_on_errors=True)
def test_fail_on_errors_without_errors(signal_trace):
    signal.send_robust(sender="s")


@pytest.mark.signaltrace(fail_on_errors=True)
def test_fail_on_errors_after_a_failure():
    signal.send_robust(sender="s", fail=True)
    assert False


@pytest.mark.signaltrace(report=False)
def test_report_off(signal_trace):
    assert False


@pytest.mark.xfail(strict=True)
def test_xpass_strict(signal_trace):
    pass


@pytest.fixture
def broken(signal_trace):
    signal.send(sender="setup")
    raise RuntimeError("broken fixture")


def test_setup_error(broken):
    pass


@pytest.mark.signaltrace(all_threads=True, max_events=5)
class TestMarkers:
    def test_class_marker(self, signal_trace):
        assert signal_trace.max_events == 5

    @pytest.mark.signaltrace(max_events=7)
    def test_closest_marker_wins(self, signal_trace):
        assert signal_trace.max_events == 7
        assert signal_trace.label == "test_closest_marker_wins"


@pytest.mark.parametrize(
    "marker",
    [
        pytest.mark.signaltrace(1),
        pytest.mark.signaltrace(bogus=True, other=1),
        pytest.mark.signaltrace(fail_on_errors="yes"),
        pytest.mark.signaltrace(all_threads=None),
        pytest.mark.signaltrace(report="no"),
    ],
)
def test_bad_markers(request, marker):
    request.applymarker(marker)
    request.getfixturevalue("signal_trace")


def doctest_item():
    '''
    >>> 1 + 1
    2
    '''
"""


@pytest.fixture
def inprocess(pytester):
    """Run pytest in this process (Django is set up already; pytest-django is off)."""

    def run(*args):
        return pytester.runpytest_inprocess(
            "-p", "no:django", "-p", "no:randomly", "-p", "no:cacheprovider", *args
        )

    return run


class TestInProcess:
    def test_hooks(self, pytester, inprocess):
        """Report sections, fail_on_errors, marker options and their validation."""
        pytester.makepyfile(test_inner=INPROCESS_TESTS)
        result = inprocess("--doctest-modules", "-W", "ignore::DeprecationWarning")
        result.assert_outcomes(passed=5, failed=11, errors=1)
        out = result.stdout.str()
        result.stdout.fnmatch_lines(
            [
                "*_ test_trace_assertion_fails _*",
                "E   *SignalTraceAssertionError: Expected test_inner.receiver to be called "
                "with sender=t, but its call did not match.",
                "*_ test_plain_failure _*",
                "*- signal trace -*",
                "test_plain_failure   1 dispatch, 1 receiver call, * ms in receivers",
                "└─ signal  sender=s  (test_inner.py:* in test_plain_failure)",
                "   └─ test_inner.receiver  * ms",
                "*_ test_fail_on_errors _*",
                "@pytest.mark.signaltrace(fail_on_errors=True): Expected no receiver errors, "
                "but 1 receiver call raised:",
                "*_ test_fail_on_errors_after_a_failure _*",
                "E       assert False",
                "*_ test_report_off _*",
                "*_ test_xpass_strict _*",
                "*- signal trace -*",
                "test_xpass_strict   0 dispatches, 0 receiver calls, * ms in receivers",
            ]
        )
        for bad in (
            "@pytest.mark.signaltrace() takes keyword arguments only",
            "@pytest.mark.signaltrace() got unknown keyword bogus, other; valid: fail_on_errors,"
            " report, all_threads, max_events",
            "@pytest.mark.signaltrace(fail_on_errors=...) must be a bool",
            "@pytest.mark.signaltrace(all_threads=...) must be a bool",
            "@pytest.mark.signaltrace(report=...) must be a bool or None",
        ):
            assert bad in out
        assert "broken fixture" in out
        # Sections: the plain failures and the strict xpass, nothing else.
        assert out.count("- signal trace -") == 3

    def test_ini_option_in_process(self, pytester, inprocess):
        """The ini option is read per test."""
        pytester.makeini("[pytest]\nsignaltrace_report = false\n")
        pytester.makepyfile(
            test_ini="""
            def test_off(signal_trace):
                assert False
            """
        )
        result = inprocess()
        result.assert_outcomes(failed=1)
        assert "- signal trace -" not in result.stdout.str()

    def test_marker_is_registered(self, pytester, inprocess):
        """--markers lists the marker, so --strict-markers accepts it."""
        result = inprocess("--markers")
        result.stdout.fnmatch_lines(
            ["@pytest.mark.signaltrace(fail_on_errors=False, report=None, all_threads=False, *"]
        )

    def test_skips_without_settings(self, pytester, inprocess, monkeypatch):
        """The fixture skips when Django settings are not configured."""
        from django.conf import LazySettings

        monkeypatch.setattr(LazySettings, "configured", property(lambda self: False))
        pytester.makepyfile(test_skip="def test_it(signal_trace):\n    pass\n")
        result = inprocess("-rs")
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(["SKIPPED *signal_trace needs Django settings*"])


class TestSessionChecksInProcess:
    """The session-start checks in this process (Django is set up; pytest-django is off)."""

    @pytest.fixture
    def with_unimported_app(self, settings, pytester):
        settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "tests.unimportedapp"]
        pytester.makepyfile(test_quiet="def test_it():\n    pass\n")

    def test_warns(self, with_unimported_app, inprocess):
        result = inprocess()
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(W001_LINES)

    def test_as_an_error(self, with_unimported_app, inprocess):
        result = inprocess("-W", "error::signaltrace.pytest_plugin.SignalTraceCheckWarning")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["ERROR: signaltrace.W001: tests.unimportedapp.signals *"])

    def test_ini_option_off(self, with_unimported_app, pytester, inprocess):
        pytester.makeini("[pytest]\nsignaltrace_checks = false\n")
        result = inprocess()
        result.assert_outcomes(passed=1)
        assert "SignalTraceCheckWarning" not in result.stdout.str()

    def test_xdist_workers_leave_it_to_the_controller(
        self, with_unimported_app, pytester, inprocess
    ):
        pytester.makeconftest("def pytest_configure(config):\n    config.workerinput = {}\n")
        result = inprocess()
        result.assert_outcomes(passed=1)
        assert "SignalTraceCheckWarning" not in result.stdout.str()

    def test_without_django_set_up(self, with_unimported_app, inprocess, monkeypatch):
        """Before django.setup() (no pytest-django, say), there is nothing to check."""
        from django.apps import apps

        monkeypatch.setattr(apps, "ready", False)
        result = inprocess()
        result.assert_outcomes(passed=1)
        assert "SignalTraceCheckWarning" not in result.stdout.str()

    def test_a_failing_check_is_a_warning(self, pytester, inprocess, monkeypatch):
        """A bug in the checks never stops the session: it is reported as the warning."""
        from signaltrace import checks

        def boom(*args, **kwargs):
            raise RuntimeError("checks broke")

        monkeypatch.setattr(checks, "check_unimported_signals", boom)
        pytester.makepyfile(test_quiet="def test_it():\n    pass\n")
        result = inprocess()
        result.assert_outcomes(passed=1, warnings=1)
        result.stdout.fnmatch_lines(
            [
                "*SignalTraceCheckWarning: signaltrace could not run its receiver checks "
                "(W001, W002): RuntimeError: checks broke"
            ]
        )
