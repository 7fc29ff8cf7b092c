"""System checks signaltrace.W001 (unimported signals), W002 (duplicates), I001 (senderless)."""

from __future__ import annotations

import importlib
import importlib.util
import io
import itertools
import runpy
import sys
import textwrap
from pathlib import Path

import pytest
from django.apps import AppConfig
from django.core.checks import run_checks
from django.core.management import call_command
from django.db import reset_queries
from django.db.models.signals import post_delete, post_save, pre_save

from signaltrace.checks import (
    check_duplicate_receivers,
    check_senderless_receivers,
    check_unimported_signals,
)
from signaltrace.diagnostics import _source
from signaltrace.introspection import receivers_for
from tests import unimportedapp
from tests.diagapp import duplicated
from tests.diagapp.models import Article, Tally
from tests.diagapp.signals import article_published

_counter = itertools.count()

RECEIVER_MODULE = """
from django.db.models.signals import post_save
from django.dispatch import receiver


@receiver(post_save, sender="diagapp.Tally")
def on_tally(sender, **kwargs):
    pass
"""


def ids(messages):
    return [m.id for m in messages]


@pytest.fixture
def make_app(tmp_path, monkeypatch):
    """Write a package under tmp_path and return an (unregistered) AppConfig for it."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names = []

    def make(files, *, config=True):
        name = f"st_fixture_app_{next(_counter)}"
        names.append(name)
        package = tmp_path / name
        package.mkdir()
        (package / "__init__.py").write_text("")
        if config:
            (package / "apps.py").write_text(
                "from django.apps import AppConfig\n\n\n"
                "class FixtureConfig(AppConfig):\n"
                f"    name = {name!r}\n"
            )
        for path, text in files.items():
            target = package / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(text))
        return AppConfig.create(name)

    yield make
    for module in list(sys.modules):
        if any(module == n or module.startswith(n + ".") for n in names):
            del sys.modules[module]


class TestUnimportedSignals:
    def test_fixture_app(self):
        """The real fixture app: signals.py and receivers/audit.py are never imported."""
        app_config = AppConfig.create("tests.unimportedapp")
        signals_msg, audit_msg = check_unimported_signals([app_config])
        assert ids([signals_msg, audit_msg]) == ["signaltrace.W001"] * 2
        assert signals_msg.obj == "tests.unimportedapp.signals"
        assert "(count_tally)" in signals_msg.msg
        assert "never imported" in signals_msg.msg
        assert signals_msg.hint == (
            "Import it in tests.unimportedapp.apps.UnimportedAppConfig.ready(): "
            "`from . import signals  # noqa: F401`."
        )
        assert audit_msg.obj == "tests.unimportedapp.receivers.audit"
        assert "(audit_tally)" in audit_msg.msg
        assert "`from .receivers import audit  # noqa: F401`" in audit_msg.hint
        assert "tests.unimportedapp.signals" not in sys.modules

    @pytest.mark.parametrize(
        ("path", "name", "signal"),
        [
            ("signals.py", "count_tally", post_save),
            ("receivers/audit.py", "audit_tally", post_delete),
        ],
    )
    def test_fixture_modules_would_connect(self, path, name, signal):
        """Run on their own, the fixture's modules connect their receivers: no false alarm."""
        namespace = runpy.run_path(str(Path(unimportedapp.__file__).parent / path))
        try:
            assert namespace[name] in receivers_for(signal, Tally)
        finally:
            signal.disconnect(namespace[name], sender=Tally)

    def test_registered_with_the_signals_tag(self):
        """The check framework runs it for the app configs it is given."""
        app_config = AppConfig.create("tests.unimportedapp")
        messages = run_checks(app_configs=[app_config], tags=["signals"])
        assert [m.obj for m in messages if m.id == "signaltrace.W001"] == [
            "tests.unimportedapp.signals",
            "tests.unimportedapp.receivers.audit",
        ]

    def test_project_is_clean(self):
        """The test project's own apps import their receivers."""
        assert check_unimported_signals() == []

    def test_app_without_its_own_config(self, make_app):
        app_config = make_app({"signals.py": RECEIVER_MODULE}, config=False)
        (message,) = check_unimported_signals([app_config])
        assert message.hint.startswith(f"{app_config.name} has no AppConfig of its own")
        assert f"{app_config.name}.apps whose ready() runs `from . import signals" in message.hint

    def test_package_and_receivers_module(self, make_app):
        app_config = make_app(
            {
                "receivers.py": RECEIVER_MODULE,
                "signals/__init__.py": RECEIVER_MODULE,
                "signals/orders.py": RECEIVER_MODULE,
                "signals/not-a-module.py": RECEIVER_MODULE,
                "signals/notes.txt": "not python",
            }
        )
        assert [m.obj for m in check_unimported_signals([app_config])] == [
            f"{app_config.name}.signals",
            f"{app_config.name}.signals.orders",
            f"{app_config.name}.receivers",
        ]

    def test_imported_or_without_receivers(self, make_app):
        """Imported modules, modules without @receiver, and unparsable files pass."""
        app_config = make_app(
            {
                "signals.py": RECEIVER_MODULE,
                "receivers/__init__.py": "def plain(): pass\n@decorated\ndef other(): pass\n",
                "receivers/broken.py": "def broken(:\n",
            }
        )
        importlib.import_module(f"{app_config.name}.signals")
        try:
            assert check_unimported_signals([app_config]) == []
        finally:
            post_save.disconnect(
                sender=Tally, receiver=sys.modules[f"{app_config.name}.signals"].on_tally
            )

    def test_decorator_forms(self, tmp_path):
        source = tmp_path / "forms.py"
        source.write_text(
            textwrap.dedent(
                """
                import django.dispatch
                from django.dispatch.dispatcher import receiver as hook
                from somewhere import receiver_factory

                @hook(x)
                def by_alias(sender, **kwargs): ...

                @django.dispatch.receiver(x)
                def by_attribute(sender, **kwargs): ...

                @receiver
                async def bare(sender, **kwargs): ...

                @receiver_factory(x)
                def not_one(sender, **kwargs): ...

                class Holder:
                    @hook(x)
                    def method(self): ...
                """
            )
        )
        assert [name for name, _line in _source.receiver_functions(str(source))] == [
            "by_alias",
            "by_attribute",
            "bare",
        ]
        assert _source.receiver_functions(str(tmp_path / "missing.py")) == []

    def test_call_assignments(self, tmp_path):
        source = tmp_path / "assign.py"
        source.write_text("a = Signal()\nb: Signal = Signal()\nc = other\nd.e = Signal()\nf: int\n")
        assert _source.call_assignments(str(source)) == {"a", "b"}
        assert _source.call_assignments(str(tmp_path / "missing.py")) == frozenset()


def _load_copy(module):
    """Execute a module's file again under its own name, as a double import does."""
    spec = importlib.util.spec_from_file_location(module.__name__, module.__file__)
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    return copy


class TestDuplicateReceivers:
    def test_project_is_clean(self):
        assert check_duplicate_receivers() == []

    def test_module_imported_twice(self):
        copy = _load_copy(duplicated)
        try:
            (message,) = check_duplicate_receivers()
        finally:
            article_published.disconnect(copy.on_published)
        assert message.id == "signaltrace.W002"
        assert message.obj == "tests.diagapp.duplicated.on_published"
        assert "is connected to article_published more than once (any sender)" in message.msg
        assert "its module was imported twice" in message.msg
        assert "tests/diagapp/duplicated.py:" in message.hint
        assert check_duplicate_receivers() == []

    def test_any_sender_and_one_sender(self):
        """The same function for any sender and for one model runs twice for that model."""
        pre_save.connect(reset_queries)
        pre_save.connect(reset_queries, sender=Article)
        try:
            (message,) = check_duplicate_receivers()
        finally:
            pre_save.disconnect(reset_queries)
            pre_save.disconnect(reset_queries, sender=Article)
        assert "(any sender, diagapp.Article)" in message.msg
        assert "it was connected again" in message.msg

    def test_under_another_dispatch_uid(self):
        post_delete.connect(reset_queries, sender=Tally)
        post_delete.connect(reset_queries, sender=Tally, dispatch_uid="again")
        try:
            assert ids(check_duplicate_receivers()) == ["signaltrace.W002"]
        finally:
            post_delete.disconnect(reset_queries, sender=Tally)
            post_delete.disconnect(sender=Tally, dispatch_uid="again")

    def test_not_duplicates(self):
        """Distinct senders, closures from a factory and bound methods are fine."""

        def make():
            def handler(sender, **kwargs):
                """Does nothing; only its connection matters."""

            return handler

        class Listener:
            def on(self, sender, **kwargs):
                """Does nothing; only its connection matters."""

        first, second = make(), make()
        one, two = Listener(), Listener()
        connected = [
            (reset_queries, Article),
            (reset_queries, Tally),
            (first, None),
            (second, None),
            (one.on, None),
            (two.on, None),
        ]
        for fn, sender in connected:
            post_delete.connect(fn, sender=sender)
        try:
            assert check_duplicate_receivers() == []
        finally:
            for fn, sender in connected:
                post_delete.disconnect(fn, sender=sender)


def senderless(sender, **kwargs):
    """Does nothing; only its connection matters."""


class TestSenderlessReceivers:
    @pytest.fixture
    def connected(self):
        post_save.connect(senderless)
        yield
        post_save.disconnect(senderless)

    def test_project_is_clean(self):
        assert check_senderless_receivers() == []

    @pytest.mark.usefixtures("connected")
    def test_info(self):
        (message,) = check_senderless_receivers()
        assert message.id == "signaltrace.I001"
        assert message.obj == "tests.test_diagnostics_checks.senderless"
        assert "is connected to post_save without sender=, so it runs for every model" in (
            message.msg
        )
        assert "tests/test_diagnostics_checks.py:" in message.msg

    @pytest.mark.usefixtures("connected")
    def test_opt_out(self, settings):
        settings.SIGNALTRACE = {"CHECK_SENDERLESS": False}
        assert check_senderless_receivers() == []
        settings.SIGNALTRACE = {"CHECK_SENDERLESS": ["tests.test_diagnostics_checks.senderless"]}
        assert check_senderless_receivers() == []
        settings.SIGNALTRACE = {"CHECK_SENDERLESS": ("someone.else",)}
        assert ids(check_senderless_receivers()) == ["signaltrace.I001"]

    def test_djangos_own_and_other_signals_are_left_alone(self):
        """Django's receivers, and receivers of signals that are not model signals, pass."""
        pre_save.connect(reset_queries)
        try:
            assert check_senderless_receivers() == []
        finally:
            pre_save.disconnect(reset_queries)

    @pytest.mark.usefixtures("connected")
    def test_check_command(self):
        """manage.py check lists it (Info does not fail the command)."""
        out, err = io.StringIO(), io.StringIO()
        call_command("check", "--tag", "signals", stdout=out, stderr=err)
        assert "(signaltrace.I001) tests.test_diagnostics_checks.senderless" in (
            out.getvalue() + err.getvalue()
        )


def test_w002_module_imported_under_two_names(monkeypatch):
    """The same function from a module imported under two names is one duplicate."""
    import types as _types

    from django.dispatch import Signal

    from signaltrace import checks as diag_checks
    from signaltrace.diagnostics import discovery

    def count_order(sender, **kwargs):
        pass

    first = _types.FunctionType(count_order.__code__, globals(), "count_order")
    first.__qualname__ = "count_order"
    first.__module__ = "shop.signals"
    second = _types.FunctionType(count_order.__code__, globals(), "count_order")
    second.__qualname__ = "count_order"
    second.__module__ = "signals"
    order_paid = Signal()
    order_paid.connect(first)
    order_paid.connect(second)
    info = discovery.SignalInfo(order_paid, "order_paid", "shop.signals.order_paid", "django")
    monkeypatch.setattr(diag_checks, "discover_signals", lambda: [info])
    messages = diag_checks.check_duplicate_receivers()
    assert order_paid.send(sender=None) == [(first, None), (second, None)]  # runs twice
    (message,) = messages
    assert message.id == "signaltrace.W002"
    assert message.msg.startswith("shop.signals.count_order and signals.count_order is connected")
    assert "its module was imported twice" in message.msg
