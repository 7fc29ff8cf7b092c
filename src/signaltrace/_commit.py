"""Which receiver call registered each pending ``on_commit`` callback, and which one runs now.

For the Celery integration: a task published by ``transaction.on_commit(lambda:
task.delay(pk))`` is attributed to the receiver call that registered the
callback. Nothing is wrapped: ``captureOnCommitCallbacks()`` and
``connection.run_on_commit`` still hold the very callables registered. Instead,
while an integration wants it (:func:`want`) and the hook is installed,
``BaseDatabaseWrapper.on_commit`` and ``run_and_clear_commit_hooks`` are
Django's own code (one body per shape, :data:`signaltrace._compat.COMMIT_HOOK_LOG`)
with two notes added inline:

- ``on_commit()`` inside ``atomic``, while a receiver call runs in this flow
  and some capture is open, notes which call registered the callable
  (:data:`PENDING`, by identity: a weak reference where the callable allows
  one, else its id, for as long as it is pending);
- the commit-hook loop, and ``on_commit()`` in autocommit mode (which calls the
  callable at once), set :data:`RUNNING` to that call while the callable runs.

Callables that never run (a rolled-back savepoint, a closed connection)
simply stay noted until they are garbage collected (or the bounded registry
is cleared). Reading the note is for whoever publishes (:func:`registered`,
:func:`test_callback`); nothing here records into a trace.

The one difference from Django's code: a robust callback's failure is logged
by these copies, so the log record's ``pathname``/``lineno`` name this module
(message, level, logger and ``exc_info`` are Django's).
"""

from __future__ import annotations

import functools
import sys
import weakref
from contextvars import ContextVar, Token
from types import CodeType, FrameType
from typing import Any, Final

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.base import logger as _logger
from django.db.transaction import TransactionManagementError

from . import context as _ctx
from ._compat import COMMIT_HOOK_LOG
from ._hotpath import running_call
from .context import CURSOR, log_failure

__all__ = [
    "PENDING",
    "RUNNING",
    "install",
    "is_installed",
    "registered",
    "test_callback",
    "uninstall",
    "want",
]

#: ``id(callable) -> [(weak reference or None, raw call), ...]``: pending ``on_commit``
#: callables registered while a receiver call ran, oldest first.
PENDING: dict[int, list[tuple[Any, Any]]] = {}
#: Most callables noted at once; past it the registry starts afresh (bounded memory).
MAX_PENDING: Final = 10_000
#: ``(raw call, cursor)`` while an ``on_commit`` callable that call registered
#: runs in this flow (the cursor in effect when it started), else ``None``.
RUNNING: Final[ContextVar[tuple[Any, Any] | None]] = ContextVar(
    "signaltrace_on_commit", default=None
)

_wanted = False
_originals: dict[str, Any] = {}


def want() -> None:
    """Have :func:`install` (called by ``signaltrace.install()``) put the copies in."""
    global _wanted
    _wanted = True


def _forget(key: int, ref: weakref.ref[Any]) -> None:
    entries = PENDING.get(key)
    if entries is None:  # pragma: no cover - taken or cleared entries drop their refs first
        return
    entries[:] = [entry for entry in entries if entry[0] is not ref]
    if not entries:
        PENDING.pop(key, None)


def _note(func: Any) -> None:
    """Note that the receiver call running now (if any) registered ``func``."""
    try:
        call = running_call(CURSOR.get())
        if call is None:
            return
        key = id(func)
        try:
            ref: Any = weakref.ref(func, functools.partial(_forget, key))
        except TypeError:  # cannot be weakly referenced: known by id while pending
            ref = None
        if len(PENDING) >= MAX_PENDING:
            PENDING.clear()
        PENDING.setdefault(key, []).append((ref, call))
    except Exception as err:  # pragma: no cover - nothing above raises
        log_failure("on_commit registration", err)


def _find(func: Any, *, take: bool) -> Any:
    """The raw call that registered ``func`` (the oldest registration), or ``None``."""
    entries = PENDING.get(id(func))
    if not entries:
        return None
    for i, (ref, call) in enumerate(entries):
        if ref is None or ref() is func:
            if take:
                del entries[i]
                if not entries:
                    PENDING.pop(id(func), None)
            return call
    return None


def _running(func: Any) -> Token[tuple[Any, Any] | None] | None:
    """Set :data:`RUNNING` for ``func`` if a receiver call registered it (taken off
    :data:`PENDING`); the token to reset it with, or ``None``."""
    try:
        call = _find(func, take=True)
        if call is None:
            return None
        return RUNNING.set((call, CURSOR.get()))
    except Exception as err:  # pragma: no cover - nothing above raises
        log_failure("on_commit callback", err)
        return None


def _running_now(func: Any) -> Token[tuple[Any, Any] | None] | None:
    """In autocommit mode: ``func`` runs at once, inside the call that registers it."""
    try:
        cursor = CURSOR.get()
        call = running_call(cursor)
        if call is None:
            return None
        return RUNNING.set((call, cursor))
    except Exception as err:  # pragma: no cover - nothing above raises
        log_failure("on_commit callback", err)
        return None


def registered() -> Any:
    """The raw call whose ``on_commit`` callable runs now, if this flow is still its own.

    ``None`` if no noted callable runs, or if a dispatch made inside it set a
    cursor of its own (its receiver is then the nearer call).
    """
    marker = RUNNING.get()
    if marker is None or CURSOR.get() is not marker[1]:
        return None
    return marker[0]


_capture_code: CodeType | None = None


def test_callback() -> Any:
    """Under ``TestCase.captureOnCommitCallbacks(execute=True)``: the raw call that
    registered the callback Django's test helper calls now, or ``None``.

    That helper calls the callbacks itself (not through the commit-hook loop);
    its frame is found by its code and its ``callback`` local read (by
    identity, nothing is called). Only looked for when a task is published
    outside any receiver call.
    """
    global _capture_code
    testcases = sys.modules.get("django.test.testcases")
    if testcases is None or not PENDING:
        return None
    try:
        code = _capture_code
        if code is None:
            method = testcases.TestCase.__dict__["captureOnCommitCallbacks"].__func__
            code = _capture_code = method.__wrapped__.__code__
        frame: FrameType | None = sys._getframe(1)
        for _depth in range(200):
            if frame is None:
                return None
            if frame.f_code is code:
                return _find(frame.f_locals.get("callback"), take=False)
            frame = frame.f_back
    except Exception as err:  # pragma: no cover - a Django whose helper is shaped otherwise
        log_failure("captureOnCommitCallbacks lookup", err)
    return None


# -- Django's code, a body per shape (the first branch of each is Django's) ------


def on_commit_error(self: Any, func: Any, robust: bool = False) -> None:
    """``BaseDatabaseWrapper.on_commit`` of Django 5.2 and 6.0, noting the registering call."""
    if not callable(func):
        raise TypeError("on_commit()'s callback must be a callable.")
    if self.in_atomic_block:
        # Transaction in progress; save for execution on commit.
        self.run_on_commit.append((set(self.savepoint_ids), func, robust))
        if _ctx.CAPTURING:
            _note(func)
    elif not self.get_autocommit():
        raise TransactionManagementError(
            "on_commit() cannot be used in manual transaction management"
        )
    else:
        # No transaction in progress and in autocommit mode; execute
        # immediately.
        token = _running_now(func) if _ctx.CAPTURING else None
        try:
            if robust:
                try:
                    func()
                except Exception as e:
                    _logger.error(
                        f"Error calling {func.__qualname__} in on_commit() (%s).",
                        e,
                        exc_info=True,
                    )
            else:
                func()
        finally:
            if token is not None:
                RUNNING.reset(token)


def run_and_clear_commit_hooks_error(self: Any) -> None:
    """``run_and_clear_commit_hooks`` of Django 5.2 and 6.0, marking noted callables."""
    self.validate_no_atomic_block()
    current_run_on_commit = self.run_on_commit
    self.run_on_commit = []
    while current_run_on_commit:
        _, func, robust = current_run_on_commit.pop(0)
        token = _running(func) if PENDING else None
        try:
            if robust:
                try:
                    func()
                except Exception as e:
                    _logger.error(
                        f"Error calling {func.__qualname__} in on_commit() during "
                        f"transaction (%s).",
                        e,
                        exc_info=True,
                    )
            else:
                func()
        finally:
            if token is not None:
                RUNNING.reset(token)


def on_commit_exception(self: Any, func: Any, robust: bool = False) -> None:
    """``BaseDatabaseWrapper.on_commit`` of Django 6.1, noting the registering call."""
    if not callable(func):
        raise TypeError("on_commit()'s callback must be a callable.")
    if self.in_atomic_block:
        # Transaction in progress; save for execution on commit.
        self.run_on_commit.append((set(self.savepoint_ids), func, robust))
        if _ctx.CAPTURING:
            _note(func)
    elif not self.get_autocommit():
        raise TransactionManagementError(
            "on_commit() cannot be used in manual transaction management"
        )
    else:
        # No transaction in progress and in autocommit mode; execute
        # immediately.
        token = _running_now(func) if _ctx.CAPTURING else None
        try:
            if robust:
                try:
                    func()
                except Exception as e:
                    name = getattr(func, "__qualname__", func)
                    _logger.exception("Error calling %s in on_commit() (%s).", name, e)
            else:
                func()
        finally:
            if token is not None:
                RUNNING.reset(token)


def run_and_clear_commit_hooks_exception(self: Any) -> None:
    """``run_and_clear_commit_hooks`` of Django 6.1, marking noted callables."""
    self.validate_no_atomic_block()
    current_run_on_commit = self.run_on_commit
    self.run_on_commit = []
    while current_run_on_commit:
        _, func, robust = current_run_on_commit.pop(0)
        token = _running(func) if PENDING else None
        try:
            if robust:
                try:
                    func()
                except Exception as e:
                    name = getattr(func, "__qualname__", func)
                    _logger.exception(
                        "Error calling %s in on_commit() during transaction (%s).",
                        name,
                        e,
                    )
            else:
                func()
        finally:
            if token is not None:
                RUNNING.reset(token)


#: The copies for this Django: ``{method name: function}``.
REPLACEMENTS: Final = (
    {
        "on_commit": on_commit_exception,
        "run_and_clear_commit_hooks": run_and_clear_commit_hooks_exception,
    }
    if COMMIT_HOOK_LOG == "exception"
    else {
        "on_commit": on_commit_error,
        "run_and_clear_commit_hooks": run_and_clear_commit_hooks_error,
    }
)


def install() -> None:
    """Put the copies on ``BaseDatabaseWrapper`` if :func:`want` was called; idempotent."""
    if not _wanted:
        return
    for name, replacement in REPLACEMENTS.items():
        if name not in _originals:
            _originals[name] = BaseDatabaseWrapper.__dict__[name]
            setattr(BaseDatabaseWrapper, name, replacement)


def uninstall() -> None:
    """Put Django's own methods back (the very same functions). Idempotent."""
    for name, original in list(_originals.items()):
        setattr(BaseDatabaseWrapper, name, original)
        del _originals[name]


def is_installed() -> bool:
    """Whether the copies are in place."""
    return bool(_originals)
