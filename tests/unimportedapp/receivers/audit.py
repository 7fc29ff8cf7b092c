"""Never imported (signaltrace.W001), decorated through the module attribute."""

from __future__ import annotations

from typing import Any

from django import dispatch
from django.db.models.signals import post_delete


@dispatch.receiver(post_delete, sender="diagapp.Tally")
async def audit_tally(sender: Any, **kwargs: Any) -> None:
    """Would run for every Tally deleted, if this module were imported."""
