"""ROS 2 node ``ik_controller``: the Jacobian controller on ROS topics.

A thin adapter over ``jacobian_ik.controller.Controller`` (see docs/node.md):

Inputs   ``/joint_states`` (``sensor_msgs/JointState``, merged by joint name),
         ``~/target_pose`` (``geometry_msgs/PoseStamped``, base frame: goal mode),
         ``~/target_twist`` (``geometry_msgs/TwistStamped``, base frame: servo mode,
         times out after ``stale_timeout`` counted from its receipt).
Outputs  joint velocities, joint positions or a one-point joint trajectory for
         ros2_control (parameter ``output``), ``~/state``, ``~/jacobian_metrics``,
         ``/diagnostics``.
Scene    ``scene_file`` and ``~/scene`` (``visualization_msgs/MarkerArray``) set the
         obstacles; ``~/collision_markers`` and ``~/scene_status`` report them
         (jacobian_ik.node.scene).
Services ``~/reset`` (``std_srvs/Trigger``), ``~/pause`` (``std_srvs/SetBool``),
         ``~/dump`` (``std_srvs/Trigger``: write the flight recorder now).
Telemetry (jacobian_ik.node.telemetry_hooks): per-cycle aggregates appended to
``~/jacobian_metrics``, info pairs in ``/diagnostics``, the flight recorder.

Time: receipt times, ages and the loop timer use the steady (monotonic) clock,
so neither header stamps nor a simulated ``/clock`` can keep a command alive.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger

from jacobian_ik.controller import Controller, SafetyState, StepOutput
from jacobian_ik.errors import JacobianIkError
from jacobian_ik.node.conversions import chain_reach, read_pose, read_twist
from jacobian_ik.node.interface import CONTROLLER_NODE, READY_TEXT
from jacobian_ik.node.joint_states import JointStateMerger
from jacobian_ik.node.outputs import CommandOutput
from jacobian_ik.node.parameters import (
    ParameterGate,
    declare_controller_parameters,
    declare_node_parameters,
)
from jacobian_ik.node.process import run_node
from jacobian_ik.node.scene import SceneInterface, load_scene_file
from jacobian_ik.node.status import DiagnosticsPublisher, MetricsPublisher, StatePublisher
from jacobian_ik.node.telemetry_hooks import ControllerTelemetry
from jacobian_ik.node.timing import CycleStats
from jacobian_ik.numba_target import load_cpu_target
from jacobian_ik.params import ControllerParams
from jacobian_ik.robot import Robot
from jacobian_ik.telemetry.aggregate import AGGREGATES_LABEL

NODE_NAME = CONTROLLER_NODE[0]
JOINT_STATES_TOPIC = "/joint_states"
TARGET_POSE_TOPIC = "~/target_pose"
TARGET_TWIST_TOPIC = "~/target_twist"

#: Diagnostics period [s].  The diagnostics are built and published by the control
#: cycle right after its command, every DIAGNOSTICS_PERIOD / period cycles: there
#: they have the rest of the period to themselves (about 1 ms in a running node).
#: A timer of their own would be due together with a cycle and, run first, make that
#: cycle late once a second.
DIAGNOSTICS_PERIOD = 1.0
#: While the state stays the same, a changed reason is republished at most this often [s].
REASON_REPUBLISH_PERIOD = 0.2
#: At most this many state-change log lines per second; the rest are counted.
STATE_LOG_BUDGET = 10
#: A passive joint (outside the chain, moving collision geometry) is followed once it
#: moved by more than this [rad | m].
PASSIVE_TOLERANCE = 1e-3
#: Rejected messages are logged at most once per this period [s] (per kind).
REJECT_LOG_PERIOD = 1.0


class IkControllerNode(Node):
    """The controller node.  Raises ``JacobianIkError`` from the constructor for
    a bad robot description or parameter (the node is destroyed first)."""

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        try:
            self._configure()
        except JacobianIkError:
            self.destroy_node()
            raise

    # ------------------------------------------------------------ start-up
    def _configure(self) -> None:
        self.settings = declare_node_parameters(self)
        params = declare_controller_parameters(self)
        load_cpu_target()  # before the first kernel: numba's set-up without SciPy
        self.robot = Robot.from_urdf(self.settings.urdf_source, self.settings.base_link,
                                     self.settings.tip_link)
        scene = load_scene_file(self.settings.scene_file, self.robot.base_link)
        self.controller = Controller(self.robot, params, scene=scene)
        # the cycle's result: one StepOutput, overwritten by every cycle (step_into)
        self._step_output = self.controller.new_output()
        n = self.robot.dof
        self.period = 1.0 / params.control_rate

        # Inputs, written by the callbacks, read by the cycle.
        self._joints = JointStateMerger(self.robot.joint_names)  # merged measurement
        self._joint_fault = ""                  # rejected /joint_states, until a cycle reports it
        self._ignored_joint_states = 0
        self._max_target_distance = 2.0 * chain_reach(self.robot)
        self._pose_buffer = np.eye(4)
        self._twist_buffer = np.zeros(6)
        self._pose = np.eye(4)                  # T_base_target
        self._twist = np.zeros(6)               # [m/s, rad/s]
        self._target_mode: str | None = None    # None | "pose" | "twist"
        self._twist_received = 0.0              # [s, monotonic]
        self._target_fault = ""                 # rejected target, until a valid one
        self.rejected_messages = 0
        self.internal_errors = 0

        self._output = CommandOutput(self, self.settings.output, self.settings.output_topic,
                                     self.robot.joint_names, self.period)
        self._zeros = np.zeros(n)
        self._state = StatePublisher(self)
        self.telemetry = ControllerTelemetry(self, self.robot, params,
                                             self.settings.urdf_source,
                                             self.controller.reason_pair)
        self._metrics = MetricsPublisher(self, extra_label=AGGREGATES_LABEL,
                                         extra_size=len(self.telemetry.aggregates.values))
        self._metrics_every = self.settings.metrics_decimation(params.control_rate)
        # cycles until the next metrics message: every metrics_decimation-th cycle, so
        # the totals a message carries count a whole number of decimation periods
        self._metrics_countdown = self._metrics_every
        self._diagnostics = DiagnosticsPublisher(
            self, f"{NODE_NAME}: {self.get_fully_qualified_name()}",
            f"{self.robot.base_link} -> {self.robot.tip_link}")
        self._diagnostics_every = max(1, round(DIAGNOSTICS_PERIOD / self.period))
        self._diagnostics_countdown = self._diagnostics_every
        self.stats = CycleStats(self.period)
        #: The last cycle's result (None before the first): the node's one StepOutput,
        #: which every cycle overwrites in place; read it between cycles, and copy
        #: (``to_result()``) what must outlive the next one.
        self.last_result: StepOutput | None = None
        self._cycle = 0
        self._last_cycle_start: float | None = None
        self._reason_published_at = 0.0
        self._log_window_start = 0.0
        self._log_count = 0
        self._log_suppressed = 0

        self.get_logger().info(
            f"chain {self.robot.base_link} -> {self.robot.tip_link}: {n} joints "
            f"({', '.join(self.robot.joint_names)}); output {self.settings.output} on "
            f"{self.settings.output_topic}; compiling kernels")
        started = time.monotonic()
        self.controller.warm_up()
        warm_up_time = time.monotonic() - started

        self.create_subscription(JointState, JOINT_STATES_TOPIC, self._on_joint_state,
                                 qos_profile_sensor_data)
        self.create_subscription(PoseStamped, TARGET_POSE_TOPIC, self._on_target_pose, 10)
        self.create_subscription(TwistStamped, TARGET_TWIST_TOPIC, self._on_target_twist, 10)
        self.scene = SceneInterface(self, self.controller, scene, self._last_command)
        model = self.controller.collision_model
        self._passive = {} if model is None else dict(model.passive_positions)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_service(SetBool, "~/pause", self._on_pause)
        self.add_on_set_parameters_callback(
            ParameterGate(lambda: self.controller.params, self._apply_params))
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._timer = self.create_timer(self.period, self._on_cycle, clock=steady)
        self._publish_state(SafetyState.IDLE, "ready: waiting for /joint_states",
                            time.monotonic())
        self.get_logger().info(
            f"{READY_TEXT}: kernels compiled in {warm_up_time:.2f} s; control loop at "
            f"{params.control_rate:g} Hz")

    def _last_command(self) -> np.ndarray | None:
        """The last position command (where the arm's capsules are drawn): a copy,
        as the cycle overwrites last_result's arrays."""
        return None if self.last_result is None else self.last_result.q_command.copy()

    def _apply_params(self, new_params: ControllerParams) -> None:
        """Hand validated parameters to the controller (it refuses read-only changes)."""
        changed = self.controller.params.changed_fields(new_params)
        self.controller.update_params(new_params)
        self.telemetry.params_changed(new_params)
        if changed:
            self.get_logger().info("parameters changed: " + ", ".join(
                f"{name}={getattr(new_params, name)}" for name in changed))

    # ------------------------------------------------------------ inputs
    def _on_joint_state(self, msg: JointState) -> None:
        check = self._joints.update(msg, time.monotonic())
        if self._passive:
            self._follow_passive(msg)
        if check.ok:
            return
        if check.ignored:
            if self._ignored_joint_states == 0:
                self.get_logger().info(f"ignoring /joint_states messages that name none of "
                                       f"the chain's joints (first: {list(msg.name)[:4]})")
            self._ignored_joint_states += 1
        else:
            self._joint_fault = check.reason
            self.rejected_messages += 1
            self.telemetry.rejected("joint_states")
            self.get_logger().warning(f"rejected: {check.reason}",
                                      throttle_duration_sec=REJECT_LOG_PERIOD)

    def _follow_passive(self, msg: JointState) -> None:
        """Joints outside the chain that move collision geometry (a gripper's fingers):
        their geometry follows /joint_states when it moved by more than
        PASSIVE_TOLERANCE (finite values only)."""
        moved = {}
        for name, value in zip(msg.name, msg.position):
            if name in self._passive and math.isfinite(value) \
                    and abs(value - self._passive[name]) > PASSIVE_TOLERANCE:
                moved[name] = value
        if moved:
            self._passive.update(moved)
            self.controller.set_passive_positions(moved)

    def _on_target_pose(self, msg: PoseStamped) -> None:
        check = read_pose(msg, self.robot.base_link, self._max_target_distance,
                          self._pose_buffer)
        if check.ok:
            self._pose[:] = self._pose_buffer
            self._target_mode = "pose"
            self._target_fault = ""
        else:
            self._reject_target(check.reason, "target_pose")

    def _on_target_twist(self, msg: TwistStamped) -> None:
        check = read_twist(msg, self.robot.base_link, self._twist_buffer)
        if check.ok:
            self._twist[:] = self._twist_buffer
            self._twist_received = time.monotonic()
            self._target_mode = "twist"
            self._target_fault = ""
        else:
            self._reject_target(check.reason, "target_twist")

    def _reject_target(self, reason: str, kind: str) -> None:
        """A bad target replaces the current one: hold, INVALID_INPUT until a valid one."""
        self._target_mode = None
        self._target_fault = reason
        self.rejected_messages += 1
        self.telemetry.rejected(kind)
        self.get_logger().warning(f"rejected: {reason}", throttle_duration_sec=REJECT_LOG_PERIOD)

    # ------------------------------------------------------------ services
    def _on_reset(self, request: Trigger.Request,
                  response: Trigger.Response) -> Trigger.Response:
        ok, message = self.controller.reset()
        if ok and self._target_fault:
            self._target_fault = ""
            message += "; rejected target cleared"
        response.success = ok
        response.message = message
        self.get_logger().info(f"reset: {message}")
        return response

    def _on_pause(self, request: SetBool.Request,
                  response: SetBool.Response) -> SetBool.Response:
        if request.data:
            self.controller.pause()
            # Resuming must not continue an old command: drop the target now.
            self._target_mode = None
            self._target_fault = ""
            response.message = "paused: decelerating and holding; targets cleared"
        else:
            was_paused = self.controller.paused
            self.controller.resume()
            response.message = ("resumed from the measured position; send a new target"
                                if was_paused else "not paused")
        response.success = True
        self.get_logger().info(f"pause({request.data}): {response.message}")
        return response

    # ------------------------------------------------------------ the cycle
    def _on_cycle(self) -> None:
        try:
            self._cycle_once()
        except Exception as exc:  # a bug must not leave a velocity controller running
            self.internal_errors += 1
            self.get_logger().error(f"control cycle failed, commanding a stop: "
                                    f"{type(exc).__name__}: {exc}",
                                    throttle_duration_sec=REJECT_LOG_PERIOD)
            self.publish_stop()
        self._diagnostics_countdown -= 1
        if self._diagnostics_countdown == 0:
            self._diagnostics_countdown = self._diagnostics_every
            self._on_diagnostics()

    def _cycle_once(self) -> None:
        start = time.monotonic()
        last = self._last_cycle_start
        dt = self.period if last is None else start - last
        self._last_cycle_start = start
        joints = self._joints
        if not joints.complete:
            # Not every joint measured yet: a velocity output holds still, the others wait.
            if self._output.mode == "velocity":
                self._output.publish(self._zeros, self._zeros)
            self._publish_state(SafetyState.IDLE, "ready: waiting for /joint_states"
                                + _missing_text(joints), start)
            self.stats.record(start, time.monotonic() - start)
            return

        rejected = self._joint_fault or self._target_fault or None
        self._joint_fault = ""
        target_age = 0.0
        target: np.ndarray | None
        if self._target_mode == "pose":
            target = self._pose
        elif self._target_mode == "twist":
            target = self._twist
            target_age = start - self._twist_received
        else:
            target = None
        measurement_age = joints.age(start, self.controller.params.stale_timeout)
        result = self.controller.step_into(joints.positions, target, dt, self._step_output,
                                           measurement_age=measurement_age,
                                           target_age=target_age, rejected=rejected)
        stepped = time.monotonic()
        self._output.publish(result.dq_command, result.q_command)
        compute = time.monotonic() - start
        self.stats.record(start, compute, stepped - start)
        self.last_result = result
        self.telemetry.cycle(start, joints.positions, result, target, self._target_mode,
                             compute, rejected is not None,
                             measurement_age > self.controller.params.stale_timeout,
                             self.stats.overruns)
        self._cycle += 1
        self._metrics_countdown -= 1
        if self._metrics_countdown == 0:
            self._metrics_countdown = self._metrics_every
            self._metrics.publish(result, compute, stepped - start,
                                  self.telemetry.aggregates.values)
        self._publish_state(result.state, result.reason, start)

    def _publish_state(self, state: SafetyState, reason: str, now: float) -> None:
        publisher = self._state
        name = state.name
        if name == publisher.state_name:
            if reason == publisher.reason or now - self._reason_published_at \
                    < REASON_REPUBLISH_PERIOD:
                return
            publisher.update(name, reason)
            self._reason_published_at = now
            return
        previous = publisher.state_name
        publisher.update(name, reason)
        self._reason_published_at = now
        self._log_state_change(previous, state, reason, now)

    def _log_state_change(self, previous: str, state: SafetyState, reason: str,
                          now: float) -> None:
        if now - self._log_window_start >= 1.0:
            if self._log_suppressed:
                self.get_logger().info(f"({self._log_suppressed} more state changes not logged)")
            self._log_window_start = now
            self._log_count = 0
            self._log_suppressed = 0
        if self._log_count >= STATE_LOG_BUDGET:
            self._log_suppressed += 1
            return
        self._log_count += 1
        text = f"state {previous or '-'} -> {state.name}: {reason}"
        if state.is_fault:
            self.get_logger().warning(text)
        else:
            self.get_logger().info(text)

    def _on_diagnostics(self) -> None:
        self._diagnostics.publish(
            self._state.state_name, self._state.reason, self.last_result, self.stats,
            self.settings.output, self.controller.params.control_rate,
            counters=(("rejected_messages", self.rejected_messages),
                      ("ignored_joint_states", self._ignored_joint_states),
                      ("repeated_joint_states", self._joints.repeated),
                      ("internal_errors", self.internal_errors))
            + self.telemetry.diagnostics_pairs())

    # ------------------------------------------------------------ shutdown
    def publish_stop(self) -> None:
        """Last command before exit: zero velocity (a velocity controller keeps the
        last command it got), or the last position command."""
        if self._output.mode == "velocity":
            self._output.publish(self._zeros, self._zeros)
        elif self.last_result is not None:
            self._output.publish(self._zeros, self.last_result.q_command)


def _missing_text(joints: JointStateMerger) -> str:
    """": no value yet for joints a, b" when some but not all joints were received."""
    missing = joints.missing()
    if len(missing) == len(joints.joint_names):
        return ""
    return f": no value yet for joints {', '.join(missing)}"


def _on_stop(node: IkControllerNode) -> None:
    """Publish the final stop command and log the loop's statistics."""
    try:
        node.publish_stop()
    except Exception as exc:  # the context may already be gone; nothing left to do
        node.get_logger().warning(f"could not publish the final stop command: {exc}")
    node.telemetry.close()
    node.get_logger().info(
        f"stopped after {node.stats.cycles} cycles ({node.stats.overruns} overruns)")


def main(args: list[str] | None = None) -> int:
    """Run the node until Ctrl-C / SIGTERM.  Returns 0, or 1 if it cannot start."""
    return run_node(NODE_NAME, IkControllerNode, _on_stop, args)


if __name__ == "__main__":
    sys.exit(main())
