"""A Profile per User, and a BackupRecord written before a User is deleted."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Profile(models.Model):
    """Extra data for a user; created by a ``post_save`` receiver, not by views."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    bio = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"Profile of user {self.user_id}"


class BackupRecord(models.Model):
    """What a user looked like just before deletion (written by ``pre_delete``)."""

    user_id_was = models.BigIntegerField()
    username = models.CharField(max_length=150)
    email = models.EmailField(blank=True)
    bio = models.TextField(blank=True)
    had_profile = models.BooleanField(default=True)
    deleted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-deleted_at", "-id")

    def __str__(self) -> str:
        return f"Backup of {self.username}"
