"""``TRACE_COMMANDS``: trace every management command into the store, kind ``"command"``.

While the hook is installed and :setting:`TRACE_COMMANDS` is true,
``BaseCommand.execute`` is replaced by :func:`traced_execute`, which runs the
command inside a :class:`~signaltrace.capture` of kind ``"command"`` and hands
the finished trace to the store (:func:`signaltrace.sinks.keep`). Both
``manage.py <command>`` and ``call_command()`` go through ``execute``. Nothing
is connected to a signal. :func:`signaltrace.uninstall` puts Django's own
function back.

A command run by another traced command belongs to the outer trace (one trace
per command line, not one per ``call_command``). Commands that serve or test
(``runserver``, ``testserver``, ``test``) and ``signaltrace_run``, which keeps
its own trace, are not traced (:data:`UNTRACED`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from django.core.management.base import BaseCommand

from signaltrace import sinks
from signaltrace.capturing import capture
from signaltrace.conf import get_config
from signaltrace.context import log_failure

__all__ = ["UNTRACED", "install", "is_installed", "traced_execute", "uninstall", "untraced"]

#: Commands never traced: their job is to serve or to run tests for as long as
#: they run, or (``signaltrace_run``) they keep a trace of their own.
UNTRACED: Final = frozenset({"runserver", "testserver", "test", "signaltrace_run"})

#: Whether a command is being traced (or must not be) in this flow.
_inside: Final = contextvars.ContextVar("signaltrace_command", default=False)
_original: Any = None


def command_name(command: BaseCommand) -> str:
    """The name a command is run by: the last part of its module (``migrate``)."""
    return type(command).__module__.rpartition(".")[2]


@contextmanager
def untraced() -> Iterator[None]:
    """Commands run inside this block are not traced on their own (``signaltrace_run``)."""
    token = _inside.set(True)
    try:
        yield
    finally:
        _inside.reset(token)


def traced_execute(self: BaseCommand, *args: Any, **options: Any) -> Any:
    """``BaseCommand.execute``, inside a ``capture(kind="command")`` kept in the store."""
    original = _original
    if original is None:  # uninstalled while a reference was held: Django's own
        original = BaseCommand.__dict__["execute"]
    name = command_name(self)
    if _inside.get() or name in UNTRACED or not get_config()["TRACE_COMMANDS"]:
        return original(self, *args, **options)
    command_line = " ".join([name, *(str(arg) for arg in args)])
    try:
        block = capture(label=command_line, kind="command")
        trace = block.__enter__()
        trace.meta.update(command=name, args=[str(arg) for arg in args], command_line=command_line)
    except Exception as err:
        log_failure("TRACE_COMMANDS", err)
        return original(self, *args, **options)
    token = _inside.set(True)
    outcome = "ok"
    try:
        return original(self, *args, **options)
    except BaseException as exc:
        outcome = f"raised {type(exc).__name__}"
        raise
    finally:
        _inside.reset(token)
        try:
            block.__exit__(None, None, None)
            trace.meta["outcome"] = outcome
            sinks.keep(trace)
        except Exception as err:
            log_failure("TRACE_COMMANDS", err)


def install() -> None:
    """Replace ``BaseCommand.execute`` with :func:`traced_execute`. Idempotent."""
    global _original
    if _original is None:
        _original = BaseCommand.__dict__["execute"]
        BaseCommand.execute = traced_execute  # type: ignore[method-assign]


def uninstall() -> None:
    """Put Django's own ``BaseCommand.execute`` back. Idempotent."""
    global _original
    if _original is not None:
        BaseCommand.execute = _original  # type: ignore[method-assign]
        _original = None


def is_installed() -> bool:
    """Whether ``BaseCommand.execute`` is :func:`traced_execute`."""
    return _original is not None
