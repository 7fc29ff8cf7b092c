"""Skipped signals: update(), bulk_create(), bulk_update(), raw deletes, on_delete rules."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import FieldDoesNotExist
from django.db import connection, models, transaction
from django.db.models import Model, QuerySet
from django.db.models.deletion import Collector
from django.db.models.signals import post_save, pre_save
from django.test.utils import CaptureQueriesContext

import signaltrace
from signaltrace import _bulk as bulk
from signaltrace import _skipped as skipped
from signaltrace import context
from signaltrace.diagnostics import SignalsSkippedWarning, assert_no_skipped
from signaltrace.testing import SignalTraceAssertionError
from tests.diagapp.models import (
    Article,
    Author,
    Comment,
    FeaturedArticle,
    Reaction,
    Tally,
    Topic,
)

ARTICLE_RECEIVERS = (
    "tests.diagapp.signals.article_pre_save",
    "tests.diagapp.signals.article_saved",
    "tests.diagapp.signals.count_article",
)
HAS_DB_ON_DELETE = hasattr(models, "DB_CASCADE")


def next_line() -> int:
    """The line after the caller's: where the operation under test is called."""
    return sys._getframe(1).f_lineno + 1


@pytest.fixture
def article(db):
    return Article.objects.create(title="first")


def only(trace):
    (item,) = trace.skipped
    return item


@pytest.mark.django_db
class TestUpdate:
    def test_reports_receivers_and_call_site(self, article):
        """update() on a model with save receivers names them, the rows and the caller."""
        with signaltrace.capture() as trace:
            line = next_line()
            rows = Article.objects.filter(pk=article.pk).update(views=3)
        assert rows == 1
        item = only(trace)
        assert item.operation == "update"
        assert item.model == "diagapp.Article"
        assert item.signals == ("pre_save", "post_save")
        assert item.receivers == ARTICLE_RECEIVERS
        assert item.rows == 1
        assert item.origin.filename == __file__
        assert item.origin.lineno == line
        assert item.origin.function == "TestUpdate.test_reports_receivers_and_call_site"
        assert item.start_ns >= trace.start_ns
        assert trace.events == 1

    def test_shown_in_tree_and_json(self, article):
        """The tree and to_dict() show the skipped dispatch."""
        with signaltrace.capture() as trace:
            Article.objects.update(views=1)
        assert "⚠ update on diagapp.Article skipped pre_save, post_save" in trace.render()
        (data,) = trace.to_dict()["skipped"]
        assert data["operation"] == "update"
        assert data["rows"] == 1
        assert data["receivers"] == list(ARTICLE_RECEIVERS)

    def test_no_rows_no_report(self, db):
        """An update that matched no rows skipped nothing."""
        with signaltrace.capture() as trace:
            assert Article.objects.filter(pk=-1).update(views=3) == 0
        assert trace.skipped == []

    def test_model_without_receivers(self, db):
        """Nothing is reported for a model nobody listens to."""
        Tally.objects.create()
        with signaltrace.capture() as trace:
            Tally.objects.update(count=2)
        assert trace.skipped == []

    def test_errors_propagate_unchanged(self, article):
        """The operation's own exception comes through, and nothing is reported."""
        with signaltrace.capture() as trace, pytest.raises(FieldDoesNotExist, match="nope"):
            Article.objects.update(nope=1)
        assert trace.skipped == []

    def test_proxy_sender(self, article):
        """A proxy's queryset reports the proxy's receivers, not the concrete model's."""
        with signaltrace.capture() as trace:
            FeaturedArticle.objects.update(views=5)
            Article.objects.update(views=6)
        featured, plain = trace.skipped
        assert featured.model == "diagapp.FeaturedArticle"
        assert featured.signals == ("post_save",)
        assert featured.receivers == ("tests.diagapp.signals.featured_saved",)
        assert plain.receivers == ARTICLE_RECEIVERS

    def test_related_manager_add(self, article):
        """A reverse FK manager's add() updates rows without save signals."""
        author = Author.objects.create(name="ann")
        with signaltrace.capture() as trace:
            line = next_line()
            author.articles.add(article)
        item = only(trace)
        assert (item.operation, item.rows, item.origin.lineno) == ("update", 1, line)

    def test_overriding_queryset_method(self, article):
        """An update() override calling super() is the caller; bulk_update stays one report."""

        class LoudQuerySet(QuerySet):
            def update(self, **kwargs):
                return super().update(**kwargs)

        with signaltrace.capture() as trace:
            LoudQuerySet(model=Article).update(views=2)
            LoudQuerySet(model=Article).bulk_update([article], ["views"])
        direct, batched = trace.skipped
        assert direct.origin.function.endswith("LoudQuerySet.update")
        assert batched.operation == "bulk_update"

    def test_m2m_through_rows_are_not_reported(self, article):
        """Auto-created through models never send save signals (m2m_changed covers them)."""
        topic = Topic.objects.create(name="t")
        with signaltrace.capture() as trace:
            article.topics.add(topic)
        assert trace.skipped == []

    def test_ignored_signals_are_left_out(self, article, settings):
        """Signals in IGNORE_SIGNALS are not named (and not reported when all are)."""
        settings.SIGNALTRACE = {"IGNORE_SIGNALS": ["django.db.models.signals.pre_save"]}
        with signaltrace.capture() as trace:
            Article.objects.update(views=1)
        assert only(trace).signals == ("post_save",)
        settings.SIGNALTRACE = {
            "IGNORE_SIGNALS": [
                "django.db.models.signals.pre_save",
                "django.db.models.signals.post_save",
            ]
        }
        with signaltrace.capture() as trace:
            Article.objects.update(views=1)
        assert trace.skipped == []

    def test_record_origin_off(self, article, settings):
        settings.SIGNALTRACE = {"RECORD_ORIGIN": False}
        with signaltrace.capture() as trace:
            Article.objects.update(views=1)
        assert only(trace).origin is None

    def test_nested_captures_both_record(self, article):
        with signaltrace.capture() as outer, signaltrace.capture() as inner:
            Article.objects.update(views=1)
        assert only(outer) is only(inner)

    def test_max_events(self, article):
        """Skipped dispatches count against MAX_EVENTS; the rest are counted as dropped."""
        with signaltrace.capture(max_events=1) as trace:
            Article.objects.update(views=1)
            Article.objects.update(views=2)
        assert len(trace.skipped) == 1
        assert trace.dropped == 1

    def test_inside_a_receiver(self, article):
        """An update() made by a receiver is reported, with the receiver as the caller."""

        def bumps_views(sender, instance, **kwargs):
            Article.objects.filter(pk=instance.pk).update(views=9)

        post_save.connect(bumps_views, sender=Tally)
        try:
            with signaltrace.capture() as trace:
                Tally.objects.create()
        finally:
            post_save.disconnect(bumps_views, sender=Tally)
        assert only(trace).origin.function.endswith("bumps_views")
        assert trace.calls[0].receiver_name.endswith("bumps_views")


@pytest.mark.django_db
class TestBulk:
    def test_bulk_create(self, db):
        objs = [Article(title="a"), Article(title="b")]
        with signaltrace.capture() as trace:
            line = next_line()
            created = Article.objects.bulk_create(objs)
        assert created is not objs  # Django returns a new list, as without signaltrace
        assert created == objs
        item = only(trace)
        assert (item.operation, item.rows, item.origin.lineno) == ("bulk_create", 2, line)
        assert item.receivers == ARTICLE_RECEIVERS

    def test_bulk_create_nothing(self, db):
        """An empty bulk_create() returns its argument and reports nothing."""
        empty: list[Article] = []
        with signaltrace.capture() as trace:
            assert Article.objects.bulk_create(empty) is empty
        assert trace.skipped == []

    def test_bulk_create_keyword_objs(self, db):
        with signaltrace.capture() as trace:
            Article.objects.bulk_create(objs=[Article(title="k")], batch_size=1)
        assert only(trace).rows == 1

    def test_bulk_update_reported_once(self, db):
        """bulk_update() runs update() per batch; it is reported once, as bulk_update."""
        objs = Article.objects.bulk_create([Article(title=str(i)) for i in range(3)])
        for obj in objs:
            obj.views = 7
        with signaltrace.capture() as trace:
            line = next_line()
            rows = Article.objects.bulk_update(objs, ["views"], batch_size=2)
        assert rows == 3
        item = only(trace)
        assert (item.operation, item.rows, item.origin.lineno) == ("bulk_update", 3, line)

    def test_bulk_update_nothing(self, db):
        with signaltrace.capture() as trace:
            assert Article.objects.bulk_update([], ["views"]) == 0
        assert trace.skipped == []

    def test_bulk_update_errors_propagate(self, db):
        with signaltrace.capture() as trace, pytest.raises(ValueError, match="Field names"):
            Article.objects.bulk_update([], [])
        assert trace.skipped == []


@pytest.mark.django_db
class TestDelete:
    def test_raw_delete(self, db):
        """A direct _raw_delete() skips the delete receivers."""
        author = Author.objects.create(name="gone")
        with signaltrace.capture() as trace:
            line = next_line()
            rows = Author.objects.filter(pk=author.pk)._raw_delete("default")
        assert rows == 1
        item = only(trace)
        assert item.operation == "_raw_delete"
        assert item.signals == ("pre_delete",)
        assert item.receivers == ("tests.diagapp.signals.author_deleting",)
        assert (item.rows, item.origin.lineno) == (1, line)

    def test_raw_delete_nothing(self, db):
        with signaltrace.capture() as trace:
            assert Author.objects.filter(pk=-1)._raw_delete("default") == 0
        assert trace.skipped == []

    def test_ordinary_delete_skips_nothing(self, db):
        """delete() sends the delete signals; fast deletes happen only without receivers."""
        author = Author.objects.create(name="kept")
        Tally.objects.create()
        with signaltrace.capture() as trace:
            author.delete()
            Tally.objects.all().delete()
        assert trace.skipped == []
        assert [d.signal_name for d in trace.dispatches] == ["pre_delete"]

    def test_set_null_rows(self, article):
        """SET_NULL clears the link with update(): the related rows' save receivers don't run."""
        Comment.objects.create(article=article, body="a")
        Comment.objects.create(article=article, body="b")
        with signaltrace.capture() as trace:
            line = next_line()
            article.delete()
        item = only(trace)
        assert item.operation == "delete (Comment.article on_delete=SET_NULL)"
        assert item.model == "diagapp.Comment"
        assert item.receivers == ("tests.diagapp.signals.comment_saved",)
        assert (item.rows, item.origin.lineno) == (2, line)

    def test_set_null_without_rows(self, article):
        """No related rows, nothing to report."""
        with signaltrace.capture() as trace:
            article.delete()
        assert trace.skipped == []

    def test_set_callable_rows(self, article):
        """SET(callable) fetches the rows, then updates them without save signals."""
        Reaction.objects.create(article=article, kind="like")
        with signaltrace.capture() as trace:
            line = next_line()
            Article.objects.filter(pk=article.pk).delete()
        item = only(trace)
        assert item.operation == "delete (Reaction.article on_delete=SET(...))"
        assert item.receivers == ("tests.diagapp.signals.reaction_saved",)
        assert (item.rows, item.origin.lineno) == (1, line)
        assert Reaction.objects.get().article is None

    def test_rule_names(self):
        assert bulk._rule_name(models.SET_NULL) == "SET_NULL"
        assert bulk._rule_name(models.SET(1)) == "SET(...)"

        class Rule:
            __name__ = None

        assert bulk._rule_name(Rule()) == "Rule"


@pytest.mark.skipif(not HAS_DB_ON_DELETE, reason="database-level on_delete is Django 6.1+")
@pytest.mark.django_db
class TestDatabaseOnDelete:
    @pytest.fixture
    def folder(self, db):
        from tests.diagdbapp.models import Document, Folder, Label, Page

        folder = Folder.objects.create(name="f")
        document = Document.objects.create(folder=folder, title="d")
        Page.objects.create(document=document)
        Label.objects.create(folder=folder, text="l")
        return folder

    def test_db_cascade_chain(self, folder):
        """DB_CASCADE (followed down the chain) and DB_SET_NULL skip delete and save receivers."""
        from tests.diagdbapp.models import Document, Label, Page

        with signaltrace.capture() as trace:
            line = next_line()
            folder.delete()
        by_model = {item.model: item for item in trace.skipped}
        assert set(by_model) == {"diagdbapp.Document", "diagdbapp.Page", "diagdbapp.Label"}
        assert by_model["diagdbapp.Document"].operation == (
            "delete (Document.folder on_delete=DB_CASCADE)"
        )
        assert by_model["diagdbapp.Document"].signals == ("pre_delete",)
        assert by_model["diagdbapp.Page"].receivers == ("tests.diagdbapp.signals.page_deleted",)
        assert by_model["diagdbapp.Label"].operation == (
            "delete (Label.folder on_delete=DB_SET_NULL)"
        )
        assert by_model["diagdbapp.Label"].signals == ("post_save",)
        assert {item.rows for item in trace.skipped} == {None}  # the database knows, not Django
        assert {item.origin.lineno for item in trace.skipped} == {line}
        assert (Document.objects.count(), Page.objects.count()) == (0, 0)
        assert Label.objects.get().folder_id is None

    def test_rules_are_cached_until_the_registry_changes(self, folder):
        """The walk is made once per model, and again after apps.clear_cache()
        (a model registered later may add a rule)."""
        from django.apps import apps

        from signaltrace import _bulk
        from tests.diagdbapp.models import Folder

        first = _bulk._model_rules(Folder, False)
        assert _bulk._model_rules(Folder, False) is first  # cached
        assert _bulk._any_database_rule()
        models = _bulk._ANY_RULE[0]
        apps.clear_cache()
        again = _bulk._model_rules(Folder, False)
        assert again is not first  # walked again
        assert again == first
        assert _bulk._any_database_rule()
        assert _bulk._ANY_RULE[0] is not models

    def test_queryset_delete_fast_path(self, folder):
        """A fast queryset delete (no receivers on Folder) still reports the cascades."""
        from tests.diagdbapp.models import Folder

        with signaltrace.capture() as trace:
            Folder.objects.all().delete()
        assert len(trace.skipped) == 3

    def test_model_reached_twice(self, folder):
        """A model both collected and cascaded to is looked at once."""
        from tests.diagdbapp.models import Document

        with signaltrace.capture() as trace:
            collector = Collector(using="default")
            collector.collect([folder])
            collector.collect(list(Document.objects.all()))
            collector.delete()
        assert sorted(item.model for item in trace.skipped) == [
            "diagdbapp.Document",
            "diagdbapp.Label",
            "diagdbapp.Page",
        ]

    def test_forced_collection(self, folder):
        """With force_collection, DB_CASCADE rows are deleted by Django, with signals."""
        from tests.diagdbapp.models import Folder

        with signaltrace.capture() as trace:
            collector = Collector(using="default", force_collection=True)
            collector.collect([folder])
            collector.delete()
        assert [item.model for item in trace.skipped] == ["diagdbapp.Label"]
        assert {d.signal_name for d in trace.dispatches} == {"pre_delete", "post_delete"}
        assert not Folder.objects.exists()


@pytest.mark.django_db(transaction=True)
class TestAsync:
    def test_async_methods_report_the_awaiting_line(self, article):
        """aupdate/abulk_create/abulk_update/adelete run in a thread; the origin is the await."""
        Comment.objects.create(article=article, body="c")
        lines = {}

        async def main():
            lines["aupdate"] = next_line()
            await Article.objects.filter(pk=article.pk).aupdate(views=2)
            lines["abulk_create"] = next_line()
            objs = await Article.objects.abulk_create([Article(title="x")])
            objs[0].views = 3
            lines["abulk_update"] = next_line()
            await Article.objects.abulk_update(objs, ["views"])
            lines["model.adelete"] = next_line()
            await article.adelete()

        with signaltrace.capture() as trace:
            asyncio.run(main())
        operations = [(item.operation, item.origin.lineno) for item in trace.skipped]
        assert operations == [
            ("update", lines["aupdate"]),
            ("bulk_create", lines["abulk_create"]),
            ("bulk_update", lines["abulk_update"]),
            ("delete (Comment.article on_delete=SET_NULL)", lines["model.adelete"]),
        ]
        assert skipped.ASYNC_ORIGIN.get() is None

    def test_queryset_adelete(self, article):
        Comment.objects.create(article=article, body="c")

        async def main():
            await Article.objects.all().adelete()

        with signaltrace.capture() as trace:
            asyncio.run(main())
        assert only(trace).origin.function.endswith("main")

    def test_idle_async(self, article):
        """Without a capture, the async wrappers just await Django's method."""

        async def main():
            return await Article.objects.aupdate(views=4)

        assert asyncio.run(main()) == 1

    def test_origin_across_sync_to_async(self, article):
        """A sync update() run through sync_to_async by hand points at the await."""

        async def main():
            await sync_to_async(Article.objects.all().update)(views=1)

        with signaltrace.capture() as trace:
            asyncio.run(main())
        assert only(trace).origin.function.endswith("main")


@pytest.mark.django_db
class TestWarning:
    def test_warns_at_call_site(self, article, settings):
        """SKIPPED_WARNING emits SignalsSkippedWarning at the line that called update()."""
        settings.SIGNALTRACE = {"SKIPPED_WARNING": True}
        line = next_line() + 1
        with signaltrace.capture(), pytest.warns(SignalsSkippedWarning) as record:
            Article.objects.update(views=1)
        (warning,) = record
        assert warning.filename == __file__
        assert warning.lineno == line
        assert "update on diagapp.Article skipped pre_save, post_save" in str(warning.message)

    def test_warning_without_recorded_origin(self, article, settings):
        """The warning still points at the caller when RECORD_ORIGIN is off."""
        settings.SIGNALTRACE = {"SKIPPED_WARNING": True, "RECORD_ORIGIN": False}
        line = next_line() + 1
        with signaltrace.capture() as trace, pytest.warns(SignalsSkippedWarning) as record:
            Article.objects.update(views=1)
        assert (record[0].filename, record[0].lineno) == (__file__, line)
        assert only(trace).origin is None

    def test_error_filter_raises_after_the_operation(self, article, settings):
        """With warnings as errors (as in this suite), the operation has run, then it raises."""
        settings.SIGNALTRACE = {"SKIPPED_WARNING": True}
        with signaltrace.capture(), pytest.raises(SignalsSkippedWarning):
            Article.objects.update(views=8)
        assert Article.objects.get().views == 8

    def test_off_by_default(self, article):
        with signaltrace.capture() as trace:
            Article.objects.update(views=1)  # filterwarnings=error would fail here
        assert len(trace.skipped) == 1


@pytest.mark.django_db(transaction=True)
class TestAsyncWarning:
    def test_async_warning(self, article, settings):
        settings.SIGNALTRACE = {"SKIPPED_WARNING": True}
        line = {}

        async def main():
            line["at"] = next_line()
            await Article.objects.aupdate(views=1)

        with signaltrace.capture(), pytest.warns(SignalsSkippedWarning) as record:
            asyncio.run(main())
        assert (record[0].filename, record[0].lineno) == (__file__, line["at"])

    def test_warning_across_sync_to_async(self, article, settings):
        """The warning of an update() behind a sync_to_async hop points at the await."""
        settings.SIGNALTRACE = {"SKIPPED_WARNING": True}
        line = {}

        async def main():
            line["at"] = next_line()
            await sync_to_async(Article.objects.all().update)(views=1)

        with signaltrace.capture(), pytest.warns(SignalsSkippedWarning) as record:
            asyncio.run(main())
        assert (record[0].filename, record[0].lineno) == (__file__, line["at"])


@pytest.mark.django_db
class TestAssertNoSkipped:
    def test_passes(self, db):
        with signaltrace.capture() as trace:
            Tally.objects.bulk_create([Tally()])
        assert assert_no_skipped(trace) is trace

    def test_fails_listing_each(self, article):
        with signaltrace.capture() as trace:
            Article.objects.update(views=1)
            Article.objects.bulk_create([Article(title="z")])
        with pytest.raises(SignalTraceAssertionError) as info:
            assert_no_skipped(trace)
        message = str(info.value)
        assert "but 2 operations skipped receivers" in message
        assert "update on diagapp.Article" in message
        assert "bulk_create on diagapp.Article" in message
        assert info.value.trace is trace

    def test_one(self, article):
        with signaltrace.capture() as trace:
            Article.objects.update(views=1)
        with pytest.raises(AssertionError, match="but 1 operation skipped"):
            assert_no_skipped(trace)


@pytest.mark.django_db
class TestInstall:
    def test_uninstall_restores_django(self):
        """Uninstalled, Django's own functions are back; installing again is idempotent."""
        wrapped = QuerySet.__dict__["update"]
        assert wrapped.__wrapped__ is bulk._originals[(QuerySet, "update")]
        signaltrace.uninstall()
        try:
            assert not bulk.is_installed()
            assert QuerySet.__dict__["update"] is wrapped.__wrapped__
            assert Collector.__dict__["delete"].__module__ == "django.db.models.deletion"
            assert Model.__dict__["adelete"].__module__ == "django.db.models.base"
            bulk.uninstall()  # idempotent
        finally:
            signaltrace.install()
        assert bulk.is_installed()
        first = QuerySet.__dict__["update"]
        signaltrace.install()
        assert QuerySet.__dict__["update"] is first

    def test_metadata_is_kept(self):
        """Wrappers keep Django's names and flags (alters_data, queryset_only)."""
        for name in ("update", "bulk_create", "bulk_update", "_raw_delete", "aupdate", "adelete"):
            wrapper = QuerySet.__dict__[name]
            original = bulk._originals[(QuerySet, name)]
            assert wrapper.__name__ == original.__name__
            assert wrapper.__dict__.get("alters_data") == original.__dict__.get("alters_data")
            assert wrapper.__dict__.get("queryset_only") == original.__dict__.get("queryset_only")
        assert asyncio.iscoroutinefunction(QuerySet.aupdate)

    def test_detect_skipped_off(self, settings, article):
        """DETECT_SKIPPED=False leaves QuerySet alone."""
        signaltrace.uninstall()
        settings.SIGNALTRACE = {"ENABLED": True, "DETECT_SKIPPED": False}
        try:
            signaltrace.install()
            assert not bulk.is_installed()
            with signaltrace.capture() as trace:
                Article.objects.update(views=1)
            assert trace.skipped == []
        finally:
            signaltrace.uninstall()
            settings.SIGNALTRACE = {"ENABLED": True}
            signaltrace.install()
        assert bulk.is_installed()

    def test_uninstall_leaves_a_later_patch(self):
        """If something replaced a wrapper since, uninstall() leaves theirs in place."""
        ours = QuerySet.__dict__["update"]

        def theirs(self, **kwargs):
            """Someone else's patch, installed after ours."""

        QuerySet.update = theirs
        try:
            bulk.uninstall()
            assert QuerySet.__dict__["update"] is theirs
        finally:
            QuerySet.update = bulk._originals.get((QuerySet, "update"), ours.__wrapped__)
            bulk.install()
        assert QuerySet.__dict__["update"].__wrapped__ is ours.__wrapped__

    def test_no_extra_queries(self, article):
        """Detection reads Python state only: the same SQL runs with and without a capture."""

        def scenario():
            Comment.objects.create(article=article, body="c")
            Reaction.objects.create(article=article, kind="k")
            Article.objects.update(views=2)
            Article.objects.bulk_update([article], ["views"])
            Author.objects.filter(pk=-1)._raw_delete("default")
            Article.objects.filter(pk=article.pk).delete()

        with transaction.atomic():
            with CaptureQueriesContext(connection) as plain:
                scenario()
            transaction.set_rollback(True)
        with CaptureQueriesContext(connection) as traced, signaltrace.capture() as trace:
            scenario()
        assert len(trace.skipped) == 4
        assert [q["sql"] for q in traced.captured_queries] == [
            q["sql"] for q in plain.captured_queries
        ]

    def test_idle_costs_nothing(self, article):
        """With no capture open, each wrapper only calls Django's method."""
        assert context.CAPTURING == 0
        assert Article.objects.update(views=1) == 1
        (created,) = Article.objects.bulk_create([Article(title="i")])
        created.views = 2
        assert Article.objects.bulk_update([created], ["views"]) == 1
        assert Article.objects.filter(pk=created.pk)._raw_delete("default") == 1
        article.delete()

    def test_other_threads_capture(self, article):
        """A capture in another thread does not collect this thread's operations."""
        opened = threading.Event()
        done = threading.Event()
        traces = []

        def other():
            with signaltrace.capture() as trace:
                traces.append(trace)
                opened.set()
                done.wait(5)

        thread = threading.Thread(target=other)
        thread.start()
        opened.wait(5)
        try:
            assert context.CAPTURING
            assert context.active_traces() == ()
            Article.objects.update(views=1)
            article.delete()
        finally:
            done.set()
            thread.join()
        assert traces[0].skipped == []

    def test_failure_is_contained(self, article, monkeypatch, caplog):
        """An internal failure is logged once; the operation's result is untouched."""

        def broken(signal, sender):
            raise RuntimeError("detector broke")

        monkeypatch.setattr(skipped, "receivers_for", broken)
        context._logged.discard("skipped-signal detection")
        with caplog.at_level(logging.WARNING, logger="signaltrace"), signaltrace.capture() as trace:
            assert Article.objects.update(views=1) == 1
        assert trace.skipped == []
        assert "skipped-signal detection" in caplog.text

    def test_pre_save_receiver_only(self, db):
        """Only the signals that have receivers are named."""

        def audit(sender, **kwargs):
            pass

        pre_save.connect(audit, sender=Tally)
        try:
            Tally.objects.create()
            with signaltrace.capture() as trace:
                Tally.objects.update(count=1)
        finally:
            pre_save.disconnect(audit, sender=Tally)
        assert only(trace).signals == ("pre_save",)
        assert only(trace).receivers[0].endswith("test_pre_save_receiver_only.<locals>.audit")
