"""RECORD_DB: query counts per receiver, whatever the receiver or the alias does."""

from __future__ import annotations

import pytest
from django.dispatch import Signal

import signaltrace


def ok(sender, **kwargs):
    return "ok"


class TestRecordDb:
    def test_non_str_alias_with_record_db(self, settings):
        settings.SIGNALTRACE = {"RECORD_DB": True}
        sig = Signal()
        sig.connect(ok)
        with signaltrace.capture() as trace:
            sig.send(sender=None, using=123)
        assert trace.calls[0].queries == 0

    @pytest.mark.parametrize("sql", [False, True])
    @pytest.mark.parametrize("method", ["send", "send_robust"])
    def test_base_exception_with_record_db(self, settings, method, sql):
        settings.SIGNALTRACE = {"RECORD_DB": True, "RECORD_SQL": sql}

        class Stop(BaseException):
            pass

        def stops(sender, **kwargs):
            raise Stop

        sig = Signal()
        sig.connect(stops)
        with signaltrace.capture() as trace, pytest.raises(Stop):
            getattr(sig, method)(sender=None)
        assert trace.calls[0].queries == 0


@pytest.mark.django_db
class TestCountingOnlyWhenRecorded:
    """The cursor wrappers count statements only while a RECORD_DB capture is open."""

    def count_one_query(self):
        from django.contrib.auth.models import User

        from signaltrace import _db

        before = _db.QUERIES.n
        User.objects.filter(pk=0).exists()
        return _db.QUERIES.n - before

    def test_not_without_record_db(self, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "RECORD_DB": False}
        with signaltrace.capture():
            assert self.count_one_query() == 0
        assert self.count_one_query() == 0

    def test_while_a_record_db_capture_is_open(self, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "RECORD_DB": False}
        with signaltrace.capture():
            settings.SIGNALTRACE = {"ENABLED": True, "RECORD_DB": True}
            with signaltrace.capture():
                assert self.count_one_query() == 1
            assert self.count_one_query() == 0
