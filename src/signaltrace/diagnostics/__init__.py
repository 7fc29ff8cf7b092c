"""Hidden control flow: what skips signals, what is connected, what is never imported.

- :mod:`~signaltrace.diagnostics.bulk`: while signaltrace is installed,
  ``QuerySet.update``, ``bulk_create``, ``bulk_update``, raw deletes and
  deletions whose ``on_delete`` rules bypass signals are recorded in the open
  trace as :class:`~signaltrace.records.SkippedDispatch` items when receivers
  were connected that did not run.
- :mod:`~signaltrace.diagnostics.receivers`: the receiver map shown by
  ``manage.py signaltrace_receivers``.
- :mod:`~signaltrace.diagnostics.checks`: system checks ``signaltrace.W001``,
  ``signaltrace.W002`` and ``signaltrace.I001``.

Nothing here connects a receiver, calls ``has_listeners()`` or fills a
signal's receivers cache.
"""

from __future__ import annotations

from .skipped import SignalsSkippedWarning, assert_no_skipped

__all__ = ["SignalsSkippedWarning", "assert_no_skipped"]
