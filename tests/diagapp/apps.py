from __future__ import annotations

from django.apps import AppConfig


class DiagAppConfig(AppConfig):
    name = "tests.diagapp"
    label = "diagapp"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from . import hooks, signals  # noqa: F401
