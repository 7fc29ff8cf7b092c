"""Export the receiver metrics (``METRICS``) to OpenTelemetry: a histogram and a counter.

.. code-block:: python

    SIGNALTRACE = {"ENABLED": True, "METRICS": True, "OTEL": True}

Two instruments of the meter ``signaltrace``, each with the attributes
``receiver`` (its dotted name), ``signal`` (the signal's name) and ``outcome``
(``"ok"``, or ``"error"`` for a call that raised, also inside ``send_robust()``):

``signaltrace.receiver.duration``
    a histogram of receiver call durations, in milliseconds;
``signaltrace.receiver.calls``
    a (cumulative, monotonic) counter of receiver calls.

**Nothing is recorded per call.** The hot path only adds to signaltrace's own
aggregates (``signaltrace._metrics``), whatever OpenTelemetry does. When a
metric reader collects (the ``PeriodicExportingMetricReader`` every 60 s by
default, or ``InMemoryMetricReader.get_metrics_data()``), the counter's
callback reads the aggregates and records into the histogram the calls made
since the previous collection. So:

- the counter and the histogram's count and sum are exact, and both are up to
  date at every collection (none lags behind the other);
- the histogram's values are rebuilt from signaltrace's power-of-two buckets:
  each call is recorded as a value inside its own bucket, the values of one
  collection spread over their buckets so that their sum is the calls' exact
  total. The histogram asks for power-of-two bucket boundaries (from 1 µs to
  34 s, as an advisory the SDK uses unless a View says otherwise), with which
  its bucket counts are exact too;
- recording costs one ``Histogram.record()`` per call made since the last
  collection, on the reader's thread, not in the request;
- :func:`signaltrace.metrics.reset` does not make the counter go down: the calls
  counted afterwards are added to what was exported before.

Each process exports its own figures (OpenTelemetry's resource tells them
apart). Only the OpenTelemetry API is used, imported when :func:`install`
runs; the instruments go to the meter provider you configured.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final

from signaltrace import __version__, _metrics
from signaltrace.context import log_failure

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

__all__ = [
    "CALLS",
    "DURATION",
    "METER_NAME",
    "MetricsExporter",
    "install",
    "installed",
    "uninstall",
]

#: The instrumentation scope of the instruments.
METER_NAME: Final = "signaltrace"
DURATION: Final = "signaltrace.receiver.duration"
CALLS: Final = "signaltrace.receiver.calls"
#: Histogram bucket boundaries, in ms: powers of two ns from 2**10 (1 µs) to 2**35 (34 s).
BOUNDARIES_MS: Final = tuple(2**bits / 1_000_000 for bits in range(10, 36))

_NS_PER_MS: Final = 1_000_000

Key = tuple[str, str, str]


def values(buckets: dict[int, int], total_ns: int) -> Iterator[float]:
    """Durations in ms, one per call counted in ``buckets`` (bucket -> calls), each
    inside its own bucket and adding up to ``total_ns`` (when it lies within the
    buckets, as it does for real calls).

    The calls of each bucket are spread evenly around a common fraction of the
    bucket's width, the one that makes the sum come out
    (:func:`signaltrace._metrics.placement`).
    """
    fraction, spread = _metrics.placement(buckets.items(), total_ns)
    for bucket in sorted(buckets):
        count = buckets[bucket]
        low, width = _metrics.bucket_bounds(bucket)
        for j in range(count):
            offset = ((j + 0.5) / count - 0.5) * spread
            yield (low + width * (fraction + offset)) / _NS_PER_MS


class MetricsExporter:
    """The two instruments, fed from the aggregates at each collection.

    :param meter_provider: where the instruments go; the global one by default.

    .. versionadded:: 0.1.0
    """

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        from opentelemetry import metrics as otel_metrics

        provider = meter_provider or otel_metrics.get_meter_provider()
        meter = provider.get_meter(METER_NAME, __version__)
        self._observation = otel_metrics.Observation
        self._lock = threading.Lock()
        #: (receiver, signal, outcome) -> (calls, total ns, histogram) exported so far
        #: in the current generation of the aggregates.
        self._seen: dict[Key, tuple[int, int, list[int]]] = {}
        self._generation = _metrics.generation()
        #: (receiver, signal, outcome) -> calls reported by the counter (never goes down).
        self._counted: dict[Key, int] = {}
        self.enabled = True
        try:
            self.duration = meter.create_histogram(
                DURATION,
                unit="ms",
                description="Duration of signal receiver calls",
                explicit_bucket_boundaries_advisory=BOUNDARIES_MS,
            )
        except TypeError:  # an API older than 1.23: no advisory
            self.duration = meter.create_histogram(
                DURATION, unit="ms", description="Duration of signal receiver calls"
            )
        self.calls = meter.create_observable_counter(
            CALLS,
            callbacks=[self._collect],
            unit="{call}",
            description="Signal receiver calls",
        )

    def _collect(self, options: CallbackOptions) -> Iterable[Observation]:
        """The counter's callback: record the new calls, then report every count."""
        if not self.enabled:
            return []
        try:
            self.export()
        except Exception as err:  # never into the reader: counted and logged once
            log_failure("OTEL metrics", err)
        observation = self._observation
        with self._lock:
            return [
                observation(count, {"receiver": key[0], "signal": key[1], "outcome": key[2]})
                for key, count in self._counted.items()
            ]

    def export(self) -> int:
        """Record the calls made since the last export into the histogram; how many."""
        recorded = 0
        with self._lock:
            generation = _metrics.generation()
            rows = _metrics.collect()
            if _metrics.generation() != generation:
                return 0  # reset while reading: the next collection has them
            if generation != self._generation:
                self._generation = generation
                self._seen.clear()  # reset: every call from now on is new
            for row in rows:
                error_histogram = row["error_histogram"]
                ok_histogram = [
                    a - b for a, b in zip(row["histogram"], error_histogram, strict=True)
                ]
                outcomes = (
                    (
                        "ok",
                        row["calls"] - row["errors"],
                        row["total_ns"] - row["error_total_ns"],
                        ok_histogram,
                    ),
                    ("error", row["errors"], row["error_total_ns"], error_histogram),
                )
                for outcome, calls, total_ns, histogram in outcomes:
                    if calls:
                        recorded += self._record(
                            (row["receiver"], row["signal"], outcome), calls, total_ns, histogram
                        )
        return recorded

    def _record(self, key: Key, calls: int, total_ns: int, histogram: list[int]) -> int:
        seen_calls, seen_total, seen_histogram = self._seen.get(key, (0, 0, [0] * len(histogram)))
        new = calls - seen_calls
        if new <= 0:
            return 0
        buckets = {
            bucket: count - seen
            for bucket, (count, seen) in enumerate(zip(histogram, seen_histogram, strict=True))
            if count > seen
        }
        attributes = {"receiver": key[0], "signal": key[1], "outcome": key[2]}
        record = self.duration.record
        for value in values(buckets, total_ns - seen_total):
            record(value, attributes)
        self._seen[key] = (calls, total_ns, list(histogram))
        self._counted[key] = self._counted.get(key, 0) + new
        return new


_exporter: list[MetricsExporter | None] = [None]
_install_lock: Final = threading.Lock()


def install(meter_provider: MeterProvider | None = None) -> MetricsExporter:
    """Create the instruments (once per process) and export from now on.

    Idempotent: a second call returns the same exporter (re-enabled after
    :func:`uninstall`). ``signaltrace.metrics.start()`` calls it when ``OTEL`` is on.

    :raises ImportError: without the ``otel`` extra.

    .. versionadded:: 0.1.0
    """
    with _install_lock:
        exporter = _exporter[0]
        if exporter is None:
            exporter = _exporter[0] = MetricsExporter(meter_provider)
        exporter.enabled = True
        return exporter


def installed() -> MetricsExporter | None:
    """The exporter :func:`install` made, or ``None``."""
    return _exporter[0]


def uninstall() -> None:
    """Stop exporting (OpenTelemetry cannot remove instruments: they report nothing more).

    .. versionadded:: 0.1.0
    """
    exporter = _exporter[0]
    if exporter is not None:
        exporter.enabled = False
