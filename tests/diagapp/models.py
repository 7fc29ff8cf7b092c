"""Models for the diagnostics tests: bulk operations, on_delete rules, proxies, m2m."""

from __future__ import annotations

from django.db import models


class NeverStr:
    """signaltrace must label instances without calling user code."""

    def __str__(self) -> str:
        raise AssertionError("signaltrace called __str__ on a model instance")  # pragma: no cover


class Author(NeverStr, models.Model):
    name = models.CharField(max_length=100)


class Topic(NeverStr, models.Model):
    name = models.CharField(max_length=50)


class Article(NeverStr, models.Model):
    author = models.ForeignKey(Author, on_delete=models.CASCADE, null=True, related_name="articles")
    title = models.CharField(max_length=100)
    views = models.IntegerField(default=0)
    topics = models.ManyToManyField(Topic, related_name="articles")


class FeaturedArticle(Article):
    """A proxy: its receivers run only for saves sent with this class as sender."""

    class Meta:
        proxy = True


class Comment(NeverStr, models.Model):
    """SET_NULL: Django clears the link with a QuerySet.update(), no save signals."""

    article = models.ForeignKey(
        Article, on_delete=models.SET_NULL, null=True, related_name="comments"
    )
    body = models.CharField(max_length=100)


def _no_article() -> None:
    return None


class Reaction(NeverStr, models.Model):
    """SET(callable): Django fetches the rows, then updates them without save signals."""

    article = models.ForeignKey(
        Article, on_delete=models.SET(_no_article), null=True, related_name="reactions"
    )
    kind = models.CharField(max_length=20)


class Tally(NeverStr, models.Model):
    """No receivers at all: nothing is ever reported for it."""

    count = models.IntegerField(default=0)
