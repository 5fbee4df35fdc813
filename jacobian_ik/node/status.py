"""Status outputs of the controller node: state text, Jacobian metrics, diagnostics.

``~/state``             ``std_msgs/String`` "STATE: reason", published on every
                        change, transient-local so a late subscriber gets the latest.
``~/jacobian_metrics``  ``std_msgs/Float64MultiArray`` at the node's ``metrics_rate``; the values
                        are named by ``METRIC_NAMES`` and by ``layout.dim``
                        (one dimension per value, its label the value's name).
``/diagnostics``        ``diagnostic_msgs/DiagnosticArray``, about 1 Hz.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from typing import TYPE_CHECKING

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, String

if TYPE_CHECKING:
    from jacobian_ik.controller import StepOutput, StepResult
    from jacobian_ik.node.timing import CycleStats

#: Values of ``~/jacobian_metrics``, in order, with their units.
METRIC_NAMES = (
    "sigma_min",            # smallest singular value of the task Jacobian [m/rad | 1]
    "sigma_max",            # largest singular value
    "condition_number",     # sigma_max / sigma_min [1]
    "manipulability",       # sqrt(det(J J^T))
    "speed_scale",          # task speed scale applied near a singularity [0..1]
    "damping",              # DLS damping lambda
    "position_error",       # tip to target distance [m] (0 without a pose target)
    "orientation_error",    # tip to target rotation angle [rad] (0 without a pose target)
    "compute_time",         # this cycle's time in the node: step + command publish [s]
    "state",                # SafetyState value (integer)
    "goal_reached",         # 1 when both errors are within the goal tolerances, else 0
    "step_time",            # this cycle's time in Controller.step [s]
    "min_distance",         # smallest collision-pair distance [m] (inf without geometry)
)

#: Diagnostic level of each controller state (by name); unknown names are WARN.
STATE_LEVELS = {
    "TRACKING": DiagnosticStatus.OK,
    "IDLE": DiagnosticStatus.OK,
    "PAUSED": DiagnosticStatus.OK,
    "APPROACHING_SINGULARITY": DiagnosticStatus.WARN,
    "JOINT_MOVE": DiagnosticStatus.WARN,
    "APPROACHING_COLLISION": DiagnosticStatus.WARN,
    "JOINT_LIMIT": DiagnosticStatus.WARN,
    "INVALID_INPUT": DiagnosticStatus.WARN,
    "SAFE_STOP": DiagnosticStatus.ERROR,
    "STALE_INPUT": DiagnosticStatus.ERROR,
}

#: QoS of ``~/state``: reliable and transient local, so a subscriber that joins
#: later gets the recent states (the last one is the current state).  The
#: history of 10 keeps a state that lasted one cycle from being overwritten
#: before a subscriber has it.
STATE_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                       reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL)

#: QoS for subscribers of ``~/state`` that want every transition.
STATE_SUBSCRIBER_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST,
                                  reliability=ReliabilityPolicy.RELIABLE,
                                  durability=DurabilityPolicy.TRANSIENT_LOCAL)


def state_text(state_name: str, reason: str) -> str:
    """The ``~/state`` text: "STATE: reason" (or just "STATE")."""
    return f"{state_name}: {reason}" if reason else state_name


def parse_state_text(text: str) -> tuple[str, str]:
    """Inverse of ``state_text``: ("STATE", "reason")."""
    name, _, reason = text.partition(":")
    return name.strip(), reason.strip()


class StatePublisher:
    """Publishes ``~/state`` when the (state, reason) pair changes."""

    def __init__(self, node: Node, topic: str = "~/state") -> None:
        self._publisher = node.create_publisher(String, topic, STATE_QOS)
        self._msg = String()
        self.state_name = ""
        self.reason = ""

    def update(self, state_name: str, reason: str) -> bool:
        """Publish if changed; True when a message went out."""
        if state_name == self.state_name and reason == self.reason:
            return False
        self.state_name = state_name
        self.reason = reason
        self._msg.data = state_text(state_name, reason)
        self._publisher.publish(self._msg)
        return True


class MetricsPublisher:
    """Publishes the Jacobian metrics of a cycle; one message reused."""

    def __init__(self, node: Node, topic: str = "~/jacobian_metrics", extra_label: str = "",
                 extra_size: int = 0) -> None:
        """``extra_label`` / ``extra_size``: one more dimension holding ``extra_size``
        values after ``METRIC_NAMES`` (the telemetry block,
        jacobian_ik.telemetry.aggregate)."""
        self._publisher = node.create_publisher(Float64MultiArray, topic, 10)
        msg = Float64MultiArray()
        dims = []
        sizes = [(name, 1) for name in METRIC_NAMES]
        if extra_size:
            sizes.append((extra_label, extra_size))
        for name, size in sizes:
            dim = MultiArrayDimension()
            dim.label = name
            dim.size = size
            dim.stride = size
            dims.append(dim)
        msg.layout.dim = dims
        msg.data = [math.nan] * len(METRIC_NAMES) + [0.0] * extra_size
        self._data = msg.data
        self._msg = msg

    def publish(self, result: StepResult | StepOutput, compute_time: float, step_time: float,
                extra: array | None = None) -> None:
        """``extra``: ``array('d')`` of the ``extra_size`` values."""
        data = self._data
        data[0] = result.sigma_min
        data[1] = result.sigma_max
        data[2] = result.condition_number
        data[3] = result.manipulability
        data[4] = result.speed_scale
        data[5] = result.damping
        data[6] = result.position_error
        data[7] = result.orientation_error
        data[8] = compute_time
        data[9] = float(int(result.state))
        data[10] = 1.0 if result.goal_reached else 0.0
        data[11] = step_time
        data[12] = result.min_distance
        if extra is not None:
            data[len(METRIC_NAMES):] = extra
        self._publisher.publish(self._msg)


def metrics_as_dict(msg: Float64MultiArray) -> dict[str, float]:
    """A received ``~/jacobian_metrics`` message as {name: value}."""
    return {dim.label: value for dim, value in zip(msg.layout.dim, msg.data)}


def _fmt(value: float, scale: float = 1.0, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value * scale:.{digits}g}"


class DiagnosticsPublisher:
    """Publishes one ``DiagnosticStatus`` about the controller on ``/diagnostics``."""

    def __init__(self, node: Node, name: str, hardware_id: str) -> None:
        self._publisher = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._node = node
        self.name = name
        self.hardware_id = hardware_id

    def publish(self, state_name: str, reason: str,
                last_result: StepResult | StepOutput | None,
                stats: CycleStats, output_mode: str, rate_target: float,
                counters: Iterable[tuple[str, object]] | None = None) -> None:
        """``counters``: extra (name, value) pairs, e.g. rejected messages."""
        status = DiagnosticStatus()
        status.level = STATE_LEVELS.get(state_name, DiagnosticStatus.WARN)
        status.name = self.name
        status.hardware_id = self.hardware_id
        status.message = state_text(state_name, reason)
        p50, p99 = stats.compute_percentiles(50.0, 99.0)
        s50, s99 = stats.step_percentiles(50.0, 99.0)
        per50, per99 = stats.period_percentiles(50.0, 99.0)
        values = [
            ("state", state_name),
            ("reason", reason),
            ("output", output_mode),
            ("rate_target_hz", _fmt(rate_target)),
            ("rate_achieved_hz", _fmt(stats.rate())),
            ("cycle_time_p50_us", _fmt(p50, 1e6)),
            ("cycle_time_p99_us", _fmt(p99, 1e6)),
            ("step_time_p50_us", _fmt(s50, 1e6)),
            ("step_time_p99_us", _fmt(s99, 1e6)),
            ("period_p50_ms", _fmt(per50, 1e3)),
            ("period_p99_ms", _fmt(per99, 1e3)),
            ("period_max_ms", _fmt(stats.period_max(), 1e3)),
            ("cycles", str(stats.cycles)),
            ("overruns", str(stats.overruns)),
        ]
        values += [(name, str(count)) for name, count in (counters or ())]
        if last_result is not None:
            values += [
                ("sigma_min", _fmt(last_result.sigma_min)),
                ("condition_number", _fmt(last_result.condition_number)),
                ("manipulability", _fmt(last_result.manipulability)),
                ("speed_scale", _fmt(last_result.speed_scale)),
                ("damping", _fmt(last_result.damping)),
                ("position_error_m", _fmt(last_result.position_error)),
                ("orientation_error_rad", _fmt(last_result.orientation_error)),
            ]
        status.values = [KeyValue(key=k, value=v) for k, v in values]
        array = DiagnosticArray()
        array.header.stamp = self._node.get_clock().now().to_msg()
        array.status = [status]
        self._publisher.publish(array)
