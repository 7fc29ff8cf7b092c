from __future__ import annotations

from django.conf import settings
from django.db import models


class Profile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    bio = models.TextField(blank=True)


class Backup(models.Model):
    username = models.CharField(max_length=150)


class Tag(models.Model):
    name = models.CharField(max_length=50)
    profiles = models.ManyToManyField(Profile, related_name="tags")
