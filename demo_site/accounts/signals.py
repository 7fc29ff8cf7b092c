"""The receivers of the classic example, plus a custom signal.

``create_user_profile`` and ``save_user_profile`` are the well-known pair from
countless tutorials: saving a User creates (then saves) its Profile. Nothing in
the views mentions them; that implicit control flow is what signaltrace shows.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db.models.signals import post_save, pre_delete
from django.dispatch import Signal, receiver

from .models import BackupRecord, Profile

#: Sent (with ``send_robust``) by the welcome view, with ``user=<User>``.
user_welcomed = Signal()


@receiver(post_save, sender=User)
def create_user_profile(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    """A new user gets a Profile."""
    if created:
        Profile.objects.create(user=instance)


@receiver(post_save, sender=User)
def save_user_profile(sender: type[User], instance: User, **kwargs: Any) -> None:
    """Saving a user saves its profile too (so ``user.profile.bio = ...; user.save()`` works).

    Faithful to the classic example, this assumes the profile exists: a user
    made by ``bulk_create`` has none, and saving it would raise here.
    """
    instance.profile.save()


@receiver(pre_delete, sender=User)
def backup_user_data(sender: type[User], instance: User, **kwargs: Any) -> None:
    """Keep a copy of the user's data before the user (and its profile) disappear."""
    profile = Profile.objects.filter(user=instance).first()
    BackupRecord.objects.create(
        user_id_was=instance.pk,
        username=instance.username,
        email=instance.email,
        bio=profile.bio if profile is not None else "",
        had_profile=profile is not None,
    )


class MailServerDown(ConnectionError):
    """Stands in for a real SMTP failure."""


@receiver(user_welcomed)
def send_welcome_email(sender: object, user: User, **kwargs: Any) -> None:
    """Always fails: the demo has no mail server. ``send_robust`` swallows this."""
    raise MailServerDown(f"cannot send the welcome email to {user.username}: no SMTP server")


@receiver(user_welcomed)
def grant_welcome_badge(sender: object, user: User, **kwargs: Any) -> str:
    """Succeeds (and still runs, although the receiver before it raised)."""
    return f"{user.username} earned the 'welcome' badge"
