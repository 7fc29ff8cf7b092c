"""The demo's signals, tested with Django's TestCase and signaltrace's mixin.

Run ``python manage.py test`` in ``demo_site/`` (``pytest`` runs them too).
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.test import TestCase

from accounts.signals import backup_user_data, create_user_profile
from signaltrace.testing import SignalTraceTestMixin


class RegisterTests(SignalTraceTestMixin, TestCase):
    def test_register_creates_profile(self) -> None:
        with self.assertReceiverCalled(create_user_profile, sender=User, created=True):
            self.client.post("/register/", {"username": "ann"})

    def test_register_backs_nothing_up(self) -> None:
        with self.captureSignals() as trace:
            self.client.post("/register/", {"username": "ann"})
        self.assertReceiverNotCalled(backup_user_data, trace=trace)
        self.assertNoReceiverErrors(trace=trace)

    async def test_async_register(self) -> None:
        async with self.assertReceiverCalled(create_user_profile, created=True):
            await self.async_client.post("/async-register/", {"username": "bob"})
