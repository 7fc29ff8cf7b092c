"""Celery: one trace per task in the worker, linked both ways to what enqueued it.

.. code-block:: python

    SIGNALTRACE = {"CELERY": True}    # pip install "django-signaltrace[celery]"

    # or, in the module that makes your Celery app (proj/celery.py):
    import signaltrace.integrations.celery  # noqa: F401

What it does, through Celery's own signals (Celery's, not Django's: nothing is
connected to a Django signal):

- **Enqueues** (``before_task_publish``/``after_task_publish``, in the
  publishing thread): a task published while a receiver call runs is recorded
  on that call (:attr:`ReceiverCall.tasks <signaltrace.ReceiverCall.tasks>`,
  the JSON call's ``tasks``, ``→ task accounts.tasks.send_welcome enqueued`` in
  the tree). A task published by a ``transaction.on_commit`` callback is
  recorded on the call that registered the callback, marked ``on_commit``
  (see ``signaltrace._commit``; the callables are never wrapped), while
  that call's trace is still open: a closed trace never changes, so a commit
  that comes later leaves the link on the task's side only. A task published
  inside ``transaction.atomic`` (and not from ``on_commit``) is marked
  ``in_atomic``: ``⚠`` in the tree, and
  :func:`~signaltrace.testing.assert_no_task_before_commit` fails on it.
- **Parent link**: the message gets a ``signaltrace_parent`` header,
  ``{"trace_id": ..., "receiver": dotted name or None}``: the trace that was
  recording (the innermost that is not a plain ``capture()``, else the
  innermost) and the receiver that published.
- **In the worker** (``task_prerun``/``task_postrun``): each task execution is
  a trace of kind ``"task"`` labelled with the task's name, whose ``trace_id``
  is the task id's 32 hex digits (``uuid.UUID(task_id).hex``) and whose
  ``parent`` is the header's link. It goes to the store
  (:func:`signaltrace.sinks.keep`, the ``STORE``: use a shared one, such as
  ``CacheStore``, for the web process's viewer to see it) and, with ``OTEL``,
  to OpenTelemetry. Tasks run eagerly (``task_always_eager``, ``apply()``)
  get no trace of their own: their dispatches are recorded inline, in the
  trace that ran them, and the task on the call that ran it (``eager``).
- **OpenTelemetry** (``OTEL``, with a span current when the task is
  published, as under ``opentelemetry-instrumentation-django``): the publish
  runs under the receiver call's span (its id chosen then; the span is
  exported with the trace, with that id, by the OpenTelemetry SDK), so with
  ``opentelemetry-instrumentation-celery`` the publish span, the worker's run
  span and the task trace's own spans join the request's distributed trace.

Tasks are traced only while signaltrace is installed and ``ENABLED``. Every
handler contains its own failures (counted, logged once): a task and its
publishing never see them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Final

from celery import Celery, signals
from django.db import connections

from signaltrace import _commit, hook, sinks
from signaltrace import context as _ctx
from signaltrace._hotpath import call_dispatch, call_facts, call_key, resolve_receiver, running_call
from signaltrace.capturing import capture
from signaltrace.conf import get_config
from signaltrace.context import CURSOR, K_TRACES, log_failure
from signaltrace.records import D_TRACES, EnqueuedTask, task_trace_id
from signaltrace.traces import Trace, add_fact

__all__ = ["HEADER", "disable", "enable", "is_enabled", "parent_link"]

#: The message header that carries the parent link to the worker.
HEADER: Final = "signaltrace_parent"
_UID: Final = "signaltrace.integrations.celery"

#: Task id -> (the open capture, its trace, the OpenTelemetry context at prerun).
_running: dict[str, tuple[capture, Trace, Any]] = {}
_enabled = False
_original_send_task: Any = None


# -- who publishes ----------------------------------------------------------------


def _source() -> tuple[Any, bool]:
    """``(raw receiver call or None, on_commit)``: to whom a task published now belongs.

    The call whose ``on_commit`` callable runs now (unless a dispatch inside it
    set a cursor of its own: its running receiver is nearer), else the
    receiver call running now, else, under ``TestCase.captureOnCommitCallbacks
    (execute=True)``, the call that registered the callback being run.
    """
    registered = _commit.registered()
    if registered is not None:
        return registered, True
    call = running_call(CURSOR.get())
    if call is not None:
        return call, False
    registered = _commit.test_callback()
    if registered is not None:
        return registered, True
    return None, False


def _pick(traces: tuple[Any, ...]) -> Any:
    """The trace a child links to: the innermost that is not a plain ``capture()``."""
    for trace in reversed(traces):
        if trace.kind != "capture":
            return trace
    return traces[-1] if traces else None


def parent_link() -> dict[str, Any] | None:
    """The ``signaltrace_parent`` header for a task published now, or ``None``.

    ``{"trace_id": ..., "receiver": ...}``: the receiver call's trace (even if
    it has closed since: an ``on_commit`` callback that runs late) and the
    receiver's dotted name; outside any receiver call, the open trace of this
    flow and ``None``.
    """
    call, _on_commit = _source()
    if call is not None:
        trace = _pick(call_dispatch(call)[D_TRACES])
        if trace is None:  # pragma: no cover - a recorded dispatch is in one trace at least
            return None
        return {"trace_id": trace.trace_id, "receiver": resolve_receiver(call_key(call))[0]}
    cursor = CURSOR.get()
    if cursor is None:
        return None
    trace = _pick(tuple(t for t in cursor[K_TRACES] if not t.closed))
    return None if trace is None else {"trace_id": trace.trace_id, "receiver": None}


def _in_atomic() -> bool:
    """Whether this thread is inside ``transaction.atomic`` (``TestCase``'s own blocks aside)."""
    for connection in connections.all(initialized_only=True):
        for block in connection.atomic_blocks:
            if not getattr(block, "_from_testcase", False):
                return True
    return False


def _record(call: Any, task: EnqueuedTask) -> bool:
    """Add ``task`` to the raw ``call``'s facts, if its traces are all still open."""
    facts = call_facts(call)

    def add() -> None:
        facts.setdefault("tasks", []).append(task)

    return add_fact(call_dispatch(call)[D_TRACES], add)


# -- Celery's signals -------------------------------------------------------------


def _before_publish(sender: Any = None, headers: Any = None, **kwargs: Any) -> None:
    """Put the parent link into the message's headers."""
    if not _ctx.CAPTURING and _commit.RUNNING.get() is None:
        return
    try:
        link = parent_link()
        if link is not None and isinstance(headers, dict):
            headers.setdefault(HEADER, link)
    except Exception as err:
        log_failure("Celery before_task_publish", err)


def _task_id(headers: Any, body: Any) -> str:
    """The task id: in the headers (message protocol 2) or the body (protocol 1)."""
    for holder in (headers, body):
        if isinstance(holder, dict) and isinstance(holder.get("id"), str):
            return holder["id"]  # type: ignore[no-any-return]
    return ""


def _after_publish(
    sender: Any = None, headers: Any = None, body: Any = None, **kwargs: Any
) -> None:
    """Record the published task on the receiver call that published it."""
    if not _ctx.CAPTURING:
        return
    try:
        call, on_commit = _source()
        if call is None:
            return
        facts = call_facts(call)
        _record(
            call,
            EnqueuedTask(
                name=str(sender),
                id=_task_id(headers, body),
                on_commit=on_commit,
                in_atomic=_in_atomic(),
                span=facts.get("otel"),
            ),
        )
    except Exception as err:
        log_failure("Celery after_task_publish", err)


def _valid_parent(value: Any) -> dict[str, Any] | None:
    """The header's link if it is one (a dict with a 32-hex ``trace_id``), else ``None``."""
    if type(value) is not dict:
        return None
    trace_id = value.get("trace_id")
    receiver = value.get("receiver")
    if type(trace_id) is not str or len(trace_id) != 32 or task_trace_id(trace_id) != trace_id:
        return None
    if receiver is not None and type(receiver) is not str:
        receiver = None
    return {"trace_id": trace_id, "receiver": receiver}


def _prerun(task_id: Any = None, task: Any = None, **kwargs: Any) -> None:
    """Open the task's trace (a task run eagerly is recorded where it runs instead)."""
    try:
        request = getattr(task, "request", None)
        if getattr(request, "is_eager", False):
            if _ctx.CAPTURING:
                call, on_commit = _source()
                if call is not None:
                    _record(
                        call,
                        EnqueuedTask(
                            name=str(task.name), id=str(task_id), on_commit=on_commit, eager=True
                        ),
                    )
            return
        if not hook.is_installed() or not get_config()["ENABLED"] or type(task_id) is not str:
            return
        name = str(getattr(task, "name", "") or "task")
        block = capture(
            kind="task", label=name, parent=_valid_parent(getattr(request, HEADER, None))
        )
        trace = block.__enter__()
        trace_id = task_trace_id(task_id)
        if trace_id is not None:
            trace.trace_id = trace_id
        trace.meta.update(id=trace.trace_id, task=name, task_id=task_id)
        retries = getattr(request, "retries", None)
        if type(retries) is int:
            trace.meta["retries"] = retries
        _running[task_id] = (block, trace, _otel_context())
    except Exception as err:
        log_failure("Celery task_prerun", err)


def _postrun(task_id: Any = None, state: Any = None, **kwargs: Any) -> None:
    """Close the task's trace and hand it to the store (and to OpenTelemetry, with ``OTEL``)."""
    entry = _running.pop(task_id, None) if type(task_id) is str else None
    if entry is None:
        return
    block, trace, otel_context = entry
    try:
        if isinstance(state, str):
            trace.meta["state"] = state
        block.__exit__(None, None, None)
        config = get_config()
        sinks.keep(trace, config)
        if config["OTEL"]:
            _otel_export(trace, otel_context)
    except Exception as err:
        log_failure("Celery task_postrun", err)


# -- OpenTelemetry ----------------------------------------------------------------


def _otel_context() -> Any:
    """The OpenTelemetry context now, if a valid span is current in it (else ``None``)."""
    if not get_config()["OTEL"]:
        return None
    try:
        from opentelemetry import context as otel_context
        from opentelemetry import trace as otel
    except ImportError:  # pragma: no cover - OTEL without OpenTelemetry is refused (E002)
        return None
    if not otel.get_current_span().get_span_context().is_valid:
        return None
    return otel_context.get_current()


def _otel_export(trace: Trace, at_prerun: Any) -> None:
    """The task trace's spans, under the worker's run span.

    ``opentelemetry-instrumentation-celery`` makes the run span current in its
    own ``task_prerun`` handler and ends it in its ``task_postrun``: whichever
    of the two handler pairs runs first, the run span was current either at
    this integration's prerun (kept) or now.
    """
    from opentelemetry import context as otel_context

    from signaltrace.sinks.otel import OpenTelemetrySink

    now = _otel_context()
    chosen = now if now is not None else at_prerun
    token = otel_context.attach(chosen) if chosen is not None else None
    try:
        OpenTelemetrySink().emit(trace)
    finally:
        if token is not None:
            otel_context.detach(token)


def _otel_attach() -> Any:
    """Before a publish from a receiver call: make a span with that call's span id current.

    The id is chosen now (once per call and distributed trace) and kept in the
    call's facts; the OpenTelemetry sink exports the call's span with it later
    (``EnqueuedTask.span``). ``None`` if there is nothing to do.
    """
    from opentelemetry import context as otel_context
    from opentelemetry import trace as otel

    call, _on_commit = _source()
    if call is None:
        return None
    current = otel.get_current_span().get_span_context()
    if not current.is_valid or getattr(otel.get_tracer_provider(), "id_generator", None) is None:
        return None  # no span to join, or no SDK to export the call's span with a chosen id
    facts = call_facts(call)
    preset = facts.get("otel")
    if preset is None or preset[0] != current.trace_id:
        chosen = (current.trace_id, random.getrandbits(64) or 1)

        def add() -> None:
            facts["otel"] = chosen

        if not add_fact(call_dispatch(call)[D_TRACES], add):
            return None  # the call's trace has closed: its spans are exported already
        preset = chosen
    span = otel.NonRecordingSpan(
        otel.SpanContext(
            preset[0],
            preset[1],
            is_remote=False,
            trace_flags=current.trace_flags,
            trace_state=current.trace_state,
        )
    )
    return otel_context.attach(otel.set_span_in_context(span))


def _traced_send_task(self: Celery, *args: Any, **kwargs: Any) -> Any:
    """``Celery.send_task`` run under the publishing receiver call's span (``OTEL``)."""
    original = _original_send_task or Celery.__dict__["send_task"]
    token = None
    if _ctx.CAPTURING or _commit.RUNNING.get() is not None:
        try:
            if get_config()["OTEL"]:
                token = _otel_attach()
        except Exception as err:
            log_failure("Celery publish span", err)
    try:
        return original(self, *args, **kwargs)
    finally:
        if token is not None:
            from opentelemetry import context as otel_context

            otel_context.detach(token)


# -- on and off -------------------------------------------------------------------

_HANDLERS: Final[tuple[tuple[Any, Callable[..., None]], ...]] = (
    (signals.before_task_publish, _before_publish),
    (signals.after_task_publish, _after_publish),
    (signals.task_prerun, _prerun),
    (signals.task_postrun, _postrun),
)


def enable() -> None:
    """Connect the integration to Celery's signals (and the commit hooks). Idempotent.

    Importing this module calls it.
    """
    global _enabled, _original_send_task
    for signal, handler in _HANDLERS:
        signal.connect(handler, weak=False, dispatch_uid=f"{_UID}.{handler.__name__}")
    if _original_send_task is None:
        _original_send_task = Celery.__dict__["send_task"]
        Celery.send_task = _traced_send_task
    _commit.want()
    if hook.is_installed():
        _commit.install()
    _enabled = True


def disable() -> None:
    """Disconnect from Celery's signals and put ``Celery.send_task`` back. Idempotent.

    (The commit-hook copies go with :func:`signaltrace.uninstall`.)
    """
    global _enabled, _original_send_task
    for signal, handler in _HANDLERS:
        signal.disconnect(handler, dispatch_uid=f"{_UID}.{handler.__name__}")
    if _original_send_task is not None:
        Celery.send_task = _original_send_task
        _original_send_task = None
    _enabled = False


def is_enabled() -> bool:
    """Whether :func:`enable` is in effect."""
    return _enabled


enable()
