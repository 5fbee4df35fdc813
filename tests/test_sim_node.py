"""The sim_arm ROS node as a real process, probed over real topics from this process.

Each test's node has its own node name and, except in the topic-name test, its topics
remapped below a prefix of the test's own, so that the test hears no other ROS process
even if one shares its domain id.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

from jacobian_ik import Robot, bundled

rclpy = pytest.importorskip("rclpy")

from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.signals import SignalHandlerOptions  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(60)]

JOINT_STATES = "/joint_states"
VELOCITY = "/forward_velocity_controller/commands"
POSITION = "/forward_position_controller/commands"
TRAJECTORY = "/joint_trajectory_controller/joint_trajectory"
TOPICS = (JOINT_STATES, VELOCITY, POSITION, TRAJECTORY)

ARM = "panda"
ROBOT = Robot.from_urdf(bundled.urdf_path(ARM), *bundled.robot_links(ARM))
STARTUP_TIMEOUT = 20.0  # [s] until the first /joint_states message
COMMAND_TIMEOUT = 10.0  # [s] until a command shows in /joint_states (long: loaded machines)


def _ros_value(value) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(repr(float(v)) for v in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)


def sim_command(*, remaps=(), **parameters) -> list[str]:
    """Command line of the sim_arm node for the bundled panda with extra parameters and
    ``(from, to)`` name remappings."""
    base, tip = bundled.robot_links(ARM)
    params = {"urdf_path": str(bundled.urdf_path(ARM)), "base_link": base, "tip_link": tip}
    params.update(parameters)
    command = [sys.executable, "-m", "jacobian_ik.node.sim_arm", "--ros-args"]
    for name, value in params.items():
        command += ["-p", f"{name}:={_ros_value(value)}"]
    for source, target in remaps:
        command += ["-r", f"{source}:={target}"]
    return command


class SimProcess:
    """A running sim_arm process with a node name of its own; its output goes to a log file.

    With ``prefix``, its topics are remapped below that prefix, so that the test hears
    only this process even if another ROS process happens to share the domain id.
    """

    def __init__(self, env, log_path, prefix: str = "", **parameters):
        self.node_name = f"sim_arm_{uuid.uuid4().hex[:8]}"
        remaps = [("__node", self.node_name)]
        remaps += [(topic, prefix + topic) for topic in TOPICS] if prefix else []
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 -- open while the process runs
        self.process = subprocess.Popen(sim_command(remaps=remaps, **parameters), env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> int:
        for sig, wait in ((signal.SIGINT, 5.0), (signal.SIGKILL, 5.0)):
            if self.process.poll() is not None:
                break
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait)
            except subprocess.TimeoutExpired:
                pass
        self._log.close()
        return self.process.returncode


class Probe:
    """An rclpy node in this process: records /joint_states, publishes commands."""

    def __init__(self, node, executor, prefix: str):
        self.node = node
        self.executor = executor
        self.prefix = prefix
        self.states: list[tuple[float, JointState]] = []  # (receipt monotonic time, msg)
        node.create_subscription(JointState, prefix + JOINT_STATES, self._on_state, 100)
        self.velocity = node.create_publisher(Float64MultiArray, prefix + VELOCITY, 10)
        self.position = node.create_publisher(Float64MultiArray, prefix + POSITION, 10)
        self.trajectory = node.create_publisher(JointTrajectory, prefix + TRAJECTORY, 10)

    def _on_state(self, msg: JointState) -> None:
        self.states.append((time.monotonic(), msg))

    def spin_for(self, duration: float) -> None:
        end = time.monotonic() + duration
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)

    def spin_until(self, predicate, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.01)
        return predicate()

    def latest(self) -> JointState:
        return self.states[-1][1]

    def wait_for_sim(self, sim: SimProcess) -> None:
        """Wait for the first /joint_states and for the command subscriptions to match."""
        ok = self.spin_until(lambda: self.states and self.velocity.get_subscription_count() > 0
                             and self.position.get_subscription_count() > 0
                             and self.trajectory.get_subscription_count() > 0,
                             STARTUP_TIMEOUT)
        assert ok, f"sim_arm did not come up; its output:\n{sim.output()}"

    def send(self, publisher, values) -> None:
        publisher.publish(Float64MultiArray(data=[float(v) for v in values]))


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test's own (see SimProcess)."""
    return f"/t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def probe(ros_domain_id, prefix):
    context = Context()
    rclpy.init(context=context, domain_id=ros_domain_id,
               signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("sim_arm_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        yield Probe(node, executor, prefix)
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()


@pytest.fixture
def start_sim(ros_env, tmp_path, prefix):
    started = []

    def start(remap_topics: bool = True, **parameters) -> SimProcess:
        sim = SimProcess(ros_env, tmp_path / f"sim_arm_{len(started)}.log",
                         prefix if remap_topics else "", **parameters)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def positions(msg: JointState) -> np.ndarray:
    return np.array(msg.position)


def stamp(msg: JointState) -> float:
    return msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec


def test_node_uses_the_agreed_topic_names_and_types(probe, start_sim):
    """Without remapping, the node publishes /joint_states and subscribes to the three
    ros2_control command topics, with the agreed message types."""
    sim = start_sim(remap_topics=False)
    expected = {JOINT_STATES: ("publishers", "sensor_msgs/msg/JointState"),
                VELOCITY: ("subscriptions", "std_msgs/msg/Float64MultiArray"),
                POSITION: ("subscriptions", "std_msgs/msg/Float64MultiArray"),
                TRAJECTORY: ("subscriptions", "trajectory_msgs/msg/JointTrajectory")}

    def endpoints_of_sim():
        found = {}
        for topic, (kind, _) in expected.items():
            infos = getattr(probe.node, f"get_{kind}_info_by_topic")(topic)
            found[topic] = [i.topic_type for i in infos if i.node_name == sim.node_name]
        return found

    assert probe.spin_until(lambda: all(endpoints_of_sim().values()), STARTUP_TIMEOUT), \
        f"sim_arm endpoints missing: {endpoints_of_sim()}; output:\n{sim.output()}"
    for topic, types in endpoints_of_sim().items():
        assert types == [expected[topic][1]], topic


def test_node_publishes_joint_states_with_chain_names_at_the_configured_rate(probe, start_sim):
    """/joint_states names the chain's joints in order, starts at mid-range, and its stamps
    advance at the configured 100 Hz (± 15 %) with most messages arriving."""
    sim = start_sim(publish_rate=100.0)
    probe.wait_for_sim(sim)
    first = len(probe.states)
    probe.spin_for(2.0)
    window = [msg for _, msg in probe.states[first:]]
    assert list(window[0].name) == list(ROBOT.joint_names)
    np.testing.assert_allclose(positions(window[0]), ROBOT.q_mid, atol=1e-12)
    stamps = np.array([stamp(m) for m in window])
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert rate == pytest.approx(100.0, rel=0.15)
    assert len(window) >= 0.7 * 2.0 * 100.0
    assert np.all(np.diff(stamps) > 0)


def test_node_follows_a_velocity_command(probe, start_sim):
    """After a velocity command, joint positions advance at the commanded rate (1 %)."""
    sim = start_sim(publish_rate=200.0)
    probe.wait_for_sim(sim)
    v = 0.1 * np.where(np.arange(ROBOT.dof) % 2 == 0, 1.0, -1.0)
    probe.send(probe.velocity, v)
    assert probe.spin_until(lambda: np.allclose(probe.latest().velocity, v), COMMAND_TIMEOUT)
    a = probe.latest()
    probe.spin_for(1.0)
    b = probe.latest()
    slope = (positions(b) - positions(a)) / (stamp(b) - stamp(a))
    np.testing.assert_allclose(slope, v, rtol=0.01)


def test_node_follows_a_position_command(probe, start_sim):
    """A position command is reached exactly (kinematic backend)."""
    sim = start_sim(publish_rate=200.0)
    probe.wait_for_sim(sim)
    target = ROBOT.q_mid + 0.2
    probe.send(probe.position, target)
    assert probe.spin_until(lambda: np.allclose(positions(probe.latest()), target, atol=1e-12),
                            COMMAND_TIMEOUT)


def test_node_follows_a_joint_trajectory(probe, start_sim):
    """A one-point trajectory with joint names in reverse order is reached at its time."""
    sim = start_sim(publish_rate=200.0)
    probe.wait_for_sim(sim)
    goal = ROBOT.q_mid - 0.1
    msg = JointTrajectory()
    msg.joint_names = list(reversed(ROBOT.joint_names))
    msg.points = [JointTrajectoryPoint(positions=[float(v) for v in goal[::-1]])]
    msg.points[0].time_from_start.nanosec = 500_000_000
    probe.trajectory.publish(msg)
    sent = time.monotonic()
    assert probe.spin_until(lambda: np.allclose(positions(probe.latest()), goal, atol=1e-9),
                            COMMAND_TIMEOUT)
    assert time.monotonic() - sent >= 0.45  # followed in time, not jumped to


def test_node_drops_nan_and_wrong_size_commands_and_keeps_the_last_valid_one(probe, start_sim):
    """NaN and wrong-size commands are dropped with a warning; the arm keeps moving at the last
    valid velocity and the node stays alive."""
    sim = start_sim(publish_rate=200.0)
    probe.wait_for_sim(sim)
    v = np.full(ROBOT.dof, 0.05)
    probe.send(probe.velocity, v)
    assert probe.spin_until(lambda: np.allclose(probe.latest().velocity, v), COMMAND_TIMEOUT)
    bad = v.copy()
    bad[1] = math.nan
    for _ in range(3):
        probe.send(probe.velocity, bad)
        probe.send(probe.velocity, v[:3])
        probe.send(probe.position, v[:2])
        probe.spin_for(0.2)
    received = len(probe.states)
    probe.spin_for(0.5)
    assert len(probe.states) > received  # still publishing
    np.testing.assert_array_equal(probe.latest().velocity, v)
    assert sim.alive()
    assert sim.stop() == 0
    log = sim.output()
    assert "non-finite values for panda_joint2" in log
    assert "has 3 values; expected 7" in log


def test_node_stops_publishing_joint_states_after_freeze_after(probe, start_sim):
    """With freeze_after, /joint_states stops while the node keeps running."""
    sim = start_sim(publish_rate=100.0, freeze_after=4.0)  # leaves time for discovery
    probe.wait_for_sim(sim)
    assert probe.spin_until(lambda: time.monotonic() - probe.states[-1][0] > 0.5, 10.0)
    silent_from = len(probe.states)
    probe.spin_for(1.0)
    assert len(probe.states) == silent_from
    assert sim.alive()


def test_node_with_mujoco_backend_follows_a_velocity_command(probe, start_sim):
    """The MuJoCo backend node moves the joints at the commanded velocity (within 0.02 rad/s,
    the servo's gravity sag is smaller)."""
    pytest.importorskip("mujoco")
    sim = start_sim(publish_rate=200.0, backend="mujoco")
    probe.wait_for_sim(sim)
    v = np.full(ROBOT.dof, 0.1)
    probe.send(probe.velocity, v)
    assert probe.spin_until(lambda: np.abs(np.array(probe.latest().velocity) - v).max() < 0.02,
                            COMMAND_TIMEOUT)
    a = probe.latest()
    probe.spin_for(1.0)
    b = probe.latest()
    slope = (positions(b) - positions(a)) / (stamp(b) - stamp(a))
    assert np.abs(slope - v).max() < 0.02


@pytest.mark.parametrize("parameters, words", [
    (dict(backend="bogus"), "backends are: kinematic, mujoco"),
    (dict(urdf_path="/nonexistent.urdf"), "does not exist"),
    (dict(tip_link="nowhere"), "tip_link 'nowhere' not in URDF"),
    (dict(initial_positions=[0.0] * 7), "outside the joint limits"),
])
def test_node_exits_non_zero_on_bad_parameters(ros_env, parameters, words):
    """Bad parameters: the node logs the reason and exits with status 1."""
    result = subprocess.run(sim_command(**parameters), env=ros_env, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 1
    assert words in result.stdout + result.stderr
