"""The demo's signals, tested with signaltrace's pytest fixture and marker.

Run ``pytest`` in ``demo_site/`` (with pytest and pytest-django installed).
"""

from __future__ import annotations

import asyncio
import unittest

try:
    import pytest
except ImportError:  # collected by `manage.py test`, which has no use for it
    raise unittest.SkipTest("needs pytest and pytest-django") from None

from django.contrib.auth.models import User

from accounts.signals import (
    backup_user_data,
    create_user_profile,
    save_user_profile,
    send_welcome_email,
)
from signaltrace.testing import SignalTraceAssertionError


@pytest.fixture
def ann(db):
    # Set up before signal_trace, so its post_save is not in the test's trace.
    return User.objects.create_user("ann")


def test_register_creates_profile(client, db, signal_trace):
    response = client.post("/register/", {"username": "bob"})

    assert response.status_code == 302
    signal_trace.assert_called_once(create_user_profile, sender=User, created=True)
    signal_trace.assert_order(create_user_profile, save_user_profile)
    signal_trace.assert_not_called(backup_user_data)
    signal_trace.assert_no_errors()


def test_edit_saves_profile_without_creating_one(client, ann, signal_trace):
    client.post(f"/users/{ann.pk}/edit/", {"bio": "Hi!"})

    signal_trace.assert_called_once(save_user_profile, instance=ann, created=False)
    signal_trace.assert_not_called(create_user_profile, created=True)


def test_bulk_import_skips_the_receivers(client, db, signal_trace):
    client.post("/bulk-import/", {"count": 3})

    signal_trace.assert_not_sent("post_save", sender=User)
    (skipped,) = signal_trace.skipped
    assert skipped.operation == "bulk_create"
    assert "accounts.signals.create_user_profile" in skipped.receivers


def test_delete_backs_the_user_up(client, ann, signal_trace):
    client.post(f"/users/{ann.pk}/delete/")

    signal_trace.assert_called_once(backup_user_data, sender=User, instance=ann)


def test_welcome_swallows_the_mail_error(client, ann, signal_trace):
    response = client.post(f"/users/{ann.pk}/welcome/")

    assert response.status_code == 302  # send_robust() kept the request alive...
    (call,) = signal_trace.errors  # ...but the trace saw the receiver raise
    assert call.receiver_name == "accounts.signals.send_welcome_email"
    assert call.swallowed
    signal_trace.assert_called(send_welcome_email, user=ann)


def test_welcome_error_is_caught_by_assert_no_errors(client, ann, signal_trace):
    """send_robust() swallowed the mail error; assert_no_errors() still sees it.

    (``@pytest.mark.signaltrace(fail_on_errors=True)`` would fail this test the
    same way; the demo has no mail server, so it would always fail.)
    """
    client.post(f"/users/{ann.pk}/welcome/")

    with pytest.raises(SignalTraceAssertionError, match="MailServerDown"):
        signal_trace.assert_no_errors()


def test_async_register(async_client, transactional_db, signal_trace):
    response = asyncio.run(async_client.post("/async-register/", {"username": "bob"}))

    assert response.status_code == 302
    signal_trace.assert_called_once(create_user_profile, created=True)
