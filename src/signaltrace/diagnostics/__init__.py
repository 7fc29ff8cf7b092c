"""Hidden control flow: what skips signals, what is connected, what is never imported.

- While signaltrace is installed, ``QuerySet.update``, ``bulk_create``,
  ``bulk_update``, raw deletes and deletions whose ``on_delete`` rules bypass
  signals are recorded in the open trace as
  :class:`~signaltrace.records.SkippedDispatch` items when receivers were
  connected that did not run (``signaltrace._bulk``), with a
  :class:`SignalsSkippedWarning` when :setting:`SKIPPED_WARNING` is on;
  :func:`assert_no_skipped` fails a test on them.
- :mod:`~signaltrace.diagnostics.receivers`: the receiver map shown by
  ``manage.py signaltrace_receivers``.
- :mod:`signaltrace.checks`: system checks ``signaltrace.W001``,
  ``signaltrace.W002`` and ``signaltrace.I001``.

Nothing here connects a receiver, calls ``has_listeners()`` or fills a
signal's receivers cache.
"""

from __future__ import annotations

from signaltrace._skipped import SignalsSkippedWarning
from signaltrace.assertions import assert_no_skipped

__all__ = ["SignalsSkippedWarning", "assert_no_skipped"]
