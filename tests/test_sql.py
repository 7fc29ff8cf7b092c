"""RECORD_SQL: the statements each sync receiver call ran, and assert_max_queries."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import re
import shutil
import threading
import unittest

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.dispatch import Signal

import signaltrace
from signaltrace import _db
from signaltrace.records import D_SQL, MAX_STATEMENTS, Statement
from signaltrace.stores.base import StoredTrace
from signaltrace.testing import (
    SignalTraceAssertionError,
    SignalTraceTestMixin,
    assert_max_queries,
)
from tests.testapp.models import Backup

pinged = Signal()
nested = Signal()

SELECT_BACKUP = (
    'SELECT "testapp_backup"."id", "testapp_backup"."username" FROM "testapp_backup" '
    'WHERE "testapp_backup"."username" = %s'
)


def n_plus_one(sender, **kwargs):
    """Twelve lookups in a loop: the same statement twelve times, then one insert."""
    for i in range(12):
        list(Backup.objects.filter(username=f"u{i}"))
    Backup.objects.create(username="done")


def quiet(sender, **kwargs):
    return "no queries"


def sends_nested(sender, **kwargs):
    Backup.objects.create(username="outer")
    nested.send(sender="outer")
    Backup.objects.count()


def nested_receiver(sender, **kwargs):
    list(Backup.objects.filter(username="inner"))


@pytest.fixture
def receivers():
    pinged.connect(n_plus_one)
    pinged.connect(quiet)
    yield
    pinged.disconnect(n_plus_one)
    pinged.disconnect(quiet)


@pytest.fixture
def record_sql(settings):
    settings.SIGNALTRACE = {"RECORD_DB": True, "RECORD_SQL": True}
    return settings


def call_of(trace, receiver):
    (call,) = trace.find(receiver=receiver)
    return call


@pytest.mark.django_db
@pytest.mark.usefixtures("receivers", "record_sql")
class TestRecording:
    def test_statements_in_order_with_counts(self):
        with signaltrace.capture() as trace:
            pinged.send(sender=None)
        call = call_of(trace, n_plus_one)
        assert call.queries == 13
        assert [s.count for s in call.sql] == [12, 1]
        assert call.sql[0].sql == SELECT_BACKUP
        assert call.sql[1].sql.startswith('INSERT INTO "testapp_backup" ("username") VALUES (%s)')
        assert call.sql[0].params is None  # RECORD_SQL_PARAMS is off
        assert call.sql_omitted == 0
        assert call_of(trace, quiet).sql == ()
        assert str(call.sql[0]) == f"{SELECT_BACKUP}  × 12"
        assert _db.QUERIES.sql is None  # the thread lets go of the list when the loop ends

    def test_tree_flags_the_repeated_statement(self):
        with signaltrace.capture() as trace:
            pinged.send(sender=None)
        lines = trace.render().splitlines()
        (line,) = [line for line in lines if "n_plus_one" in line]
        assert line.endswith("13 queries  12 × same query")
        (line,) = [line for line in lines if "test_sql.quiet" in line]
        assert "same query" not in line
        assert line.endswith("0 queries")

    def test_json(self):
        with signaltrace.capture() as trace:
            pinged.send(sender=None)
        data = json.loads(json.dumps(trace.to_dict()))
        first, second = data["dispatches"][0]["calls"]
        assert first["sql"][0] == {"sql": SELECT_BACKUP, "count": 12}
        assert [s["count"] for s in first["sql"]] == [12, 1]
        assert first["sql_omitted"] == 0
        assert second["sql"] == []

    def test_stored_trace_reads_it_back(self):
        """The JSON a shared store keeps gives the same statements back."""
        with signaltrace.capture() as trace:
            pinged.send(sender=None)
        data = json.loads(json.dumps(trace.to_dict()))
        stored = StoredTrace(data)
        assert stored.calls[0].sql == call_of(trace, n_plus_one).sql
        assert stored.to_dict() == data
        assert "12 × same query" in stored.render()

    def test_failing_receiver_keeps_its_statements(self):
        sig = Signal()

        def fails(sender, **kwargs):
            Backup.objects.count()
            raise ValueError("after a count")

        sig.connect(fails)
        sig.connect(nested_receiver)
        with signaltrace.capture() as trace:
            sig.send_robust(sender=None)
            with pytest.raises(ValueError, match="after a count"):
                sig.send(sender=None)
        robust_fail, robust_next, plain_fail = trace.calls
        assert [s.sql for s in robust_fail.sql] == [
            'SELECT COUNT(*) AS "__count" FROM "testapp_backup"'
        ]
        assert robust_next.sql[0].sql.startswith('SELECT "testapp_backup"."id"')
        assert plain_fail.sql == robust_fail.sql
        assert _db.QUERIES.sql is None

    def test_nested_receivers(self):
        """A call's statements include those of the receivers it caused to run."""
        sig = Signal()
        sig.connect(sends_nested)
        nested.connect(nested_receiver)
        try:
            with signaltrace.capture() as trace:
                sig.send(sender=None)
        finally:
            nested.disconnect(nested_receiver)
        outer, inner = trace.calls
        assert outer.queries == 3
        assert [s.sql.split(" ", 1)[0] for s in outer.sql] == ["INSERT", "SELECT", "SELECT"]
        assert outer.sql[1] == inner.sql[0]
        assert inner.queries == 1
        assert len(inner.sql) == 1
        assert outer.sql_omitted == inner.sql_omitted == 0

    def test_repeat_around_a_nested_dispatch_is_one_statement(self):
        sig = Signal()

        def around(sender, **kwargs):
            Backup.objects.count()
            nested.send(sender="x")
            Backup.objects.count()

        sig.connect(around)
        nested.connect(quiet)
        try:
            with signaltrace.capture() as trace:
                sig.send(sender=None)
        finally:
            nested.disconnect(quiet)
        outer = call_of(trace, around)
        assert [(s.sql.split(" ")[1], s.count) for s in outer.sql] == [("COUNT(*)", 2)]

    def test_at_most_50_statements_per_call(self):
        sig = Signal()

        def many(sender, **kwargs):
            for i in range(60):
                list(Backup.objects.filter(username=f"u{i}").values_list("id")[i : i + 1])
            for _ in range(500):
                Backup.objects.count()

        sig.connect(many)
        with signaltrace.capture() as trace:
            sig.send(sender=None)
            # The thread's list never held more than the limit for this call.
            entries = trace.raw[0][D_SQL][0]
            assert len(entries) == MAX_STATEMENTS
        call = trace.calls[0]
        assert call.queries == 560
        assert len(call.sql) == MAX_STATEMENTS
        # A statement already kept goes on counting, past the limit too.
        assert call.sql_omitted == 10 + 500

    def test_a_kept_statement_counts_past_the_limit(self):
        sig = Signal()

        def repeats(sender, **kwargs):
            for _ in range(200):
                Backup.objects.count()

        sig.connect(repeats)
        with signaltrace.capture() as trace:
            sig.send(sender=None)
        call = trace.calls[0]
        assert [(s.count, call.sql_omitted) for s in call.sql] == [(200, 0)]
        assert "200 queries  200 × same query" in trace.render()

    def test_long_statements_are_cut_at_300(self):
        sig = Signal()
        long_name = "x" * 400

        def long_statement(sender, **kwargs):
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT '{long_name}'")

        sig.connect(long_statement)
        with signaltrace.capture() as trace:
            sig.send(sender=None)
        (statement,) = trace.calls[0].sql
        assert len(statement.sql) == 300
        assert statement.sql.endswith("x…")

    def test_executemany_is_one_statement(self, settings):
        settings.SIGNALTRACE = {"RECORD_DB": True, "RECORD_SQL": True, "RECORD_SQL_PARAMS": True}
        sig = Signal()

        def many(sender, **kwargs):
            with connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO testapp_backup (username) VALUES (%s)", [("x",), ("y",)]
                )

        sig.connect(many)
        with signaltrace.capture() as trace:
            sig.send(sender=None)
        (statement,) = trace.calls[0].sql
        assert statement == Statement(
            "INSERT INTO testapp_backup (username) VALUES (%s)", 1, ("<2 parameter sets>",)
        )

    def test_asend_sync_receivers(self):
        async def main():
            async with signaltrace.capture() as trace:
                await pinged.asend(sender=None)
            return trace

        trace = asyncio.run(main())
        call = call_of(trace, n_plus_one)
        assert [s.count for s in call.sql] == [12, 1]
        assert call_of(trace, quiet).sql == ()

    def test_other_threads_are_not_counted(self):
        """Statements run by another thread meanwhile are not the receiver's."""
        sig = Signal()
        ran = []

        class Cursor:
            def execute(self, sql, params=None):
                ran.append(sql)

        class Database:  # what CursorWrapper._execute needs of a connection
            wrap_database_errors = contextlib.nullcontext()

            def validate_no_broken_transaction(self):
                pass

        def background():
            # The patched CursorWrapper, in a thread of its own (and no connection
            # of its own: an in-memory SQLite one is never closed).
            CursorWrapper(Cursor(), Database())._execute("SELECT 'background'", None)

        def waits(sender, **kwargs):
            thread = threading.Thread(target=background)
            thread.start()
            thread.join()
            list(Backup.objects.filter(username="me"))

        sig.connect(waits)
        with signaltrace.capture() as trace:
            sig.send(sender=None)
        assert ran == ["SELECT 'background'"]
        (statement,) = trace.calls[0].sql
        assert trace.calls[0].queries == 1
        assert "background" not in statement.sql

    def test_sql_objects_are_labelled_not_stringified(self):
        """A str subclass is copied with str's methods; another object is only labelled."""

        class Sneaky(str):
            def __str__(self):  # pragma: no cover - must never run
                raise AssertionError("str() of the statement")

            def __getitem__(self, item):  # pragma: no cover - must never run
                raise AssertionError("slicing the statement")

        state = [[], 0, None]
        _db.note(state, (Sneaky("SELECT 1"), None), False)
        _db.note(state, (object(), None), False)
        assert [entry[0] for entry in state[0]] == ["SELECT 1", "<object>"]
        assert type(state[0][0][0]) is str

    def test_a_failure_is_logged_not_raised(self, caplog):
        from signaltrace import context

        context._logged.discard("RECORD_SQL")
        state = [[], 0, None]
        _db.note(state, (), False)  # no statement at all: a label, no failure
        assert state[0] == [["None", 1, None]]
        assert "RECORD_SQL" not in caplog.text
        state[1] = "broken"
        _db.note(state, ("SELECT 1", None), False)
        assert "RECORD_SQL" in caplog.text


@pytest.mark.django_db
@pytest.mark.usefixtures("receivers")
class TestSettings:
    def test_defaults_to_debug(self, settings):
        settings.SIGNALTRACE = {"RECORD_DB": True}
        settings.DEBUG = True
        with signaltrace.capture() as trace:
            pinged.send(sender=None)
        assert call_of(trace, n_plus_one).sql is not None
        settings.DEBUG = False
        with signaltrace.capture() as trace:
            pinged.send(sender=None)
        call = call_of(trace, n_plus_one)
        assert (call.queries, call.sql) == (13, None)
        assert "same query" not in trace.render()
        assert trace.to_dict()["dispatches"][0]["calls"][0]["sql"] is None

    def test_needs_record_db(self, settings):
        settings.SIGNALTRACE = {"RECORD_DB": False, "RECORD_SQL": True}
        with signaltrace.capture() as trace:
            pinged.send(sender=None)
        assert call_of(trace, n_plus_one).sql is None
        assert trace.options.record_sql is False

    def test_off_keeps_no_list(self, settings):
        """With RECORD_SQL off the cursor wrapper only counts."""
        settings.SIGNALTRACE = {"RECORD_DB": True, "RECORD_SQL": False}
        seen = []

        def looks(sender, **kwargs):
            seen.append(_db.QUERIES.sql)
            Backup.objects.count()

        pinged.connect(looks)
        try:
            with signaltrace.capture() as trace:
                pinged.send(sender=None)
        finally:
            pinged.disconnect(looks)
        assert seen == [None]
        assert trace.raw[0][D_SQL] is None

    def test_validation(self, settings):
        from signaltrace.conf import config_errors

        assert config_errors({"RECORD_SQL": "yes"})[0][0] == "RECORD_SQL"
        assert config_errors({"RECORD_SQL_PARAMS": 1})[0][0] == "RECORD_SQL_PARAMS"
        assert config_errors({"RECORD_SQL": True, "RECORD_SQL_PARAMS": True}) == []


@pytest.mark.django_db
class TestParams:
    @pytest.fixture(autouse=True)
    def _params(self, settings):
        settings.SIGNALTRACE = {"RECORD_DB": True, "RECORD_SQL": True, "RECORD_SQL_PARAMS": True}

    def run(self, receiver):
        sig = Signal()
        sig.connect(receiver)
        with signaltrace.capture() as trace:
            sig.send(sender=None)
        return trace.calls[0]

    def test_labels_per_run(self):
        def lookups(sender, **kwargs):
            for name in ("ann", "bob"):
                list(Backup.objects.filter(username=name))

        (statement,) = self.run(lookups).sql
        assert statement.count == 2
        assert statement.params == (["ann"], ["bob"])

    def test_at_most_10_runs_keep_their_params(self):
        def lookups(sender, **kwargs):
            for i in range(15):
                list(Backup.objects.filter(username=f"u{i}"))

        (statement,) = self.run(lookups).sql
        assert statement.count == 15
        assert statement.params == tuple([f"u{i}"] for i in range(10))

    def test_password_column_is_redacted(self):
        """User.objects.create's INSERT: the password parameter is redacted, the rest kept."""

        def creates(sender, **kwargs):
            User.objects.create(username="ann", password="hunter2")

        call = self.run(creates)
        insert = next(s for s in call.sql if s.sql.startswith('INSERT INTO "auth_user"'))
        columns = re.search(r"\(([^)]*)\) VALUES", insert.sql).group(1).split(", ")
        (values,) = insert.params
        by_column = dict(zip(columns, values, strict=True))
        assert by_column['"password"'] == "[redacted]"
        assert by_column['"username"'] == "ann"
        assert "hunter2" not in json.dumps(call.dispatch.kwargs) + json.dumps(values)

    def test_where_and_set_are_redacted_by_column(self):
        from tests.testapp.models import ApiKey

        def keys(sender, **kwargs):
            list(ApiKey.objects.filter(key="s3cr3t"))
            ApiKey.objects.filter(key__in=["a1", "b2"]).update(key="c3")

        call = self.run(keys)
        assert [s.params for s in call.sql] == [(["[redacted]"],), (["[redacted]"] * 3,)]

    def test_only_the_secret_column_is_redacted(self):
        def mixed(sender, **kwargs):
            list(Backup.objects.filter(username="ann", id=3))
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT %s, %s WHERE 1 = %s OR UPPER(%s) = %s",
                    ["a", "b", 1, "c", "d"],
                )
                cursor.execute("SELECT 1 WHERE 'api_token' = %s AND 2 = %s", ["x", 2])

        first, second, third = self.run(mixed).sql
        assert first.params == ([3, "ann"],)  # Django's order: id, then username
        assert second.params == (["a", "b", 1, "c", "d"],)
        assert third.params == (["[redacted]", 2],)

    def test_named_parameters(self):
        def named(sender, **kwargs):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT %(name)s, %(secret_token)s", {"name": "ann", "secret_token": "x"}
                )

        (statement,) = self.run(named).sql
        assert statement.params == ({"name": "ann", "secret_token": "[redacted]"},)

    def test_unmatched_placeholders_redact_everything(self):
        """Parameters that cannot be matched with a column are all redacted."""
        from signaltrace.context import current_options

        options = current_options()
        assert _db.param_labels("SELECT %s", ["a", "b"], False, options) == [
            "[redacted]",
            "[redacted]",
        ]
        sql = 'INSERT INTO "t" ("token", "b") VALUES (DEFAULT, %s)'
        assert _db.param_labels(sql, ["x"], False, options) == ["[redacted]"]
        sql = 'INSERT INTO "t" ("a", "b") VALUES (DEFAULT, %s)'
        assert _db.param_labels(sql, ["x"], False, options) == ["x"]
        sql = 'SELECT 100%% WHERE "token" = %s'
        assert _db.param_labels(sql, ["x"], False, options) == ["[redacted]"]

    def test_values_are_labels_never_objects(self):
        """Values are labelled like kwargs: no str() of user objects, no reference kept."""

        class Loud:
            def __str__(self):  # pragma: no cover - must never run
                raise AssertionError("str() of a parameter")

            __repr__ = __str__

        from signaltrace.context import current_options

        options = current_options()
        when = datetime.datetime(2025, 1, 2, tzinfo=datetime.UTC)
        labels = _db.param_labels(
            "SELECT %s, %s, %s, %s", [Loud(), when, b"x", None], False, options
        )
        assert labels[0].endswith("test_values_are_labels_never_objects.<locals>.Loud>")
        assert labels[1:] == ["<datetime.datetime>", "<bytes>", None]
        many = list(range(30))
        labels = _db.param_labels("SELECT " + ", ".join(["%s"] * 30), many, False, options)
        assert labels == [*range(20), "<10 more>"]
        assert _db.param_labels("SELECT %s", iter([1]), False, options) == "<list_iterator>"
        assert _db.param_labels("INSERT", iter([(1,)]), True, options) == "<list_iterator>"


@pytest.mark.django_db
@pytest.mark.usefixtures("receivers", "record_sql")
class TestAssertMaxQueries:
    def test_passes(self):
        with signaltrace.capture() as trace:
            pinged.send(sender=None)
            pinged.send(sender=None)
        calls = trace.assert_max_queries(n_plus_one, 13)
        assert [c.queries for c in calls] == [13, 13]
        assert trace.assert_max_queries(quiet, 0) == trace.find(receiver=quiet)
        assert assert_max_queries(trace, "n_plus_one", 13) == calls

    def test_failure_lists_the_statements(self):
        with signaltrace.capture() as trace:
            pinged.send(sender=None)
        with pytest.raises(SignalTraceAssertionError) as info:
            trace.assert_max_queries(n_plus_one, 2)
        message = str(info.value)
        headline = message.splitlines()[0]
        assert headline == (
            "Expected each call of tests.test_sql.n_plus_one to run at most 2 queries, "
            "but its call ran more:"
        )
        assert "  tests.test_sql.n_plus_one (line 2) ran 13 queries:" in message
        assert f"    12 × {SELECT_BACKUP}" in message
        assert '     1 × INSERT INTO "testapp_backup"' in message
        assert "13 queries  12 × same query" in message  # the tree below
        assert info.value.trace is trace

    def test_filters_and_several_calls(self):
        with signaltrace.capture() as trace:
            pinged.send(sender="a")
            pinged.send(sender="b")
        assert len(trace.assert_max_queries(quiet, 0, sender="a")) == 1
        with pytest.raises(SignalTraceAssertionError, match="2 of its 2 calls ran more"):
            trace.assert_max_queries(n_plus_one, 1)
        with pytest.raises(SignalTraceAssertionError, match="its call ran more"):
            trace.assert_max_queries(n_plus_one, 1, sender="b")

    def test_not_called(self):
        with signaltrace.capture() as trace:
            pass
        with pytest.raises(SignalTraceAssertionError, match="but it was not called"):
            trace.assert_max_queries(n_plus_one, 5)
        with signaltrace.capture() as trace:
            pinged.send(sender="a")
        with pytest.raises(SignalTraceAssertionError, match="but its call did not match"):
            trace.assert_max_queries(n_plus_one, 50, sender="b")

    def test_without_record_sql_says_how_to_see_them(self, settings):
        settings.SIGNALTRACE = {"RECORD_DB": True, "RECORD_SQL": False}
        with signaltrace.capture() as trace:
            pinged.send(sender=None)
        with pytest.raises(SignalTraceAssertionError) as info:
            trace.assert_max_queries(n_plus_one, 2)
        message = str(info.value)
        assert "ran 13 queries\n" in message
        assert "Hint: Set SIGNALTRACE['RECORD_SQL'] = True" in message

    def test_without_record_db_it_cannot_tell(self, settings):
        settings.SIGNALTRACE = {"RECORD_DB": False}
        with signaltrace.capture() as trace:
            pinged.send(sender=None)
        with pytest.raises(SignalTraceAssertionError, match=r"RECORD_DB'\] is off"):
            trace.assert_max_queries(n_plus_one, 50)

    def test_async_receiver_cannot_be_counted(self):
        sig = Signal()

        async def async_receiver(sender, **kwargs):
            return None

        sig.connect(async_receiver)
        with signaltrace.capture() as trace:
            sig.send(sender=None)
        with pytest.raises(SignalTraceAssertionError, match="it is async"):
            trace.assert_max_queries(async_receiver, 1)

    def test_truncated_trace_cannot_prove_the_limit(self):
        with signaltrace.capture(max_events=3) as trace:
            pinged.send(sender=None)
            pinged.send(sender=None)
        with pytest.raises(SignalTraceAssertionError, match=r"Cannot assert that .* truncated"):
            trace.assert_max_queries(n_plus_one, 13)
        with pytest.raises(SignalTraceAssertionError, match="ran more"):
            trace.assert_max_queries(n_plus_one, 12)  # a call over the limit is proof

    def test_bad_n(self):
        with signaltrace.capture() as trace:
            pinged.send(sender=None)
        with pytest.raises(ValueError, match="n must be a non-negative int"):
            trace.assert_max_queries(n_plus_one, -1)

    def test_unittest_mixin(self, settings):
        class Case(SignalTraceTestMixin, unittest.TestCase):
            def test_block(self):
                with self.assertReceiverMaxQueries(n_plus_one, 13):
                    pinged.send(sender=None)

            def test_after(self):
                with self.captureSignals():
                    pinged.send(sender=None)
                self.assertReceiverMaxQueries(n_plus_one, 2, msg="N+1")

        result = unittest.TestResult()
        Case("test_block").run(result)
        Case("test_after").run(result)
        assert result.testsRun == 2
        assert result.errors == []
        ((_case, text),) = result.failures
        assert "N+1: Expected each call of tests.test_sql.n_plus_one" in text
        assert "12 × SELECT" in text


@pytest.mark.django_db
@pytest.mark.usefixtures("receivers", "record_sql")
class TestViewer:
    def test_details_show_the_statements(self, client, settings):
        settings.SIGNALTRACE = {
            "RECORD_DB": True,
            "RECORD_SQL": True,
            "RECORD_SQL_PARAMS": True,
            "ENABLED": True,
            "LOG_LEVEL": None,
        }
        settings.DEBUG = True  # the viewer's SHOW_CALLBACK
        from signaltrace.sinks.memory import buffer

        with signaltrace.capture() as trace:
            pinged.send(sender=None)
        trace.meta.update(id=trace.trace_id, method="GET", path="/n1/", status=200, view="v")
        buffer().emit(trace)
        html = client.get(f"/__signaltrace__/{trace.trace_id}/").content.decode()
        assert '<span class="st-badge st-b-skipped">12 × same query</span>' in html
        section = html[html.index("<h4>SQL</h4>") :]
        section = section[: section.index("</ol>")]
        assert "SELECT &quot;testapp_backup&quot;.&quot;id&quot;" in section
        assert ">× 12</span>" in section
        assert "params <code>[&quot;u0&quot;]</code>" in section
        assert html.count("<h4>SQL</h4>") == 2  # each call: the quiet one says None.
        data = client.get(f"/__signaltrace__/{trace.trace_id}.json").json()
        assert data["dispatches"][0]["calls"][0]["sql"][0]["count"] == 12


async def _browse_sql(url, chromium, tmp_path, shots):
    from playwright.async_api import expect

    from tests.test_browser import open_page

    errors: list[str] = []
    async with open_page(chromium, tmp_path, errors, console=False) as page:
        await page.goto(url)
        row = page.locator('.st-tree [role="treeitem"]', has_text="n_plus_one")
        await expect(row.locator(".st-b-skipped")).to_have_text("12 × same query")
        await row.click()
        detail = page.locator(".st-detail.st-current")
        await expect(detail.locator("h4", has_text="SQL")).to_be_visible()
        statements = detail.locator(".st-sql li")
        await expect(statements).to_have_count(2)
        await expect(statements.first.locator(".st-sql-count")).to_have_text("× 12")
        await expect(statements.first.locator(".st-sql-params")).to_have_count(10)
        box = await detail.bounding_box()
        code = await statements.first.locator("code").first.bounding_box()
        assert code["x"] + code["width"] <= box["x"] + box["width"] + 1  # wraps, no overflow
        await page.screenshot(path=str(shots / "sql-detail.png"), full_page=True)
        await detail.screenshot(path=str(shots / "sql-panel.png"))
    return errors


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("receivers")
def test_viewer_sql_in_chromium(live_server, settings, tmp_path):
    """The receiver's details list its statements, the N+1 one collapsed with × 12."""
    from tests.test_browser import CHROMIUM, keep, shots_dir

    chromium = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    assert chromium, f"Chromium not found at {CHROMIUM} (apt-get install chromium)"

    settings.DEBUG = True
    settings.SIGNALTRACE = {
        "ENABLED": True,
        "LOG_LEVEL": None,
        "RECORD_DB": True,
        "RECORD_SQL": True,
        "RECORD_SQL_PARAMS": True,
    }
    with signaltrace.capture() as trace:
        pinged.send(sender=None)
    trace_id = keep(trace, "/n-plus-one/")
    url = f"{live_server.url}/__signaltrace__/{trace_id}/"
    errors = asyncio.run(_browse_sql(url, chromium, tmp_path, shots_dir(tmp_path)))
    assert errors == []
