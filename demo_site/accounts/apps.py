"""App config: ``ready()`` imports the signals module so its receivers connect."""

from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing the module runs its @receiver decorators. Forget this line
        # and no Profile is ever created, silently.
        from . import signals  # noqa: F401
