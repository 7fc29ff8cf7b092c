"""signaltrace's own blinker signals: hooks for sinks of your own.

Every finished request trace (one that goes through the sinks, see
:mod:`signaltrace.sinks`) is announced on three signals, after the configured
sinks have run:

- :data:`receiver_failed`, once per receiver call that raised, including
  exceptions ``send_robust()`` swallowed, with ``call=`` the
  :class:`~signaltrace.ReceiverCall`;
- :data:`slow_receiver`, once per receiver call that took ``SLOW_MS`` or more,
  with ``call=`` and ``slow_ms=``;
- :data:`trace_finished`, once per trace.

The sender is the :class:`~signaltrace.Trace`. Traces of ``capture()`` blocks
are not announced: they never reach the sinks.

.. code-block:: python

    from signaltrace.signals import receiver_failed


    def report(trace, call, **kwargs):
        print(trace.meta["path"], call.receiver_name, call.error)


    receiver_failed.connect(report)

The signals live in a private :class:`blinker.Namespace` and are never traced:
their ``send`` is blinker's own loop, defined on their class, so the hook that
signaltrace puts on :class:`blinker.Signal` never sees them. With no receiver
connected, announcing a trace costs three checks (about 0.2 µs).
"""

from __future__ import annotations

import collections.abc as c
import typing as t
from inspect import iscoroutinefunction
from typing import TYPE_CHECKING, Final

import blinker

from . import naming
from .context import log_failure
from .summary import summarize

if TYPE_CHECKING:
    from .traces import Trace

__all__ = ["receiver_failed", "send_finished", "slow_receiver", "trace_finished"]


class _UntracedSignal(blinker.NamedSignal):
    """A :class:`blinker.NamedSignal` that signaltrace never records.

    ``send`` and ``send_async`` are blinker 1.9's, reproduced on this class:
    attribute lookup finds them before the hook that :func:`signaltrace.install`
    sets on :class:`blinker.Signal`.
    """

    def send(
        self,
        sender: t.Any | None = None,
        /,
        *,
        _async_wrapper: c.Callable[
            [c.Callable[..., c.Coroutine[t.Any, t.Any, t.Any]]], c.Callable[..., t.Any]
        ]
        | None = None,
        **kwargs: t.Any,
    ) -> list[tuple[c.Callable[..., t.Any], t.Any]]:
        """Call the receivers as :meth:`blinker.Signal.send` does, untraced."""
        if self.is_muted:
            return []
        results = []
        for receiver in self.receivers_for(sender):
            if iscoroutinefunction(receiver):
                if _async_wrapper is None:
                    raise RuntimeError("Cannot send to a coroutine function.")
                result = _async_wrapper(receiver)(sender, **kwargs)
            else:
                result = receiver(sender, **kwargs)
            results.append((receiver, result))
        return results

    async def send_async(
        self,
        sender: t.Any | None = None,
        /,
        *,
        _sync_wrapper: c.Callable[
            [c.Callable[..., t.Any]], c.Callable[..., c.Coroutine[t.Any, t.Any, t.Any]]
        ]
        | None = None,
        **kwargs: t.Any,
    ) -> list[tuple[c.Callable[..., t.Any], t.Any]]:
        """Await the receivers as :meth:`blinker.Signal.send_async` does, untraced."""
        if self.is_muted:
            return []
        results = []
        for receiver in self.receivers_for(sender):
            if not iscoroutinefunction(receiver):
                if _sync_wrapper is None:
                    raise RuntimeError("Cannot send to a non-coroutine function.")
                result = await _sync_wrapper(receiver)(sender, **kwargs)
            else:
                result = await receiver(sender, **kwargs)
            results.append((receiver, result))
        return results


#: The private namespace of signaltrace's signals (not blinker's default one).
_namespace: Final = blinker.Namespace()


def _signal(name: str, doc: str) -> _UntracedSignal:
    signal = _UntracedSignal(name, doc)
    _namespace[name] = signal
    return signal


trace_finished: Final[blinker.NamedSignal] = _signal(
    "trace_finished",
    "Sent once per finished request trace, after the sinks ran. Sender: the trace.",
)
"""Sent once per finished request trace, after the sinks ran; the sender is the
:class:`~signaltrace.Trace`.

.. versionadded:: 0.1.0
"""

receiver_failed: Final[blinker.NamedSignal] = _signal(
    "receiver_failed",
    "Sent once per receiver call that raised. Sender: the trace; call=ReceiverCall.",
)
"""Sent once per receiver call that raised in a finished request trace (also when
``send_robust()`` swallowed the exception); the sender is the
:class:`~signaltrace.Trace`, ``call`` the :class:`~signaltrace.ReceiverCall`.

.. versionadded:: 0.1.0
"""

slow_receiver: Final[blinker.NamedSignal] = _signal(
    "slow_receiver",
    "Sent once per receiver call of SLOW_MS or more. Sender: the trace; call=, slow_ms=.",
)
"""Sent once per receiver call that took ``SLOW_MS`` milliseconds or more in a
finished request trace; the sender is the :class:`~signaltrace.Trace`, ``call``
the :class:`~signaltrace.ReceiverCall` and ``slow_ms`` the threshold.

.. versionadded:: 0.1.0
"""


def _send(signal: blinker.NamedSignal, trace: Trace, **kwargs: t.Any) -> None:
    """Call each receiver; one that raises (or is async) is logged once and skipped."""
    if signal.is_muted:
        return
    for receiver in signal.receivers_for(trace):
        try:
            if iscoroutinefunction(receiver):
                raise TypeError(
                    "signaltrace sends its signals synchronously; connect a plain function"
                )
            receiver(trace, **kwargs)
        except Exception as err:
            name = naming.describe_receiver(receiver)[0]
            log_failure(f"{signal.name} receiver {name}", err)


def send_finished(trace: Trace, slow_ms: float) -> None:
    """Announce a finished trace: :data:`receiver_failed`, :data:`slow_receiver`, then
    :data:`trace_finished`. Called by :func:`signaltrace.sinks.emit`; never raises
    because of a receiver.

    :param slow_ms: the ``SLOW_MS`` threshold (0: no call is slow).

    .. versionadded:: 0.1.0
    """
    failed = bool(receiver_failed.receivers)
    slow = bool(slow_receiver.receivers) and bool(slow_ms)
    if failed or slow:
        summary = summarize(trace, slow_ms)
        if failed:
            for call in summary.errors:
                _send(receiver_failed, trace, call=call)
        if slow:
            for call in summary.slow:
                _send(slow_receiver, trace, call=call, slow_ms=slow_ms)
    if trace_finished.receivers:
        _send(trace_finished, trace)
