"""The Celery integration: enqueues on receiver calls, on_commit, task traces, links, OTel.

Everything is real: Debian's ``redis-server`` (started on a free port) is the
broker, the tasks are ``tests.celeryapp``'s, published by Celery and run by a
Celery worker: in this process (``celery.contrib.testing``, where the
in-memory span exporter and the memory store can see them) or in a worker
subprocess (``--pool=solo``) writing its traces to a ``CacheStore`` on the
same Redis, read back by this process's viewer.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import weakref

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

import signaltrace
from signaltrace import _commit, context, sinks, stores
from signaltrace.checks import check_settings
from signaltrace.conf import config_errors
from signaltrace.integrations import celery as integration
from signaltrace.records import EnqueuedTask
from signaltrace.sinks.memory import buffer
from signaltrace.testing import SignalTraceAssertionError, assert_no_task_before_commit
from tests.celeryapp import receivers
from tests.celeryapp.celery import QUEUE, app
from tests.celeryapp.signals import user_registered
from tests.celeryapp.tasks import send_welcome
from tests.services import ROOT, redis_server, stop, wait_until

TASK = "tests.celeryapp.tasks.send_welcome"
ON_COMMIT = "tests.celeryapp.receivers.enqueue_welcome"
NOW = "tests.celeryapp.receivers.enqueue_welcome_now"
ROBUST = "tests.celeryapp.receivers.enqueue_welcome_robust"
VIEWER = "/__signaltrace__/"
#: Seconds to wait, at most, for a worker to run a task and store its trace.
WAIT_S = 20.0


@pytest.fixture(scope="session")
def celery_redis_url(tmp_path_factory):
    """One redis-server for the session: Celery's app keeps its broker connections."""
    with redis_server(tmp_path_factory.mktemp("celery-redis")) as url:
        yield url


@pytest.fixture
def redis_url(celery_redis_url):
    return celery_redis_url


@pytest.fixture(autouse=True)
def broker(redis_url, settings, monkeypatch):
    """The app publishes to the test's Redis; its queue starts empty; failures log afresh."""
    settings.DEBUG = True  # the viewer and X-Signaltrace-Id are shown (SHOW_CALLBACK)
    settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "CONSOLE": None}
    monkeypatch.setattr(context, "_logged", set())
    app.conf.broker_url = redis_url
    app.close()  # a new connection pool, on this broker
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    buffer().clear()
    receivers.SEEN.clear()
    yield client
    assert sinks.flush(10)
    app.conf.task_always_eager = False
    app.close()
    client.close()


def messages(client):
    """The messages waiting in the test queue, as Celery wrote them (JSON)."""
    return [json.loads(raw) for raw in client.lrange(QUEUE, 0, -1)]


def header(client):
    (message,) = messages(client)
    return message["headers"].get(integration.HEADER), message["headers"]["id"]


def register(how, pk=7, username="ann"):
    user_registered.send(sender="register", user_pk=pk, username=username, how=how)


def call_of(trace, name):
    """The one call of the receiver with this dotted name (live or stored trace)."""
    (call,) = [call for call in trace.calls if call.receiver_name == name]
    return call


class TestEnqueue:
    """A task published while a receiver call runs is recorded on that call."""

    def test_a_receiver_s_task_is_on_its_call(self, broker):
        """The call gets the task (name, id); the tree, the JSON and the header say so."""
        with signaltrace.capture(kind="request") as trace:
            register("now")
        link, task_id = header(broker)
        call = call_of(trace, NOW)
        assert call.tasks == (EnqueuedTask(TASK, task_id),)
        assert link == {"trace_id": trace.trace_id, "receiver": NOW}
        assert f"{NOW}  " in str(trace)
        assert f"\n   │  └─ → task {TASK} enqueued\n" in str(trace)
        (dispatch,) = trace.to_dict()["dispatches"]
        calls = {c["receiver"]: c for c in dispatch["calls"]}
        assert calls[NOW]["tasks"] == [
            {"name": TASK, "id": task_id, "on_commit": False, "in_atomic": False, "eager": False}
        ]
        assert calls[ON_COMMIT]["tasks"] == []
        assert call.tasks[0].trace_id == task_id.replace("-", "")

    def test_numbered_tree_keeps_record_numbers(self, broker):
        """The task line is not numbered: assertion messages still point at the right lines."""
        with signaltrace.capture() as trace:
            register("now")
            register("now", pk=8)
        numbered = trace.render(numbered=True).splitlines()
        assert numbered[3].startswith(f"  3. │  ├─ {NOW}  ")
        assert numbered[4] == f"     │  │  └─ → task {TASK} enqueued"
        assert numbered[5].startswith(f"  4. │  └─ {ROBUST}  ")
        assert numbered[6].startswith("  5. └─ user_registered")

    @pytest.mark.django_db
    def test_inside_atomic_is_flagged(self, broker):
        """Published inside transaction.atomic: ⚠ in the tree and a failing assertion."""
        with signaltrace.capture() as trace, transaction.atomic():
            register("now")
        (task,) = call_of(trace, NOW).tasks
        assert task.in_atomic
        assert task.before_commit
        assert not task.on_commit
        text = str(trace)
        assert "1 task before commit" in text.splitlines()[0]
        assert f"→ task {TASK} enqueued  ⚠ inside transaction.atomic" in text
        with pytest.raises(SignalTraceAssertionError) as failure:
            trace.assert_no_task_before_commit()
        message = str(failure.value)
        assert f"{TASK} (id {task.id}) by {NOW} (line 3)" in message
        assert "transaction.on_commit" in message
        with pytest.raises(SignalTraceAssertionError):
            assert_no_task_before_commit(trace)

    @pytest.mark.django_db
    def test_testcase_transaction_does_not_count(self, broker):
        """TestCase's own atomic block is not the receiver's transaction."""
        assert connection.in_atomic_block  # pytest-django's db: a TestCase transaction
        with signaltrace.capture() as trace:
            register("now")
        assert not call_of(trace, NOW).tasks[0].in_atomic
        assert trace.assert_no_task_before_commit() is trace

    @pytest.mark.django_db(transaction=True)
    def test_on_commit_is_attributed_to_the_registering_call(self, broker):
        """on_commit(lambda: task.delay()) is recorded on the receiver that registered it."""
        with signaltrace.capture(kind="request") as trace:
            with transaction.atomic():
                register("on_commit")
                assert messages(broker) == []  # not before the commit
            link, task_id = header(broker)
        call = call_of(trace, ON_COMMIT)
        assert call.tasks == (EnqueuedTask(TASK, task_id, on_commit=True),)
        assert link == {"trace_id": trace.trace_id, "receiver": ON_COMMIT}
        assert f"→ task {TASK} enqueued on commit" in str(trace)
        assert "before commit" not in str(trace)
        assert not _commit.PENDING  # taken when it ran

    @pytest.mark.django_db(transaction=True)
    def test_robust_on_commit(self, broker):
        """A robust on_commit callback is attributed too."""
        with signaltrace.capture() as trace, transaction.atomic():
            register("robust")
        assert call_of(trace, ROBUST).tasks[0].on_commit

    @pytest.mark.django_db(transaction=True)
    def test_on_commit_in_autocommit(self, broker):
        """Outside atomic, on_commit runs the callback at once: still marked on_commit."""
        with signaltrace.capture() as trace:
            register("on_commit")
        assert call_of(trace, ON_COMMIT).tasks[0].on_commit
        assert not _commit.PENDING

    @pytest.mark.django_db
    def test_capture_on_commit_callbacks(self, broker, django_capture_on_commit_callbacks):
        """captureOnCommitCallbacks returns the callables registered; execute=True attributes."""
        with (
            signaltrace.capture() as trace,
            django_capture_on_commit_callbacks(execute=True) as callbacks,
        ):
            register("on_commit")
            registered = connection.run_on_commit[-1][1]
        assert callbacks == [registered]
        assert callbacks[0].__qualname__ == "enqueue_welcome.<locals>.<lambda>"
        (task,) = call_of(trace, ON_COMMIT).tasks
        assert task.on_commit
        assert not task.before_commit

    @pytest.mark.django_db(transaction=True)
    def test_closed_trace_keeps_the_link_on_the_task_side(self, broker):
        """A commit after the trace closed: the header links back, the trace does not change."""
        with transaction.atomic():
            with signaltrace.capture() as trace:
                register("on_commit")
            before = str(trace)
        link, _task_id = header(broker)
        assert link == {"trace_id": trace.trace_id, "receiver": ON_COMMIT}
        assert call_of(trace, ON_COMMIT).tasks == ()
        assert str(trace) == before

    @pytest.mark.django_db(transaction=True)
    def test_rolled_back_callbacks_never_run(self, broker):
        """A savepoint rollback discards the callback; the registry lets it go."""
        with (
            signaltrace.capture() as trace,
            transaction.atomic(),
            contextlib.suppress(RuntimeError),
            transaction.atomic(),
        ):
            register("on_commit")
            assert _commit.PENDING
            raise RuntimeError("roll back")
        gc.collect()
        assert messages(broker) == []
        assert call_of(trace, ON_COMMIT).tasks == ()
        assert not _commit.PENDING

    def test_outside_any_receiver(self, broker):
        """Published by the view itself: linked to the trace, recorded on no call."""
        with signaltrace.capture(kind="request") as trace:
            send_welcome.delay(1, "ann")
        link, _task_id = header(broker)
        assert link == {"trace_id": trace.trace_id, "receiver": None}
        assert "→ task" not in str(trace)

    def test_innermost_kept_kind_is_the_parent(self, broker):
        """Inside a request trace, a test's capture() is not what the task links to."""
        with (
            signaltrace.capture() as outer,
            signaltrace.capture(kind="request") as request,
            signaltrace.capture() as inner,
        ):
            register("now")
        link, _task_id = header(broker)
        assert link["trace_id"] == request.trace_id
        for trace in (outer, request, inner):
            assert call_of(trace, NOW).tasks

    def test_without_a_trace_nothing_is_added(self, broker):
        """No open trace: the message carries no link."""
        send_welcome.delay(1, "ann")
        assert header(broker)[0] is None

    def test_eager_tasks_run_inline(self, broker):
        """task_always_eager: no trace of its own, its dispatches nested where it ran."""
        app.conf.task_always_eager = True
        with signaltrace.capture(kind="request") as trace:
            register("now", username="eve")
        call = call_of(trace, NOW)
        (task,) = call.tasks
        assert task.eager
        assert not task.before_commit
        assert [d.signal_name for d in call.children] == ["welcome_sent"]
        assert f"→ task {TASK} ran eagerly (inline)" in str(trace)
        assert receivers.SEEN == [("eve", 7)]
        assert messages(broker) == []
        assert [t.kind for t in buffer().traces()] == []


class TestCommitHooks:
    """Django's commit-hook behaviour is Django's, with the integration enabled."""

    def test_copies_installed_and_removed_with_the_hook(self):
        """uninstall() puts Django's very functions back; install() the copies again."""
        assert BaseDatabaseWrapper.__dict__["on_commit"] is _commit.REPLACEMENTS["on_commit"]
        signaltrace.uninstall()
        originals = {name: BaseDatabaseWrapper.__dict__[name] for name in _commit.REPLACEMENTS}
        assert all(f.__module__ == "django.db.backends.base.base" for f in originals.values())
        assert not _commit.is_installed()
        signaltrace.install()
        assert _commit.is_installed()

    @pytest.mark.django_db(transaction=True)
    def test_robust_failures_logged_as_django_logs_them(self, caplog):
        """A robust callback that raises is logged with Django's message; others still run."""
        ran = []

        def broken():
            raise ValueError("no")

        with (
            caplog.at_level(logging.ERROR, logger="django.db.backends.base"),
            signaltrace.capture(),
            transaction.atomic(),
        ):
            transaction.on_commit(broken, robust=True)
            transaction.on_commit(lambda: ran.append(1))
        (record,) = caplog.records
        assert record.getMessage() == (
            f"Error calling {broken.__qualname__} in on_commit() during transaction (no)."
        )
        assert record.exc_info is not None
        assert ran == [1]
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="django.db.backends.base"):
            transaction.on_commit(broken, robust=True)
        assert caplog.records[0].getMessage() == (
            f"Error calling {broken.__qualname__} in on_commit() (no)."
        )

    @pytest.mark.django_db(transaction=True)
    def test_errors_as_django_raises_them(self):
        """Not callable: TypeError; a callback's own exception propagates as itself."""
        with pytest.raises(TypeError, match="on_commit\\(\\)'s callback must be a callable"):
            transaction.on_commit(None)
        error = KeyError("x")

        def fails():
            raise error

        with pytest.raises(KeyError) as raised, transaction.atomic():
            transaction.on_commit(fails)
        assert raised.value is error
        connection.set_autocommit(False)
        try:
            with pytest.raises(transaction.TransactionManagementError):
                transaction.on_commit(fails)
        finally:
            connection.set_autocommit(True)


class Unreferenceable:
    """A callable that cannot be weakly referenced (no ``__weakref__``)."""

    __slots__ = ("seen",)

    def __init__(self):
        self.seen = []

    def __call__(self):
        self.seen.append(_commit.registered())


class TestCommitRegistry:
    """Which receiver call registered each pending callable: the edges."""

    @pytest.mark.django_db(transaction=True)
    def test_callables_without_weak_references_are_known_by_id(self):
        """A callable that cannot be weakly referenced is noted by id while pending."""
        callback = Unreferenceable()
        signal = type(user_registered)()

        def registers(sender, **kwargs):
            transaction.on_commit(callback)
            transaction.on_commit(callback)  # twice: two registrations, taken in turn

        def unnoted():
            callback.seen.append("unnoted")

        signal.connect(registers, weak=False)
        with signaltrace.capture(), transaction.atomic():
            transaction.on_commit(unnoted)  # outside any receiver: not noted
            signal.send(sender="s")
        assert callback.seen[0] == "unnoted"
        assert None not in callback.seen[1:]
        assert len(callback.seen) == 3
        assert not _commit.PENDING

    @pytest.mark.django_db(transaction=True)
    def test_autocommit_outside_a_receiver(self):
        """on_commit in autocommit mode, outside any receiver: runs at once, unmarked."""
        callback = Unreferenceable()
        with signaltrace.capture():
            transaction.on_commit(callback)
        assert callback.seen == [None]

    @pytest.mark.django_db(transaction=True)
    def test_the_registry_is_bounded_and_forgets_the_dead(self, monkeypatch):
        """Past MAX_PENDING it starts afresh; a discarded callable's entries go with it."""
        signal = type(user_registered)()

        def registers(sender, **kwargs):
            def twice():
                pass

            transaction.on_commit(twice)
            transaction.on_commit(twice)
            transaction.on_commit(lambda: None)

        signal.connect(registers, weak=False)
        with (
            signaltrace.capture(),
            transaction.atomic(),
            contextlib.suppress(RuntimeError),
            transaction.atomic(),
        ):
            signal.send(sender="s")
            assert len(_commit.PENDING) == 2
            raise RuntimeError("roll back")
        gc.collect()
        assert not _commit.PENDING
        monkeypatch.setattr(_commit, "MAX_PENDING", 1)
        with signaltrace.capture(), transaction.atomic():
            signal.send(sender="s")
            assert len(_commit.PENDING) == 1  # cleared when the lambda came
        assert not _commit.PENDING

    def test_a_dead_registration_matches_nothing(self):
        """An entry under a reused id whose object is another one is not a match."""

        class Other:
            pass

        func, other = Other(), Other()
        _commit.PENDING[id(func)] = [(weakref.ref(other), "call")]
        try:
            assert _commit._find(func, take=True) is None
        finally:
            _commit.PENDING.clear()

    def test_publish_outside_captureoncommitcallbacks(self, broker):
        """With callables pending, a publish outside any receiver and test helper is unattributed."""
        _commit.PENDING[0] = [(None, "call")]
        try:
            assert _commit.test_callback() is None
        finally:
            _commit.PENDING.clear()


class TestHandlers:
    """Celery's signal handlers, called as Celery calls them: edges and containment."""

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("x", None),
            ({"trace_id": "short"}, None),
            ({"trace_id": "A" * 32}, None),
            ({"trace_id": "a" * 32, "receiver": 5}, {"trace_id": "a" * 32, "receiver": None}),
            ({"trace_id": "a" * 32, "receiver": "r"}, {"trace_id": "a" * 32, "receiver": "r"}),
        ],
    )
    def test_parent_header_is_checked(self, value, expected):
        """Only a dict with a 32-hex trace id (and a str receiver) is a parent link."""
        assert integration._valid_parent(value) == expected

    def test_task_id_in_headers_or_body(self):
        """Message protocol 2 has the id in the headers, protocol 1 in the body."""
        assert integration._task_id({"id": "h"}, {"id": "b"}) == "h"
        assert integration._task_id({}, {"id": "b"}) == "b"
        assert integration._task_id(None, None) == ""

    def test_no_link_outside_traces(self):
        """Without a trace in this flow there is no link (and a bad headers value is left)."""
        assert integration.parent_link() is None
        with signaltrace.capture():
            integration._before_publish(sender=TASK, headers="not a dict")

    def test_a_task_run_directly(self):
        """prerun/postrun without a worker: a non-UUID id, odd retries and state."""

        class Request:
            retries = "many"

        class Task:
            name = TASK
            request = Request()

        integration._prerun(task_id="not-a-uuid", task=Task())
        integration._postrun(task_id="not-a-uuid", state=None)
        integration._postrun(task_id="never-started")
        (trace,) = [t for t in buffer().traces() if t.kind == "task"]
        assert trace.meta["task_id"] == "not-a-uuid"
        assert "retries" not in trace.meta
        assert "state" not in trace.meta

    def test_eager_without_a_call(self):
        """An eager task outside any receiver, or outside any trace: nothing to record."""
        app.conf.task_always_eager = True
        send_welcome.delay(1, "ann")
        with signaltrace.capture() as trace:
            send_welcome.delay(2, "bob")
        assert [d.signal_name for d in trace.dispatches] == ["welcome_sent"]

    def test_failures_are_contained(self, monkeypatch, caplog):
        """A handler that fails is logged once; the publish and the task go on."""

        def broken(*args, **kwargs):
            raise RuntimeError("boom")

        before = signaltrace.stats()["internal_failures"]
        monkeypatch.setattr(integration, "parent_link", broken)
        monkeypatch.setattr(integration, "_record", broken)
        monkeypatch.setattr(integration, "capture", broken)
        monkeypatch.setattr(integration.sinks, "keep", broken)
        with signaltrace.capture():
            register("now")
        integration._prerun(task_id="t", task=send_welcome)
        integration._running["t"] = (signaltrace.capture(), None, None)
        integration._postrun(task_id="t")
        assert signaltrace.stats()["internal_failures"] - before == 4
        for place in ("before_task_publish", "after_task_publish", "task_prerun", "task_postrun"):
            assert f"Celery {place}" in caplog.text

    def test_enable_and_disable_are_idempotent(self):
        """enable() twice, disable() twice, enable() while uninstalled."""
        integration.enable()
        integration.disable()
        integration.disable()
        assert integration.Celery.send_task is not integration._traced_send_task
        signaltrace.uninstall()
        try:
            integration.enable()
            assert not _commit.is_installed()
        finally:
            signaltrace.install()
        assert _commit.is_installed()
        assert integration.is_enabled()


class TestSettings:
    """``SIGNALTRACE["CELERY"]``."""

    def test_must_be_a_bool(self):
        """Anything but a bool is signaltrace.E002."""
        (error,) = config_errors({"CELERY": "yes"})
        assert error[0] == "CELERY"
        assert "a bool" in error[1]

    def test_needs_celery(self, settings, monkeypatch):
        """True without Celery installed is an error (and install() refuses)."""
        monkeypatch.setitem(sys.modules, "celery", None)  # what find_spec reports as missing
        settings.SIGNALTRACE = {"CELERY": True}
        assert [m.id for m in check_settings()] == ["signaltrace.E002"]
        assert "django-signaltrace[celery]" in check_settings()[0].msg
        with pytest.raises(Exception, match=r"celery"):
            signaltrace.install()

    def test_setting_enables_the_integration(self, settings):
        """CELERY: True connects the integration when signaltrace installs."""
        integration.disable()
        assert not integration.is_enabled()
        settings.SIGNALTRACE = {"ENABLED": True, "CELERY": True}
        signaltrace.install()
        assert integration.is_enabled()


@pytest.fixture
def in_process_worker(broker):
    """A Celery worker thread in this process (solo pool), on the test broker.

    Celery's worker sets up logging for the process (the root logger's level,
    its handlers): put back afterwards, for the other tests' ``caplog``.
    """
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    try:
        with start_worker(
            app, pool="solo", loglevel="WARNING", perform_ping_check=False, shutdown_timeout=20
        ):
            yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


def kept(trace_id, store=None):
    """The trace with this id, once it is in the store (bounded wait)."""
    store = store or stores.get_store()
    return wait_until(lambda: store.get(trace_id), WAIT_S, f"trace {trace_id} in the store")


@pytest.mark.django_db(transaction=True)
class TestWorker:
    """In the worker, each task execution is a trace of kind "task", linked to its parent."""

    @pytest.fixture(autouse=True)
    def _urls(self, settings):
        settings.ROOT_URLCONF = "tests.celeryapp.urls"

    def test_request_to_task(self, client, in_process_worker):
        """A request's receiver enqueues on commit; the task's trace links back, both ways."""
        response = client.get("/register/", {"how": "on_commit", "username": "ann"})
        request_id = response["X-Signaltrace-Id"]
        request = stores.get_store().get(request_id)
        (task,) = call_of(request, ON_COMMIT).tasks
        assert task.on_commit
        child = kept(task.trace_id)
        assert child.kind == "task"
        assert child.label == TASK
        assert child.trace_id == task.trace_id
        assert child.parent == {"trace_id": request_id, "receiver": ON_COMMIT}
        assert [c.receiver_name for c in child.calls] == [
            "tests.celeryapp.receivers.record_welcome",
            "tests.celeryapp.receivers.greet",
        ]
        assert child.meta["state"] == "SUCCESS"
        assert child.meta["task_id"] == task.id

        # The viewer: the request's page links to the task, the task's back to the receiver.
        page = client.get(f"{VIEWER}{request_id}/").content.decode()
        assert f'class="st-task-link" href="../{task.trace_id}/"' in page
        task_page = client.get(f"{VIEWER}{task.trace_id}/").content.decode()
        node = re.search(rf'href="../{request_id}/#(n\d+)"><code>{ON_COMMIT}</code>', task_page)
        assert node is not None
        assert re.search(rf'id="{node.group(1)}" class="st-node st-call', page)
        assert f'class="st-parent" href="../{request_id}/"' in task_page

    def test_not_traced_while_uninstalled(self, in_process_worker):
        """With signaltrace uninstalled, the worker runs tasks untraced."""
        signaltrace.uninstall()
        try:
            result = send_welcome.delay(3, "cy")
            wait_until(lambda: receivers.SEEN, WAIT_S, "the task ran")
        finally:
            signaltrace.install()
        assert stores.get_store().get(result.id.replace("-", "")) is None


class TestOpenTelemetry:
    """With OTEL, the receiver's span is the parent of the publish; the worker joins the trace."""

    @pytest.fixture
    def otel(self, settings):
        from opentelemetry import trace as otel
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        from tests.test_otel import EXPORTER, PROVIDER

        if otel.get_tracer_provider() is not PROVIDER:
            otel.set_tracer_provider(PROVIDER)
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "CONSOLE": None, "OTEL": True}
        settings.ROOT_URLCONF = "tests.celeryapp.urls"
        settings.MIDDLEWARE = ["signaltrace.middleware.SignalTraceMiddleware"]
        DjangoInstrumentor().instrument(tracer_provider=PROVIDER)
        CeleryInstrumentor().instrument(tracer_provider=PROVIDER)
        EXPORTER.clear()
        yield EXPORTER
        CeleryInstrumentor().uninstrument()
        DjangoInstrumentor().uninstrument()
        EXPORTER.clear()

    @pytest.mark.django_db(transaction=True)
    def test_one_distributed_trace(self, client, otel, in_process_worker):
        """Request span > receiver span > publish span > run span > task's signal spans."""
        response = client.get("/register/", {"how": "on_commit"})
        request = stores.get_store().get(response["X-Signaltrace-Id"])
        (task,) = call_of(request, ON_COMMIT).tasks
        kept(task.trace_id)

        def by_name(name):
            found = [s for s in otel.get_finished_spans() if s.name == name]
            return found[0] if found else None

        assert sinks.flush(10)
        run = wait_until(lambda: by_name(f"run/{TASK}"), WAIT_S, "the worker's run span")
        wait_until(lambda: by_name("signal welcome_sent"), WAIT_S, "the task trace's spans")
        receiver = by_name(f"receiver {ON_COMMIT}")
        publish = by_name(f"apply_async/{TASK}")
        signal = by_name("signal welcome_sent")
        assert publish.parent.span_id == receiver.context.span_id
        assert run.parent.span_id == publish.context.span_id
        assert signal.parent.span_id == run.context.span_id
        assert len({s.context.trace_id for s in (receiver, publish, run, signal)}) == 1


class TestPublishSpan:
    """The span a publish runs under (OTEL), without a worker."""

    @pytest.fixture(autouse=True)
    def _otel(self, settings):
        from opentelemetry import trace as otel

        from tests.test_otel import PROVIDER

        if otel.get_tracer_provider() is not PROVIDER:
            otel.set_tracer_provider(PROVIDER)
        settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None, "CONSOLE": None, "OTEL": True}
        self.tracer = PROVIDER.get_tracer("tests")

    def test_one_span_id_per_call_and_trace(self, broker):
        """Two tasks of one call share its chosen span id; no span, no id."""
        signal = type(user_registered)()

        def twice(sender, **kwargs):
            send_welcome.delay(1, "a")
            send_welcome.delay(2, "b")

        signal.connect(twice, weak=False)
        with self.tracer.start_as_current_span("request"), signaltrace.capture() as trace:
            signal.send(sender="s")
            send_welcome.delay(3, "c")  # outside the receiver: no span chosen
        first, second = trace.calls[0].tasks
        assert first.span is not None
        assert first.span == second.span
        with signaltrace.capture() as unspanned:
            signal.send(sender="s")
        assert [task.span for task in unspanned.calls[0].tasks] == [None, None]

    @pytest.mark.django_db(transaction=True)
    def test_closed_trace_chooses_no_span(self, broker):
        """A commit after the trace closed: its spans are exported already, none is chosen."""
        with (
            self.tracer.start_as_current_span("request"),
            transaction.atomic(),
            signaltrace.capture() as trace,  # closes before the atomic block commits
        ):
            register("on_commit")
        assert header(broker)[0]["trace_id"] == trace.trace_id
        assert call_of(trace, ON_COMMIT).tasks == ()

    def test_a_failure_leaves_the_publish_alone(self, broker, monkeypatch):
        """If choosing the span fails, the task is published all the same."""

        def broken():
            raise RuntimeError("boom")

        monkeypatch.setattr(integration, "_otel_attach", broken)
        with signaltrace.capture() as trace:
            register("now")
        assert call_of(trace, NOW).tasks
        assert len(messages(broker)) == 1


@pytest.fixture
def worker_process(redis_url, tmp_path):
    """``celery worker --pool=solo`` in a subprocess, storing its traces in Redis."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.celeryapp.settings",
        "SIGNALTRACE_TEST_REDIS": redis_url,
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.celeryapp.celery:app",
        "worker",
        "--pool=solo",
        "--loglevel=WARNING",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        f"--hostname=signaltrace-{os.getpid()}@%h",
    ]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
        )
        try:
            yield process, log
        finally:
            stop(process)


@pytest.mark.django_db(transaction=True)
def test_link_across_processes(client, settings, redis_url, worker_process):
    """A request here, its task in a worker process: one chain in the shared store."""
    process, log = worker_process
    settings.ROOT_URLCONF = "tests.celeryapp.urls"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    }
    settings.SIGNALTRACE = {
        "ENABLED": True,
        "LOG_LEVEL": None,
        "CONSOLE": None,
        "STORE": "signaltrace.stores.CacheStore",
    }
    response = client.get("/register/", {"how": "on_commit", "username": "ann", "pk": "42"})
    request_id = response["X-Signaltrace-Id"]
    assert sinks.flush(10)
    store = stores.get_store()
    request = store.get(request_id)
    (task,) = call_of(request, ON_COMMIT).tasks
    try:
        child = kept(task.trace_id, store)
    except AssertionError:
        log.seek(0)
        raise AssertionError(log.read().decode(errors="replace")) from None
    assert process.poll() is None
    assert child.kind == "task"
    assert child.parent == {"trace_id": request_id, "receiver": ON_COMMIT}
    assert [c.receiver_name for c in child.calls] == [
        "tests.celeryapp.receivers.record_welcome",
        "tests.celeryapp.receivers.greet",
    ]
    assert child.dispatches[0].kwargs == {"user_pk": 42, "username": "ann"}
    listing = {entry.trace_id: entry for entry in store.recent()}
    assert listing[task.trace_id].parent == {"trace_id": request_id, "receiver": ON_COMMIT}
    page = client.get(f"{VIEWER}{request_id}/").content.decode()
    assert f'class="st-task-link" href="../{task.trace_id}/"' in page
    task_page = client.get(f"{VIEWER}{task.trace_id}/").content.decode()
    assert f'href="../{request_id}/#' in task_page
    if os.environ.get("SIGNALTRACE_SHOW_TREES"):  # for the docs: the two real trees
        print(f"\nX-Signaltrace-Id: {request_id}\n{request.render()}\n\n{child.render()}")
