"""The seed's receivers: post_save creates/saves a Profile, pre_delete backs up."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver

from .models import Backup, Profile


@receiver(post_save, sender=User)
def create_user_profile(sender: Any, instance: User, created: bool, **kwargs: Any) -> None:
    if created:
        Profile.objects.create(user=instance)


@receiver(post_save, sender=User)
def save_user_profile(sender: Any, instance: User, **kwargs: Any) -> None:
    instance.profile.save()


@receiver(pre_delete, sender=User)
def backup_user_data(sender: Any, instance: User, **kwargs: Any) -> None:
    Backup.objects.create(username=instance.username)
