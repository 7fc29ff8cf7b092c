"""capture(): entering, exiting, nesting, and what current_trace() sees."""

from __future__ import annotations

import contextvars
import threading
import time

import pytest

import signaltrace
from signaltrace import context


class TestEnterAndExit:
    def test_close_twice(self):
        with signaltrace.capture() as trace:
            pass
        end = trace.end_ns
        trace.close()
        assert trace.end_ns == end

    def test_exit_without_enter(self):
        with pytest.raises(RuntimeError, match="was not entered"):
            signaltrace.capture().__exit__(None, None, None)

    def test_exit_in_another_context(self):
        """A capture closed in another context than it was opened in restores the outer value."""
        cap = signaltrace.capture()
        ctx = contextvars.copy_context()
        trace = ctx.run(cap.__enter__)
        cap.__exit__(None, None, None)
        assert trace.closed
        assert context.CURSOR.get() is None

    def test_active_traces_with_global(self):
        with signaltrace.capture(all_threads=True) as everywhere:
            with signaltrace.capture() as local:
                assert context.active_traces() == (everywhere, local) or set(
                    context.active_traces()
                ) == {everywhere, local}
            result = []
            thread = threading.Thread(target=lambda: result.append(context.active_traces()))
            thread.start()
            thread.join()
        assert result == [(everywhere,)]

    def test_config_none(self, settings):
        from signaltrace.conf import config_errors

        assert config_errors(None) == []


def test_epoch_start_and_no_skipped():
    """A trace knows its epoch start; assert_no_skipped() passes on a clean trace."""
    before = time.time_ns()
    with signaltrace.capture() as trace:
        pass
    assert before <= trace.started_epoch_ns <= time.time_ns()
    assert trace.started_at.timestamp() == pytest.approx(trace.started_epoch_ns / 1e9)
    assert trace.assert_no_skipped() is trace


def test_current_trace():
    """current_trace() is the innermost open trace of this context."""
    assert signaltrace.current_trace() is None
    with signaltrace.capture() as outer:
        assert signaltrace.current_trace() is outer
        with signaltrace.capture() as inner:
            assert signaltrace.current_trace() is inner
        assert signaltrace.current_trace() is outer
        leaked = contextvars.copy_context()
    assert signaltrace.current_trace() is None
    assert leaked.run(signaltrace.current_trace) is None


class TestIdentity:
    def test_every_trace_has_an_id_and_a_kind(self):
        """32 hex digits, unique per trace; kind ``capture`` unless told."""
        with signaltrace.capture() as one, signaltrace.capture() as two:
            pass
        assert len(one.trace_id) == 32
        assert int(one.trace_id, 16) >= 0
        assert one.trace_id != two.trace_id
        assert one.kind == "capture"
        assert one.parent is None

    def test_kind_and_parent(self):
        parent = {"trace_id": "a" * 32, "receiver": "app.signals.on_save"}
        with signaltrace.capture(kind="task", parent=parent) as trace:
            pass
        assert trace.kind == "task"
        assert trace.parent == parent

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"kind": "job"}, "kind must be one of request, task, command, capture"),
            ({"parent": "abc"}, 'parent must be a dict with a "trace_id" string'),
            ({"parent": {"trace_id": 3}}, 'parent must be a dict with a "trace_id" string'),
        ],
    )
    def test_bad_arguments_are_named(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            signaltrace.capture(**kwargs)
