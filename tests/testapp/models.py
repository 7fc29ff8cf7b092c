from __future__ import annotations

from django.conf import settings
from django.db import models


class NeverStr:
    """signaltrace must label instances without calling user code."""

    def __str__(self) -> str:  # pragma: no cover - must never run
        raise AssertionError("signaltrace called __str__ on a model instance")


class Profile(NeverStr, models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    bio = models.TextField(blank=True)


class Backup(NeverStr, models.Model):
    username = models.CharField(max_length=150)


class Tag(NeverStr, models.Model):
    name = models.CharField(max_length=50)
    profiles = models.ManyToManyField(Profile, related_name="tags")


class ApiKey(NeverStr, models.Model):
    """A model whose primary key is a secret (like sessions.Session)."""

    key = models.CharField(max_length=40, primary_key=True)
