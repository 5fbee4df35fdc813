"""The controller node's command output, in one of three ros2_control forms.

``velocity``    ``std_msgs/Float64MultiArray`` joint velocities [rad/s | m/s] for
                a forward velocity controller (default topic
                ``/forward_velocity_controller/commands``).
``position``    ``std_msgs/Float64MultiArray`` joint positions [rad | m] for a
                forward position controller (``/forward_position_controller/commands``).
``trajectory``  ``trajectory_msgs/JointTrajectory`` with one point (positions,
                velocities, ``time_from_start`` = one control period) for a
                joint trajectory controller
                (``/joint_trajectory_controller/joint_trajectory``).

Arrays are in the chain's joint order.  One message object is built at start-up
and refilled in place every cycle: its float64 arrays are ``array.array('d')``
objects (what rclpy keeps for a ``float64[]`` field), each with a NumPy view
over the same memory, so a cycle copies the command in with one ``np.copyto``
and no per-element Python conversion or allocation.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

import numpy as np
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

# Output modes and their default topics are declared in jacobian_ik.node.interface.
from jacobian_ik.node.interface import DEFAULT_TOPICS, OUTPUT_MODES

__all__ = ["DEFAULT_TOPICS", "OUTPUT_MODES", "CommandOutput", "output_topic_parameter"]


def float64_field(msg: object, field: str, n: int) -> np.ndarray:
    """Set ``float64[]`` field ``field`` of ``msg`` to n zeros; return a NumPy view
    of the array the message holds (write it every cycle; never reassign the field)."""
    setattr(msg, field, array("d", bytes(8 * n)))
    # The setter may store a copy: view the array the message kept.
    return np.frombuffer(getattr(msg, field), dtype=np.float64)


def output_topic_parameter(mode: str) -> str:
    """Name of the ROS parameter that sets the topic of output ``mode``."""
    return f"{mode}_command_topic"


class CommandOutput:
    """Publishes joint commands in one output mode; one message reused per cycle."""

    def __init__(self, node: Node, mode: str, topic: str, joint_names: Sequence[str],
                 period: float, qos_depth: int = 1) -> None:
        if mode not in DEFAULT_TOPICS:
            # ConfigurationError is raised by the caller's parameter check; this
            # guards direct use of the class.
            raise ValueError(f"output mode '{mode}' is unknown; modes are: "
                             f"{', '.join(OUTPUT_MODES)}")
        self.mode = mode
        self.topic = topic
        n = len(joint_names)
        self._n = n
        if mode == "trajectory":
            msg = JointTrajectory()
            msg.joint_names = list(joint_names)
            point = JointTrajectoryPoint()
            self._positions = float64_field(point, "positions", n)
            self._velocities = float64_field(point, "velocities", n)
            seconds = int(period)
            point.time_from_start.sec = seconds
            point.time_from_start.nanosec = int(round((period - seconds) * 1e9))
            msg.points = [point]
            # A zero header stamp means "start now" to a joint trajectory
            # controller, whatever the clocks of the two nodes say.
            self._msg = msg
            self._publisher = node.create_publisher(JointTrajectory, topic, qos_depth)
        else:
            # No layout: a forward command controller reads data only, and an
            # empty layout is less to convert per message.
            msg = Float64MultiArray()
            self._data = float64_field(msg, "data", n)
            self._msg = msg
            self._publisher = node.create_publisher(Float64MultiArray, topic, qos_depth)

    def publish(self, dq_command: np.ndarray, q_command: np.ndarray) -> None:
        """Publish velocities dq_command [rad/s] and/or positions q_command [rad], shape (n,)."""
        mode = self.mode
        if mode == "velocity":
            np.copyto(self._data, dq_command)
        elif mode == "position":
            np.copyto(self._data, q_command)
        else:
            np.copyto(self._positions, q_command)
            np.copyto(self._velocities, dq_command)
        self._publisher.publish(self._msg)

    def destroy(self, node: Node) -> None:
        node.destroy_publisher(self._publisher)
