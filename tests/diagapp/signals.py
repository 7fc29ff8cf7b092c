"""Receivers the diagnostics tests look for (all with sender=, none senderless)."""

from __future__ import annotations

from typing import Any

import blinker
from django.db.models.signals import post_save, pre_delete, pre_save
from django.dispatch import Signal, receiver

from .models import Article, Author, Comment, FeaturedArticle, Reaction

#: A project signal, re-exported by hooks.py (its name stays this module's).
article_published = Signal()
#: A blinker named signal.
exported = blinker.signal("diagapp.exported")


@receiver(pre_save, sender=Article)
def article_pre_save(sender: Any, instance: Article, **kwargs: Any) -> None:
    """Does nothing; the tests check whether it ran."""


@receiver(post_save, sender=Article)
def article_saved(sender: Any, instance: Article, **kwargs: Any) -> None:
    """Does nothing; the tests check whether it ran."""


@receiver(post_save, sender=Article, dispatch_uid="diagapp.count_article")
def count_article(sender: Any, **kwargs: Any) -> None:
    """Does nothing; the tests check whether it ran."""


@receiver(post_save, sender=FeaturedArticle)
def featured_saved(sender: Any, **kwargs: Any) -> None:
    """Does nothing; the tests check whether it ran."""


@receiver(post_save, sender=Comment)
def comment_saved(sender: Any, **kwargs: Any) -> None:
    """Does nothing; the tests check whether it ran."""


@receiver(post_save, sender=Reaction)
def reaction_saved(sender: Any, **kwargs: Any) -> None:
    """Does nothing; the tests check whether it ran."""


@receiver(pre_delete, sender=Author)
def author_deleting(sender: Any, **kwargs: Any) -> None:
    """Does nothing; the tests check whether it ran."""


@receiver(article_published)
async def notify_subscribers(sender: Any, **kwargs: Any) -> None:
    """Does nothing; the tests check whether it ran."""


def log_publication(sender: Any, fail: bool = False, **kwargs: Any) -> None:
    if fail:
        raise ValueError("publication failed")


article_published.connect(log_publication, weak=False)


@exported.connect
def on_exported(sender: Any, **kwargs: Any) -> None:
    """Does nothing; the tests check whether it ran."""
