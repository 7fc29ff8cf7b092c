"""Never imported (signaltrace.W001): these receivers never run."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver as on


@on(post_save, sender="diagapp.Tally")
def count_tally(sender: Any, **kwargs: Any) -> None:
    """Would run for every Tally saved, if this module were imported."""


def helper() -> None:
    """Not a receiver."""
