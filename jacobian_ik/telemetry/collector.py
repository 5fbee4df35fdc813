"""The exporter's Prometheus collector: the latest telemetry of one controller.

The exporter node feeds it from three topics (``update_metrics`` from
``~/jacobian_metrics``: only a reference to the message's values is kept, they
are parsed at scrape time, ``update_state`` from ``~/state``, ``update_diagnostics``
from ``/diagnostics``); ``collect`` renders ``names.METRICS`` at scrape time
with the official ``prometheus_client`` metric families.  Updates replace whole
objects, so a scrape (HTTP thread) never sees half an update.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from jacobian_ik.telemetry import names as N
from jacobian_ik.telemetry.aggregate import (
    AGGREGATES_LABEL,
    PAIR_KEYS,
    MessageAggregates,
    parse_block,
    parse_pair_counts,
    split_message,
)

#: {label: (first index in data, size)} of a metrics message's layout.
Offsets = dict[str, tuple[int, int]]

#: Gauges and the ``~/jacobian_metrics`` value each shows.
GAUGE_SOURCES = (
    (N.SIGMA_MIN, "sigma_min"),
    (N.SIGMA_MAX, "sigma_max"),
    (N.CONDITION, "condition_number"),
    (N.MANIPULABILITY, "manipulability"),
    (N.SPEED_SCALE, "speed_scale"),
    (N.DAMPING, "damping"),
    (N.POSITION_ERROR, "position_error"),
    (N.ORIENTATION_ERROR, "orientation_error"),
    (N.MIN_DISTANCE, "min_distance"),
)
#: Counters and the aggregate value each shows.
COUNTER_SOURCES = (
    (N.CYCLES, "cycles"),
    (N.OVERRUNS, "overruns"),
    (N.GOALS, "goals_reached"),
    (N.RECORDER_FILES, "recorder_files"),
    (N.RECORDER_FAILURES, "recorder_failures"),
)
#: ``/diagnostics`` key of the achieved loop rate [Hz].
RATE_KEY = "rate_achieved_hz"


def _number(text: str | None) -> float:
    """``text`` as a number; NaN when it is missing or not a number."""
    if text is None:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return math.nan


def layout_offsets(dims: Iterable[tuple[str, int]]) -> Offsets:
    """{label: (first index in data, size)} of a Float64MultiArray layout's dimensions
    ((label, size) pairs), laid out one after the other."""
    out: Offsets = {}
    offset = 0
    for label, size in dims:
        out[label] = (offset, size)
        offset += size
    return out


def read_message(offsets: Offsets, data: Sequence[float]
                 ) -> tuple[dict[str, float], MessageAggregates | None]:
    """(single values by label, parsed telemetry block or None) of a metrics message."""
    values = {label: float(data[start]) for label, (start, size) in offsets.items()
              if size == 1 and start < len(data)}
    block = None
    if AGGREGATES_LABEL in offsets:
        start, size = offsets[AGGREGATES_LABEL]
        try:
            block = split_message(parse_block(data[start:start + size]))
        except ValueError:
            block = None
    return values, block


def _cumulative(buckets: Iterable[tuple[float, float]]) -> tuple[list[tuple[str, float]], float]:
    total = 0.0
    out = []
    for bound, count in buckets:
        total += count
        out.append((floatToGoString(bound), total))
    return out, total


class ControllerCollector:
    """Collector of one controller's series, labelled ``robot`` and ``controller``."""

    def __init__(self, robot: str, controller: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.labels = (robot, controller)
        self._clock = clock
        # (layout offsets, values) of the latest metrics message, and its clock time
        self._latest: tuple[Offsets, Sequence[float]] | None = None
        self._received: float | None = None
        self._state = ""
        self._rate = math.nan
        self._info: dict[str, str] | None = None
        # {metric name: {pair: total}} from the latest /diagnostics
        self._pairs: dict[str, dict[str, float]] = parse_pair_counts({})
        self.messages = 0

    # ------------------------------------------------------------ updates
    def update_metrics(self, offsets: Offsets, data: Sequence[float]) -> None:
        """A ``~/jacobian_metrics`` message: ``layout_offsets`` of its layout, its data."""
        self._latest = (offsets, data)
        self._received = self._clock()
        self.messages += 1

    def update_state(self, state_name: str) -> None:
        self._state = state_name

    def update_diagnostics(self, values: dict[str, str]) -> None:
        self._rate = _number(values.get(RATE_KEY))
        self._pairs = parse_pair_counts(values)
        if all(key in values for key in N.INFO_LABELS):
            self._info = {key: str(values[key]) for key in N.INFO_LABELS}

    # ------------------------------------------------------------ scrape
    def describe(self) -> list[Metric]:
        return []     # no description: collect() is only called at scrape time

    def collect(self) -> Iterator[Metric]:
        labels = list(N.COMMON_LABELS)
        values = self.labels
        received = self._received
        age = math.inf if received is None else max(self._clock() - received, 0.0)
        gauge = GaugeMetricFamily(N.TELEMETRY_AGE.name, N.TELEMETRY_AGE.help, labels=labels)
        gauge.add_metric(values, age)
        yield gauge
        latest = self._latest
        if latest is None:
            return
        metrics, aggregates = read_message(*latest)
        if aggregates is None:
            return
        for metric, source in GAUGE_SOURCES:
            gauge = GaugeMetricFamily(metric.name, metric.help, labels=labels)
            gauge.add_metric(values, float(metrics.get(source, math.nan)))
            yield gauge
        gauge = GaugeMetricFamily(N.LOOP_RATE.name, N.LOOP_RATE.help, labels=labels)
        gauge.add_metric(values, self._rate)
        yield gauge
        gauge = GaugeMetricFamily(N.STATE.name, N.STATE.help, labels=labels + ["state"])
        current = self._state
        for (state,) in N.STATE.values:
            gauge.add_metric(values + (state,), 1.0 if state == current else 0.0)
        yield gauge
        scalars = aggregates["scalars"]
        for metric, source in COUNTER_SOURCES:
            counter = CounterMetricFamily(metric.name, metric.help, labels=labels)
            counter.add_metric(values, scalars.get(source, 0.0))
            yield counter
        for metric, table in ((N.SIGMA_BAND_CYCLES, aggregates["bands"]),
                              (N.REJECTED, aggregates["rejected"])):
            counter = CounterMetricFamily(metric.name, metric.help,
                                          labels=labels + list(metric.labels))
            for (key,) in metric.values:
                counter.add_metric(values + (key,), table.get(key, 0.0))
            yield counter
        counter = CounterMetricFamily(N.TRANSITIONS.name, N.TRANSITIONS.help,
                                      labels=labels + list(N.TRANSITIONS.labels))
        for state, reason_class in N.TRANSITIONS.values:
            counter.add_metric(values + (state, reason_class),
                               aggregates["transitions"].get((state, reason_class), 0.0))
        yield counter
        pairs = self._pairs
        for metric, _ in PAIR_KEYS:
            counter = CounterMetricFamily(metric.name, metric.help,
                                          labels=labels + list(metric.labels))
            for pair, total in pairs[metric.name].items():
                counter.add_metric(values + (pair,), total)
            yield counter
        for metric, buckets, total in (
                (N.SIGMA_HISTOGRAM, aggregates["sigma_buckets"], aggregates["sigma_sum"]),
                (N.DISTANCE_HISTOGRAM, aggregates["distance_buckets"],
                 aggregates["distance_sum"]),
                (N.DURATION_HISTOGRAM, aggregates["duration_buckets"],
                 aggregates["duration_sum"])):
            histogram = HistogramMetricFamily(metric.name, metric.help, labels=labels)
            cumulative, _ = _cumulative(buckets)
            histogram.add_metric(values, cumulative, total)
            yield histogram
        info = self._info
        if info is not None:
            family = InfoMetricFamily(N.INFO.name[:-len("_info")], N.INFO.help, labels=labels)
            family.add_metric(values, info)
            yield family
