"""The signals of the test app (no model: the worker needs no database)."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent when a user registers: its receivers enqueue ``send_welcome``.
user_registered = Signal()
#: Sent by ``send_welcome``, in the worker: its receivers are the task's trace.
welcome_sent = Signal()
