"""The floor a Python ROS node sits on: an rclpy loop with the controller's topics
and no computation.

``python -m bench.bare_loop --rate R --executor events|single`` subscribes to
``/joint_states`` and, from a steady-clock timer at ``R`` Hz, publishes a
``Float64MultiArray`` of 7 values on the velocity command topic every tick and
one of 12 values on ``~/jacobian_metrics`` at 100 Hz: the messages the
controller node sends at those rates.  It spins the way the node process does
(``spin_once`` until a signal handler sets a flag) until SIGINT / SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys

import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from jacobian_ik.node.outputs import DEFAULT_TOPICS

METRICS_RATE = 100.0


class BareLoop(Node):
    def __init__(self, rate: float):
        super().__init__("bare_loop")
        self.last_joint_state = None
        self.create_subscription(JointState, "/joint_states", self._on_joint_state,
                                 qos_profile_sensor_data)
        self._command = Float64MultiArray(data=[0.0] * 7)
        self._metrics = Float64MultiArray(data=[0.0] * 12)
        self._command_pub = self.create_publisher(Float64MultiArray,
                                                  DEFAULT_TOPICS["velocity"], 1)
        self._metrics_pub = self.create_publisher(Float64MultiArray, "~/jacobian_metrics", 10)
        self._every = max(1, round(rate / METRICS_RATE))
        self._countdown = 1
        self.create_timer(1.0 / rate, self._on_tick,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _on_joint_state(self, msg: JointState) -> None:
        self.last_joint_state = msg

    def _on_tick(self) -> None:
        self._command_pub.publish(self._command)
        self._countdown -= 1
        if self._countdown == 0:
            self._countdown = self._every
            self._metrics_pub.publish(self._metrics)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--executor", choices=("events", "single"), required=True)
    args, ros_args = parser.parse_known_args(argv)
    rclpy.init(args=ros_args, signal_handler_options=SignalHandlerOptions.NO)
    node = BareLoop(args.rate)
    if args.executor == "events":
        from rclpy.experimental import EventsExecutor
        executor = EventsExecutor()
    else:
        executor = SingleThreadedExecutor()
    executor.add_node(node)
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    print("bare loop ready", flush=True)
    try:
        while not stop:
            executor.spin_once(timeout_sec=0.1)
    except ExternalShutdownException:
        pass
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
