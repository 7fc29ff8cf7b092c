"""Assertions on a :class:`~signaltrace.Trace`, for pytest and ``unittest``.

.. code-block:: python

    with signaltrace.capture() as trace:
        User.objects.create(username="ann")
    trace.assert_called(create_user_profile, sender=User, created=True)
    trace.assert_not_called(backup_user_data)
    trace.assert_no_errors()

Every ``trace.assert_*`` method is the function of the same name here, taking
the trace first. A failure raises :exc:`SignalTraceAssertionError` whose
message states what was expected, shows the numbered tree of what ran and ends
with hints for near misses (another sender, another ``created``, a receiver
that is not connected at all). Receivers and signals are given as objects or
as dotted paths; senders as objects or labels (``"auth.User"``); kwarg values
as recorded, or as the objects they were recorded from (a model instance
matches ``"auth.User pk=7"``), or ``unittest.mock.ANY``.
"""

from __future__ import annotations

from signaltrace.assertions import (
    SignalTraceAssertionError,
    assert_called,
    assert_called_once,
    assert_matches_snapshot,
    assert_max_queries,
    assert_no_errors,
    assert_no_skipped,
    assert_no_task_before_commit,
    assert_not_called,
    assert_not_sent,
    assert_order,
    assert_sent,
    calls_of,
)

from ._unittest import DeferredAssertion, SignalTraceTestMixin

__all__ = [
    "DeferredAssertion",
    "SignalTraceAssertionError",
    "SignalTraceTestMixin",
    "assert_called",
    "assert_called_once",
    "assert_matches_snapshot",
    "assert_max_queries",
    "assert_no_errors",
    "assert_no_skipped",
    "assert_no_task_before_commit",
    "assert_not_called",
    "assert_not_sent",
    "assert_order",
    "assert_sent",
    "calls_of",
]

__unittest = True  # unittest leaves this module's frames out of tracebacks

# Tracebacks name the error by where users import it from:
# ``signaltrace.testing.SignalTraceAssertionError: Expected ...``.
SignalTraceAssertionError.__module__ = __name__
