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
and refilled in place every cycle.
"""

from __future__ import annotations

from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

# Output modes and their default topics are declared in jacobian_ik.node.interface.
from jacobian_ik.node.interface import DEFAULT_TOPICS, OUTPUT_MODES

__all__ = ["DEFAULT_TOPICS", "OUTPUT_MODES", "CommandOutput", "output_topic_parameter"]


def output_topic_parameter(mode: str) -> str:
    """Name of the ROS parameter that sets the topic of output ``mode``."""
    return f"{mode}_command_topic"


class CommandOutput:
    """Publishes joint commands in one output mode; one message reused per cycle."""

    def __init__(self, node, mode: str, topic: str, joint_names, period: float, qos_depth=1):
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
            point.positions = [0.0] * n
            point.velocities = [0.0] * n
            seconds = int(period)
            point.time_from_start.sec = seconds
            point.time_from_start.nanosec = int(round((period - seconds) * 1e9))
            msg.points = [point]
            # A zero header stamp means "start now" to a joint trajectory
            # controller, whatever the clocks of the two nodes say.
            self._positions = point.positions
            self._velocities = point.velocities
            self._msg = msg
            self._publisher = node.create_publisher(JointTrajectory, topic, qos_depth)
        else:
            msg = Float64MultiArray()
            dim = MultiArrayDimension()
            dim.label = "joints"
            dim.size = n
            dim.stride = n
            msg.layout.dim = [dim]
            msg.data = [0.0] * n
            self._data = msg.data
            self._msg = msg
            self._publisher = node.create_publisher(Float64MultiArray, topic, qos_depth)

    def publish(self, dq_command, q_command) -> None:
        """Publish velocities dq_command [rad/s] and/or positions q_command [rad], shape (n,)."""
        n = self._n
        if self.mode == "velocity":
            data = self._data
            for i in range(n):
                data[i] = float(dq_command[i])
        elif self.mode == "position":
            data = self._data
            for i in range(n):
                data[i] = float(q_command[i])
        else:
            positions = self._positions
            velocities = self._velocities
            for i in range(n):
                positions[i] = float(q_command[i])
                velocities[i] = float(dq_command[i])
        self._publisher.publish(self._msg)

    def destroy(self, node) -> None:
        node.destroy_publisher(self._publisher)
