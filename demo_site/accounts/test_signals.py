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

from demo.tracing import find_trace
from django.contrib.auth.models import User

from accounts.signals import (
    backup_user_data,
    create_user_profile,
    grant_welcome_badge,
    save_user_profile,
    send_welcome_email,
)
from accounts.views import WELCOME_ALL_MAX_EVENTS
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


def test_receivers_given_as_objects_match_by_identity(client, db, signal_trace):
    """A receiver passed as an object matches that object only; a name matches by name."""
    client.post("/register/", {"username": "bob"})

    signal_trace.assert_called_once(create_user_profile)  # the connected function itself
    signal_trace.assert_called_once("create_user_profile")  # a short name, unique here

    def namesake(sender, **kwargs):  # same dotted name, another function: never connected
        pass

    namesake.__module__ = "accounts.signals"
    namesake.__qualname__ = namesake.__name__ = "create_user_profile"
    with pytest.raises(SignalTraceAssertionError, match="as another object than the one"):
        signal_trace.assert_called(namesake)
    signal_trace.assert_not_called(namesake)


@pytest.fixture
def shown(settings):
    """Traces shown, as under runserver (pytest-django turns DEBUG off)."""
    settings.DEBUG = True


def test_welcome_all_keeps_a_truncated_capture(client, db, shown, signal_trace):
    """welcome_all's own capture is too small for its loop: truncated, and kept for the viewer."""
    ann, bob = User.objects.create_user("ann"), User.objects.create_user("bob")

    client.post("/welcome-all/")

    # The test's trace (and the request's) has every dispatch...
    assert not signal_trace.truncated
    signal_trace.assert_called(send_welcome_email, times=2)
    signal_trace.assert_called(grant_welcome_badge, user=bob)
    # ...the view's capture only what fit in its budget.
    capture = find_trace(client.session["signaltrace_demo_last_action"]["capture"])
    assert capture is not None
    assert capture.kind == "capture"
    assert capture.truncated
    assert capture.max_events == WELCOME_ALL_MAX_EVENTS
    capture.assert_called(send_welcome_email, user=ann)  # what was recorded still counts
    # What needs the whole picture fails, naming MAX_EVENTS, instead of passing on a guess.
    with pytest.raises(SignalTraceAssertionError, match="MAX_EVENTS"):
        capture.assert_not_called(grant_welcome_badge, user=bob)
    with pytest.raises(SignalTraceAssertionError, match="truncated"):
        capture.assert_called_once(send_welcome_email, user=ann)
    page = client.get("/__signaltrace__/").content.decode()
    assert f'data-href="{capture.meta["id"]}/"' in page
    assert '<span class="st-trace-kind st-k-capture">capture</span>' in page
    assert "truncated</span>" in page


def test_home_shows_the_tree_wrapped_with_errors_highlighted(client, ann, shown):
    client.post(f"/users/{ann.pk}/welcome/")

    page = client.get("/").content.decode()

    assert "white-space: pre-wrap" in page  # long lines wrap instead of running off
    assert (
        '<strong class="raised">✗ raised MailServerDown: cannot send the welcome email '
        "to ann: no SMTP server (swallowed by send_robust)</strong>"
    ) in page
    assert '<span class="line error"' in page
    # send_robust's results are a list under the note that introduces them.
    results = page.split('<ol class="results">', 1)[1].split("</ol>", 1)[0]
    assert results.count("<li") == 2
    assert (
        '<li class="raised"><code>accounts.signals.send_welcome_email</code> raised MailServerDown'
    ) in results
    assert "<code>accounts.signals.grant_welcome_badge</code> returned" in results


def test_home_marks_skipped_operations(client, db, shown):
    client.post("/bulk-import/", {"count": 2})

    page = client.get("/").content.decode()

    assert '<span class="line skipped"' in page
    assert "Called at <code>accounts/views.py:" in page
