"""Facts about the installed Django version, in one place.

Everything else asks these names instead of testing ``django.VERSION`` or
probing attributes itself.
"""

from __future__ import annotations

from typing import Any, Final

import django
from django.db.models import deletion
from django.dispatch import dispatcher

__all__ = [
    "COMMIT_HOOK_LOG",
    "DATABASE_ON_DELETE",
    "DB_CASCADE",
    "SHAPE",
    "SUPPORTED",
    "entry_sender_ref",
]

#: How async receivers run: ``"taskgroup"`` on Django 6.1+ (``_run_parallel``,
#: sync receivers first), ``"gather"`` on 5.2 and 6.0 (``asyncio.gather``).
SHAPE: Final = "taskgroup" if hasattr(dispatcher, "_run_parallel") else "gather"
#: Whether this Django has the dispatch shape signaltrace knows (5.2+).
SUPPORTED: Final = django.VERSION >= (5, 2)
#: Django 6.1's base class of database-level ``on_delete`` rules
#: (``DB_CASCADE``, ``DB_SET_NULL``, ``DB_SET_DEFAULT``), or ``None`` before.
DATABASE_ON_DELETE: Final[Any] = getattr(deletion, "DatabaseOnDelete", None)
#: Django 6.1's ``DB_CASCADE`` rule, or ``None`` before.
DB_CASCADE: Final[Any] = getattr(deletion, "DB_CASCADE", None)
#: How ``BaseDatabaseWrapper.on_commit`` and ``run_and_clear_commit_hooks`` log
#: a robust callback's failure (``signaltrace._commit`` copies them):
#: ``"exception"`` from 6.1 (``logger.exception`` naming
#: ``getattr(func, "__qualname__", func)``), ``"error"`` on 5.2 and 6.0 (an
#: f-string of ``func.__qualname__``, ``logger.error(..., exc_info=True)``).
COMMIT_HOOK_LOG: Final = "exception" if django.VERSION >= (6, 1) else "error"


def entry_sender_ref(entry: tuple[Any, ...]) -> Any:
    """The weak reference to the sender in a ``signal.receivers`` entry, or ``None``.

    Django 6.0+ entries are ``(key, receiver, sender_ref, is_async)``; 5.2's are
    ``(key, receiver, is_async)`` and keep only the sender's id.
    """
    return entry[2] if len(entry) > 3 else None
