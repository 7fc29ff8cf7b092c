"""Settings: defaults, validation errors, system checks, AppConfig.ready()."""

from __future__ import annotations

import functools
import math
import sys
import types

import blinker
import pytest
from django.apps import apps
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.dispatch import Signal
from django.test import override_settings

import signaltrace
from signaltrace import conf
from signaltrace.checks import check_settings

#: Targets of dotted paths in the settings below.
custom_signal = Signal()
blinker_signal = blinker.Signal()
NOT_CALLABLE = 42


def no_arguments():
    return True


def one_argument(request):
    return True


def two_arguments(request, extra):
    return True


def keyword_only(request, *, flag):
    return True


def any_arguments(*args, **kwargs):
    return True


class CallableObject:
    def __call__(self, request):
        return True


class RequestCheck:
    def __init__(self, request):
        self.request = request

    def __bool__(self):
        return True


class Hostile:
    """A value whose repr() raises."""

    def __repr__(self):
        raise RuntimeError("no repr for you")

    def __str__(self):
        raise RuntimeError("no str either")


def check_ids():
    return [error.id for error in check_settings()]


def errors_for(value):
    """config_errors() of the SIGNALTRACE dict ``value``, read through the settings."""
    with override_settings(SIGNALTRACE=value):
        return conf.config_errors(conf.user_settings())


@pytest.fixture
def broken_module(monkeypatch):
    """A module ``signaltrace_test_broken`` whose attributes raise RuntimeError."""
    module = types.ModuleType("signaltrace_test_broken")

    def module_getattr(name):
        raise RuntimeError(f"{name} broke on import")

    module.__getattr__ = module_getattr
    monkeypatch.setitem(sys.modules, "signaltrace_test_broken", module)
    return module


class TestConfig:
    def test_defaults(self, settings):
        """Without SIGNALTRACE, defaults apply and ENABLED follows DEBUG."""
        del settings.SIGNALTRACE
        settings.DEBUG = False
        config = conf.get_config()
        assert config["ENABLED"] is False
        assert config["MAX_EVENTS"] == 10_000
        settings.DEBUG = True
        assert conf.get_config()["ENABLED"] is True

    def test_user_values_override(self, settings):
        settings.SIGNALTRACE = {"MAX_EVENTS": 5, "ENABLED": False}
        config = conf.get_config()
        assert config["MAX_EVENTS"] == 5
        assert config["ENABLED"] is False
        assert config["RECORD_EMPTY"] is False


class TestChecks:
    def test_valid_settings_pass(self, settings):
        settings.SIGNALTRACE = {
            "ENABLED": True,
            "IGNORE_SIGNALS": ["django.db.models.signals.pre_init"],
        }
        assert check_ids() == []

    def test_unknown_key_names_closest(self, settings):
        """An unknown key is E001 with a hint naming the closest valid key."""
        settings.SIGNALTRACE = {"MAX_EVENT": 5}
        (error,) = check_settings()
        assert error.id == "signaltrace.E001"
        assert error.msg == "SIGNALTRACE['MAX_EVENT'] is not a known setting."
        assert error.hint == "Did you mean 'MAX_EVENTS'?"

    def test_unknown_key_without_close_match(self, settings):
        settings.SIGNALTRACE = {"ZZZ": 1}
        (error,) = check_settings()
        assert error.hint.startswith("Valid keys: ENABLED, ")

    @pytest.mark.parametrize(
        ("key", "value", "message"),
        [
            ("ENABLED", "yes", "SIGNALTRACE['ENABLED'] must be a bool, got str: 'yes'."),
            ("MAX_EVENTS", 0, "SIGNALTRACE['MAX_EVENTS'] must be a positive int, got int: 0."),
            (
                "MAX_EVENTS",
                True,
                "SIGNALTRACE['MAX_EVENTS'] must be a positive int, got bool: True.",
            ),
            (
                "MAX_EVENTS",
                "10",
                "SIGNALTRACE['MAX_EVENTS'] must be a positive int, got str: '10'.",
            ),
            (
                "IGNORE_SIGNALS",
                "django.db.models.signals.pre_init",
                "SIGNALTRACE['IGNORE_SIGNALS'] must be a list of dotted paths to signals, "
                "got str: 'django.db.models.signals.pre_init'.",
            ),
            (
                "REDACT",
                ["ok", 3],
                "SIGNALTRACE['REDACT'] must be a list of strings (case-insensitive "
                "substrings), got list: ['ok', 3].",
            ),
        ],
    )
    def test_wrong_types(self, settings, key, value, message):
        """A wrong type is E002, naming the key and the expected type."""
        settings.SIGNALTRACE = {key: value}
        (error,) = check_settings()
        assert error.id == "signaltrace.E002"
        assert error.msg == message

    def test_not_a_dict(self, settings):
        settings.SIGNALTRACE = ["ENABLED"]
        assert check_ids() == ["signaltrace.E003"]

    def test_ignore_signal_that_does_not_import(self, settings):
        settings.SIGNALTRACE = {"IGNORE_SIGNALS": ["nope.signals.missing"]}
        (error,) = check_settings()
        assert error.id == "signaltrace.E004"
        assert "'nope.signals.missing' does not import" in error.msg

    def test_check_command_reports(self, settings):
        """manage.py check fails on a bad SIGNALTRACE."""
        from django.core.management.base import SystemCheckError

        settings.SIGNALTRACE = {"MAX_EVENTS": -1}
        with pytest.raises(SystemCheckError, match=r"signaltrace\.E002"):
            call_command("check")

    def test_install_refuses_bad_settings(self, settings):
        """install() raises ImproperlyConfigured naming the key."""
        settings.SIGNALTRACE = {"ENABLED": "yes"}
        with pytest.raises(ImproperlyConfigured, match=r"SIGNALTRACE\['ENABLED'\] must be a bool"):
            signaltrace.install()
        settings.SIGNALTRACE = {"TYPO": 1}
        with pytest.raises(ImproperlyConfigured, match=r"Did you mean|Valid keys"):
            signaltrace.install()

    def test_bad_ignore_signal_is_logged_not_raised(self, settings, caplog):
        """At capture time an unimportable IGNORE_SIGNALS entry is logged once."""
        from signaltrace import context

        context._logged.discard("IGNORE_SIGNALS nope.missing")
        settings.SIGNALTRACE = {"IGNORE_SIGNALS": ["nope.missing"]}
        with signaltrace.capture() as trace:
            pass
        assert trace.options.ignored == frozenset()
        assert "IGNORE_SIGNALS nope.missing" in caplog.text


class TestShowCallback:
    """SHOW_CALLBACK must name something callable with the request (issue: settings mistakes)."""

    @pytest.mark.parametrize(
        "value",
        [
            "signaltrace.middleware.show_trace",
            "tests.test_conf.one_argument",
            "tests.test_conf.any_arguments",
            "tests.test_conf.RequestCheck",  # a class: RequestCheck(request) is the answer
            one_argument,
            lambda request: True,
            CallableObject(),
            functools.partial(two_arguments, extra=1),
            bool,  # no signature (a builtin): accepted
            "builtins.bool",
        ],
    )
    def test_accepted(self, value):
        assert errors_for({"SHOW_CALLBACK": value}) == []

    def test_dotted_path_to_a_non_callable(self):
        (error,) = errors_for({"SHOW_CALLBACK": "os.sep"})
        key, message, hint = error
        assert key == "SHOW_CALLBACK"
        assert message == (
            "SIGNALTRACE['SHOW_CALLBACK'] must be a dotted path to a callable, or a "
            "callable, got str: 'os.sep'."
        )
        assert hint.startswith("'os.sep' names str: ")
        assert "which is not callable" in hint

    def test_dotted_path_to_a_number(self):
        ((_key, _message, hint),) = errors_for({"SHOW_CALLBACK": "tests.test_conf.NOT_CALLABLE"})
        assert hint.startswith("'tests.test_conf.NOT_CALLABLE' names int: 42, which is not")

    @pytest.mark.parametrize(
        ("value", "signature"),
        [
            (lambda: True, "()"),
            (no_arguments, "()"),
            (two_arguments, "(request, extra)"),
            (keyword_only, "(request, *, flag)"),
            (CallableObject, "()"),  # CallableObject(request) fails: its __init__ takes none
        ],
    )
    def test_callable_that_cannot_take_the_request(self, value, signature):
        ((key, message, hint),) = errors_for({"SHOW_CALLBACK": value})
        assert key == "SHOW_CALLBACK"
        assert message.startswith(
            "SIGNALTRACE['SHOW_CALLBACK'] must be a dotted path to a callable, or a "
            f"callable, got {type(value).__name__}: {value!r}"
        )
        assert hint.startswith(
            "It cannot be called with one positional argument (the request): "
            f"its signature is {signature}."
        )

    def test_dotted_path_to_a_callable_that_cannot_take_the_request(self):
        ((_key, message, hint),) = errors_for({"SHOW_CALLBACK": "tests.test_conf.no_arguments"})
        assert message.endswith("got str: 'tests.test_conf.no_arguments'.")
        assert hint.startswith(
            "'tests.test_conf.no_arguments' names a callable that cannot be called with "
            "one positional argument (the request): its signature is ()."
        )

    def test_import_error_is_left_to_e100(self):
        """A path that does not import is check signaltrace.E100, not a config error."""
        assert errors_for({"SHOW_CALLBACK": "nope.show"}) == []
        with override_settings(SIGNALTRACE={"SHOW_CALLBACK": "nope.show"}):
            (error,) = [e for e in run_checks() if e.id.startswith("signaltrace.E")]
            assert error.id == "signaltrace.E100"
            assert "'nope.show' does not import" in error.msg

    def test_other_import_failure_is_reported(self, broken_module):
        ((key, message, hint),) = errors_for({"SHOW_CALLBACK": "signaltrace_test_broken.show"})
        assert key == "SHOW_CALLBACK"
        assert message == (
            "SIGNALTRACE['SHOW_CALLBACK'] 'signaltrace_test_broken.show' does not import: "
            "RuntimeError: show broke on import"
        )
        assert "signaltrace.middleware.show_trace" in hint

    def test_system_check(self):
        with override_settings(SIGNALTRACE={"SHOW_CALLBACK": "os.sep"}):
            (error,) = [e for e in run_checks() if e.id.startswith("signaltrace.E")]
            assert error.id == "signaltrace.E002"
            assert "SIGNALTRACE['SHOW_CALLBACK']" in error.msg
            assert "which is not callable" in error.hint
            with pytest.raises(SystemCheckError, match=r"SHOW_CALLBACK.*os\.sep"):
                call_command("check")

    def test_install_refuses(self):
        with (
            override_settings(SIGNALTRACE={"SHOW_CALLBACK": lambda: True}),
            pytest.raises(ImproperlyConfigured, match=r"SIGNALTRACE\['SHOW_CALLBACK'\]"),
        ):
            conf.validated_config()


class TestIgnoreSignals:
    @pytest.mark.parametrize(
        "path",
        [
            "django.db.models.signals.pre_init",
            "django.core.signals.request_started",
            "tests.test_conf.custom_signal",
            "tests.test_conf.blinker_signal",
        ],
    )
    def test_signals_accepted(self, path):
        assert errors_for({"IGNORE_SIGNALS": [path]}) == []

    def test_entry_that_is_not_a_signal(self):
        ((key, message, hint),) = errors_for({"IGNORE_SIGNALS": ["os.path"]})
        assert key == "IGNORE_SIGNALS"
        assert message.startswith(
            "SIGNALTRACE['IGNORE_SIGNALS'] entry 'os.path' must be a django.dispatch.Signal "
            "or blinker.Signal, got module: <module 'posixpath'"
        )
        assert hint == (
            "Give the dotted path of a signal, such as 'django.db.models.signals.pre_init'."
        )

    def test_one_error_per_bad_entry(self):
        errors = errors_for(
            {
                "IGNORE_SIGNALS": [
                    "os.path",
                    "django.db.models.signals.pre_init",
                    "tests.test_conf.one_argument",
                    "django.db.models.signals.ModelSignal",  # the class, not an instance
                ]
            }
        )
        assert [message.split(" must be ")[0] for _key, message, _hint in errors] == [
            "SIGNALTRACE['IGNORE_SIGNALS'] entry 'os.path'",
            "SIGNALTRACE['IGNORE_SIGNALS'] entry 'tests.test_conf.one_argument'",
            "SIGNALTRACE['IGNORE_SIGNALS'] entry 'django.db.models.signals.ModelSignal'",
        ]
        assert "got type: <class 'django.db.models.signals.ModelSignal'>." in errors[2][1]

    def test_import_error_is_left_to_e004(self):
        """An entry that does not import stays check E004 and is skipped at run time."""
        settings = {"IGNORE_SIGNALS": ["nope.signals.missing"]}
        assert errors_for(settings) == []
        with override_settings(SIGNALTRACE=settings):
            (error,) = check_settings()
            assert error.id == "signaltrace.E004"
            assert "SIGNALTRACE['IGNORE_SIGNALS'] entry 'nope.signals.missing' does not import" in (
                error.msg
            )
            conf.validated_config()

    def test_other_import_failure_is_reported(self, broken_module):
        ((key, message, _hint),) = errors_for({"IGNORE_SIGNALS": ["signaltrace_test_broken.sig"]})
        assert key == "IGNORE_SIGNALS"
        assert message == (
            "SIGNALTRACE['IGNORE_SIGNALS'] entry 'signaltrace_test_broken.sig' does not "
            "import: RuntimeError: sig broke on import"
        )

    def test_system_check(self):
        with override_settings(SIGNALTRACE={"IGNORE_SIGNALS": ["os.path"]}):
            (error,) = check_settings()
            assert error.id == "signaltrace.E002"
            assert "entry 'os.path'" in error.msg
            with pytest.raises(SystemCheckError, match=r"IGNORE_SIGNALS'\] entry 'os\.path'"):
                call_command("check")
            with pytest.raises(ImproperlyConfigured, match=r"entry 'os\.path'"):
                signaltrace.install()


class TestNumbers:
    @pytest.mark.parametrize(
        ("key", "value", "description"),
        [
            ("SLOW_MS", math.nan, "a number >= 0 (milliseconds)"),
            ("SLOW_MS", math.inf, "a number >= 0 (milliseconds)"),
            ("SLOW_MS", -math.inf, "a number >= 0 (milliseconds)"),
            ("SAMPLE_RATE", math.nan, "a number from 0 to 1"),
            ("SAMPLE_RATE", math.inf, "a number from 0 to 1"),
            ("SAMPLE_RATE", -math.inf, "a number from 0 to 1"),
        ],
    )
    def test_not_finite(self, key, value, description):
        assert errors_for({key: value}) == [
            (key, f"SIGNALTRACE[{key!r}] must be {description}, got float: {value!r}.", None)
        ]
        with override_settings(SIGNALTRACE={key: value}):
            assert check_ids() == ["signaltrace.E002"]
            with pytest.raises(SystemCheckError, match=rf"{key}.*got float: -?(nan|inf)"):
                call_command("check")

    @pytest.mark.parametrize("value", [0, 2.5, 10**400])
    def test_slow_ms_accepted(self, value):
        """Large ints are finite (and no OverflowError converting them to float)."""
        assert errors_for({"SLOW_MS": value}) == []


class TestUnknownKeys:
    @pytest.mark.parametrize(
        ("key", "hint"),
        [
            ("enabled", "Did you mean 'ENABLED'?"),
            ("Slow_Ms", "Did you mean 'SLOW_MS'?"),
            ("show_callback", "Did you mean 'SHOW_CALLBACK'?"),
            ("max_event", "Did you mean 'MAX_EVENTS'?"),  # case-insensitive, then difflib
            ("MAX_EVENT", "Did you mean 'MAX_EVENTS'?"),
        ],
    )
    def test_hint(self, key, hint):
        assert errors_for({key: 1}) == [
            (key, f"SIGNALTRACE[{key!r}] is not a known setting.", hint)
        ]

    def test_system_check(self):
        with override_settings(SIGNALTRACE={"enabled": True}):
            (error,) = check_settings()
            assert error.id == "signaltrace.E001"
            assert error.hint == "Did you mean 'ENABLED'?"

    def test_non_string_key(self):
        ((key, message, hint),) = errors_for({1: True})
        assert key == "1"
        assert message == "SIGNALTRACE[1] is not a known setting."
        assert hint.startswith("Valid keys: ")


class TestHostileValues:
    def test_repr_that_raises(self):
        ((_key, message, _hint),) = errors_for({"ENABLED": Hostile()})
        assert message == "SIGNALTRACE['ENABLED'] must be a bool, got Hostile: <Hostile object>."

    def test_key_whose_repr_raises(self):
        ((key, message, _hint),) = errors_for({Hostile(): 1})
        assert key == "<Hostile object>"
        assert message == "SIGNALTRACE[<Hostile object>] is not a known setting."

    def test_huge_value_is_cut(self):
        ((_key, message, _hint),) = errors_for({"REDACT": ["x" * 10_000, 3]})
        prefix = "SIGNALTRACE['REDACT'] must be a list of strings (case-insensitive substrings), "
        assert message.startswith(prefix + "got list: ['xxx")
        quoted = message[len(prefix + "got list: ") : -1]
        assert len(quoted) == 200
        assert quoted.endswith("...")


class TestValidatedConfig:
    def test_valid(self):
        with override_settings(SIGNALTRACE={"ENABLED": True, "SLOW_MS": 10}):
            assert conf.validated_config()["SLOW_MS"] == 10

    def test_one_error_keeps_its_format(self):
        with (
            override_settings(SIGNALTRACE={"MAX_EVENT": 5}),
            pytest.raises(ImproperlyConfigured) as excinfo,
        ):
            conf.validated_config()
        assert str(excinfo.value) == (
            "SIGNALTRACE['MAX_EVENT'] is not a known setting. Did you mean 'MAX_EVENTS'?"
        )

    def test_lists_every_error_with_its_hint(self):
        user = {
            "enabled": True,
            "SLOW_MS": math.nan,
            "SHOW_CALLBACK": "os.sep",
            "IGNORE_SIGNALS": ["os.path"],
            "MAX_EVENTS": 0,
        }
        with override_settings(SIGNALTRACE=user), pytest.raises(ImproperlyConfigured) as excinfo:
            conf.validated_config()
        lines = str(excinfo.value).split("\n")
        assert len(lines) == 5
        assert lines[0] == "SIGNALTRACE['enabled'] is not a known setting. Did you mean 'ENABLED'?"
        assert lines[1] == (
            "SIGNALTRACE['SLOW_MS'] must be a number >= 0 (milliseconds), got float: nan."
        )
        assert lines[2].startswith("SIGNALTRACE['SHOW_CALLBACK'] must be a dotted path")
        assert "'os.sep' names str: " in lines[2]
        assert lines[3].startswith("SIGNALTRACE['IGNORE_SIGNALS'] entry 'os.path' must be")
        assert lines[3].endswith(
            "Give the dotted path of a signal, such as 'django.db.models.signals.pre_init'."
        )
        assert lines[4] == "SIGNALTRACE['MAX_EVENTS'] must be a positive int, got int: 0."

    def test_install_lists_every_error(self):
        with (
            override_settings(SIGNALTRACE={"ENABLED": "yes", "SAMPLE_RATE": math.inf}),
            pytest.raises(ImproperlyConfigured) as excinfo,
        ):
            signaltrace.install()
        assert str(excinfo.value) == (
            "SIGNALTRACE['ENABLED'] must be a bool, got str: 'yes'.\n"
            "SIGNALTRACE['SAMPLE_RATE'] must be a number from 0 to 1, got float: inf."
        )


class TestReady:
    def run_ready(self):
        apps.get_app_config("signaltrace").ready()

    def test_ready_installs_when_enabled(self, settings):
        signaltrace.uninstall()
        settings.SIGNALTRACE = {"ENABLED": True}
        self.run_ready()
        assert signaltrace.is_installed()

    def test_ready_skips_when_disabled(self, settings):
        signaltrace.uninstall()
        settings.SIGNALTRACE = {"ENABLED": False}
        self.run_ready()
        assert not signaltrace.is_installed()

    def test_ready_leaves_bad_settings_to_the_check(self, settings):
        """With bad settings, ready() does not install; the system check reports."""
        signaltrace.uninstall()
        settings.SIGNALTRACE = {"ENABLED": True, "MAX_EVENTS": "x"}
        self.run_ready()
        assert not signaltrace.is_installed()
