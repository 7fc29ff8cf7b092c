"""The one model of the app: a trace kept by :class:`~signaltrace.stores.DatabaseStore`.

The table exists once ``manage.py migrate`` has run (migration
``signaltrace.0001_initial``); only :class:`~signaltrace.stores.DatabaseStore`
writes to it, and only text: the trace JSON and its listing.
"""

from __future__ import annotations

from django.db import models

__all__ = ["KeptTrace"]


class KeptTrace(models.Model):
    """One trace: its id, kind and parent for lookups, and its JSON as text.

    .. versionadded:: 0.1.0
    """

    #: ``Trace.trace_id``: 32 hex digits.
    trace_id = models.CharField(max_length=32, unique=True)
    #: ``"request"``, ``"task"``, ``"command"`` or ``"capture"``.
    kind = models.CharField(max_length=16, db_index=True)
    #: The parent trace's id, or ``""``.
    parent_trace_id = models.CharField(max_length=32, blank=True, default="", db_index=True)
    #: What the viewer's list shows (JSON, ``signaltrace.listing/1``).
    listing = models.TextField()
    #: The trace (JSON, ``signaltrace.trace/2``).
    data = models.TextField()

    class Meta:
        verbose_name = "kept trace"
        # Newest first: the primary key grows with every trace saved.
        ordering = ("-id",)

    def __str__(self) -> str:
        return f"{self.kind} {self.trace_id}"
