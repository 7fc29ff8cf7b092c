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

from ._assertions import (
    SignalTraceAssertionError,
    assert_called,
    assert_called_once,
    assert_no_errors,
    assert_not_called,
    assert_not_sent,
    assert_order,
    assert_sent,
    calls_of,
)
from ._unittest import DeferredAssertion, SignalTraceTestMixin

# isort: split
# Every other name this module had before it became a package stays importable
# from it: its private helpers (pytest_plugin imports ``_tree``, the tests use
# a few more) and what it imported from the rest of signaltrace.
from signaltrace import naming as naming
from signaltrace._record import _REDACTED as _REDACTED
from signaltrace.capture import Trace as Trace
from signaltrace.capture import _sender_matches as _sender_matches
from signaltrace.capture import _signal_matches as _signal_matches
from signaltrace.capture import capture as capture
from signaltrace.capture import receiver_name as receiver_name
from signaltrace.records import Dispatch as Dispatch
from signaltrace.records import ReceiverCall as ReceiverCall

from ._assertions import _check_times as _check_times
from ._assertions import _dispatches as _dispatches
from ._assertions import _failure as _failure
from ._assertions import _short_path as _short_path
from ._hints import _MAX_NEAR_MISSES as _MAX_NEAR_MISSES
from ._hints import _MODEL_SIGNALS as _MODEL_SIGNALS
from ._hints import _near_misses as _near_misses
from ._hints import _safe as _safe
from ._hints import _senders_text as _senders_text
from ._hints import _trace_hints as _trace_hints
from ._hints import _uncalled_hints as _uncalled_hints
from ._lookup import _READY_ADVICE as _READY_ADVICE
from ._lookup import _all_signals as _all_signals
from ._lookup import _connections as _connections
from ._lookup import _deref as _deref
from ._lookup import _entries as _entries
from ._lookup import _module_of as _module_of
from ._lookup import _never_imported as _never_imported
from ._lookup import _resolve as _resolve
from ._lookup import _sender_candidates as _sender_candidates
from ._match import _MISSING as _MISSING
from ._match import _expected as _expected
from ._match import _kwarg_diffs as _kwarg_diffs
from ._match import _mismatch as _mismatch
from ._match import _same as _same
from ._match import _sender_text as _sender_text
from ._match import _signal_text as _signal_text
from ._match import _value_text as _value_text
from ._text import MAX_TREE_LINES as MAX_TREE_LINES
from ._text import _at as _at
from ._text import _filters_text as _filters_text
from ._text import _lines_text as _lines_text
from ._text import _numbering as _numbering
from ._text import _times_text as _times_text
from ._text import _tree as _tree
from ._unittest import _checked as _checked

__all__ = [
    "DeferredAssertion",
    "SignalTraceAssertionError",
    "SignalTraceTestMixin",
    "assert_called",
    "assert_called_once",
    "assert_no_errors",
    "assert_not_called",
    "assert_not_sent",
    "assert_order",
    "assert_sent",
    "calls_of",
]

__unittest = True  # unittest leaves this module's frames out of tracebacks

# Tracebacks name the error by where users import it from, as before the split:
# ``signaltrace.testing.SignalTraceAssertionError: Expected ...``.
SignalTraceAssertionError.__module__ = __name__
