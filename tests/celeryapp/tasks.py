"""The test app's task."""

from __future__ import annotations

from .celery import app
from .signals import welcome_sent


@app.task
def send_welcome(user_pk: int, username: str) -> int:
    """Send ``welcome_sent`` (its receivers run in the worker, in the task's trace)."""
    welcome_sent.send(sender="send_welcome", user_pk=user_pk, username=username)
    return user_pk
