"""A log formatter that leaves tracebacks out (used for ``django.dispatch``)."""

from __future__ import annotations

import logging

__all__ = ["OneLineFormatter"]


class OneLineFormatter(logging.Formatter):
    """The usual format, minus the traceback of an attached exception."""

    def formatException(self, ei: object) -> str:
        return ""
