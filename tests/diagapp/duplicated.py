"""Loaded a second time by the W002 test, as a double import would."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from .signals import article_published


@receiver(article_published)
def on_published(sender: Any, **kwargs: Any) -> None:
    """Does nothing; only its connection matters."""
