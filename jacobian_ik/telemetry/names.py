"""Every name of the telemetry, declared once.

Metric names follow the Prometheus conventions: ``jacobian_ik_<name>_<unit>``,
base units (seconds), counters end in ``_total``, build facts in an ``_info``
gauge.  Every series carries the labels ``robot`` and ``controller``; the other
labels take values from the fixed tuples below only, so the number of series
per controller is fixed (``SERIES_PER_CONTROLLER``).

σ units: a singular value of the task Jacobian is in m/rad along a linear task
direction and dimensionless along an angular one (see jacobian_ik/params.py),
so the σ metrics carry no unit suffix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from jacobian_ik.safety import SafetyState

NAMESPACE = "jacobian_ik"

#: Labels of every series: the robot (one value per exporter, e.g. the host or
#: fleet name of the arm) and the controller node's fully qualified name.
COMMON_LABELS = ("robot", "controller")

#: Controller states, in the order of their values.
STATE_NAMES = tuple(state.name for state in sorted(SafetyState, key=int))

#: Reason classes of a transition into each state (bounded label values).
#: TRACKING          goal_reached: the cycle that entered it reports the goal reached
#: APPROACHING_...   sigma_warn: σ_min < sigma_warn; look_ahead: the look-ahead braked
#: SAFE_STOP         sigma_stop: σ_min < sigma_stop (latched); blocked: no admissible
#:                   direction makes progress (the barrier holds the arm, or the goal
#:                   is unreachable without crossing a singularity); collision: a
#:                   collision pair blocks the arm or the goal (the reason names it)
#: INVALID_INPUT     rejected_message: the node rejected a message (joint states or
#:                   target); controller_check: the controller's own input checks
#: STALE_INPUT       measurement: /joint_states too old; target: the twist too old
#: JOINT_LIMIT       joint_limit: a joint outside its limits, or held at its margin
#: JOINT_MOVE        joint_path: a joint-space path to a blocked or far pose goal
#: APPROACHING_COLLISION  collision: a pair within collision_influence_distance
TRANSITION_CLASSES = {
    "TRACKING": ("tracking", "goal_reached"),
    "APPROACHING_SINGULARITY": ("sigma_warn", "look_ahead"),
    "SAFE_STOP": ("sigma_stop", "blocked", "collision"),
    "INVALID_INPUT": ("rejected_message", "controller_check"),
    "STALE_INPUT": ("measurement", "target"),
    "JOINT_LIMIT": ("joint_limit",),
    "PAUSED": ("paused",),
    "IDLE": ("no_target",),
    "JOINT_MOVE": ("joint_path",),
    "APPROACHING_COLLISION": ("collision",),
}

#: Kinds of input message the controller node rejects.
REJECT_KINDS = ("joint_states", "target_pose", "target_twist")

#: σ_min bands of a cycle: ≥ sigma_warn, [sigma_stop, sigma_warn), < sigma_stop.
SIGMA_BANDS = ("above_warn", "warn", "below_stop")

#: States whose every entry makes the flight recorder write a file.
RECORDER_TRIGGER_STATES = ("SAFE_STOP", "INVALID_INPUT", "STALE_INPUT", "JOINT_LIMIT")

#: Upper bounds [s] of the control-cycle duration histogram (+Inf is added).
CYCLE_DURATION_BUCKETS = (2.5e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2)

#: Upper bounds of the σ_min histogram as multiples of sigma_stop (the first
#: three) and of sigma_warn (the rest); +Inf is added.
SIGMA_STOP_FACTORS = (0.5, 1.0, 1.5)
SIGMA_WARN_FACTORS = (1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)


#: Upper bounds of the minimum-distance histogram [m]: 0 (in contact or
#: penetrating), multiples of collision_stop_distance, then of
#: collision_influence_distance; +Inf is added.
DISTANCE_STOP_FACTORS = (0.0, 0.5, 1.0, 1.5, 2.0)
DISTANCE_INFLUENCE_FACTORS = (0.25, 0.5, 1.0, 2.0)


def _increasing(raw: Iterable[float]) -> tuple[float, ...]:
    """``raw`` sorted, duplicates nudged up by 1 %, 6 significant digits."""
    out: list[float] = []
    for value in sorted(raw):
        if out and value <= out[-1]:
            value = out[-1] * 1.01
        out.append(float(f"{value:.6g}"))
    return tuple(out)


def sigma_min_buckets(sigma_stop: float, sigma_warn: float) -> tuple[float, ...]:
    """Upper bounds of the σ_min histogram: 10 values, increasing, around the thresholds.

    Fixed when the controller node starts (a histogram's buckets must not change
    while it is scraped); duplicates (sigma_warn ≤ 1.5·sigma_stop) are nudged up.
    """
    return _increasing([f * sigma_stop for f in SIGMA_STOP_FACTORS]
                       + [f * sigma_warn for f in SIGMA_WARN_FACTORS])


def min_distance_buckets(stop_distance: float, influence_distance: float) -> tuple[float, ...]:
    """Upper bounds [m] of the minimum-distance histogram: 9 values, increasing, around
    collision_stop_distance and collision_influence_distance (fixed at node start,
    duplicates nudged up, like ``sigma_min_buckets``)."""
    return _increasing([f * stop_distance for f in DISTANCE_STOP_FACTORS]
                       + [f * influence_distance for f in DISTANCE_INFLUENCE_FACTORS])


@dataclass(frozen=True)
class Metric:
    """One metric family: its full name, Prometheus type, help text and extra labels.

    ``series`` is the number of series it exports per controller; a ``per_pair``
    metric has one series per collision pair it has counted (label ``pair``, the
    pair's name "panda_link7 – table"; at most the controller's pair list), which
    ``series`` does not include.
    """

    name: str
    kind: str                         # gauge | counter | histogram | info
    help: str
    labels: tuple[str, ...] = ()
    values: tuple[tuple[str, ...], ...] = ()   # the label value tuples (fixed)
    buckets: int = 0                  # finite histogram buckets
    per_pair: bool = False            # labelled by collision pair (see above)

    @property
    def series(self) -> int:
        if self.per_pair:
            return 0
        if self.kind == "histogram":
            return self.buckets + 1 + 2      # finite buckets, +Inf, _sum, _count
        return max(len(self.values), 1)


def _m(name: str, kind: str, help_text: str, labels: Iterable[str] = (),
       values: Iterable[tuple[str, ...]] = (), buckets: int = 0,
       per_pair: bool = False) -> Metric:
    return Metric(f"{NAMESPACE}_{name}", kind, help_text, tuple(labels), tuple(values), buckets,
                  per_pair)


SIGMA_MIN = _m("sigma_min", "gauge",
               "smallest singular value of the task Jacobian at the measured position "
               "(m/rad for linear, 1 for angular directions), latest cycle")
SIGMA_MAX = _m("sigma_max", "gauge", "largest singular value of the task Jacobian, latest cycle")
CONDITION = _m("condition_number", "gauge", "sigma_max / sigma_min, latest cycle")
MANIPULABILITY = _m("manipulability", "gauge", "sqrt(det(J J^T)) of the task Jacobian, "
                    "latest cycle")
SPEED_SCALE = _m("speed_scale_ratio", "gauge",
                 "commanded task speed relative to the unlimited command (0..1), latest cycle")
DAMPING = _m("damping", "gauge", "damping lambda of the damped least-squares inverse, "
             "latest cycle")
POSITION_ERROR = _m("position_error_meters", "gauge", "tip to pose target distance, latest "
                    "cycle (0 without a pose target)")
ORIENTATION_ERROR = _m("orientation_error_radians", "gauge",
                       "tip to pose target rotation angle, latest cycle")
MIN_DISTANCE = _m("min_distance_meters", "gauge",
                  "smallest distance of a checked collision pair at the measured position, "
                  "latest cycle (+Inf without collision geometry)")
LOOP_RATE = _m("control_loop_rate_hertz", "gauge", "achieved control-loop rate (mean over "
               "the node's timing window)")
STATE = _m("state", "gauge", "1 for the controller's current state, 0 for the others",
           ("state",), tuple((s,) for s in STATE_NAMES))
TELEMETRY_AGE = _m("telemetry_age_seconds", "gauge",
                   "time since the exporter last received the controller's metrics "
                   "(+Inf before the first)")
CYCLES = _m("control_cycles_total", "counter", "control cycles run by the controller node")
OVERRUNS = _m("control_cycle_overruns_total", "counter",
              "control cycles that started more than 1.5 periods after the previous one "
              "or computed for longer than one period")
SIGMA_BAND_CYCLES = _m("sigma_min_band_cycles_total", "counter",
                       "control cycles by sigma_min band: above_warn (>= sigma_warn), warn, "
                       "below_stop (< sigma_stop)", ("band",),
                       tuple((b,) for b in SIGMA_BANDS))
TRANSITIONS = _m("state_transitions_total", "counter",
                 "transitions into each controller state, by reason class",
                 ("state", "reason_class"),
                 tuple((s, c) for s, classes in TRANSITION_CLASSES.items() for c in classes))
REJECTED = _m("rejected_inputs_total", "counter",
              "input messages rejected by the controller node, by kind", ("kind",),
              tuple((k,) for k in REJECT_KINDS))
GOALS = _m("goals_reached_total", "counter", "pose goals reached (entries into goal reached)")
RECORDER_FILES = _m("flight_recorder_files_total", "counter",
                    "flight-recorder files written")
RECORDER_FAILURES = _m("flight_recorder_failures_total", "counter",
                       "flight-recorder files that could not be written (folder not "
                       "writable or full)")
SIGMA_HISTOGRAM = _m("cycle_sigma_min", "histogram",
                     "sigma_min of every control cycle (buckets around sigma_stop and "
                     "sigma_warn)", buckets=len(SIGMA_STOP_FACTORS) + len(SIGMA_WARN_FACTORS))
DISTANCE_HISTOGRAM = _m("cycle_min_distance_meters", "histogram",
                        "smallest collision-pair distance of every control cycle with "
                        "collision geometry (buckets around collision_stop_distance and "
                        "collision_influence_distance)",
                        buckets=len(DISTANCE_STOP_FACTORS) + len(DISTANCE_INFLUENCE_FACTORS))
#: Label of the per-pair counters.
PAIR_LABEL = "pair"
COLLISION_STOPS = _m("collision_stops_total", "counter",
                     "safe stops whose reason is a collision pair, by the pair named",
                     (PAIR_LABEL,), per_pair=True)
APPROACHING_COLLISION_CYCLES = _m(
    "approaching_collision_cycles_total", "counter",
    "control cycles in APPROACHING_COLLISION, by the pair whose row binds",
    (PAIR_LABEL,), per_pair=True)
DURATION_HISTOGRAM = _m("control_cycle_duration_seconds", "histogram",
                        "time of each control cycle in the node (controller step and "
                        "command publish)", buckets=len(CYCLE_DURATION_BUCKETS))
INFO_LABELS = ("version", "urdf_sha256", "base_link", "tip_link", "parameters_sha256")
INFO = _m("controller_info", "info", "build and configuration of the controller (value 1)",
          INFO_LABELS)

#: Every metric family the exporter serves, in exposition order.
METRICS = (SIGMA_MIN, SIGMA_MAX, CONDITION, MANIPULABILITY, SPEED_SCALE, DAMPING,
           POSITION_ERROR, ORIENTATION_ERROR, MIN_DISTANCE, LOOP_RATE, STATE, TELEMETRY_AGE,
           CYCLES, OVERRUNS, SIGMA_BAND_CYCLES, TRANSITIONS, REJECTED, GOALS,
           RECORDER_FILES, RECORDER_FAILURES, COLLISION_STOPS, APPROACHING_COLLISION_CYCLES,
           SIGMA_HISTOGRAM, DISTANCE_HISTOGRAM, DURATION_HISTOGRAM, INFO)

#: Series exported per controller besides the per-pair ones; docs/telemetry.md
#: states it, a test checks it.
SERIES_PER_CONTROLLER = sum(m.series for m in METRICS)
#: Series per collision pair that a per-pair metric has counted.
SERIES_PER_PAIR = sum(1 for m in METRICS if m.per_pair)

#: Exporter endpoint defaults: loopback only, and the port when none is given.
DEFAULT_METRICS_ADDRESS = "127.0.0.1"
DEFAULT_METRICS_PORT = 9650
#: Job name of the scrape configuration in config/prometheus/.
SCRAPE_JOB = "jacobian_ik"
