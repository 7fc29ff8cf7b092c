"""The Django app: registers the system checks and installs the hook in ``ready()``."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["SignalTraceConfig"]


class SignalTraceConfig(AppConfig):
    name = "signaltrace"
    verbose_name = "Signal trace"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        # Imported here: the app module is loaded before the app registry is ready.
        from . import checks, command_traces, integrations, metrics
        from .conf import config_errors, get_config, user_settings
        from .hook import install, register_extra

        checks.register()
        # TRACE_COMMANDS: BaseCommand.execute is wrapped while the hook is installed.
        register_extra("TRACE_COMMANDS", command_traces.install, command_traces.uninstall)
        # CELERY: the Celery integration (imports Celery only when on).
        register_extra("CELERY", integrations.install_celery, integrations.uninstall_celery)
        # METRICS: the thread writing the aggregates to a shared store, and OTel's instruments.
        register_extra("METRICS", metrics.start, metrics.stop)
        # Bad settings are reported by the system check (signaltrace.E001/E002);
        # install() itself refuses to run with them.
        if config_errors(user_settings()):
            return
        if get_config()["ENABLED"]:
            install()
