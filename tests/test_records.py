"""The frozen record classes and their derived properties."""

from __future__ import annotations

from signaltrace.records import Dispatch, Origin, ReceiverCall


class TestRecords:
    def test_properties(self):
        dispatch = Dispatch(
            signal_name="s",
            signal_path="m.s",
            sender="x",
            kwargs={"created": True, "instance": "auth.User pk=1"},
            method="blinker.send",
            start_ns=0,
            duration_ns=2_000_000,
            origin=Origin("f.py", 3, "fn"),
            receiver_count=1,
        )
        call = ReceiverCall("r", None, None, False, 0, 1_500_000, None, dispatch)
        assert dispatch.blinker
        assert not dispatch.robust
        assert dispatch.created is True
        assert dispatch.instance == "auth.User pk=1"
        assert dispatch.duration_ms == 2.0
        assert call.duration_ms == 1.5
        assert call.location is None
        assert str(dispatch.origin) == "f.py:3 in fn"
        running = ReceiverCall("r", "f.py", 1, True, 0, None, None, dispatch)
        assert running.outcome == "running"
