from __future__ import annotations

from django.apps import AppConfig


class UnimportedAppConfig(AppConfig):
    """Deliberately broken: ready() does not import .signals (signaltrace.W001)."""

    name = "tests.unimportedapp"
    label = "unimportedapp"
