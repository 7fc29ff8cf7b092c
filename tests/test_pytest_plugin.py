"""The pytest plugin: fixture, marker, report section, ini options, receiver coverage,
snapshots (pytester-based)."""

from __future__ import annotations

import json
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


# -- receiver coverage, end to end ---------------------------------------------------

SHOP_SETTINGS = """
from tests.settings import *  # noqa: F403

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "signaltrace",
    "shop",
]
MIDDLEWARE = []
ROOT_URLCONF = "shop.urls"
"""

SHOP_APPS = """
from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"

    def ready(self):
        from . import signals  # noqa: F401
"""

# SHOP_VERSION=2 changes the flow: welcome() then pays an order (for the snapshots).
SHOP_SIGNALS = """
import os

import blinker
from django.contrib.auth.models import User
from django.db.models.signals import post_save, pre_delete
from django.dispatch import Signal, receiver

order_paid = Signal()
exported = blinker.signal("shop.exported")


@receiver(post_save, sender=User)
def welcome(sender, instance, created, **kwargs):
    if created and os.environ.get("SHOP_VERSION") == "2":
        order_paid.send_robust(sender="welcome", user=instance)


@receiver(pre_delete, sender=User)
def never_runs(sender, instance, **kwargs):
    pass


@receiver(order_paid)
def ship(sender, **kwargs):
    if sender == "welcome":
        raise LookupError("no address yet")


@exported.connect
def log_export(sender, **kwargs):
    pass
"""

SHOP_TESTS = """
from django.contrib.auth.models import User

from shop.signals import exported, order_paid


def test_create(db):
    User.objects.create(username="ann")


def test_create_again(db):
    User.objects.create(username="bob")


def test_ship():
    order_paid.send(sender="shop", order_id=1)
    order_paid.send(sender="shop", order_id=2)


def test_export():
    exported.send("shop")


def test_plain():
    pass
"""


@pytest.fixture
def shop(e2e, monkeypatch):
    """A project with four receivers, one of which no test runs."""
    path = os.pathsep.join([str(ROOT), str(e2e.path), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path)  # for pytest-xdist's workers too
    monkeypatch.delenv("SHOP_VERSION", raising=False)
    monkeypatch.delenv("SIGNALTRACE_UPDATE_SNAPSHOTS", raising=False)
    e2e.makepyfile(
        shop_settings=SHOP_SETTINGS,
        **{
            "shop/__init__": "",
            "shop/apps": SHOP_APPS,
            "shop/signals": SHOP_SIGNALS,
            "shop/urls": "urlpatterns = []",
        },
    )
    return e2e


def run_shop(pytester, *args):
    return pytester.runpytest_subprocess(
        "--ds=shop_settings", "-p", "no:randomly", "-p", "no:cacheprovider", "-W", "error", *args
    )


#: What every run of SHOP_TESTS covers, whatever the workers.
SHOP_COVERAGE = {
    "schema": "signaltrace.coverage/1",
    "receivers": [
        {
            "receiver": "shop.signals.never_runs",
            "location": "shop/signals.py:18",
            "signals": ["pre_delete"],
            "connections": [{"signal": "pre_delete", "sender": "auth.User"}],
            "tests": 0,
            "calls": 0,
        },
        {
            "receiver": "shop.signals.welcome",
            "location": "shop/signals.py:12",
            "signals": ["post_save"],
            "connections": [{"signal": "post_save", "sender": "auth.User"}],
            "tests": 2,
            "calls": 2,
        },
        {
            "receiver": "shop.signals.ship",
            "location": "shop/signals.py:23",
            "signals": ["order_paid"],
            "connections": [{"signal": "order_paid", "sender": None}],
            "tests": 1,
            "calls": 2,
        },
        {
            "receiver": "shop.signals.log_export",
            "location": "shop/signals.py:29",
            "signals": ["shop.exported"],
            "connections": [{"signal": "shop.exported", "sender": None}],
            "tests": 1,
            "calls": 1,
        },
    ],
    "summary": {"total": 4, "run": 3, "percent": 75.0},
}


class TestReceiverCoverage:
    def test_report_and_json(self, shop):
        """The section lists the never-run receiver first; the JSON holds the same."""
        shop.makepyfile(test_shop=SHOP_TESTS)
        result = run_shop(shop, "--signaltrace-coverage", "--signaltrace-coverage-json=cov.json")
        result.assert_outcomes(passed=5)
        assert result.ret == 0
        result.stdout.fnmatch_lines(
            [
                "*= signal receiver coverage =*",
                "Receiver                 Location            Connected to                Tests  Calls",
                "shop.signals.never_runs  shop/signals.py:18  pre_delete (auth.User)          0      0",
                "shop.signals.welcome     shop/signals.py:12  post_save (auth.User)           2      2",
                "shop.signals.ship        shop/signals.py:23  order_paid (any sender)         1      2",
                "shop.signals.log_export  shop/signals.py:29  shop.exported (any sender)      1      1",
                "TOTAL: 4 receivers, 3 ran in at least one test, 1 never ran: 75.00%",
                f"Wrote the signal receiver coverage to {shop.path / 'cov.json'}",
            ]
        )
        # Django's own receivers (auth's update_last_login, post_migrate...) do not count.
        assert "django." not in result.stdout.str().split("signal receiver coverage")[1]
        data = json.loads((shop.path / "cov.json").read_text(encoding="utf-8"))
        assert data == SHOP_COVERAGE

    def test_xdist_workers_are_merged(self, shop):
        """Under -n 2 the controller reports what both workers ran, as one process would."""
        shop.makepyfile(test_shop=SHOP_TESTS)
        result = run_shop(
            shop, "-p", "xdist", "-n", "2", "--signaltrace-coverage-json=cov.json", "-v"
        )
        result.assert_outcomes(passed=5)
        output = result.stdout.str()
        assert "[gw0]" in output
        assert "[gw1]" in output  # both workers ran tests
        result.stdout.fnmatch_lines(
            ["TOTAL: 4 receivers, 3 ran in at least one test, 1 never ran: 75.00%"]
        )
        assert json.loads((shop.path / "cov.json").read_text(encoding="utf-8")) == SHOP_COVERAGE

    def test_fail_under(self, shop):
        """Like coverage.py's fail_under: a non-zero exit and a message; tests still pass."""
        shop.makepyfile(test_shop=SHOP_TESTS)
        result = run_shop(shop, "--signaltrace-coverage-fail-under=80")
        result.assert_outcomes(passed=5)
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(
            [
                "FAIL Required signal receiver coverage of 80% not reached. "
                "Total signal receiver coverage: 75.00%"
            ]
        )
        result = run_shop(shop, "--signaltrace-coverage-fail-under=75")
        assert result.ret == 0
        result.stdout.fnmatch_lines(
            [
                "Required signal receiver coverage of 75% reached. "
                "Total signal receiver coverage: 75.00%"
            ]
        )

    def test_fail_under_with_xdist(self, shop):
        shop.makepyfile(test_shop=SHOP_TESTS)
        result = run_shop(shop, "-p", "xdist", "-n", "2", "--signaltrace-coverage-fail-under=90")
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(["FAIL Required signal receiver coverage of 90% not reached.*"])

    def test_ini_options(self, shop):
        """signaltrace_coverage turns it on; signaltrace_coverage_include picks the receivers."""
        shop.makeini(
            "[pytest]\n"
            "signaltrace_coverage = true\n"
            "signaltrace_coverage_include =\n"
            "    shop.signals.ship\n"
            "    django.contrib.auth\n"
            "signaltrace_coverage_fail_under = 10\n"
        )
        shop.makepyfile(test_shop=SHOP_TESTS)
        result = run_shop(shop)
        result.assert_outcomes(passed=5)
        section = result.stdout.str().split("signal receiver coverage =")[1]
        assert "shop.signals.ship" in section
        assert "django.contrib.auth.models.update_last_login" in section  # Django's, included
        assert "shop.signals.welcome" not in section
        assert "shop.signals.never_runs" not in section
        result.stdout.fnmatch_lines(["Required signal receiver coverage of 10% reached.*"])

    def test_off_by_default(self, shop):
        shop.makepyfile(test_shop=SHOP_TESTS)
        result = run_shop(shop)
        result.assert_outcomes(passed=5)
        assert "signal receiver coverage" not in result.stdout.str()

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (
                ["--signaltrace-coverage-fail-under=120"],
                "--signaltrace-coverage-fail-under must be between 0 and 100, got 120",
            ),
            (["--signaltrace-coverage-fail-under=lots"], "invalid float value: 'lots'"),
        ],
    )
    def test_bad_minimum(self, shop, args, message):
        shop.makepyfile(test_shop=SHOP_TESTS)
        result = run_shop(shop, *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert message in result.stderr.str()

    def test_bad_minimum_in_the_ini_file(self, shop):
        shop.makeini("[pytest]\nsignaltrace_coverage_fail_under = most\n")
        shop.makepyfile(test_shop=SHOP_TESTS)
        result = run_shop(shop)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert "signaltrace_coverage_fail_under must be a number, got 'most'" in (
            result.stderr.str()
        )

    def test_without_django(self, pytester):
        """No Django settings: the section says there was nothing to measure."""
        pytester.makepyfile(test_plain="def test_it():\n    pass\n")
        result = pytester.runpytest_subprocess(
            "-p", "no:django", "-p", "no:randomly", "--signaltrace-coverage"
        )
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [
                "*= signal receiver coverage =*",
                "Django was not set up: no signal receivers to measure.",
            ]
        )


# -- snapshots, end to end ------------------------------------------------------------

SNAP_TESTS = """
import signaltrace
from django.contrib.auth.models import User
from signaltrace.testing import assert_matches_snapshot

from shop.signals import order_paid


def test_register(db, signal_trace):
    User.objects.create(username="ann")
    signal_trace.assert_matches_snapshot()


def test_checkout():
    with signaltrace.capture() as trace:
        order_paid.send(sender="shop", order_id=1)
    assert_matches_snapshot(trace, name="paid")
"""

REGISTER_V1 = """\
1 dispatch, 1 receiver call
└─ post_save  sender=auth.User pk=#1 created=True
   └─ shop.signals.welcome
"""

REGISTER_V2 = """\
2 dispatches, 2 receiver calls, 1 error
└─ post_save  sender=auth.User pk=#1 created=True
   └─ shop.signals.welcome
      └─ order_paid  sender=welcome user=auth.User pk=#1 [send_robust]
         └─ shop.signals.ship  ✗ raised LookupError (swallowed by send_robust)
"""


class TestSnapshots:
    def test_create_pass_change_fail_update_pass(self, shop, monkeypatch):
        shop.makepyfile(test_snap=SNAP_TESTS)
        folder = shop.path / "__signal_snapshots__" / "test_snap"
        register = folder / "test_register.txt"

        missing = run_shop(shop)
        missing.assert_outcomes(failed=2)
        missing.stdout.fnmatch_lines(
            [
                "E   *SignalTraceAssertionError: No signal snapshot for "
                "test_snap.py::test_register yet: __signal_snapshots__/test_snap/"
                "test_register.txt does not exist.",
                "E   *",
                "E   *Write it with pytest --signaltrace-update-snapshots (outside pytest: the "
                "environment variable SIGNALTRACE_UPDATE_SNAPSHOTS=1), check that it shows what "
                "should happen, and commit it. This run's tree:",
                "E   *",
                "E   *1 dispatch, 1 receiver call",
                "E   *└─ post_save  sender=auth.User pk=#1 created=True",
                "E   *   └─ shop.signals.welcome",
            ]
        )
        assert not folder.exists()

        written = run_shop(shop, "--signaltrace-update-snapshots")
        written.assert_outcomes(passed=2)
        written.stdout.fnmatch_lines(
            [
                "*= signal snapshots =*",
                "Wrote 2 snapshots:",
                "  __signal_snapshots__/test_snap/test_register.txt",
                "  __signal_snapshots__/test_snap/test_checkout.paid.txt",
            ]
        )
        assert register.read_text(encoding="utf-8") == REGISTER_V1
        assert (folder / "test_checkout.paid.txt").read_text(encoding="utf-8") == (
            "1 dispatch, 1 receiver call\n"
            "└─ order_paid  sender=shop order_id=1\n"
            "   └─ shop.signals.ship\n"
        )

        passing = run_shop(shop)
        passing.assert_outcomes(passed=2)
        assert "signal snapshots" not in passing.stdout.str()

        monkeypatch.setenv("SHOP_VERSION", "2")  # welcome() now pays an order, which fails
        changed = run_shop(shop)
        changed.assert_outcomes(passed=1, failed=1)
        changed.stdout.fnmatch_lines(
            [
                "E   *SignalTraceAssertionError: The signal trace of test_snap.py::test_register "
                "does not match its snapshot __signal_snapshots__/test_snap/test_register.txt "
                "(- snapshot, + this run):",
                "E   *",
                "E   *--- snapshot",
                "E   *+++ this run",
                "E   *@@ -1,3 +1,5 @@",
                "E   *-1 dispatch, 1 receiver call",
                "E   *+2 dispatches, 2 receiver calls, 1 error",
                "E   * └─ post_save  sender=auth.User pk=#1 created=True",
                "E   *    └─ shop.signals.welcome",
                "E   *+      └─ order_paid  sender=welcome user=auth.User pk=#1 [[]send_robust]",
                "E   *+         └─ shop.signals.ship  ✗ raised LookupError (swallowed by "
                "send_robust)",
                "E   *",
                "E   *If the change is intended, rewrite the snapshot with pytest "
                "--signaltrace-update-snapshots *",
            ]
        )
        assert register.read_text(encoding="utf-8") == REGISTER_V1

        updated = run_shop(shop, "--signaltrace-update-snapshots")
        updated.assert_outcomes(passed=2)
        updated.stdout.fnmatch_lines(
            ["Rewrote 1 snapshot:", "  __signal_snapshots__/test_snap/test_register.txt"]
        )
        assert register.read_text(encoding="utf-8") == REGISTER_V2

        run_shop(shop).assert_outcomes(passed=2)
        run_shop(shop, "-p", "xdist", "-n", "2").assert_outcomes(passed=2)

    def test_environment_variable_under_pytest(self, shop, monkeypatch):
        shop.makepyfile(test_snap=SNAP_TESTS)
        monkeypatch.setenv("SIGNALTRACE_UPDATE_SNAPSHOTS", "1")
        result = run_shop(shop)
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines(["Wrote 2 snapshots:"])

    def test_stale_files(self, shop):
        """Files no test used, only for modules whose tests all ran; gone modules' folders."""
        shop.makepyfile(test_snap=SNAP_TESTS)
        run_shop(shop, "--signaltrace-update-snapshots").assert_outcomes(passed=2)
        orphan = shop.path / "__signal_snapshots__" / "test_gone" / "test_old.txt"
        orphan.parent.mkdir()
        orphan.write_text("0 dispatches, 0 receiver calls\n", encoding="utf-8")
        # test_checkout no longer takes its snapshot; a new test fails before taking its own.
        shop.makepyfile(
            test_snap=SNAP_TESTS.replace('assert_matches_snapshot(trace, name="paid")', "pass")
            + "\n\ndef test_broken():\n    assert False\n"
        )
        (shop.path / "__signal_snapshots__" / "test_snap" / "test_broken.txt").write_text(
            "0 dispatches, 0 receiver calls\n", encoding="utf-8"
        )
        stale_lines = [
            "*= signal snapshots =*",
            "2 snapshot files no test used (delete if their tests are gone or no longer take "
            "them):",
            "  __signal_snapshots__/test_snap/test_checkout.paid.txt",
            "  __signal_snapshots__/test_gone/test_old.txt",
        ]
        result = run_shop(shop)
        result.assert_outcomes(passed=2, failed=1)
        result.stdout.fnmatch_lines(stale_lines)
        assert "test_broken.txt" not in result.stdout.str()  # its test failed first

        result = run_shop(shop, "-p", "xdist", "-n", "2")
        result.assert_outcomes(passed=2, failed=1)
        result.stdout.fnmatch_lines(stale_lines)

        # Not every test of test_snap.py ran: only the gone module's folder is reported.
        result = run_shop(shop, "-k", "register")
        result.assert_outcomes(passed=1, deselected=2)
        result.stdout.fnmatch_lines(
            ["1 snapshot file no test used *", "  __signal_snapshots__/test_gone/test_old.txt"]
        )
        assert "test_checkout.paid.txt" not in result.stdout.str()
        result = run_shop(shop, "test_snap.py::test_register")
        assert "test_checkout.paid.txt" not in result.stdout.str()


# -- coverage and snapshots in process (for coverage of the hooks) ----------------------

INNER_COVERAGE = """
import blinker
from django.dispatch import Signal, receiver

paid = Signal()
refunded = Signal()
exported = blinker.Signal()  # not a named one: those outlive the in-process runs


@receiver(paid)
def ship(sender, **kwargs):
    pass


@receiver(refunded)
def never_runs(sender, **kwargs):
    pass


@exported.connect
def log_export(sender, **kwargs):
    pass


def test_paid():
    paid.send(sender="shop")


def test_export():
    exported.send("x")


def test_plain():
    pass
"""


class TestCoverageInProcess:
    @pytest.fixture
    def inner(self, pytester):
        pytester.makeini("[pytest]\nsignaltrace_coverage_include = inner_cov\n")
        pytester.makepyfile(inner_cov=INNER_COVERAGE)
        return pytester

    def test_report_json_and_minimum(self, inner, inprocess):
        result = inprocess(
            "inner_cov.py",
            "--signaltrace-coverage-json=out/cov.json",
            "--signaltrace-coverage-fail-under=70",
        )
        result.assert_outcomes(passed=3)
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(
            [
                "*= signal receiver coverage =*",
                "Receiver  *",
                "inner_cov.never_runs  *inner_cov.py:*  refunded (any sender)  *0      0",
                "inner_cov.ship  *inner_cov.py:*  paid (any sender)  *1      1",
                "inner_cov.log_export  *inner_cov.py:*  exported (any sender)  *1      1",
                "TOTAL: 3 receivers, 2 ran in at least one test, 1 never ran: 66.67%",
                "Wrote the signal receiver coverage to *cov.json",
                "FAIL Required signal receiver coverage of 70% not reached. "
                "Total signal receiver coverage: 66.67%",
            ]
        )
        data = json.loads((inner.path / "out" / "cov.json").read_text(encoding="utf-8"))
        assert data["summary"] == {"total": 3, "run": 2, "percent": 66.67}

    def test_ini_minimum_reached(self, inner, inprocess):
        inner.makeini(
            "[pytest]\nsignaltrace_coverage_include = inner_cov\n"
            "signaltrace_coverage_fail_under = 60\n"
        )
        result = inprocess("inner_cov.py")
        assert result.ret == 0
        result.stdout.fnmatch_lines(["Required signal receiver coverage of 60% reached.*"])

    @pytest.mark.parametrize(
        ("ini", "message"),
        [
            ("signaltrace_coverage_fail_under = most", "must be a number, got 'most'"),
            ("signaltrace_coverage_fail_under = -1", "must be between 0 and 100, got -1"),
        ],
    )
    def test_bad_minimum(self, inner, inprocess, ini, message):
        inner.makeini(f"[pytest]\n{ini}\n")
        result = inprocess("inner_cov.py")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert message in result.stderr.str()

    def test_failures_never_break_the_run(self, inner, inprocess, monkeypatch):
        """A bug in the coverage is reported under the section; the tests run as usual."""
        from signaltrace import capturing
        from signaltrace.testing import receiver_coverage

        def broken(*args, **kwargs):
            raise RuntimeError("coverage broke")

        monkeypatch.setattr(receiver_coverage.CoverageData, "take_connected", broken)
        monkeypatch.setattr(capturing.capture, "__enter__", broken)
        result = inprocess("inner_cov.py", "--signaltrace-coverage")
        result.assert_outcomes(passed=3)
        result.stdout.fnmatch_lines(
            [
                "TOTAL: 0 receivers, 0 ran in at least one test, 0 never ran: 100.00%",
                "(signaltrace could not measure every test: RuntimeError: coverage broke)",
            ]
        )

    def test_a_failing_record_is_reported(self, inner, inprocess, monkeypatch):
        from signaltrace.testing import receiver_coverage

        def broken(self, trace):
            raise ValueError("record broke")

        monkeypatch.setattr(receiver_coverage.CoverageData, "record", broken)
        result = inprocess("inner_cov.py", "--signaltrace-coverage")
        result.assert_outcomes(passed=3)
        result.stdout.fnmatch_lines(
            ["(signaltrace could not measure every test: ValueError: record broke)"]
        )

    def test_without_django_set_up(self, inner, inprocess, monkeypatch):
        from django.apps import apps

        monkeypatch.setattr(apps, "ready", False)
        result = inprocess("inner_cov.py", "--signaltrace-coverage")
        result.assert_outcomes(passed=3)
        result.stdout.fnmatch_lines(["Django was not set up: no signal receivers to measure."])


INNER_SNAPSHOTS = """
import pytest
from django.dispatch import Signal, receiver

import signaltrace
from signaltrace.testing import assert_matches_snapshot

paid = Signal()


@receiver(paid)
def ship(sender, **kwargs):
    pass


def test_fixture(signal_trace):
    paid.send(sender="fixture")
    signal_trace.assert_matches_snapshot()


def test_named():
    with signaltrace.capture() as trace:
        paid.send(sender="named")
    assert_matches_snapshot(trace, name="paid")


@pytest.mark.skip(reason="not today")
def test_skipped(signal_trace):
    signal_trace.assert_matches_snapshot()


class TestGroup:
    def test_in_class(self, signal_trace):
        paid.send(sender="class")
        signal_trace.assert_matches_snapshot()
"""

#: A parametrisation error in a class: test_partial.py is collected only in part.
INNER_PARTIAL = """
import pytest


class TestBad:
    @pytest.mark.parametrize("x", 5)
    def test_bad(self, x):
        pass


def test_good():
    pass
"""


class TestSnapshotsInProcess:
    @pytest.fixture
    def inner(self, pytester):
        pytester.makepyfile(inner_snap=INNER_SNAPSHOTS)
        return pytester

    def folder(self, pytester):
        return pytester.path / "__signal_snapshots__" / "inner_snap"

    def test_write_pass_and_stale(self, inner, inprocess):
        result = inprocess("inner_snap.py")
        result.assert_outcomes(failed=3, skipped=1)
        assert "No signal snapshot for inner_snap.py::TestGroup::test_in_class yet" in (
            result.stdout.str()
        )
        result = inprocess("inner_snap.py", "--signaltrace-update-snapshots")
        result.assert_outcomes(passed=3, skipped=1)
        result.stdout.fnmatch_lines(["Wrote 3 snapshots:"])
        names = sorted(p.name for p in self.folder(inner).iterdir())
        assert names == ["TestGroup.test_in_class.txt", "test_fixture.txt", "test_named.paid.txt"]

        # Files nobody takes: an old test's, and the skipped test's (not reported);
        # the folder of a module that is gone.
        for name in ("test_gone.txt", "test_skipped.txt", "test_named.other.txt"):
            (self.folder(inner) / name).write_text("x\n", encoding="utf-8")
        gone = inner.path / "__signal_snapshots__" / "old_module"
        gone.mkdir()
        (gone / "test_it.txt").write_text("x\n", encoding="utf-8")
        result = inprocess("inner_snap.py")
        result.assert_outcomes(passed=3, skipped=1)
        result.stdout.fnmatch_lines(
            [
                "*= signal snapshots =*",
                "3 snapshot files no test used *",
                "  __signal_snapshots__/inner_snap/test_gone.txt",
                "  __signal_snapshots__/inner_snap/test_named.other.txt",
                "  __signal_snapshots__/old_module/test_it.txt",
            ]
        )
        assert "test_skipped.txt" not in result.stdout.str()

        for args in (["inner_snap.py", "-k", "named"], ["inner_snap.py::test_named"]):
            result = inprocess(*args)
            result.assert_outcomes(passed=1)
            result.stdout.fnmatch_lines(
                ["1 snapshot file no test used *", "  __signal_snapshots__/old_module/test_it.txt"]
            )  # and not inner_snap's, which did not all run

    def test_partly_collected_modules_are_left_alone(self, inner, inprocess):
        inner.makepyfile(test_partial=INNER_PARTIAL)
        folder = inner.path / "__signal_snapshots__" / "test_partial"
        folder.mkdir(parents=True)
        (folder / "TestBad.test_bad.txt").write_text("x\n", encoding="utf-8")
        result = inprocess("test_partial.py", "--continue-on-collection-errors")
        result.assert_outcomes(passed=1, errors=1)
        assert "signal snapshots" not in result.stdout.str()

    def test_an_unreadable_folder_is_no_report(self, inner, inprocess, monkeypatch):
        from signaltrace import pytest_plugin

        def unreadable(data):
            raise PermissionError("no access")

        inprocess("inner_snap.py", "--signaltrace-update-snapshots")
        (self.folder(inner) / "test_gone.txt").write_text("x\n", encoding="utf-8")
        monkeypatch.setattr(pytest_plugin, "_stale_snapshots", unreadable)
        result = inprocess("inner_snap.py")
        result.assert_outcomes(passed=3, skipped=1)
        assert "signal snapshots" not in result.stdout.str()

    def test_a_failed_configuration_leaves_the_state_alone(self, pytester, inprocess):
        """Another plugin fails in pytest_configure before this one's ran."""
        from signaltrace._testrun import STATE

        before = (STATE.current, STATE.used)
        pytester.makeconftest(
            "import pytest\n\n\n@pytest.hookimpl(tryfirst=True)\n"
            "def pytest_configure(config):\n    raise pytest.UsageError('no config')\n"
        )
        result = inprocess()
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert (STATE.current, STATE.used) == before

    def test_state_is_restored_after_the_session(self, inner, inprocess):
        """The outer session's running test is back once an inner session ends."""
        from signaltrace._testrun import STATE

        before = STATE.current
        inprocess("inner_snap.py", "--signaltrace-update-snapshots")
        assert STATE.current == before
        assert before is not None
        assert before.name.endswith("test_state_is_restored_after_the_session")
        assert STATE.update is False


FAKE_WORKER = """
import pytest


def pytest_configure(config):
    config.workerinput = {"workerid": "gw0"}
    config.workeroutput = {}


def pytest_unconfigure(config):
    with open("workeroutput.txt", "w", encoding="utf-8") as out:
        out.write(config.workeroutput.get("signaltrace", ""))
"""

FAKE_CONTROLLER = """
import pathlib

import pytest

import signaltrace.pytest_plugin as plugin


class Node:
    def __init__(self, config, output):
        self.config = config
        self.workeroutput = {"signaltrace": output} if output else {}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    output = pathlib.Path("workeroutput.txt").read_text(encoding="utf-8")
    for text in (output, output, ""):  # two workers, and one that sent nothing
        plugin.pytest_testnodedown(Node(session.config, text), None)
"""


class TestXdistInProcess:
    """A worker's output (a fake worker, in process), then a controller merging two."""

    def test_worker_then_controller(self, pytester, inprocess):
        pytester.makeini("[pytest]\nsignaltrace_coverage_include = inner_cov\n")
        pytester.makepyfile(inner_cov=INNER_COVERAGE, inner_snap=INNER_SNAPSHOTS)
        pytester.makeconftest(FAKE_WORKER)
        files = ("inner_cov.py", "inner_snap.py")
        worker = inprocess(*files, "--signaltrace-coverage", "--signaltrace-update-snapshots")
        worker.assert_outcomes(passed=6, skipped=1)
        output = worker.stdout.str()
        assert "signal receiver coverage" not in output  # the controller reports
        assert "signal snapshots" not in output
        data = json.loads((pytester.path / "workeroutput.txt").read_text(encoding="utf-8"))
        assert sorted(data) == ["coverage", "snapshots"]
        assert data["coverage"]["tests"] == 7
        assert len(data["snapshots"]["written"]) == 3

        pytester.makeconftest(FAKE_CONTROLLER)
        (pytester.path / "__signal_snapshots__" / "inner_snap" / "test_gone.txt").write_text(
            "x\n", encoding="utf-8"
        )
        controller = inprocess(*files, "--signaltrace-coverage", "-k", "nothing_here")
        assert controller.ret == pytest.ExitCode.NO_TESTS_COLLECTED
        controller.stdout.fnmatch_lines(
            [
                "*= signal snapshots =*",
                "Wrote 6 snapshots:",  # both workers' (the same files, here)
                "*",
                "*",
                "*",
                "*",
                "*",
                "*",
                "1 snapshot file no test used *",
                "  __signal_snapshots__/inner_snap/test_gone.txt",
                "*= signal receiver coverage =*",
                "*",
                "inner_cov.never_runs  *0      0",
                "inner_cov.ship  *2      2",  # one test in each worker
                "inner_cov.log_export  *2      2",
                "TOTAL: 3 receivers, 2 ran in at least one test, 1 never ran: 66.67%",
            ]
        )
        # A controller without the coverage takes the snapshots only.
        plain = inprocess(*files, "-k", "nothing_here")
        plain.stdout.fnmatch_lines(["1 snapshot file no test used *"])
        assert "signal receiver coverage" not in plain.stdout.str()

    def test_a_worker_without_django(self, pytester, inprocess, monkeypatch):
        from django.apps import apps

        pytester.makepyfile(inner_cov=INNER_COVERAGE)
        pytester.makeconftest(FAKE_WORKER)
        monkeypatch.setattr(apps, "ready", False)
        inprocess("inner_cov.py", "--signaltrace-coverage").assert_outcomes(passed=3)
        data = json.loads((pytester.path / "workeroutput.txt").read_text(encoding="utf-8"))
        assert data["coverage"] is None
        monkeypatch.undo()
        pytester.makeconftest(FAKE_CONTROLLER)
        controller = inprocess("inner_cov.py", "--signaltrace-coverage", "-k", "nothing_here")
        controller.stdout.fnmatch_lines(["*= signal receiver coverage =*", "Receiver  *"])
