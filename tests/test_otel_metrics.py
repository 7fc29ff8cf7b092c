"""Receiver metrics exported to OpenTelemetry, read back with the SDK's InMemoryMetricReader."""

from __future__ import annotations

import pytest
from django.dispatch import Signal
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

from signaltrace import _metrics, context, metrics
from signaltrace.sinks import otel_metrics
from signaltrace.sinks.otel_metrics import CALLS, DURATION, METER_NAME, MetricsExporter, values

otel_signal = Signal()


def fine(sender, **kwargs):
    return None


def raises(sender, **kwargs):
    raise RuntimeError("no")


@pytest.fixture(autouse=True)
def _metrics_on(settings, monkeypatch):
    settings.SIGNALTRACE = {"ENABLED": True, "METRICS": True, "LOG_LEVEL": None}
    monkeypatch.setattr(context, "_logged", set())
    otel_signal.connect(fine, weak=False, dispatch_uid="otel-fine")
    otel_signal.connect(raises, weak=False, dispatch_uid="otel-raises")
    metrics.reset()
    yield
    otel_signal.disconnect(dispatch_uid="otel-fine")
    otel_signal.disconnect(dispatch_uid="otel-raises")
    metrics.reset()


@pytest.fixture
def reader():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    exporter = MetricsExporter(provider)
    yield reader, exporter
    provider.shutdown()


def points(reader, name):
    """``{(receiver, outcome): point}`` of this module's receivers in one collection."""
    found = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data is not None else ():
        for scope in resource.scope_metrics:
            assert scope.scope.name == METER_NAME
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    receiver = point.attributes["receiver"]
                    if receiver.startswith("tests.test_otel_metrics."):
                        key = (receiver.rsplit(".", 1)[1], point.attributes["outcome"])
                        assert point.attributes["signal"] == "otel_signal"
                        found[key] = point
    return found


def test_histogram_and_counter(reader):
    reader, _exporter = reader
    for _ in range(20):
        otel_signal.send_robust(sender=None)
    durations = points(reader, DURATION)
    assert set(durations) == {("fine", "ok"), ("raises", "error")}
    fine_point = durations[("fine", "ok")]
    assert isinstance(fine_point, HistogramDataPoint)
    assert fine_point.count == 20
    (row,) = [r for r in _metrics.collect() if r["receiver"].endswith(".fine")]
    assert fine_point.sum == pytest.approx(row["total_ns"] / 1e6, rel=1e-6)  # exact, in ms
    assert durations[("raises", "error")].count == 20


def test_counter_is_exact_and_cumulative(reader):
    reader, _exporter = reader
    for _ in range(3):
        otel_signal.send_robust(sender=None)
    calls = points(reader, CALLS)
    assert calls[("fine", "ok")].value == 3
    assert calls[("raises", "error")].value == 3
    for _ in range(2):
        otel_signal.send_robust(sender=None)
    calls = points(reader, CALLS)
    assert calls[("fine", "ok")].value == 5
    durations = points(reader, DURATION)
    assert durations[("fine", "ok")].count == 5  # cumulative: 3 then 2 more


def test_reset_never_makes_the_counter_go_down(reader):
    reader, _exporter = reader
    for _ in range(4):
        otel_signal.send_robust(sender=None)
    assert points(reader, CALLS)[("fine", "ok")].value == 4
    metrics.reset()
    otel_signal.send_robust(sender=None)
    assert points(reader, CALLS)[("fine", "ok")].value == 5
    assert points(reader, DURATION)[("fine", "ok")].count == 5


def test_ok_and_error_of_one_receiver(reader):
    reader, _exporter = reader
    flaky = Signal()
    state = {"fail": False}

    def sometimes(sender, **kwargs):
        if state["fail"]:
            raise ValueError("flaky")

    flaky.connect(sometimes, weak=False)
    for fail in (False, True, False, True, True):
        state["fail"] = fail
        flaky.send_robust(sender=None)
    counts = {}
    for resource in reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == CALLS:
                    for point in metric.data.data_points:
                        if point.attributes["receiver"].endswith("sometimes"):
                            counts[point.attributes["outcome"]] = point.value
    assert counts == {"ok": 2, "error": 3}


def test_nothing_is_recorded_per_call(reader, monkeypatch):
    """Dispatching records nothing into OpenTelemetry; a collection records the new calls."""
    reader, exporter = reader
    recorded = []
    real = exporter.duration.record
    monkeypatch.setattr(
        exporter.duration,
        "record",
        lambda value, attributes: recorded.append(value) or real(value, attributes),
    )
    for _ in range(10):
        otel_signal.send_robust(sender=None)
    assert recorded == []
    points(reader, DURATION)
    ours = 20  # 10 calls of each receiver (other receivers of the process may add more)
    assert len(recorded) >= ours


def test_bucket_counts_match_the_aggregates(reader):
    """With the advised power-of-two boundaries, each call lands in its own bucket."""
    reader, _exporter = reader
    for _ in range(50):
        otel_signal.send_robust(sender=None)
    point = points(reader, DURATION)[("fine", "ok")]
    (row,) = [r for r in _metrics.collect() if r["receiver"].endswith(".fine")]
    boundaries = [b * 1e6 for b in point.explicit_bounds]  # in ns
    assert boundaries[0] == 2**10
    expected = [0] * (len(boundaries) + 1)
    for bucket, count in enumerate(row["histogram"]):
        if count:
            low = (1 << (bucket - 1)) if bucket else 0
            index = sum(1 for bound in boundaries if bound <= low)
            expected[index] += count
    assert list(point.bucket_counts) == expected


def test_values_stay_in_their_buckets_and_add_up():
    buckets = {10: 3, 12: 1}  # three calls in [512, 1024), one in [2048, 4096)
    total = 600 + 700 + 1000 + 3000
    result = list(values(buckets, total))
    assert len(result) == 4
    assert sum(result) == pytest.approx(total / 1e6)
    assert all(0.000512 <= v < 0.001024 for v in result[:3])
    assert 0.002048 <= result[3] < 0.004096


def test_install_is_idempotent_and_uninstall_stops(monkeypatch):
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    monkeypatch.setattr(otel_metrics, "_exporter", [None])
    try:
        exporter = otel_metrics.install(provider)
        assert otel_metrics.install() is exporter
        assert otel_metrics.installed() is exporter
        otel_signal.send_robust(sender=None)
        assert points(reader, CALLS)[("fine", "ok")].value == 1
        otel_metrics.uninstall()
        otel_signal.send_robust(sender=None)
        assert points(reader, CALLS) == {}
    finally:
        provider.shutdown()


def test_started_with_otel_on(settings, monkeypatch):
    """metrics.start() (the app's, with METRICS on) installs the exporter when OTEL is on."""
    settings.SIGNALTRACE = {"ENABLED": True, "METRICS": True, "OTEL": True, "LOG_LEVEL": None}
    monkeypatch.setattr(otel_metrics, "_exporter", [None])
    metrics.start()
    try:
        assert otel_metrics.installed() is not None
        assert otel_metrics.installed().enabled
    finally:
        metrics.stop()
    assert not otel_metrics.installed().enabled


def test_a_failing_export_is_contained(reader, monkeypatch):
    reader, exporter = reader
    monkeypatch.setattr(exporter, "export", lambda: 1 / 0)
    otel_signal.send_robust(sender=None)
    failures = context.FAILURES
    assert points(reader, CALLS) == {}  # no exception into the reader, nothing reported
    assert context.FAILURES - failures == 1


def test_a_reset_while_reading_waits_for_the_next_collection(reader, monkeypatch):
    reader, exporter = reader
    otel_signal.send_robust(sender=None)
    collect = _metrics.collect

    def collect_then_reset():
        rows = collect()
        metrics.reset()
        return rows

    monkeypatch.setattr(_metrics, "collect", collect_then_reset)
    assert exporter.export() == 0
    monkeypatch.setattr(_metrics, "collect", collect)
    otel_signal.send_robust(sender=None)
    assert points(reader, CALLS)[("fine", "ok")].value == 1  # only what came after


def test_an_api_without_bucket_advice(reader):
    """opentelemetry-api before 1.23 has no explicit_bucket_boundaries_advisory."""
    reader, _exporter = reader

    class OldMeter:
        def __init__(self, meter):
            self.meter = meter

        def create_histogram(self, name, unit="", description=""):
            return self.meter.create_histogram(name, unit=unit, description=description)

        def create_observable_counter(self, *args, **kwargs):
            return self.meter.create_observable_counter(*args, **kwargs)

    class OldProvider:
        def get_meter(self, name, version=None):
            return OldMeter(MeterProvider(metric_readers=[old_reader]).get_meter(name, version))

    old_reader = InMemoryMetricReader()
    MetricsExporter(OldProvider())
    otel_signal.send_robust(sender=None)
    assert points(old_reader, DURATION)[("fine", "ok")].count == 1
