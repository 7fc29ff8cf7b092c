"""Receivers a database-level cascade bypasses."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver

if hasattr(models, "DB_CASCADE"):
    from .models import Document, Label, Page

    @receiver(pre_delete, sender=Document)
    def document_deleting(sender: Any, **kwargs: Any) -> None:
        """Does nothing; the tests check whether it ran."""

    @receiver(post_delete, sender=Page)
    def page_deleted(sender: Any, **kwargs: Any) -> None:
        """Does nothing; the tests check whether it ran."""

    @receiver(post_save, sender=Label)
    def label_saved(sender: Any, **kwargs: Any) -> None:
        """Does nothing; the tests check whether it ran."""
