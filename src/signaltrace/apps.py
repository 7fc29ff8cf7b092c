"""The Django app: validates settings and installs the hook in ``ready()``."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks

__all__ = ["SignalTraceConfig"]


class SignalTraceConfig(AppConfig):
    name = "signaltrace"
    verbose_name = "Signal trace"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from .checks import check_settings
        from .conf import get_config
        from .hook import install

        checks.register(check_settings, checks.Tags.compatibility)
        from .middleware import check_middleware

        checks.register(check_middleware, checks.Tags.compatibility)
        from .diagnostics import checks as diagnostics

        checks.register(diagnostics.check_unimported_signals, checks.Tags.signals)
        checks.register(diagnostics.check_duplicate_receivers, checks.Tags.signals)
        checks.register(diagnostics.check_senderless_receivers, checks.Tags.signals)
        # Bad settings are reported by the system check (signaltrace.E001/E002);
        # install() itself refuses to run with them.
        from .conf import _user_settings, config_errors

        if config_errors(_user_settings()):
            return
        if get_config()["ENABLED"]:
            install()
