"""RECORD_DB: queries, atomic blocks and on_commit callbacks per receiver call."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.db.backends.utils import CursorWrapper
from django.dispatch import Signal

import signaltrace
from tests.testapp.models import Backup

pinged = Signal()


def writes_and_defers(sender, **kwargs):
    Backup.objects.create(username="a")
    Backup.objects.create(username="b")
    transaction.on_commit(lambda: None)


@pytest.fixture
def receiver():
    pinged.connect(writes_and_defers)
    yield
    pinged.disconnect(writes_and_defers)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("receiver")
class TestRecordDb:
    def test_queries_atomic_and_on_commit(self, settings):
        """Each receiver call records its statements, atomic state and on_commit callbacks."""
        settings.SIGNALTRACE = {"RECORD_DB": True}
        with signaltrace.capture() as trace:
            pinged.send(sender=None)
            with transaction.atomic():
                pinged.send_robust(sender=None)
        outside, inside = trace.calls
        assert (outside.queries, outside.in_atomic, outside.on_commit) == (2, False, 0)
        assert (inside.queries, inside.in_atomic, inside.on_commit) == (2, True, 1)
        assert "2 queries  1 on_commit" in trace.render()
        assert trace.to_dict()["dispatches"][1]["calls"][0]["queries"] == 2

    def test_seed_receivers(self, settings):
        """The seed's receivers each run one statement when a User is created."""
        settings.SIGNALTRACE = {"RECORD_DB": True}
        with signaltrace.capture() as trace:
            User.objects.create(username="q")
        assert [c.queries for c in trace.calls] == [1, 1]
        assert "1 query" in trace.render()

    def test_off(self, settings):
        """RECORD_DB=False records nothing about the database."""
        settings.SIGNALTRACE = {"RECORD_DB": False}
        with signaltrace.capture() as trace:
            pinged.send(sender=None)
        assert trace.calls[0].queries is None
        assert trace.calls[0].in_atomic is None

    def test_defaults_to_debug(self, settings):
        settings.SIGNALTRACE = {}
        settings.DEBUG = False
        with signaltrace.capture() as trace:
            pinged.send(sender=None)
        assert trace.calls[0].queries is None

    def test_errors_still_count(self, settings):
        """A failing receiver's statements are counted too."""
        settings.SIGNALTRACE = {"RECORD_DB": True}
        sig = Signal()

        def fails_after_query(sender, **kwargs):
            Backup.objects.create(username="c")
            raise ValueError("after one")

        sig.connect(fails_after_query)
        with signaltrace.capture() as trace:
            sig.send_robust(sender=None)
            with pytest.raises(ValueError, match="after one"):
                sig.send(sender=None)
        assert [c.queries for c in trace.calls] == [1, 1]

    def test_asend_sync_receivers(self, settings):
        import asyncio

        settings.SIGNALTRACE = {"RECORD_DB": True}

        async def main():
            async with signaltrace.capture() as trace:
                await pinged.asend(sender=None)
            return trace

        trace = asyncio.run(main())
        assert trace.calls[0].queries == 2

    def test_unknown_alias_is_logged_not_raised(self, settings, caplog):
        from signaltrace import context

        context._logged.discard("RECORD_DB connection lookup")
        settings.SIGNALTRACE = {"RECORD_DB": True}
        with signaltrace.capture() as trace:
            pinged.send(sender=None, using="nope")
        assert trace.calls[0].queries is None
        assert "RECORD_DB connection lookup" in caplog.text


class TestCursorPatch:
    def test_uninstall_restores_cursor_methods(self):
        """Counting statements patches CursorWrapper only while installed."""
        assert CursorWrapper._execute.__module__ == "signaltrace._db"
        signaltrace.uninstall()
        try:
            assert CursorWrapper._execute.__module__ == "django.db.backends.utils"
            assert CursorWrapper._executemany.__module__ == "django.db.backends.utils"
        finally:
            signaltrace.install()


@pytest.mark.django_db
def test_executemany_is_counted(settings):
    """cursor.executemany() counts as one statement."""
    from django.db import connection

    settings.SIGNALTRACE = {"RECORD_DB": True}
    sig = Signal()

    def many(sender, **kwargs):
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO testapp_backup (username) VALUES (%s)", [("x",), ("y",)]
            )

    sig.connect(many)
    with signaltrace.capture() as trace:
        sig.send(sender=None)
    assert trace.calls[0].queries == 1
