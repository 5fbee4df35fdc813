"""The controller node's side of the telemetry: aggregates, info, flight recorder.

``ControllerTelemetry`` is created by ``ik_controller`` and called once per
control cycle (``cycle``) and per rejected input (``rejected``).  It keeps the
``CycleAggregates`` appended to every ``~/jacobian_metrics`` message, the info
pairs and the counts by collision pair (``PairCounts``) added to ``/diagnostics``,
and the ``FlightRecorder`` with its ``~/dump``
service (``std_srvs/Trigger``: the reply names the file that will be written).

Parameters (read-only, declared here): ``RECORDER_PARAMETERS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.node import Node
from std_srvs.srv import Trigger

from jacobian_ik.errors import ConfigurationError
from jacobian_ik.node.parameters import NodeParameter, node_descriptor
from jacobian_ik.telemetry.aggregate import CycleAggregates, PairCounts, reason_class
from jacobian_ik.telemetry.info import info_values, parameters_sha256
from jacobian_ik.telemetry.names import RECORDER_TRIGGER_STATES, STATE_NAMES
from jacobian_ik.telemetry.recorder import TARGET_MODE_CODES, FlightRecorder, RecorderSettings

if TYPE_CHECKING:
    from jacobian_ik.controller import StepOutput, StepResult
    from jacobian_ik.params import ControllerParams
    from jacobian_ik.robot import Robot
    from jacobian_ik.safety import SafetyState

#: The state whose cycles count by pair (``PairCounts.approaching``).
_APPROACHING = "APPROACHING_COLLISION"

DUMP_SERVICE = "~/dump"

#: Flight-recorder parameters of the controller node → RecorderSettings fields.
RECORDER_PARAMETERS = {
    "flight_recorder_seconds": ("seconds", NodeParameter(
        RecorderSettings.seconds, "seconds of control cycles the flight recorder keeps "
                                  "(0 = off) [s]")),
    "flight_recorder_folder": ("folder", NodeParameter(
        RecorderSettings.folder, "folder of the flight-recorder files (empty: "
                                 "$ROS_HOME/jacobian_ik/flight_recorder)")),
    "flight_recorder_max_files": ("max_files", NodeParameter(
        RecorderSettings.max_files, "most flight-recorder files kept (oldest removed)")),
    "flight_recorder_max_megabytes": ("max_megabytes", NodeParameter(
        RecorderSettings.max_megabytes, "most megabytes of flight-recorder files kept "
                                        "(oldest removed) [MB]")),
}


def declare_recorder_parameters(node: Node) -> RecorderSettings:
    """Declare ``RECORDER_PARAMETERS``; raises ConfigurationError for bad values."""
    values: dict[str, Any] = {}
    for name, (field, spec) in RECORDER_PARAMETERS.items():
        try:
            node.declare_parameter(name, spec.default, node_descriptor(name, spec))
        except InvalidParameterTypeException as exc:
            raise ConfigurationError(
                f"parameter '{name}' must be of type {type(spec.default).__name__} "
                f"(default {spec.default!r}): {exc}") from None
        values[field] = node.get_parameter(name).value
    return RecorderSettings(**values)


class ControllerTelemetry:
    """Telemetry state of one controller node (see the module docstring)."""

    def __init__(self, node: Node, robot: Robot, params: ControllerParams,
                 urdf_source: str, reason_pair: Callable[[], str]) -> None:
        """``reason_pair``: the pair the last cycle's reason names, "" for none
        (``Controller.reason_pair``)."""
        self._node = node
        settings = declare_recorder_parameters(node)
        self.aggregates = CycleAggregates(params.sigma_stop, params.sigma_warn,
                                          params.collision_stop_distance,
                                          params.collision_influence_distance)
        self.pairs = PairCounts()
        self._reason_pair = reason_pair
        self.info = info_values(urdf_source, robot.base_link, robot.tip_link, params)
        self._params = params
        self._previous_state: SafetyState | None = None
        self._goal = False
        self.recorder: FlightRecorder | None = None
        if settings.seconds > 0.0:
            logger = node.get_logger()
            self.recorder = FlightRecorder(
                robot.joint_names, params.control_rate, settings, STATE_NAMES,
                on_written=self._on_written, on_failed=self._on_failed,
                warn=logger.warning)
            logger.info(f"flight recorder: last {settings.seconds:g} s "
                        f"({self.recorder.capacity} cycles) into {self.recorder.folder}")
        node.create_service(Trigger, DUMP_SERVICE, self._on_dump)

    # ------------------------------------------------------------ control cycle
    def cycle(self, start: float, q: np.ndarray, result: StepResult | StepOutput,
              target: np.ndarray | None,
              target_mode: str | None, duration: float, node_rejected: bool,
              measurement_stale: bool, overruns: int) -> None:
        """One stepped control cycle (called after the command is published).
        ``result`` is the node's StepOutput, which the next cycle overwrites: keep
        only values (states are singletons) or copies of its arrays."""
        a = self.aggregates
        a.cycle(result.sigma_min, duration, result.min_distance)
        state = result.state
        name = state.name
        if name == _APPROACHING:
            pair = self._reason_pair()
            if pair:
                self.pairs.approaching(pair)
        if state is not self._previous_state:
            params = self._params
            pair = self._reason_pair() if name == "SAFE_STOP" else ""
            if pair:
                self.pairs.stop(pair)
            a.transition(name, reason_class(name, result.sigma_min, result.goal_reached,
                                            params.sigma_stop, params.sigma_warn,
                                            node_rejected=node_rejected,
                                            measurement_stale=measurement_stale,
                                            collision=bool(pair)))
            if self.recorder is not None and name in RECORDER_TRIGGER_STATES:
                self.recorder.trigger(start, f"{name}: {result.reason}")
            self._previous_state = state
        goal = result.goal_reached
        if goal and not self._goal:
            a.goal_reached()
        self._goal = goal
        a.set_overruns(overruns)
        if self.recorder is not None:
            mode = TARGET_MODE_CODES["rejected" if node_rejected else (target_mode or "none")]
            self.recorder.record(start, q, result.dq_command, result.q_command,
                                 result.sigma_min, int(state), mode,
                                 None if node_rejected else target, result.min_distance,
                                 result.closest_pair)

    def rejected(self, kind: str) -> None:
        self.aggregates.rejected(kind)

    # ------------------------------------------------------------ outside the cycle
    def params_changed(self, params: ControllerParams) -> None:
        self._params = params
        self.aggregates.set_thresholds(params.sigma_stop, params.sigma_warn)
        self.info = dict(self.info, parameters_sha256=parameters_sha256(params))

    def diagnostics_pairs(self) -> tuple[tuple[str, object], ...]:
        """(key, value) pairs for /diagnostics: the info labels, recorder counts and
        the counts by collision pair."""
        a = self.aggregates
        return tuple(self.info.items()) + (
            ("flight_recorder_files", int(a.value("recorder_files"))),
            ("flight_recorder_failures", int(a.value("recorder_failures")))) \
            + tuple(self.pairs.diagnostics_pairs())

    def _on_written(self, path: Path) -> None:
        self.aggregates.recorder_file()
        self._node.get_logger().info(f"flight recorder wrote {path}")

    def _on_failed(self, message: str) -> None:
        self.aggregates.recorder_failure()

    def _on_dump(self, request: Trigger.Request,
                 response: Trigger.Response) -> Trigger.Response:
        if self.recorder is None:
            response.success = False
            response.message = "the flight recorder is off (flight_recorder_seconds = 0)"
            return response
        path = self.recorder.request_dump(time.monotonic())
        response.success = True
        response.message = path
        return response

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
