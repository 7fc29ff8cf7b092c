"""Receivers: who enqueues ``send_welcome``, and who runs when it runs.

``user_registered`` has one receiver per way of enqueueing, chosen by the
``how`` kwarg (each receiver returns at once for another ``how``):
``"on_commit"``, the right way; ``"now"``, straight away (the classic bug when
inside ``transaction.atomic``); ``"robust"``, from a robust on_commit callback.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import receiver

from .signals import user_registered, welcome_sent
from .tasks import send_welcome

#: What ``welcome_sent``'s receivers saw, in this process (the eager tests read it).
SEEN: list[tuple[str, int]] = []


@receiver(user_registered)
def enqueue_welcome(sender: Any, user_pk: int, username: str, how: str = "", **kwargs: Any) -> None:
    """The right way: enqueue once the transaction has committed."""
    if how == "on_commit":
        transaction.on_commit(lambda: send_welcome.delay(user_pk, username))


@receiver(user_registered)
def enqueue_welcome_now(
    sender: Any, user_pk: int, username: str, how: str = "", **kwargs: Any
) -> None:
    """The bug: enqueue at once, maybe inside the transaction that creates the user."""
    if how == "now":
        send_welcome.delay(user_pk, username)


@receiver(user_registered)
def enqueue_welcome_robust(
    sender: Any, user_pk: int, username: str, how: str = "", **kwargs: Any
) -> None:
    """A robust on_commit callback (``robust=True``) that enqueues."""
    if how == "robust":
        transaction.on_commit(lambda: send_welcome.delay(user_pk, username), robust=True)


@receiver(welcome_sent)
def record_welcome(sender: Any, user_pk: int, username: str, **kwargs: Any) -> None:
    """Runs in the worker when the task runs."""
    SEEN.append((username, user_pk))


@receiver(welcome_sent)
def greet(sender: Any, username: str, **kwargs: Any) -> str:
    """Runs in the worker when the task runs, after ``record_welcome``."""
    return f"welcome, {username}"
