"""How the recording loops call receivers (signaltrace._send, "_call_with").

A Python-function receiver is called with one keyword dict built once per
dispatch; it must get exactly what Django's ``signal=self, sender=sender,
**named`` gives it, in every mode.
"""

from __future__ import annotations

import pytest
from django.dispatch import Signal

import signaltrace
from signaltrace import _metrics, _send, metrics

sig = Signal()

MODES = ["plain", "idle", "capture", "metrics"]


@pytest.fixture(params=MODES)
def mode(request, settings):
    """Run the test body as plain Django, installed and idle, capturing, or with METRICS."""
    settings.SIGNALTRACE = {"ENABLED": True, "METRICS": request.param == "metrics"}
    if request.param == "plain":
        signaltrace.uninstall()
        try:
            yield request.param
        finally:
            signaltrace.install()
    elif request.param == "capture":
        with signaltrace.capture():
            yield request.param
    else:
        yield request.param


@pytest.fixture
def connect():
    connected = []

    def connect(receiver):
        sig.connect(receiver, weak=False)
        connected.append(receiver)

    yield connect
    for receiver in connected:
        sig.disconnect(receiver)


@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_what_each_receiver_gets(mode, connect, method):
    got = []

    def first(**kwargs):
        got.append(list(kwargs.items()))
        kwargs["extra"] = 1  # its own dict: the next receiver never sees this
        kwargs.pop("instance")

    def second(signal, sender, **kwargs):
        got.append([("signal", signal), ("sender", sender), *kwargs.items()])

    class Method:
        def receive(self, **kwargs):
            got.append(list(kwargs.items()))
            kwargs.clear()  # a bound method's own dict too

        @classmethod
        def on_class(cls, signal, **kwargs):
            got.append([("signal", signal), *kwargs.items()])

    holder = Method()
    connect(first)
    connect(second)
    connect(holder.receive)
    connect(Method.on_class)
    getattr(sig, method)(sender="s", instance=1, created=True)
    expected = [("signal", sig), ("sender", "s"), ("instance", 1), ("created", True)]
    assert got == [expected] * 4


@pytest.mark.parametrize("method", ["send", "send_robust"])
def test_a_signal_kwarg_is_refused_as_django_refuses_it(mode, connect, method):
    def receiver(**kwargs):
        raise AssertionError("never called")

    connect(receiver)
    if method == "send":
        with pytest.raises(TypeError) as raised:
            sig.send(sender="s", **{"signal": 1})
        error = raised.value
    else:
        ((_receiver, error),) = sig.send_robust(sender="s", **{"signal": 1})
    assert type(error) is TypeError
    assert "multiple values for keyword argument 'signal'" in str(error)


def test_robust_logging_is_no_receivers_time(settings, monkeypatch, connect):
    """With METRICS, the time Django spends logging a send_robust failure counts
    for neither receiver (a clock that only moves when told to)."""
    settings.SIGNALTRACE = {"ENABLED": True, "METRICS": True}
    now = [0]

    def clock():
        now[0] += 1
        return now[0]

    class LoggingSignal(Signal):
        def _log_robust_failure(self, receiver, err):
            now[0] += 10**9  # a slow log handler
            super()._log_robust_failure(receiver, err)

    slow_log = LoggingSignal()

    def failing(sender, **kwargs):
        raise ValueError("no")

    def after(sender, **kwargs):
        return None

    slow_log.connect(failing, weak=False)
    slow_log.connect(after, weak=False)
    monkeypatch.setattr(_send, "perf_counter_ns", clock)
    metrics.reset()
    responses = slow_log.send_robust(sender=None)
    monkeypatch.undo()
    assert [type(r) for _receiver, r in responses] == [ValueError, type(None)]
    rows = {row["receiver"].rsplit(".", 1)[-1]: row for row in _metrics.collect()}
    assert rows["failing"]["errors"] == 1
    assert rows["failing"]["total_ns"] < 10**9
    assert rows["after"]["total_ns"] < 10**9
