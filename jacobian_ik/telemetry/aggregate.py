"""Per-cycle aggregates of the controller node: counters and histogram buckets.

The controller node updates a ``CycleAggregates`` every control cycle (a few
array increments, no allocation) and appends its block of values to each
``~/jacobian_metrics`` message, as one more layout dimension labelled
``AGGREGATES_LABEL`` whose size is the block's length (one dimension, not one
per value: every dimension is a Python object converted at each publish).  The
values are totals since the node started, so a decimated topic
(``metrics_decimation`` > 1) or a lost message loses no cycle: the exporter
turns the latest totals into Prometheus counters and histograms.

Block layout: ``BLOCK_VERSION``, the σ_min bucket bounds
(``names.SIGMA_HISTOGRAM.buckets`` values), the minimum-distance bucket bounds
(``names.DISTANCE_HISTOGRAM.buckets`` values), then one value per name of
``aggregate_names(sigma_bounds, distance_bounds)``, in order:

``cycles``, ``overruns``, ``goals_reached``, ``recorder_files``, ``recorder_failures``
``band:<band>``                    cycles per σ_min band (``names.SIGMA_BANDS``)
``transition:<STATE>:<class>``     entries into a state by reason class
``rejected:<kind>``                rejected input messages by kind
``sigma_min_bucket:<le>``          cycles with σ_min in (previous le, le]; last le is +Inf
``sigma_min_sum``
``min_distance_bucket:<le>``       the same for the minimum distance [m] (cycles with
                                   collision geometry only)
``min_distance_sum``
``cycle_duration_bucket:<le>``     the same for the cycle duration [s]
``cycle_duration_sum``

Counts by collision pair (``PairCounts``) are not in the block: the pairs change
with the scene.  The node sends them in ``/diagnostics`` (about 1 Hz), one
key ``<PAIR_KEYS prefix><pair>`` per pair with a count, totals since start.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import TypedDict

from jacobian_ik.telemetry.names import (
    APPROACHING_COLLISION_CYCLES,
    COLLISION_STOPS,
    CYCLE_DURATION_BUCKETS,
    DISTANCE_INFLUENCE_FACTORS,
    DISTANCE_STOP_FACTORS,
    REJECT_KINDS,
    SIGMA_BANDS,
    SIGMA_STOP_FACTORS,
    SIGMA_WARN_FACTORS,
    TRANSITION_CLASSES,
    min_distance_buckets,
    sigma_min_buckets,
)

SCALARS = ("cycles", "overruns", "goals_reached", "recorder_files", "recorder_failures")
#: Label of the ``~/jacobian_metrics`` dimension that holds the block.
AGGREGATES_LABEL = "telemetry_totals"
BLOCK_VERSION = 2.0
SIGMA_BOUNDS = len(SIGMA_STOP_FACTORS) + len(SIGMA_WARN_FACTORS)
DISTANCE_BOUNDS = len(DISTANCE_STOP_FACTORS) + len(DISTANCE_INFLUENCE_FACTORS)
HEADER = 1 + SIGMA_BOUNDS + DISTANCE_BOUNDS
SIGMA_BUCKET_PREFIX = "sigma_min_bucket:"
DISTANCE_BUCKET_PREFIX = "min_distance_bucket:"
DURATION_BUCKET_PREFIX = "cycle_duration_bucket:"
SEPARATOR = ":"


def bucket_label(prefix: str, bound: float) -> str:
    return prefix + ("+Inf" if math.isinf(bound) else repr(float(bound)))


def parse_bucket_label(label: str) -> float:
    """The upper bound of a ``*_bucket:<le>`` label."""
    return float(label.rpartition(SEPARATOR)[2])


def aggregate_names(sigma_bounds: Iterable[float],
                    distance_bounds: Iterable[float]) -> tuple[str, ...]:
    """Names of the block's values after its header, for these σ_min and distance
    bucket bounds."""
    names = list(SCALARS)
    names += [f"band{SEPARATOR}{band}" for band in SIGMA_BANDS]
    names += [f"transition{SEPARATOR}{state}{SEPARATOR}{cls}"
              for state, classes in TRANSITION_CLASSES.items() for cls in classes]
    names += [f"rejected{SEPARATOR}{kind}" for kind in REJECT_KINDS]
    names += [bucket_label(SIGMA_BUCKET_PREFIX, b) for b in tuple(sigma_bounds) + (math.inf,)]
    names.append("sigma_min_sum")
    names += [bucket_label(DISTANCE_BUCKET_PREFIX, b)
              for b in tuple(distance_bounds) + (math.inf,)]
    names.append("min_distance_sum")
    names += [bucket_label(DURATION_BUCKET_PREFIX, b)
              for b in CYCLE_DURATION_BUCKETS + (math.inf,)]
    names.append("cycle_duration_sum")
    return tuple(names)


def parse_block(block: Sequence[float]) -> dict[str, float]:
    """{name: value} of a received block (raises ValueError for another version)."""
    if len(block) < HEADER or block[0] != BLOCK_VERSION:
        raise ValueError(f"telemetry block of version {block[0] if len(block) else None}; "
                         f"expected {BLOCK_VERSION}")
    names = aggregate_names(block[1:1 + SIGMA_BOUNDS], block[1 + SIGMA_BOUNDS:HEADER])
    if len(block) != HEADER + len(names):
        raise ValueError(f"telemetry block has {len(block)} values; expected "
                         f"{HEADER + len(names)}")
    return dict(zip(names, block[HEADER:]))


def reason_class(state_name: str, sigma_min: float, goal_reached: bool, sigma_stop: float,
                 sigma_warn: float, *, node_rejected: bool, measurement_stale: bool,
                 collision: bool = False) -> str:
    """The reason class (``names.TRANSITION_CLASSES``) of a cycle that entered ``state_name``.

    Decided from the cycle's numbers and what the node knows about its inputs,
    not from the reason text; ``collision``: the cycle's reason names a collision
    pair (``Controller.reason_pair``).
    """
    if state_name == "SAFE_STOP":
        if collision:
            return "collision"
        return "sigma_stop" if sigma_min < sigma_stop else "blocked"
    if state_name == "APPROACHING_SINGULARITY":
        return "sigma_warn" if sigma_min < sigma_warn else "look_ahead"
    if state_name == "INVALID_INPUT":
        return "rejected_message" if node_rejected else "controller_check"
    if state_name == "STALE_INPUT":
        return "measurement" if measurement_stale else "target"
    if state_name == "TRACKING":
        return "goal_reached" if goal_reached else "tracking"
    return TRANSITION_CLASSES[state_name][0]


class CycleAggregates:
    """Totals since start: ``values`` is the block (``array('d')``: header, then one
    slot per ``names`` entry).

    ``sigma_stop`` / ``sigma_warn`` fix the σ_min buckets for the node's life,
    ``stop_distance`` / ``influence_distance`` [m] (collision_stop_distance,
    collision_influence_distance) the minimum-distance buckets; the bands follow
    ``set_thresholds`` (live parameter changes).
    """

    def __init__(self, sigma_stop: float, sigma_warn: float, stop_distance: float,
                 influence_distance: float) -> None:
        self.sigma_bounds = sigma_min_buckets(sigma_stop, sigma_warn)
        self.distance_bounds = min_distance_buckets(stop_distance, influence_distance)
        self.duration_bounds = tuple(CYCLE_DURATION_BUCKETS)
        names = aggregate_names(self.sigma_bounds, self.distance_bounds)
        self.names = names
        self.values = array("d", [BLOCK_VERSION, *self.sigma_bounds, *self.distance_bounds]
                            + [0.0] * len(names))
        index = {name: HEADER + i for i, name in enumerate(names)}
        self._index = index
        self._cycles = index["cycles"]
        self._overruns = index["overruns"]
        self._goals = index["goals_reached"]
        self._files = index["recorder_files"]
        self._failures = index["recorder_failures"]
        self._band = index[f"band{SEPARATOR}{SIGMA_BANDS[0]}"]
        self._sigma0 = index[bucket_label(SIGMA_BUCKET_PREFIX, self.sigma_bounds[0])]
        self._sigma_sum = index["sigma_min_sum"]
        self._distance0 = index[bucket_label(DISTANCE_BUCKET_PREFIX, self.distance_bounds[0])]
        self._distance_sum = index["min_distance_sum"]
        self._duration0 = index[bucket_label(DURATION_BUCKET_PREFIX, self.duration_bounds[0])]
        self._duration_sum = index["cycle_duration_sum"]
        self._transition = {(state, cls): index[f"transition{SEPARATOR}{state}{SEPARATOR}{cls}"]
                            for state, classes in TRANSITION_CLASSES.items() for cls in classes}
        self._rejected = {kind: index[f"rejected{SEPARATOR}{kind}"] for kind in REJECT_KINDS}
        self.sigma_stop = float(sigma_stop)
        self.sigma_warn = float(sigma_warn)

    def set_thresholds(self, sigma_stop: float, sigma_warn: float) -> None:
        self.sigma_stop = float(sigma_stop)
        self.sigma_warn = float(sigma_warn)

    # ---------------------------------------------------------------- per cycle
    def cycle(self, sigma_min: float, duration: float, min_distance: float) -> None:
        """One control cycle with this σ_min, duration [s] and minimum distance [m]
        (inf without collision geometry: no distance bucket)."""
        v = self.values
        v[self._cycles] += 1.0
        if sigma_min >= self.sigma_warn:
            v[self._band] += 1.0
        elif sigma_min >= self.sigma_stop:
            v[self._band + 1] += 1.0
        else:
            v[self._band + 2] += 1.0
        if sigma_min == sigma_min:     # a NaN goes to no bucket and no sum
            v[self._sigma0 + bisect_left(self.sigma_bounds, sigma_min)] += 1.0
            v[self._sigma_sum] += sigma_min
        if min_distance < math.inf:     # no geometry (inf) or NaN: no bucket, no sum
            v[self._distance0 + bisect_left(self.distance_bounds, min_distance)] += 1.0
            v[self._distance_sum] += min_distance
        v[self._duration0 + bisect_left(self.duration_bounds, duration)] += 1.0
        v[self._duration_sum] += duration

    def transition(self, state_name: str, reason_class_name: str) -> None:
        self.values[self._transition[(state_name, reason_class_name)]] += 1.0

    def goal_reached(self) -> None:
        self.values[self._goals] += 1.0

    def set_overruns(self, overruns: int) -> None:
        self.values[self._overruns] = float(overruns)

    # ---------------------------------------------------------------- events
    def rejected(self, kind: str) -> None:
        self.values[self._rejected[kind]] += 1.0

    def recorder_file(self) -> None:
        self.values[self._files] += 1.0

    def recorder_failure(self) -> None:
        self.values[self._failures] += 1.0

    def value(self, name: str) -> float:
        return self.values[self._index[name]]


class MessageAggregates(TypedDict):
    """The aggregate part of a received message (``split_message``)."""

    scalars: dict[str, float]                       # SCALARS by name
    bands: dict[str, float]                         # cycles by σ_min band
    transitions: dict[tuple[str, str], float]       # entries by (state, reason class)
    rejected: dict[str, float]                      # rejected messages by kind
    sigma_buckets: list[tuple[float, float]]        # (le, cycles in the bucket)
    distance_buckets: list[tuple[float, float]]     # (le [m], cycles in the bucket)
    duration_buckets: list[tuple[float, float]]     # (le [s], cycles in the bucket)
    sigma_sum: float
    distance_sum: float                             # [m]
    duration_sum: float                             # [s]


def split_message(values: dict[str, float]) -> MessageAggregates:
    """Parse the aggregate part of a received message ({label: value}) into
    {"scalars", "bands", "transitions", "rejected", "sigma_buckets", "sigma_sum",
    "distance_buckets", "distance_sum", "duration_buckets", "duration_sum"}; histogram
    buckets as [(le, count in bucket)].
    Labels of other values are ignored.
    """
    out: MessageAggregates = {"scalars": {}, "bands": {}, "transitions": {}, "rejected": {},
           "sigma_buckets": [], "distance_buckets": [], "duration_buckets": [],
           "sigma_sum": values.get("sigma_min_sum", 0.0),
           "distance_sum": values.get("min_distance_sum", 0.0),
           "duration_sum": values.get("cycle_duration_sum", 0.0)}
    for label, value in values.items():
        if label in SCALARS:
            out["scalars"][label] = value
        elif label.startswith(SIGMA_BUCKET_PREFIX):
            out["sigma_buckets"].append((parse_bucket_label(label), value))
        elif label.startswith(DISTANCE_BUCKET_PREFIX):
            out["distance_buckets"].append((parse_bucket_label(label), value))
        elif label.startswith(DURATION_BUCKET_PREFIX):
            out["duration_buckets"].append((parse_bucket_label(label), value))
        else:
            kind, _, rest = label.partition(SEPARATOR)
            if kind == "band":
                out["bands"][rest] = value
            elif kind == "transition":
                state, _, cls = rest.partition(SEPARATOR)
                out["transitions"][(state, cls)] = value
            elif kind == "rejected":
                out["rejected"][rest] = value
    out["sigma_buckets"].sort()
    out["distance_buckets"].sort()
    out["duration_buckets"].sort()
    return out


#: ``/diagnostics`` key prefix of each per-pair counter (``names`` metric → prefix);
#: the key is the prefix followed by the pair's name.
PAIR_KEYS = ((COLLISION_STOPS, "collision_stops: "),
             (APPROACHING_COLLISION_CYCLES, "approaching_collision_cycles: "))


class PairCounts:
    """Totals since start by collision pair name: collision stops and
    APPROACHING_COLLISION cycles.  A pair is added at its first count (at most one
    entry per name the controller has named, so bounded by its pair lists)."""

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}     # pair → [stops, cycles]

    def _row(self, pair: str) -> list[int]:
        row = self.counts.get(pair)
        if row is None:
            row = self.counts[pair] = [0, 0]
        return row

    def stop(self, pair: str) -> None:
        self._row(pair)[0] += 1

    def approaching(self, pair: str) -> None:
        self._row(pair)[1] += 1

    def diagnostics_pairs(self) -> list[tuple[str, int]]:
        """(key, total) for /diagnostics: every counted pair, each counter."""
        return [(prefix + pair, row[column]) for pair, row in self.counts.items()
                for column, (_, prefix) in enumerate(PAIR_KEYS)]


def parse_pair_counts(values: dict[str, str]) -> dict[str, dict[str, float]]:
    """{metric name: {pair: total}} from /diagnostics key-values (``PAIR_KEYS``);
    a value that is not a number is skipped."""
    out: dict[str, dict[str, float]] = {metric.name: {} for metric, _ in PAIR_KEYS}
    for key, text in values.items():
        for metric, prefix in PAIR_KEYS:
            if key.startswith(prefix):
                try:
                    out[metric.name][key[len(prefix):]] = float(text)
                except ValueError:
                    pass
    return out
