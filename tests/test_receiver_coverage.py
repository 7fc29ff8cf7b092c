"""Receiver coverage's data: what counts, how tests are counted, merging, the report."""

from __future__ import annotations

import json
import os
import sysconfig

import blinker
import pytest
from django.contrib.auth.models import User
from django.dispatch import Signal

import signaltrace
from signaltrace.testing.receiver_coverage import (
    CoverageData,
    CoverageReport,
    ReceiverCoverage,
    is_project_receiver,
)

refunded = Signal()
shipped = Signal()
exported = blinker.signal("tests.coverage.exported")


def on_refund(sender, **kwargs):
    """No test here refunds anything: the receiver that never runs."""


def on_ship(sender, **kwargs):
    pass


def on_export(sender, **kwargs):
    pass


@pytest.fixture
def connected():
    refunded.connect(on_refund, sender=User)
    refunded.connect(on_refund)  # the same receiver, a second connection
    shipped.connect(on_ship)
    exported.connect(on_export)
    yield
    refunded.disconnect(on_refund, sender=User)
    refunded.disconnect(on_refund)
    shipped.disconnect(on_ship)
    exported.disconnect(on_export)


def key_of(func):
    code = func.__code__
    return (f"{func.__module__}.{func.__qualname__}", code.co_filename, code.co_firstlineno)


class TestWhatCounts:
    def test_project_code(self):
        assert is_project_receiver(
            "accounts.signals.create_profile", "/srv/app/accounts/signals.py"
        )

    @pytest.mark.parametrize(
        ("name", "filename"),
        [
            ("django.contrib.auth.models.update_last_login", "/srv/app/django/contrib/auth.py"),
            ("signaltrace.signals.on_finished", "/srv/app/signaltrace/signals.py"),
            ("thirdparty.receivers.on_save", "/opt/venv/lib/python3.12/site-packages/x/r.py"),
            ("thirdparty.receivers.on_save", "/usr/lib/python3/dist-packages/x/r.py"),
            ("builtins.print", None),
            ("json.dump", os.path.join(sysconfig.get_paths()["stdlib"], "json", "__init__.py")),
        ],
    )
    def test_not_the_project(self, name, filename):
        assert not is_project_receiver(name, filename)

    @pytest.mark.parametrize(
        ("glob", "counted"),
        [
            ("accounts.*", True),
            ("accounts", True),  # a plain prefix: the package and what is in it
            ("accounts.signals.create_*", True),
            ("account", False),
            ("shop.*", False),
        ],
    )
    def test_globs_replace_the_rule(self, glob, counted):
        name = "accounts.signals.create_profile"
        assert is_project_receiver(name, None, [glob]) is counted
        assert is_project_receiver("django.contrib.auth.x", "/any.py", ["django.contrib.auth"])


@pytest.mark.django_db
@pytest.mark.usefixtures("connected")
class TestCoverageData:
    def test_connected_receivers_and_their_connections(self):
        data = CoverageData()
        data.take_connected()
        assert data.django_ready
        assert data.connected[key_of(on_refund)] == [("refunded", "auth.User"), ("refunded", None)]
        assert data.connected[key_of(on_ship)] == [("shipped", None)]
        assert data.connected[key_of(on_export)] == [("tests.coverage.exported", None)]
        data.take_connected()  # a second look adds nothing twice
        assert data.connected[key_of(on_refund)] == [("refunded", "auth.User"), ("refunded", None)]

    def test_not_set_up(self, monkeypatch):
        from django.apps import apps

        monkeypatch.setattr(apps, "ready", False)
        data = CoverageData()
        data.take_connected()
        assert (data.django_ready, data.connected) == (False, {})
        assert data.report().lines() == ["Django was not set up: no signal receivers to measure."]

    def test_tests_and_calls(self):
        data = CoverageData()
        data.take_connected()
        for sends in (2, 1, 0):
            with signaltrace.capture() as trace:
                for _ in range(sends):
                    shipped.send(sender="shop")
            data.record(trace)
        assert data.tests == 3
        assert data.ran[key_of(on_ship)] == [2, 3]  # two tests ran it, three times in all
        assert key_of(on_refund) not in data.ran

    def test_truncated_tests_are_counted(self):
        data = CoverageData()
        data.take_connected()
        with signaltrace.capture(max_events=1) as trace:
            shipped.send(sender="shop")
            shipped.send(sender="shop")
        data.record(trace)
        assert data.truncated_tests == 1
        report = data.report()
        report.receivers.append(ReceiverCoverage("x.y", None, None))
        assert report.lines()[-1] == (
            "(1 test sent more than 100,000 events: the receivers they ran after that are not "
            "counted.)"
        )

    def test_workers_merge(self):
        """Two workers' JSON, merged, is one process's data with the counts added up."""
        one, two = CoverageData(), CoverageData()
        one.take_connected()
        for data in (one, two):
            with signaltrace.capture() as trace:
                shipped.send(sender="shop")
            data.record(trace)
        two.connected[("w2.only", "/w2.py", 3)] = [("shipped", None)]
        merged = CoverageData()
        for data in (one, two):
            merged.merge(CoverageData.from_json(json.loads(json.dumps(data.to_json()))))
        assert merged.ran[key_of(on_ship)] == [2, 2]
        assert merged.tests == 2
        assert merged.django_ready
        assert merged.connected[("w2.only", "/w2.py", 3)] == [("shipped", None)]
        assert merged.connected[key_of(on_refund)] == one.connected[key_of(on_refund)]

    def test_report(self):
        data = CoverageData()
        data.take_connected()
        with signaltrace.capture() as trace:
            shipped.send(sender="shop")
            exported.send("tests")
        data.record(trace)
        report = data.report(["tests.test_receiver_coverage"])
        assert [r.receiver for r in report.receivers] == [
            "tests.test_receiver_coverage.on_refund",  # never ran: first
            "tests.test_receiver_coverage.on_ship",
            "tests.test_receiver_coverage.on_export",
        ]
        assert (report.total, report.run, report.percent) == (3, 2, 66.67)
        first = report.to_dict()["receivers"][0]
        assert first == {
            "receiver": "tests.test_receiver_coverage.on_refund",
            "location": f"tests/test_receiver_coverage.py:{on_refund.__code__.co_firstlineno}",
            "signals": ["refunded"],
            "connections": [
                {"signal": "refunded", "sender": "auth.User"},
                {"signal": "refunded", "sender": None},
            ],
            "tests": 0,
            "calls": 0,
        }
        lines = report.lines()
        assert lines[1].startswith("tests.test_receiver_coverage.on_refund  tests/test_rec")
        assert lines[1].endswith("refunded (auth.User), refunded (any sender)      0      0")
        assert lines[-1] == ("TOTAL: 3 receivers, 2 ran in at least one test, 1 never ran: 66.67%")


class TestReport:
    def receivers(self, ran, never):
        return [ReceiverCoverage(f"r.ran{i}", "/r.py", i, tests=1) for i in range(ran)] + [
            ReceiverCoverage(f"r.never{i}", "/r.py", 100 + i) for i in range(never)
        ]

    @pytest.mark.parametrize(
        ("ran", "never", "minimum", "fails"),
        [
            (3, 1, 75, False),
            (3, 1, 75.01, True),
            (9999, 1, 100, True),  # 99.99 % is not 100
            (4, 0, 100, False),
            (0, 0, 100, False),  # nothing to run: 100 %, as coverage.py
        ],
    )
    def test_fails_under(self, ran, never, minimum, fails):
        assert CoverageReport(self.receivers(ran, never)).fails_under(minimum) is fails

    def test_empty(self):
        report = CoverageReport([])
        assert report.percent == 100.0
        assert (
            report.lines()[-1]
            == "TOTAL: 0 receivers, 0 ran in at least one test, 0 never ran: 100.00%"
        )

    def test_receiver_without_code(self):
        assert ReceiverCoverage("builtins.print", None, None).location == "?"
