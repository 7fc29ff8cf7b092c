from __future__ import annotations

from django.apps import AppConfig


class DiagDbAppConfig(AppConfig):
    name = "tests.diagdbapp"
    label = "diagdbapp"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from . import signals  # noqa: F401
