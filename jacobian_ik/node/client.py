"""An in-process ROS client of the controller node (used by the demo, the
benchmark and the tests).

``ControllerClient`` runs its own rclpy context (so it can join any domain id)
and executor thread.  It records what the controller publishes (``~/state``,
``~/jacobian_metrics``, the command topic) and ``/joint_states``, sends targets
and calls the services.  Every recorded sample carries its receipt time
[s, ``time.monotonic``].
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped, TwistStamped
from rcl_interfaces.msg import SetParametersResult
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.client import Client
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter, parameter_value_to_python
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from jacobian_ik.node.outputs import DEFAULT_TOPICS
from jacobian_ik.node.status import METRIC_NAMES, STATE_SUBSCRIBER_QOS, parse_state_text
from jacobian_ik.node.telemetry_hooks import DUMP_SERVICE
from jacobian_ik.rotations import matrix_to_quaternion


@dataclass(frozen=True)
class StateSample:
    time: float
    name: str
    reason: str


def pose_message(T: np.ndarray, frame_id: str) -> PoseStamped:
    """``PoseStamped`` of a (4, 4) transform in ``frame_id``."""
    msg = PoseStamped()
    msg.header.frame_id = frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in T[:3, 3])
    q = matrix_to_quaternion(T[:3, :3])
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = q
    return msg


def twist_message(twist: Iterable[float], frame_id: str, stamp_sec: int = 0) -> TwistStamped:
    """``TwistStamped`` of (vx, vy, vz, wx, wy, wz) [m/s, rad/s] in ``frame_id``
    (header stamp ``stamp_sec`` [s]; the controller ignores it)."""
    msg = TwistStamped()
    msg.header.frame_id = frame_id
    msg.header.stamp.sec = int(stamp_sec)
    t = [float(v) for v in twist]
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = t[:3]
    msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = t[3:]
    return msg


class ControllerClient:
    """Talks to one ``ik_controller`` node over ROS.

    Recorded joint states are (header stamp [s], q); the other records are
    (receipt time [s, monotonic], values).

    ``joint_names`` (chain order) selects the joints recorded from
    /joint_states.  ``record_joint_states`` / ``record_commands`` keep every
    sample (for limit checks); otherwise only the latest is kept.
    """

    def __init__(self, joint_names: Iterable[str], *, domain_id: int | None = None,
                 controller: str = "/ik_controller", output: str = "velocity",
                 output_topic: str | None = None, record_joint_states: bool = False,
                 record_commands: bool = False, record_metrics: bool = False,
                 node_name: str = "jacobian_ik_client") -> None:
        self.joint_names = tuple(joint_names)
        self.controller = controller.rstrip("/")
        self.output = output
        self._lock = threading.Lock()
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node(node_name, context=self.context)
        self.states: list[StateSample] = []
        self.metrics: dict[str, float] = {}
        self.metrics_history: list[tuple[float, np.ndarray]] = []
        self.joint_states: list[tuple[float, np.ndarray]] = []
        self.commands: list[tuple[float, np.ndarray]] = []
        self.q: np.ndarray | None = None
        self.q_time = 0.0
        self.command: np.ndarray | None = None
        self.last_command_message: Float64MultiArray | JointTrajectory | None = None
        self.command_count = 0
        self.metrics_count = 0
        self._record_joint_states = record_joint_states
        self._record_commands = record_commands
        self._record_metrics = record_metrics
        self._index: list[int] | None = None     # message index of each chain joint
        self._index_names: list[str] = []        # the names the index was built for
        n = self.node
        n.create_subscription(String, f"{self.controller}/state", self._on_state,
                              STATE_SUBSCRIBER_QOS)
        n.create_subscription(Float64MultiArray, f"{self.controller}/jacobian_metrics",
                              self._on_metrics, 10)
        n.create_subscription(JointState, "/joint_states", self._on_joint_states,
                              1000 if record_joint_states else 50)
        n.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.diagnostics: DiagnosticStatus | None = None
        topic = output_topic or DEFAULT_TOPICS[output]
        # Deep queues while recording, so that no sample is lost when this
        # process is briefly starved of CPU.
        depth = 1000 if record_commands else 50
        if output == "trajectory":
            n.create_subscription(JointTrajectory, topic, self._on_trajectory, depth)
        else:
            n.create_subscription(Float64MultiArray, topic, self._on_command, depth)
        self.pose_publisher = n.create_publisher(PoseStamped, f"{self.controller}/target_pose",
                                                 10)
        self.twist_publisher = n.create_publisher(TwistStamped,
                                                  f"{self.controller}/target_twist", 10)
        self.joint_state_publisher = n.create_publisher(JointState, "/joint_states", 10)
        self._reset: Client[Trigger.Request, Trigger.Response] = \
            n.create_client(Trigger, f"{self.controller}/reset")
        self._pause: Client[SetBool.Request, SetBool.Response] = \
            n.create_client(SetBool, f"{self.controller}/pause")
        self._dump: Client[Trigger.Request, Trigger.Response] = \
            n.create_client(Trigger, f"{self.controller}/{DUMP_SERVICE[2:]}")
        self._set_parameters: Client[SetParameters.Request, SetParameters.Response] = \
            n.create_client(SetParameters, f"{self.controller}/set_parameters")
        self._get_parameters: Client[GetParameters.Request, GetParameters.Response] = \
            n.create_client(GetParameters, f"{self.controller}/get_parameters")
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # the context was shut down by close()
            pass

    # ------------------------------------------------------------ callbacks
    def _on_state(self, msg: String) -> None:
        name, reason = parse_state_text(msg.data)
        with self._lock:
            self.states.append(StateSample(time.monotonic(), name, reason))

    def _on_metrics(self, msg: Float64MultiArray) -> None:
        values = {dim.label: value for dim, value in zip(msg.layout.dim, msg.data)}
        with self._lock:
            self.metrics = values
            self.metrics_count += 1
            if self._record_metrics:
                self.metrics_history.append((time.monotonic(), np.array(msg.data)))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(self.controller.lstrip("/").split("/")[-1]):
                with self._lock:
                    self.diagnostics = status

    def _on_joint_states(self, msg: JointState) -> None:
        index = self._index
        if index is None or len(msg.name) != len(self._index_names) \
                or list(msg.name) != self._index_names:
            try:
                index = [list(msg.name).index(j) for j in self.joint_names]
            except ValueError:
                return  # not a message of this arm (e.g. one the tests inject)
            self._index = index
            self._index_names = list(msg.name)
        if len(msg.position) != len(msg.name):
            return
        q = np.array([msg.position[i] for i in index])
        now = time.monotonic()
        stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
        with self._lock:
            self.q = q
            self.q_time = now
            if self._record_joint_states:
                # The publisher's stamp (time of measurement) when it has one: receipt
                # times bunch up when this process is short of CPU.
                self.joint_states.append((stamp if stamp > 0.0 else now, q))

    def _on_command(self, msg: Float64MultiArray) -> None:
        self.last_command_message = msg
        self._store_command(np.array(msg.data))

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        self.last_command_message = msg
        if msg.points:
            point = msg.points[0]
            self._store_command(np.concatenate([np.array(point.positions),
                                                np.array(point.velocities)]))

    def _store_command(self, values: np.ndarray) -> None:
        now = time.monotonic()
        with self._lock:
            self.command = values
            self.command_count += 1
            if self._record_commands:
                self.commands.append((now, values))

    # ------------------------------------------------------------ queries
    @property
    def state(self) -> StateSample | None:
        with self._lock:
            return self.states[-1] if self.states else None

    def latest_q(self) -> np.ndarray:
        """The latest joint positions [rad | m], Shape (n,); RuntimeError before the
        first /joint_states message of this arm."""
        q = self.q
        if q is None:
            raise RuntimeError("no /joint_states message of this arm received yet")
        return q

    def states_since(self, t0: float) -> list[StateSample]:
        with self._lock:
            return [s for s in self.states if s.time >= t0]

    def clear_records(self) -> None:
        with self._lock:
            self.joint_states.clear()
            self.commands.clear()
            self.metrics_history.clear()

    def recorded(self) -> tuple[list[tuple[float, np.ndarray]], list[tuple[float, np.ndarray]],
                                list[tuple[float, np.ndarray]]]:
        """(joint_states, commands, metrics_history) recorded so far (copies)."""
        with self._lock:
            return list(self.joint_states), list(self.commands), list(self.metrics_history)

    def wait_for(self, predicate: Callable[[], object], timeout: float,
                 poll: float = 0.01) -> bool:
        """Wait until ``predicate()`` is true; False after ``timeout`` [s]."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)

    def wait_for_state(self, names: str | Iterable[str], timeout: float,
                       since: float | None = None) -> StateSample | None:
        """The first state sample named in ``names`` (received at or after ``since``)."""
        names = {names} if isinstance(names, str) else set(names)
        t0 = -1.0 if since is None else since
        found: list[StateSample] = []

        def check() -> bool:
            for sample in self.states_since(t0):
                if sample.name in names:
                    found.append(sample)
                    return True
            return False

        return found[0] if self.wait_for(check, timeout) else None

    def wait_until_connected(self, timeout: float) -> bool:
        """Wait until joint states, metrics and the services are available."""
        ok = self.wait_for(lambda: self.q is not None and self.metrics_count > 0, timeout)
        for client in (self._reset, self._pause, self._set_parameters):
            ok = ok and client.wait_for_service(timeout_sec=timeout)
        ok = ok and self.wait_for(
            lambda: self.pose_publisher.get_subscription_count() > 0
            and self.twist_publisher.get_subscription_count() > 0, timeout)
        return ok

    # ------------------------------------------------------------ commands
    def send_pose(self, T: np.ndarray, frame_id: str) -> None:
        self.pose_publisher.publish(pose_message(T, frame_id))

    def send_twist(self, twist: Iterable[float], frame_id: str, stamp_sec: int = 0) -> None:
        self.twist_publisher.publish(twist_message(twist, frame_id, stamp_sec))

    def _call(self, client: Client[Any, Any], request: Any, timeout: float) -> Any:
        """The service's reply to ``request`` (raises TimeoutError after ``timeout`` [s])."""
        future = client.call_async(request)
        if not self.wait_for(future.done, timeout):
            raise TimeoutError(f"service {client.srv_name} did not answer in {timeout} s")
        return future.result()

    def reset(self, timeout: float = 10.0) -> Trigger.Response:
        return self._call(self._reset, Trigger.Request(), timeout)

    def dump(self, timeout: float = 10.0) -> Trigger.Response:
        """Ask the flight recorder for a file; the reply's message is its path."""
        return self._call(self._dump, Trigger.Request(), timeout)

    def pause(self, paused: bool, timeout: float = 10.0) -> SetBool.Response:
        return self._call(self._pause, SetBool.Request(data=paused), timeout)

    def set_parameters(self, timeout: float = 10.0,
                       **values: Any) -> list[SetParametersResult]:
        """Set controller parameters live; returns the list of SetParametersResult."""
        request = SetParameters.Request()
        request.parameters = [Parameter(name, value=value).to_parameter_msg()
                              for name, value in values.items()]
        return self._call(self._set_parameters, request, timeout).results

    def get_parameters(self, *names: str, timeout: float = 10.0) -> dict[str, Any]:
        """Current values of controller parameters, by name."""
        request = GetParameters.Request(names=list(names))
        values = self._call(self._get_parameters, request, timeout).values
        return {name: parameter_value_to_python(value) for name, value in zip(names, values)}

    def close(self) -> None:
        try:
            self.executor.shutdown(timeout_sec=1.0)
        except Exception:
            pass
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=2.0)


__all__ = ["ControllerClient", "METRIC_NAMES", "StateSample", "matrix_to_quaternion",
           "pose_message", "twist_message"]
