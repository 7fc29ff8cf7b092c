"""Settings: defaults, validation errors, system checks, AppConfig.ready()."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

import signaltrace
from signaltrace import conf
from signaltrace.checks import check_settings


def check_ids():
    return [error.id for error in check_settings()]


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
