"""Print request trees to stderr (``CONSOLE``).

.. code-block:: text

    POST /accounts/register/ 302   3 dispatches, 4 receiver calls, 2.1 ms in receivers
    └─ post_save  sender=auth.User pk=7 created=True  (accounts/views.py:18 in register)
       ├─ accounts.signals.create_user_profile  0.8 ms
       ...

``CONSOLE`` says which requests are printed:

- ``"all"``: every request;
- ``"dispatches"``: requests that dispatched a signal or skipped receivers
  (``bulk_create``, ``update``...), or were cut short by ``MAX_EVENTS``;
- ``"problems"``: requests where a receiver raised (even inside
  ``send_robust``) or was slow (``SLOW_MS``), an operation skipped receivers, or
  ``MAX_EVENTS`` cut the trace short;
- ``None``: none (off);
- ``"auto"``, the default: ``"dispatches"`` when ``DEBUG`` is true and the
  process is ``manage.py runserver``, else off.

``True`` means ``"all"`` and ``False`` means ``None``. Control characters (from
a request path or an exception message) are escaped so they cannot drive the
terminal.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any, Final, TextIO

from django.conf import settings

from signaltrace.conf import get_config
from signaltrace.summary import summarize

if TYPE_CHECKING:
    from signaltrace.traces import Trace

__all__ = ["ConsoleSink", "console_enabled", "console_mode", "printed"]

_CONTROL: Final = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
#: The modes :class:`ConsoleSink` knows (``CONSOLE`` also takes ``"auto"``, bools, None).
MODES: Final = ("all", "dispatches", "problems")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def _runserver() -> bool:
    return len(sys.argv) > 1 and sys.argv[1].startswith("runserver")


def console_mode(config: dict[str, Any]) -> str | None:
    """What ``CONSOLE`` prints: ``"all"``, ``"dispatches"``, ``"problems"``, or ``None`` (off).

    ``"auto"`` is ``"dispatches"`` under ``runserver`` with ``DEBUG``, else
    ``None``; ``True`` is ``"all"`` and ``False`` is ``None``. A value the checks
    reject (``signaltrace.E002``) is off.

    .. versionadded:: 0.1.0
    """
    console = config["CONSOLE"]
    if console is True:
        return "all"
    if console == "auto":
        return "dispatches" if _runserver() and bool(settings.DEBUG) else None
    return console if console in MODES else None


def console_enabled(config: dict[str, Any]) -> bool:
    """Whether ``CONSOLE`` prints anything (see :func:`console_mode`).

    .. versionadded:: 0.1.0
    """
    return console_mode(config) is not None


def printed(trace: Trace, mode: str, slow_ms: float) -> bool:
    """Whether ``mode`` prints ``trace`` (receiver calls of ``slow_ms`` or more are slow).

    .. versionadded:: 0.1.0
    """
    if mode == "all":
        return True
    if trace.skipped or trace.truncated:
        return True
    if mode == "dispatches":
        return bool(trace.dispatches)
    return mode == "problems" and summarize(trace, slow_ms).problem


class ConsoleSink:
    """Write ``trace.render()`` to a stream (stderr by default), one block per request.

    :param stream: where to write; ``None`` means ``sys.stderr`` at emit time.
    :param mode: which traces to write: ``"all"`` (the default), ``"dispatches"``
        or ``"problems"`` (see the module docstring). The built-in console sink
        gets the mode ``CONSOLE`` sets.

    .. versionadded:: 0.1.0
    """

    def __init__(self, stream: TextIO | None = None, *, mode: str = "all") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.stream = stream
        self.mode = mode

    def emit(self, trace: Trace) -> None:
        """Write the tree of ``trace`` and flush, if :attr:`mode` prints it."""
        if self.mode != "all" and not printed(trace, self.mode, get_config()["SLOW_MS"]):
            return
        stream = self.stream or sys.stderr
        stream.write(_CONTROL.sub(_escape, trace.render()) + "\n")
        stream.flush()
