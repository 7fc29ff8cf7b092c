"""``unittest`` support: :class:`SignalTraceTestMixin` and
:class:`DeferredAssertion`. The mixin's ``assert*`` methods check a trace
passed as ``trace=``; called as a statement of their own, they check the
trace of the test's last ``captureSignals()`` block; otherwise they return a
:class:`DeferredAssertion`, a context manager that captures its block, checks
it when the block ends and fails the test at cleanup if it was never entered.
"""

from __future__ import annotations

import dis
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from types import CodeType, FrameType, TracebackType
from typing import Any, overload

from signaltrace._format import short_path
from signaltrace.assertions import (
    SignalTraceAssertionError,
    assert_called,
    assert_matches_snapshot,
    assert_max_queries,
    assert_no_errors,
    assert_no_task_before_commit,
    assert_not_called,
    assert_sent,
)
from signaltrace.capturing import capture
from signaltrace.records import Dispatch, ReceiverCall
from signaltrace.traces import Trace

__unittest = True  # unittest leaves this module's frames out of tracebacks


def _checked(
    msg: str | None,
    func: Callable[..., Any],
    args: tuple[object, ...],
    kwargs: dict[str, object],
    trace: Trace,
) -> Any:
    __tracebackhide__ = True
    try:
        return func(trace, *args, **kwargs)
    except SignalTraceAssertionError as err:
        if msg:
            err.args = (f"{msg}: {err.args[0]}",)
        raise


@functools.lru_cache(maxsize=512)
def _discards_result(code: CodeType, offset: int) -> bool:
    """Whether the instruction after ``offset`` in ``code`` is ``POP_TOP``.

    ``offset`` is a frame's ``f_lasti`` during a call: the call instruction
    (Python 3.13) or its last inline cache entry (3.11, 3.12). Followed by
    ``POP_TOP``, the call is a statement of its own and its result is thrown
    away; a call used by ``with`` or ``async with``, assigned, returned or
    passed on is followed by something else.
    """
    following = (i for i in dis.get_instructions(code) if i.offset > offset)
    return next(following).opname == "POP_TOP"


def _is_statement(frame: FrameType) -> bool:
    """Whether the call ``frame`` is making is a bare statement (see above)."""
    return _discards_result(frame.f_code, frame.f_lasti)


class _TestCapture(capture):
    """The capture of ``captureSignals()``: its test remembers the trace it opened."""

    def __init__(self, test: SignalTraceTestMixin, **options: Any) -> None:
        super().__init__(**options)
        self._test = test

    def __enter__(self) -> Trace:
        trace = super().__enter__()
        self._test._signaltrace_last_trace = trace
        return trace


class DeferredAssertion:
    """What the :class:`SignalTraceTestMixin` assertions return without ``trace=``.

    (Written as a statement of its own after a ``captureSignals()`` block, an
    assertion checks that block's trace instead, and returns what the check does.)

    A context manager (``with`` or ``async with``) that captures its block and
    runs the assertion when the block ends without an exception. It yields the
    :class:`~signaltrace.Trace`; ``result`` is then the assertion's return value.

    .. versionadded:: 0.1.0
    """

    def __init__(self, name: str, check: Callable[[Trace], object], where: str = "?") -> None:
        #: The name of the mixin method, for messages.
        self.name = name
        #: ``file:line`` of the assertion call.
        self.where = where
        #: What the assertion returned, once the block has ended.
        self.result: object = None
        self._check = check
        self._capture: capture | None = None

    def __enter__(self) -> Trace:
        if self._capture is not None:
            raise RuntimeError(f"{self.name}() can be used in one with block only")
        self._capture = capture(label=self.name)
        return self._capture.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._capture is not None
        self._capture.__exit__(exc_type, exc, tb)
        if exc_type is None and self._capture.trace is not None:
            self.result = self._check(self._capture.trace)

    async def __aenter__(self) -> Trace:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def _verify_used(self) -> None:
        if self._capture is None:
            raise SignalTraceAssertionError(
                f"{self.name}() at {self.where} was called without trace= and not used as a "
                "context manager, "
                f"so nothing was checked. Write `with self.{self.name}(...):` around the code "
                f"under test, or pass trace= a trace from `with self.captureSignals() as trace:`."
            )


class SignalTraceTestMixin:
    """Signal assertions for ``unittest.TestCase`` and Django's test cases.

    Each assertion checks a trace you pass as ``trace=`` (one from
    :meth:`captureSignals` or :func:`signaltrace.capture`) and returns what the
    ``Trace`` method returns. Without ``trace=``, called as a statement of its
    own, it checks the trace of the test's last :meth:`captureSignals` block
    the same way; used in a ``with`` (or ``async with``), it is a context
    manager that captures its block and checks it at the end::

        class RegisterTests(SignalTraceTestMixin, TestCase):
            def test_profile(self):
                with self.assertReceiverCalled(create_user_profile, created=True):
                    User.objects.create(username="ann")

            def test_many(self):
                with self.captureSignals():
                    User.objects.create(username="ann")
                self.assertReceiverCalled(create_user_profile, created=True)
                self.assertReceiverNotCalled(backup_user_data)

    Any other assertion called without ``trace=`` (with no
    :meth:`captureSignals` block before it, or kept in a variable) that is
    never entered fails the test at cleanup, so a forgotten ``with`` cannot
    pass silently. ``msg`` is put in front of the failure message.

    .. versionadded:: 0.1.0
    """

    #: The trace of the last :meth:`captureSignals` block entered in this test.
    _signaltrace_last_trace: Trace | None = None

    def captureSignals(
        self, *, all_threads: bool = False, label: str | None = None, max_events: int | None = None
    ) -> capture:
        """:func:`signaltrace.capture`: ``with self.captureSignals() as trace:``.

        The assertions called after the block without ``trace=`` check its trace.

        .. versionadded:: 0.1.0
        """
        return _TestCapture(self, all_threads=all_threads, label=label, max_events=max_events)

    def _signaltrace_check(
        self,
        name: str,
        trace: Trace | None,
        msg: str | None,
        func: Callable[..., Any],
        *args: object,
        **kwargs: object,
    ) -> Any:
        __tracebackhide__ = True
        if trace is not None:
            return _checked(msg, func, args, kwargs, trace)
        caller = sys._getframe(2)
        last = self._signaltrace_last_trace
        if last is not None and _is_statement(caller):
            # `self.assertReceiverCalled(f)` on a line of its own, after
            # `with self.captureSignals():` checks that block's trace now.
            return _checked(msg, func, args, kwargs, last)
        deferred = DeferredAssertion(
            name,
            functools.partial(_checked, msg, func, args, kwargs),
            f"{short_path(caller.f_code.co_filename)}:{caller.f_lineno}",
        )
        add_cleanup = getattr(self, "addCleanup", None)
        if add_cleanup is not None:
            add_cleanup(deferred._verify_used)
        return deferred

    @overload
    def assertReceiverCalled(
        self,
        receiver: object,
        /,
        *,
        trace: Trace,
        sender: object = ...,
        signal: object = ...,
        times: int | None = ...,
        msg: str | None = ...,
        **match: object,
    ) -> list[ReceiverCall]: ...
    @overload
    def assertReceiverCalled(
        self,
        receiver: object,
        /,
        *,
        trace: None = ...,
        sender: object = ...,
        signal: object = ...,
        times: int | None = ...,
        msg: str | None = ...,
        **match: object,
    ) -> DeferredAssertion: ...
    def assertReceiverCalled(
        self,
        receiver: object,
        /,
        *,
        trace: Trace | None = None,
        sender: object = None,
        signal: object = None,
        times: int | None = None,
        msg: str | None = None,
        **match: object,
    ) -> list[ReceiverCall] | DeferredAssertion:
        """Assert that ``receiver`` ran; see :func:`assert_called`.

        .. versionadded:: 0.1.0
        """
        __tracebackhide__ = True
        return self._signaltrace_check(  # type: ignore[no-any-return]
            "assertReceiverCalled",
            trace,
            msg,
            assert_called,
            receiver,
            sender=sender,
            signal=signal,
            times=times,
            **match,
        )

    @overload
    def assertReceiverNotCalled(
        self,
        receiver: object,
        /,
        *,
        trace: Trace,
        sender: object = ...,
        signal: object = ...,
        msg: str | None = ...,
        **match: object,
    ) -> Trace: ...
    @overload
    def assertReceiverNotCalled(
        self,
        receiver: object,
        /,
        *,
        trace: None = ...,
        sender: object = ...,
        signal: object = ...,
        msg: str | None = ...,
        **match: object,
    ) -> DeferredAssertion: ...
    def assertReceiverNotCalled(
        self,
        receiver: object,
        /,
        *,
        trace: Trace | None = None,
        sender: object = None,
        signal: object = None,
        msg: str | None = None,
        **match: object,
    ) -> Trace | DeferredAssertion:
        """Assert that ``receiver`` did not run; see :func:`assert_not_called`.

        .. versionadded:: 0.1.0
        """
        __tracebackhide__ = True
        return self._signaltrace_check(  # type: ignore[no-any-return]
            "assertReceiverNotCalled",
            trace,
            msg,
            assert_not_called,
            receiver,
            sender=sender,
            signal=signal,
            **match,
        )

    @overload
    def assertSignalSent(
        self,
        signal: object,
        /,
        *,
        trace: Trace,
        sender: object = ...,
        times: int | None = ...,
        msg: str | None = ...,
        **match: object,
    ) -> list[Dispatch]: ...
    @overload
    def assertSignalSent(
        self,
        signal: object,
        /,
        *,
        trace: None = ...,
        sender: object = ...,
        times: int | None = ...,
        msg: str | None = ...,
        **match: object,
    ) -> DeferredAssertion: ...
    def assertSignalSent(
        self,
        signal: object,
        /,
        *,
        trace: Trace | None = None,
        sender: object = None,
        times: int | None = None,
        msg: str | None = None,
        **match: object,
    ) -> list[Dispatch] | DeferredAssertion:
        """Assert that ``signal`` was sent; see :func:`assert_sent`.

        .. versionadded:: 0.1.0
        """
        __tracebackhide__ = True
        return self._signaltrace_check(  # type: ignore[no-any-return]
            "assertSignalSent",
            trace,
            msg,
            assert_sent,
            signal,
            sender=sender,
            times=times,
            **match,
        )

    @overload
    def assertNoReceiverErrors(self, *, trace: Trace, msg: str | None = ...) -> Trace: ...
    @overload
    def assertNoReceiverErrors(
        self, *, trace: None = ..., msg: str | None = ...
    ) -> DeferredAssertion: ...
    def assertNoReceiverErrors(
        self, *, trace: Trace | None = None, msg: str | None = None
    ) -> Trace | DeferredAssertion:
        """Assert that no receiver raised (even inside ``send_robust``); see :func:`assert_no_errors`.

        .. versionadded:: 0.1.0
        """
        __tracebackhide__ = True
        return self._signaltrace_check(  # type: ignore[no-any-return]
            "assertNoReceiverErrors", trace, msg, assert_no_errors
        )

    @overload
    def assertReceiverMaxQueries(
        self,
        receiver: object,
        n: int,
        /,
        *,
        trace: Trace,
        sender: object = ...,
        signal: object = ...,
        msg: str | None = ...,
        **match: object,
    ) -> list[ReceiverCall]: ...
    @overload
    def assertReceiverMaxQueries(
        self,
        receiver: object,
        n: int,
        /,
        *,
        trace: None = ...,
        sender: object = ...,
        signal: object = ...,
        msg: str | None = ...,
        **match: object,
    ) -> DeferredAssertion: ...
    def assertReceiverMaxQueries(
        self,
        receiver: object,
        n: int,
        /,
        *,
        trace: Trace | None = None,
        sender: object = None,
        signal: object = None,
        msg: str | None = None,
        **match: object,
    ) -> list[ReceiverCall] | DeferredAssertion:
        """Assert that each call of ``receiver`` ran at most ``n`` queries; see
        :func:`~signaltrace.testing.assert_max_queries`.

        .. versionadded:: 0.1.0
        """
        __tracebackhide__ = True
        return self._signaltrace_check(  # type: ignore[no-any-return]
            "assertReceiverMaxQueries",
            trace,
            msg,
            assert_max_queries,
            receiver,
            n,
            sender=sender,
            signal=signal,
            **match,
        )

    @overload
    def assertNoTaskBeforeCommit(self, *, trace: Trace, msg: str | None = ...) -> Trace: ...
    @overload
    def assertNoTaskBeforeCommit(
        self, *, trace: None = ..., msg: str | None = ...
    ) -> DeferredAssertion: ...
    def assertNoTaskBeforeCommit(
        self, *, trace: Trace | None = None, msg: str | None = None
    ) -> Trace | DeferredAssertion:
        """Assert that no receiver published a Celery task inside ``transaction.atomic``;
        see :func:`~signaltrace.testing.assert_no_task_before_commit`.

        .. versionadded:: 0.1.0
        """
        __tracebackhide__ = True
        return self._signaltrace_check(  # type: ignore[no-any-return]
            "assertNoTaskBeforeCommit", trace, msg, assert_no_task_before_commit
        )

    def assertTraceMatchesSnapshot(
        self,
        trace: Trace | None = None,
        name: str | None = None,
        *,
        queries: bool = False,
        msg: str | None = None,
    ) -> Path:
        """Assert that the trace's normalised tree matches this test's snapshot file.

        See :func:`signaltrace.testing.assert_matches_snapshot`. Without ``trace``,
        it checks the trace of the test's last :meth:`captureSignals` block. The
        file is named after the test's class and method; run the tests with
        ``SIGNALTRACE_UPDATE_SNAPSHOTS=1`` (under pytest:
        ``--signaltrace-update-snapshots``) to write or rewrite it.

        .. versionadded:: 0.1.0
        """
        __tracebackhide__ = True
        if trace is None:
            trace = self._signaltrace_last_trace
            if trace is None:
                raise TypeError(
                    "assertTraceMatchesSnapshot() needs a trace: pass one, or call it after "
                    "a `with self.captureSignals():` block"
                )
        path: Path = _checked(msg, assert_matches_snapshot, (name,), {"queries": queries}, trace)
        return path
