"""ROS 2 node ``sim_arm``: a simulated arm with ros2_control-like topics.

A thin adapter over ``jacobian_ik.sim.SimArm`` (see ``docs/simulator.md``):

* publishes ``/joint_states`` (``sensor_msgs/JointState``: stamp from the node
  clock at the time the state was measured, names in chain order, position,
  velocity) from a timer at ``publish_rate``; each tick advances the backend
  once by the real (monotonic) time elapsed since the previous tick;
* subscribes to ``/forward_velocity_controller/commands`` and
  ``/forward_position_controller/commands`` (``std_msgs/Float64MultiArray``,
  one value per joint in chain order) and to
  ``/joint_trajectory_controller/joint_trajectory``
  (``trajectory_msgs/JointTrajectory``).  A non-finite or wrong-size command
  is dropped with a throttled warning; the arm keeps its last valid command.

Parameters are read once at start-up (read-only) into a ``SimConfig``; a bad
value logs the reason and ``main`` returns 1.

Run: ``python -m jacobian_ik.node.sim_arm --ros-args -p urdf_path:=... -p
base_link:=... -p tip_link:=...`` (or the ``sim_arm`` console script).
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from jacobian_ik.errors import JacobianIkError
from jacobian_ik.node.interface import SIM_NODE
from jacobian_ik.node.outputs import float64_field
from jacobian_ik.node.process import run_node
from jacobian_ik.sim.arm import SimArm
from jacobian_ik.sim.config import SimConfig
from jacobian_ik.sim.faults import JointSample

NODE_NAME = SIM_NODE[0]
JOINT_STATES_TOPIC = "/joint_states"
VELOCITY_COMMAND_TOPIC = "/forward_velocity_controller/commands"
POSITION_COMMAND_TOPIC = "/forward_position_controller/commands"
TRAJECTORY_TOPIC = "/joint_trajectory_controller/joint_trajectory"
QOS_DEPTH = 10
#: Minimum time between two warnings about dropped commands of one kind [s].
WARN_THROTTLE = 1.0

#: ROS parameters of the node (all of SimConfig's fields), with their meaning.
PARAMETER_DESCRIPTIONS = {
    "robot_description": "URDF of the robot as XML text; takes precedence over urdf_path",
    "urdf_path": "path of a URDF file, used when robot_description is empty",
    "base_link": "root link of the simulated chain (fixed to the world)",
    "tip_link": "end link of the simulated chain; its moving joints are simulated",
    "backend": "simulation backend: kinematic | mujoco",
    "initial_positions": "start configuration [rad | m], one per chain joint; "
                         "unset or empty = mid-range of the limits",
    "publish_rate": "rate of /joint_states and of backend steps [Hz]",
    "velocity_lag": "first-order lag time constant of the kinematic backend [s]; 0 = none",
    "noise_std": "fault: std of Gaussian noise on published positions [rad]",
    "latency": "fault: age of the published state [s]",
    "drop_probability": "fault: probability that a /joint_states message is not sent [0..1]",
    "freeze_after": "fault: the published /joint_states freeze at this time [s]; <= 0 = never",
    "freeze_mode": "fault: once frozen, publish nothing (silent), the last message again "
                   "with its stamp (repeat), or its positions with fresh stamps (stuck)",
    "jump_after": "fault: move every joint by jump_offset at this time [s]; <= 0 = never",
    "jump_offset": "fault: size of the jump [rad | m] (clipped to the limits)",
    "seed": "seed of the fault random numbers (noise, drops)",
    "mujoco_actuator": "MuJoCo joint servo: velocity (no position feedback for velocity "
                       "commands) | position",
    "mujoco_kv": "MuJoCo velocity-loop gain [N*m*s/rad]",
    "mujoco_kp": "MuJoCo position-loop gain [N*m/rad]",
    "mujoco_timestep": "MuJoCo physics time step [s]",
}


def declare_sim_parameters(node: Node) -> SimConfig:
    """Declare every simulator parameter (read-only) and return the validated SimConfig.

    Raises ``ConfigurationError`` naming the bad parameter.
    """
    values = {}
    for name, text in PARAMETER_DESCRIPTIONS.items():
        default = SimConfig.__dataclass_fields__[name].default
        if isinstance(default, tuple):
            default = None  # an empty array has no ROS type: unset means "default"
        descriptor = ParameterDescriptor(description=text, read_only=True, dynamic_typing=True)
        node.declare_parameter(name, default, descriptor)
        value = node.get_parameter(name).value
        if not isinstance(value, (str, bytes)) and hasattr(value, "__iter__"):
            value = list(value)  # ROS arrays arrive as list or array.array
        values[name] = value
    return SimConfig.from_mapping(values)


class SimArmNode(Node):
    """The ``sim_arm`` node: timer → ``SimArm.tick`` → /joint_states; commands → SimArm."""

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        try:
            self.config = declare_sim_parameters(self)
            self.sim = SimArm(self.config)
        except JacobianIkError:
            self.destroy_node()
            raise
        self.dropped_commands = 0
        self._warned: dict[tuple[str, str], tuple[float, int]] = {}  # → (time, repeats)
        self._msg = JointState()
        self._sample: JointSample | None = None     # the sample self._msg holds
        self._msg.name = list(self.sim.joint_names)
        n = len(self.sim.joint_names)
        self._position = float64_field(self._msg, "position", n)
        self._velocity = float64_field(self._msg, "velocity", n)
        self._publisher = self.create_publisher(JointState, JOINT_STATES_TOPIC, QOS_DEPTH)
        self.create_subscription(Float64MultiArray, VELOCITY_COMMAND_TOPIC,
                                 self._on_velocity, QOS_DEPTH)
        self.create_subscription(Float64MultiArray, POSITION_COMMAND_TOPIC,
                                 self._on_position, QOS_DEPTH)
        self.create_subscription(JointTrajectory, TRAJECTORY_TOPIC,
                                 self._on_trajectory, QOS_DEPTH)
        self._timer = self.create_timer(self.config.period, self._on_timer)
        self.get_logger().info(
            f"simulating {self.sim.robot.dof} joints ({', '.join(self.sim.joint_names)}) "
            f"with the {self.config.backend} backend at {self.config.publish_rate:g} Hz")

    # ------------------------------------------------------------ commands
    def _on_velocity(self, msg: Float64MultiArray) -> None:
        self._report(self.sim.command_velocity(msg.data), VELOCITY_COMMAND_TOPIC)

    def _on_position(self, msg: Float64MultiArray) -> None:
        self._report(self.sim.command_position(msg.data), POSITION_COMMAND_TOPIC)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        points = [(p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec,
                   list(p.positions), list(p.velocities)) for p in msg.points]
        self._report(self.sim.command_trajectory(list(msg.joint_names), points,
                                                 time.monotonic()), TRAJECTORY_TOPIC)

    def _report(self, reason: str | None, topic: str) -> None:
        """Count a dropped command and warn, at most once per WARN_THROTTLE per reason."""
        if reason is None:
            return
        self.dropped_commands += 1
        key = (topic, reason)
        now = time.monotonic()
        last, repeats = self._warned.get(key, (-math.inf, 0))
        if now - last < WARN_THROTTLE:
            self._warned[key] = (last, repeats + 1)
            return
        more = f" ({repeats} more since the last warning)" if repeats else ""
        self.get_logger().warning(f"{topic}: {reason}{more}")
        self._warned[key] = (now, 0)

    # ------------------------------------------------------------ state
    def _on_timer(self) -> None:
        now = time.monotonic()
        sample = self.sim.tick(now)
        if sample is None:
            return
        if sample is self._sample:      # the same sample again: the same message
            self._publisher.publish(self._msg)
            return
        self._sample = sample
        age_ns = int(round((now - sample.time) * 1e9))
        stamp_ns = self.get_clock().now().nanoseconds - age_ns
        msg = self._msg
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        np.copyto(self._position, sample.position)
        np.copyto(self._velocity, sample.velocity)
        self._publisher.publish(msg)


def main(args: list[str] | None = None) -> int:
    """Run the node until Ctrl-C / SIGTERM. Returns 0, or 1 if the parameters are bad."""
    return run_node(NODE_NAME, SimArmNode, None, args)


if __name__ == "__main__":
    sys.exit(main())
