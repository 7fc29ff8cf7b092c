"""Print each request's text tree to stderr (``CONSOLE``).

.. code-block:: text

    POST /accounts/register/ 302   3 dispatches, 4 receiver calls, 2.1 ms in receivers
    └─ post_save  sender=auth.User pk=7 created=True  (accounts/views.py:18 in register)
       ├─ accounts.signals.create_user_profile  0.8 ms
       ...

``CONSOLE`` is ``None`` by default: on when ``DEBUG`` is true and the process
is ``manage.py runserver``. Control characters (from a request path or an
exception message) are escaped so they cannot drive the terminal.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any, Final, TextIO

from django.conf import settings

if TYPE_CHECKING:
    from signaltrace.traces import Trace

__all__ = ["ConsoleSink", "console_enabled"]

_CONTROL: Final = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def console_enabled(config: dict[str, Any]) -> bool:
    """Whether ``CONSOLE`` is on: its value, or ``DEBUG`` under ``runserver``.

    .. versionadded:: 0.1.0
    """
    console = config["CONSOLE"]
    if console is not None:
        return bool(console)
    running = len(sys.argv) > 1 and sys.argv[1].startswith("runserver")
    return running and bool(settings.DEBUG)


class ConsoleSink:
    """Write ``trace.render()`` to a stream (stderr by default), one block per request.

    :param stream: where to write; ``None`` means ``sys.stderr`` at emit time.

    .. versionadded:: 0.1.0
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def emit(self, trace: Trace) -> None:
        """Write the tree of ``trace`` and flush."""
        stream = self.stream or sys.stderr
        stream.write(_CONTROL.sub(_escape, trace.render()) + "\n")
        stream.flush()
