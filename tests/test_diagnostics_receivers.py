"""The receiver map: discovering signals, reading connections, formats."""

from __future__ import annotations

import gc
import json
import sys
import types
import weakref

import blinker
import django
import pytest
from django.apps import apps
from django.db.models.signals import ModelSignal, post_save, pre_migrate, pre_save
from django.dispatch import Signal
from django.dispatch.dispatcher import NO_RECEIVERS

import signaltrace
from signaltrace import introspection as conn
from signaltrace.diagnostics.discovery import SignalInfo, discover_signals
from signaltrace.diagnostics.receivers import (
    ReceiverEntry,
    SignalEntry,
    receiver_map,
    render_map,
)
from tests.diagapp import hooks
from tests.diagapp.models import Article, Tally
from tests.diagapp.signals import article_published, exported

#: Not in scope: "tests" is not an installed app (tests.diagapp is).
out_of_scope = Signal()


def by_path():
    return {info.path: info for info in discover_signals()}


def receiver(sender, **kwargs):
    """Does nothing; only its connection matters."""


async def async_receiver(sender, **kwargs):
    """Does nothing; only its connection matters."""


@pytest.fixture
def signal():
    sig = Signal()
    yield sig
    sig.receivers.clear()


class TestDiscovery:
    def test_django_and_project_signals(self):
        found = by_path()
        post = found["django.db.models.signals.post_save"]
        assert (post.name, post.kind, post.signal) == ("post_save", "django", post_save)
        assert post.class_name == "django.db.models.signals.ModelSignal"
        assert "django.core.signals.request_started" in found

    def test_named_after_the_assigning_module(self):
        """A re-exported signal keeps the name of the module that creates it."""
        assert hooks.article_published is article_published
        found = by_path()
        assert found["tests.diagapp.signals.article_published"].signal is article_published
        assert "tests.diagapp.hooks.article_published" not in found

    def test_blinker_named_signals(self):
        info = by_path()["blinker:diagapp.exported"]
        assert (info.name, info.kind, info.signal) == ("diagapp.exported", "blinker", exported)
        assert info.class_name == "blinker.base.NamedSignal"

    def test_blinker_signals_listed_last(self):
        kinds = [info.kind for info in discover_signals()]
        assert kinds == sorted(kinds, key=lambda kind: kind == "blinker")

    def test_out_of_scope_modules_are_not_scanned(self):
        assert all(info.signal is not out_of_scope for info in discover_signals())

    def test_holders(self, monkeypatch):
        """Public names beat private ones; among non-assigning holders the first wins."""
        private_only = Signal()
        shared = Signal()
        unassigned = blinker.Signal()
        monkeypatch.setattr(hooks, "_private_only", private_only, raising=False)
        monkeypatch.setattr(hooks, "_also_published", article_published, raising=False)
        monkeypatch.setattr(hooks, "first_holder", shared, raising=False)
        monkeypatch.setattr(hooks, "second_holder", shared, raising=False)
        monkeypatch.setattr(hooks, "plain_blinker", unassigned, raising=False)
        found = {info.signal: info for info in discover_signals()}
        assert found[private_only].path == "tests.diagapp.hooks._private_only"
        assert found[article_published].name == "article_published"
        assert found[shared].path == "tests.diagapp.hooks.first_holder"
        assert (found[unassigned].kind, found[unassigned].name) == ("blinker", "plain_blinker")

    def test_odd_modules(self, monkeypatch):
        """None placeholders and modules without a file are handled."""
        fake = types.ModuleType("tests.diagapp.generated")
        fake.made_up = made_up = Signal()
        monkeypatch.setitem(sys.modules, "tests.diagapp.generated", fake)
        monkeypatch.setitem(sys.modules, "tests.diagapp.placeholder", None)
        assert by_path()["tests.diagapp.generated.made_up"].signal is made_up


class TestConnections:
    def test_django_details(self, signal):
        """Weak or strong, dispatch_uid, sync or async, any sender or one."""
        signal.connect(receiver)
        signal.connect(receiver, sender=Article, dispatch_uid="article-uid", weak=False)
        signal.connect(async_receiver, sender=Tally)
        any_sender, with_uid, is_async = conn.connections(signal)
        assert (any_sender.receiver, any_sender.any_sender, any_sender.sender) == (
            receiver,
            True,
            None,
        )
        assert (any_sender.weak, any_sender.dispatch_uid, any_sender.is_async) == (
            True,
            None,
            False,
        )
        assert (with_uid.weak, with_uid.dispatch_uid) == (False, "article-uid")
        assert conn.sender_text(with_uid) == "diagapp.Article"
        assert conn.sender_text(any_sender) is None
        assert is_async.is_async

    def test_bound_method_receivers(self, signal):
        class Listener:
            def on(self, sender, **kwargs):
                """Does nothing; only its connection matters."""

        listener = Listener()
        signal.connect(listener.on)
        (found,) = conn.connections(signal)
        assert found.receiver == listener.on
        assert found.dispatch_uid is None

    def test_senders_known_only_by_id(self, signal):
        """An app config sender is named; a sender Django cannot reach is marked unknown."""
        sender = "a-string-sender"
        signal.connect(receiver, sender=sender)
        (found,) = conn.connections(signal, conn.sender_candidates())
        assert found.sender is conn.UNRESOLVED
        assert conn.sender_text(found).startswith("<unknown sender ")
        contenttypes = apps.get_app_config("contenttypes")
        (migrate,) = [
            c
            for c in conn.connections(pre_migrate, conn.sender_candidates())
            if c.sender is contenttypes
        ]
        assert conn.sender_text(migrate) == "<AppConfig contenttypes>"

    def test_dead_receivers_are_skipped_not_cleared(self, signal):
        """A garbage-collected receiver is left out; the entry stays for Django to clear."""

        def temporary(sender, **kwargs):
            """Does nothing; only its connection matters."""

        signal.connect(temporary)
        signal.connect(receiver)
        del temporary
        gc.collect()
        assert [c.receiver for c in conn.connections(signal)] == [receiver]
        assert len(signal.receivers) == 2

    def test_dead_sender(self, signal):
        """Django 6.0+ drops an entry whose sender died; 5.2 only knows its id."""

        class Sender:
            pass

        signal.connect(receiver, sender=Sender)
        del Sender
        gc.collect()
        found = conn.connections(signal, {})
        if django.VERSION >= (6, 0):
            assert found == []
        else:
            assert [c.sender for c in found] == [conn.UNRESOLVED]
        assert len(signal.receivers) == 1

    def test_blinker(self):
        sig = blinker.Signal()

        class Sender:
            pass

        def strong(sender, **kwargs):
            """Does nothing; only its connection matters."""

        sig.connect(receiver)
        sig.connect(strong, sender="by-name", weak=False)
        sig.connect(async_receiver, sender=Sender)
        found = conn.connections(sig)
        assert [(c.receiver, c.weak, c.is_async) for c in found] == [
            (receiver, True, False),
            (strong, False, False),
            (async_receiver, True, True),
        ]
        assert [conn.sender_text(c) for c in found] == [
            None,
            "by-name",
            "tests.test_diagnostics_receivers.TestConnections.test_blinker.<locals>.Sender",
        ]
        assert {c.dispatch_uid for c in found} == {None}

    def test_blinker_dead_entries(self):
        """A dead weak receiver, or a sender whose reference died, is left out or unresolved."""
        sig = blinker.Signal()

        def temporary(sender, **kwargs):
            """Does nothing; only its connection matters."""

        class Sender:
            pass

        sig.connect(temporary, weak=False)
        sig.connect(receiver, sender=Sender)
        (sender_id,) = sig._weak_senders

        class Gone:
            pass

        gone = Gone()
        sig._weak_senders[sender_id] = weakref.ref(gone)
        del gone
        sig.receivers[next(iter(sig.receivers))] = weakref.ref(Gone)
        del Gone
        gc.collect()
        (found,) = conn.connections(sig)
        assert found.receiver is receiver
        assert found.sender is conn.UNRESOLVED


class TestReceiversFor:
    def test_matches_djangos_live_receivers(self, signal):
        signal.connect(receiver, sender=Article)
        signal.connect(async_receiver)
        assert conn.receivers_for(signal, Article) == [receiver, async_receiver]
        assert conn.receivers_for(signal, Tally) == [async_receiver]

    def test_never_fills_the_cache(self):
        before = pre_save.sender_receivers_cache.get(Tally)
        assert conn.receivers_for(pre_save, Tally) == []
        assert pre_save.sender_receivers_cache.get(Tally) is before

    def test_reads_the_no_receivers_marker(self):
        cache = post_save.sender_receivers_cache
        had = cache.get(Tally)
        cache[Tally] = NO_RECEIVERS
        try:
            assert conn.receivers_for(post_save, Tally) == []
        finally:
            if had is None:
                del cache[Tally]
            else:  # pragma: no cover - another test filled it first
                cache[Tally] = had

    def test_no_receivers_at_all(self, signal):
        assert conn.receivers_for(signal, Article) == []


class TestReceiverMap:
    def test_whole_map(self):
        entries = {entry.path: entry for entry in receiver_map()}
        published = entries["tests.diagapp.signals.article_published"]
        assert [r.name for r in published.receivers][:2] == [
            "tests.diagapp.signals.notify_subscribers",
            "tests.diagapp.signals.log_publication",
        ]
        assert published.receivers[0].is_async
        assert not published.receivers[1].weak
        assert entries["django.core.signals.got_request_exception"].receivers == ()

    def test_map_matches_what_runs(self):
        """The receivers listed for a signal are the ones a send calls."""
        (entry,) = receiver_map(signal="tests.diagapp.signals.article_published")
        with signaltrace.capture() as trace:
            article_published.send(sender=Article)
        assert sorted(c.receiver_name for c in trace.calls) == sorted(
            r.name for r in entry.receivers
        )

    def test_filter_by_signal_name_or_path(self):
        assert [e.path for e in receiver_map(signal="post_save")] == [
            "django.db.models.signals.post_save"
        ]
        assert [e.name for e in receiver_map(signal="blinker:diagapp.exported")] == [
            "diagapp.exported"
        ]

    def test_filter_by_sender(self, signal):
        """A sender keeps its own receivers, any-sender ones of model signals, and no others."""
        model_signal = ModelSignal()
        signal.connect(receiver)
        signal.connect(async_receiver, sender=Article)
        model_signal.connect(receiver)
        infos = [
            SignalInfo(signal, "mine", "tests.mine", "django"),
            SignalInfo(model_signal, "model", "tests.model", "django"),
            *discover_signals(),
        ]
        entries = receiver_map(sender=Article, signals=infos)
        paths = [entry.path for entry in entries]
        assert paths[:2] == ["tests.mine", "tests.model"]
        assert [r.name for r in entries[0].receivers] == [
            "tests.test_diagnostics_receivers.async_receiver"
        ]
        assert [r.sender for r in entries[1].receivers] == [None]
        assert "django.db.models.signals.pre_delete" not in paths
        assert "tests.diagapp.signals.article_published" not in paths
        post = next(e for e in entries if e.name == "post_save")
        assert {r.sender for r in post.receivers} == {"diagapp.Article"}


ENTRIES = [
    SignalEntry(
        name='say "hi"',
        path="app.signals.hi",
        kind="django",
        class_name="django.dispatch.dispatcher.Signal",
        receivers=(
            ReceiverEntry(
                name="app.receivers.on_hi",
                filename="/elsewhere/app/receivers.py",
                lineno=3,
                sender="app.Model",
                weak=True,
                dispatch_uid=("tuple", 1),
                is_async=False,
            ),
            ReceiverEntry(
                name='app.receivers.Back\\slash"',
                filename=None,
                lineno=None,
                sender=None,
                weak=False,
                dispatch_uid="uid",
                is_async=True,
            ),
        ),
    ),
    SignalEntry(
        name="quiet",
        path="app.signals.quiet",
        kind="blinker",
        class_name="blinker.base.Signal",
        receivers=(),
    ),
]


class TestFormats:
    def test_text(self):
        text = render_map(ENTRIES)
        assert text.splitlines() == [
            'say "hi"  app.signals.hi  (Signal, 2 receivers)',
            "  1. app.receivers.on_hi  sender=app.Model  sync  weak  "
            "dispatch_uid=('tuple', 1)  /elsewhere/app/receivers.py:3",
            "  2. app.receivers.Back\\slash\"  any sender  async  strong  dispatch_uid='uid'",
            "",
            "No receivers: quiet",
        ]

    def test_text_one_receiver_and_nothing(self):
        one = SignalEntry("one", "a.one", "django", "x.Signal", ENTRIES[0].receivers[:1])
        assert "(Signal, 1 receiver)" in render_map([one])
        assert render_map([]) == "No signals found."

    def test_paths_outside_the_project(self, monkeypatch, tmp_path):
        """Outside the current directory, paths are relative to their sys.path entry."""
        entry = ENTRIES[0].receivers[0]
        monkeypatch.chdir(tmp_path)
        monkeypatch.syspath_prepend("/elsewhere")
        in_path = SignalEntry("s", "a.s", "django", "x.Signal", (entry,))
        assert "  app/receivers.py:3" in render_map([in_path])
        (post,) = receiver_map(signal="django.core.signals.request_started")
        assert "  django/db/__init__.py:" in render_map([post])

    def test_relative_paths_inside_the_project(self):
        (entry,) = receiver_map(signal="tests.diagapp.signals.article_published")
        text = render_map([entry])
        assert "tests/diagapp/signals.py:" in text

    def test_json(self):
        data = json.loads(render_map(ENTRIES, "json"))
        assert data["schema"] == "signaltrace.receivers/1"
        first, quiet = data["signals"]
        assert first["receivers"][0] == {
            "receiver": "app.receivers.on_hi",
            "location": "/elsewhere/app/receivers.py:3",
            "sender": "app.Model",
            "any_sender": False,
            "weak": True,
            "dispatch_uid": "('tuple', 1)",
            "async": False,
        }
        assert first["receivers"][1]["dispatch_uid"] == "uid"
        assert first["receivers"][1]["location"] is None
        assert (quiet["kind"], quiet["receivers"]) == ("blinker", [])

    def test_mermaid(self):
        assert render_map(ENTRIES, "mermaid").splitlines() == [
            "flowchart LR",
            '    s0(["say #quot;hi#quot;"])',
            '    r0["app.receivers.on_hi"]',
            '    s0 -->|"app.Model"| r0',
            '    r1["app.receivers.Back\\slash#quot;"]',
            '    s0 -->|"any sender"| r1',
        ]

    def test_mermaid_shares_receiver_nodes(self):
        twice = [ENTRIES[0], SignalEntry("b", "a.b", "django", "x", ENTRIES[0].receivers[:1])]
        lines = render_map(twice, "mermaid").splitlines()
        assert lines.count('    r0["app.receivers.on_hi"]') == 1
        assert '    s1 -->|"app.Model"| r0' in lines

    def test_dot(self):
        assert render_map([*ENTRIES, ENTRIES[0]], "dot").splitlines() == [
            "digraph signaltrace {",
            "    rankdir=LR;",
            "    node [shape=box];",
            '    "app.signals.hi" [label="say \\"hi\\"", shape=ellipse];',
            '    "app.receivers.on_hi";',
            '    "app.signals.hi" -> "app.receivers.on_hi" [label="app.Model"];',
            '    "app.receivers.Back\\\\slash\\"";',
            '    "app.signals.hi" -> "app.receivers.Back\\\\slash\\"" [label="any sender"];',
            '    "app.signals.hi" [label="say \\"hi\\"", shape=ellipse];',
            '    "app.signals.hi" -> "app.receivers.on_hi" [label="app.Model"];',
            '    "app.signals.hi" -> "app.receivers.Back\\\\slash\\"" [label="any sender"];',
            "}",
        ]
