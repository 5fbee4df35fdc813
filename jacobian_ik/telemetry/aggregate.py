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
(``names.SIGMA_HISTOGRAM.buckets`` values), then one value per name of
``aggregate_names(bounds)``, in order:

``cycles``, ``overruns``, ``goals_reached``, ``recorder_files``, ``recorder_failures``
``band:<band>``                    cycles per σ_min band (``names.SIGMA_BANDS``)
``transition:<STATE>:<class>``     entries into a state by reason class
``rejected:<kind>``                rejected input messages by kind
``sigma_min_bucket:<le>``          cycles with σ_min in (previous le, le]; last le is +Inf
``sigma_min_sum``
``cycle_duration_bucket:<le>``     the same for the cycle duration [s]
``cycle_duration_sum``
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import TypedDict

from jacobian_ik.telemetry.names import (
    CYCLE_DURATION_BUCKETS,
    REJECT_KINDS,
    SIGMA_BANDS,
    SIGMA_STOP_FACTORS,
    SIGMA_WARN_FACTORS,
    TRANSITION_CLASSES,
    sigma_min_buckets,
)

SCALARS = ("cycles", "overruns", "goals_reached", "recorder_files", "recorder_failures")
#: Label of the ``~/jacobian_metrics`` dimension that holds the block.
AGGREGATES_LABEL = "telemetry_totals"
BLOCK_VERSION = 1.0
HEADER = 1 + len(SIGMA_STOP_FACTORS) + len(SIGMA_WARN_FACTORS)
SIGMA_BUCKET_PREFIX = "sigma_min_bucket:"
DURATION_BUCKET_PREFIX = "cycle_duration_bucket:"
SEPARATOR = ":"


def bucket_label(prefix: str, bound: float) -> str:
    return prefix + ("+Inf" if math.isinf(bound) else repr(float(bound)))


def parse_bucket_label(label: str) -> float:
    """The upper bound of a ``*_bucket:<le>`` label."""
    return float(label.rpartition(SEPARATOR)[2])


def aggregate_names(sigma_bounds: Iterable[float]) -> tuple[str, ...]:
    """Names of the block's values after its header, for these σ_min bucket bounds."""
    names = list(SCALARS)
    names += [f"band{SEPARATOR}{band}" for band in SIGMA_BANDS]
    names += [f"transition{SEPARATOR}{state}{SEPARATOR}{cls}"
              for state, classes in TRANSITION_CLASSES.items() for cls in classes]
    names += [f"rejected{SEPARATOR}{kind}" for kind in REJECT_KINDS]
    names += [bucket_label(SIGMA_BUCKET_PREFIX, b) for b in tuple(sigma_bounds) + (math.inf,)]
    names.append("sigma_min_sum")
    names += [bucket_label(DURATION_BUCKET_PREFIX, b)
              for b in CYCLE_DURATION_BUCKETS + (math.inf,)]
    names.append("cycle_duration_sum")
    return tuple(names)


def parse_block(block: Sequence[float]) -> dict[str, float]:
    """{name: value} of a received block (raises ValueError for another version)."""
    if len(block) < HEADER or block[0] != BLOCK_VERSION:
        raise ValueError(f"telemetry block of version {block[0] if len(block) else None}; "
                         f"expected {BLOCK_VERSION}")
    names = aggregate_names(block[1:HEADER])
    if len(block) != HEADER + len(names):
        raise ValueError(f"telemetry block has {len(block)} values; expected "
                         f"{HEADER + len(names)}")
    return dict(zip(names, block[HEADER:]))


def reason_class(state_name: str, sigma_min: float, goal_reached: bool, sigma_stop: float,
                 sigma_warn: float, *, node_rejected: bool, measurement_stale: bool) -> str:
    """The reason class (``names.TRANSITION_CLASSES``) of a cycle that entered ``state_name``.

    Decided from the cycle's numbers and what the node knows about its inputs,
    not from the reason text.
    """
    if state_name == "SAFE_STOP":
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

    ``sigma_stop`` / ``sigma_warn`` fix the σ_min buckets for the node's life;
    the bands follow ``set_thresholds`` (live parameter changes).
    """

    def __init__(self, sigma_stop: float, sigma_warn: float) -> None:
        self.sigma_bounds = sigma_min_buckets(sigma_stop, sigma_warn)
        self.duration_bounds = tuple(CYCLE_DURATION_BUCKETS)
        names = aggregate_names(self.sigma_bounds)
        self.names = names
        self.values = array("d", [BLOCK_VERSION, *self.sigma_bounds] + [0.0] * len(names))
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
    def cycle(self, sigma_min: float, duration: float) -> None:
        """One control cycle with this σ_min and duration [s]."""
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
    duration_buckets: list[tuple[float, float]]     # (le [s], cycles in the bucket)
    sigma_sum: float
    duration_sum: float                             # [s]


def split_message(values: dict[str, float]) -> MessageAggregates:
    """Parse the aggregate part of a received message ({label: value}) into
    {"scalars", "bands", "transitions", "rejected", "sigma_buckets", "sigma_sum",
    "duration_buckets", "duration_sum"}; histogram buckets as [(le, count in bucket)].
    Labels of other values are ignored.
    """
    out: MessageAggregates = {"scalars": {}, "bands": {}, "transitions": {}, "rejected": {},
           "sigma_buckets": [], "duration_buckets": [],
           "sigma_sum": values.get("sigma_min_sum", 0.0),
           "duration_sum": values.get("cycle_duration_sum", 0.0)}
    for label, value in values.items():
        if label in SCALARS:
            out["scalars"][label] = value
        elif label.startswith(SIGMA_BUCKET_PREFIX):
            out["sigma_buckets"].append((parse_bucket_label(label), value))
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
    out["duration_buckets"].sort()
    return out
