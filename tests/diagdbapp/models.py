"""Database-level on_delete rules (Django 6.1+): the database changes rows Django never sees.

On older Django the app has no models. Database and Python-level rules cannot be
mixed along one chain of references (fields.E323), so this chain is its own.
"""

from __future__ import annotations

from django.db import models


class NeverStr:
    """signaltrace must label instances without calling user code."""

    def __str__(self) -> str:
        raise AssertionError("signaltrace called __str__ on a model instance")  # pragma: no cover


if hasattr(models, "DB_CASCADE"):

    class Folder(NeverStr, models.Model):
        name = models.CharField(max_length=50)

    class Document(NeverStr, models.Model):
        folder = models.ForeignKey(Folder, on_delete=models.DB_CASCADE, related_name="documents")
        title = models.CharField(max_length=50)

    class Page(NeverStr, models.Model):
        document = models.ForeignKey(Document, on_delete=models.DB_CASCADE, related_name="pages")
        number = models.IntegerField(default=1)

    class Label(NeverStr, models.Model):
        folder = models.ForeignKey(
            Folder, on_delete=models.DB_SET_NULL, null=True, related_name="labels"
        )
        text = models.CharField(max_length=50)
