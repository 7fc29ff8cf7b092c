"""``DatabaseStore``: traces kept in a table of your database, shared by every process.

.. code-block:: python

    SIGNALTRACE = {"STORE": "signaltrace.stores.DatabaseStore"}
    # then: python manage.py migrate signaltrace

One row per trace (the model :class:`signaltrace.models.KeptTrace`): the trace
JSON and its listing as text, with the id, kind and parent id as columns.
After each insert the rows past the newest ``BUFFER_SIZE`` are deleted, in the
same transaction. The rows are written on the sink worker thread, with that
thread's own connection: never inside a request's transaction. The insert and the
deletion send no model signals, so no receiver of yours runs for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

from django.apps import apps
from django.conf import settings
from django.db import connections, transaction

from signaltrace.render import trace_to_dict

from .base import (
    ID,
    Listing,
    StoredTrace,
    dumps,
    listing_from_dict,
    listing_of,
    listing_to_dict,
    loads,
    option_errors,
    valid_id,
)

if TYPE_CHECKING:
    from django.db.models import Model

    from signaltrace.traces import Trace

__all__ = ["DatabaseStore"]

#: The model, as ``apps.get_model()`` names it (never imported here: the app
#: registry must be ready first).
MODEL: Final = ("signaltrace", "KeptTrace")


def _database_problem(value: Any) -> str | None:
    if type(value) is not str:
        return (
            f"must be the alias of a database in DATABASES, got {type(value).__name__}: {value!r}."
        )
    aliases = list(getattr(settings, "DATABASES", {}) or {})
    if value not in aliases:
        return f"{value!r} is not an alias in DATABASES (aliases: {', '.join(aliases) or 'none'})."
    return None


_OPTIONS: Final = {"DATABASE": _database_problem}


class DatabaseStore:
    """The last ``BUFFER_SIZE`` traces in the ``signaltrace_kepttrace`` table, as JSON.

    :param size: how many traces to keep (``BUFFER_SIZE``).
    :param options: ``DATABASE``, the alias in ``DATABASES`` to use (default
        ``"default"``).

    .. versionadded:: 0.1.0
    """

    in_process: ClassVar[bool] = False

    def __init__(self, size: int = 100, options: Mapping[str, Any] | None = None) -> None:
        self.size = size
        self.using: str = dict(options or {}).get("DATABASE", "default")

    @classmethod
    def option_errors(cls, options: Mapping[str, Any]) -> list[str]:
        """What is wrong with ``STORE_OPTIONS``: unknown keys, a missing database alias."""
        return option_errors(options, _OPTIONS)

    @property
    def model(self) -> type[Model]:
        """:class:`signaltrace.models.KeptTrace`."""
        return apps.get_model(*MODEL)

    def _rows(self) -> Any:
        return self.model._default_manager.using(self.using)

    def save(self, trace: Trace) -> None:
        """Insert the trace, then delete the rows past the newest ``size``."""
        if not self.size:
            return
        model = self.model
        parent = trace.parent
        row = model(
            trace_id=trace.trace_id,
            kind=trace.kind,
            parent_trace_id=parent.get("trace_id", "") if parent else "",
            listing=dumps(listing_to_dict(listing_of(trace))),
            data=dumps(trace_to_dict(trace)),
        )
        rows = self._rows()
        with transaction.atomic(using=self.using):  # one commit for both
            rows.bulk_create([row])  # sends no model signals
            cut = list(rows.order_by("-pk").values_list("pk", flat=True)[self.size : self.size + 1])
            if cut:
                self._delete("WHERE {pk} <= %s", cut)

    def _delete(self, where: str, params: list[Any]) -> None:
        """``DELETE`` rows of the table with raw SQL: no model signals, no collector."""
        connection = connections[self.using]
        quote = connection.ops.quote_name
        meta = self.model._meta
        column = meta.pk.column or meta.pk.name
        sql = f"DELETE FROM {quote(meta.db_table)} " + where.format(pk=quote(column))
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    def get(self, trace_id: str) -> StoredTrace | None:
        """The trace read back from its row, or ``None`` if it is not kept.

        :raises ValueError: if the row does not hold trace JSON.
        """
        if type(trace_id) is not str or not ID.fullmatch(trace_id):
            return None
        data = self._rows().filter(trace_id=trace_id).values_list("data", flat=True).first()
        return None if data is None else StoredTrace(loads(data))

    def recent(self, *, kind: str | None = None) -> list[Listing]:
        """The kept traces, newest first, only ``kind`` if given."""
        rows = self._rows().order_by("-pk")
        if kind is not None:
            rows = rows.filter(kind=kind)
        entries = []
        for trace_id, text in rows.values_list("trace_id", "listing")[: self.size]:
            try:
                entries.append(listing_from_dict(loads(text)))
            except Exception as err:
                entries.append(Listing(valid_id(trace_id), error=err))
        return entries

    def clear(self) -> None:
        """Delete every row."""
        self._delete("", [])
