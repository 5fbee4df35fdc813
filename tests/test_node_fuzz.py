"""Fuzzing the ik_controller node's inputs over real topics.

One controller process (Panda, no simulator) lives for the whole module.  The
test plays the arm: a thread publishes a valid /joint_states at 100 Hz (a still
arm with a live, slightly noisy reading).
Hypothesis sends /joint_states, ~/target_pose and ~/target_twist messages
with NaN, inf, huge values, wrong lengths, unknown or duplicate names,
unnormalised quaternions and wrong frames.  Properties: the node stays alive,
every command it publishes is finite and within the joint velocity limits,
and every malformed message is reported as INVALID_INPUT on ~/state.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("rclpy")

from geometry_msgs.msg import PoseStamped, TwistStamped
from node_support import bundled_robot, controller_params_for, running
from sensor_msgs.msg import JointState

from jacobian_ik.node.bringup import BringupConfig
from jacobian_ik.node.conversions import QUATERNION_NORM_TOLERANCE, chain_reach
from jacobian_ik.safety import SafetyState

pytestmark = [pytest.mark.ros, pytest.mark.slow]

ROBOT = "panda"
OVERRIDES = {"stale_timeout": 0.5}
ROBOT_MODEL = bundled_robot(ROBOT)
JOINTS = ROBOT_MODEL.joint_names
BASE = ROBOT_MODEL.base_link
Q0 = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
V_MAX = controller_params_for(ROBOT, OVERRIDES).resolve(ROBOT_MODEL).max_joint_velocity
MAX_DISTANCE = 2.0 * chain_reach(ROBOT_MODEL)
FUZZ_SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                         suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                HealthCheck.too_slow])

numbers = st.one_of(
    st.floats(-2.0, 2.0),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300, 1e6, 0.0]),
)


def valid_joint_state(q=Q0) -> JointState:
    msg = JointState()
    msg.name = list(JOINTS)
    msg.position = [float(v) for v in q]
    return msg


class ArmPublisher:
    """Publishes a valid /joint_states of a still arm at 100 Hz from a thread, with
    1e-9 rad of encoder noise: a live reading (a bit-identical one would be a frozen
    measurement once a target asks for motion)."""

    def __init__(self, client):
        self.client = client
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        rng = np.random.default_rng(0)
        while not self._stop.wait(0.01):
            msg = valid_joint_state(Q0 + rng.normal(0.0, 1e-9, Q0.shape))
            self.client.joint_state_publisher.publish(msg)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=2.0)


@pytest.fixture(scope="module")
def node(domain_id_allocator):
    config = BringupConfig(robot=ROBOT, sim="none", controller_parameters=OVERRIDES)
    with running(config, domain_id_allocator(), robot=ROBOT_MODEL,
                 client_kwargs={"record_commands": True}) as (bringup, client, _lines):
        arm = ArmPublisher(client)
        try:
            assert client.wait_for(lambda: client.metrics_count > 0
                                   and client.pose_publisher.get_subscription_count() > 0
                                   and client.twist_publisher.get_subscription_count() > 0,
                                   30.0)
            yield bringup, client
        finally:
            arm.stop()


def check_outputs(bringup, client) -> None:
    assert bringup.failed() is None, "the controller process died"
    _, commands, _ = client.recorded()
    for _, dq in commands:
        assert np.all(np.isfinite(dq)), dq
        assert np.all(np.abs(dq) <= V_MAX * (1 + 1e-9)), dq


def clear_target_fault(client) -> None:
    """Send a valid target (hold the current pose) and wait until INVALID_INPUT is gone.

    Read from ~/state, one ordered stream: a sample received after the send is newer
    than the rejection.  The metrics topic is another stream and can still deliver a
    cycle from before the rejection; trusting it let the next bad target arrive in
    the same cycle as this valid one, so the state never left INVALID_INPUT.
    """
    sent = time.monotonic()
    client.send_pose(ROBOT_MODEL.fk(Q0), BASE)
    last = client.state
    if last is not None and last.name == "INVALID_INPUT":
        others = [s.name for s in SafetyState if s.name != "INVALID_INPUT"]
        assert client.wait_for_state(others, 10.0, since=sent) is not None, \
            client.states[-3:]


def expect_invalid(client, since: float) -> None:
    sample = client.wait_for_state("INVALID_INPUT", 10.0, since=since)
    assert sample is not None, client.states[-5:]
    assert sample.reason


# ---------------------------------------------------------------- /joint_states
@st.composite
def joint_state_messages(draw):
    names = draw(st.lists(st.sampled_from(JOINTS + ("finger", "other_joint")), max_size=10))
    if draw(st.booleans()):
        names = list(JOINTS)           # often the right names, so values get fuzzed
    extra = draw(st.sampled_from([0, 0, 0, -1, 1]))
    positions = draw(st.lists(numbers, min_size=max(len(names) + extra, 0),
                              max_size=max(len(names) + extra, 0)))
    velocity = draw(st.sampled_from([0, len(names), len(names) + 1]))
    msg = JointState()
    msg.name = names
    msg.position = positions
    msg.velocity = [0.0] * velocity
    return msg


def joint_state_is_malformed(msg) -> bool | None:
    """True: must be rejected; False: acceptable; None: ignored (not this arm's joints)."""
    names = list(msg.name)
    if len(msg.position) != len(names) or len(msg.velocity) not in (0, len(names)):
        return True
    if len(set(names)) != len(names):
        return True
    present = [j for j in JOINTS if j in names]
    if not present:
        return None
    # a partial message is merged by name: only its chain joints' values count
    return not all(math.isfinite(msg.position[names.index(j)]) for j in present)


@FUZZ_SETTINGS
@given(msg=joint_state_messages())
def test_fuzzed_joint_states_are_rejected_or_used_never_crash(node, msg):
    bringup, client = node
    malformed = joint_state_is_malformed(msg)
    t0 = time.monotonic()
    client.joint_state_publisher.publish(msg)
    if malformed:
        expect_invalid(client, t0)
    else:
        time.sleep(0.03)
    check_outputs(bringup, client)


# ---------------------------------------------------------------- ~/target_pose
frames = st.sampled_from(["", BASE, "world", "panda_hand", "/" + BASE])


@st.composite
def pose_messages(draw):
    msg = PoseStamped()
    msg.header.frame_id = draw(frames)
    p = msg.pose.position
    p.x, p.y, p.z = draw(numbers), draw(numbers), draw(numbers)
    o = msg.pose.orientation
    if draw(st.booleans()):
        o.x, o.y, o.z, o.w = draw(numbers), draw(numbers), draw(numbers), draw(numbers)
    else:  # a unit quaternion scaled by a factor near 1
        v = np.array([draw(st.floats(-1, 1)) for _ in range(4)]) + [0.0, 0.0, 0.0, 1.5]
        v = v / np.linalg.norm(v) * draw(st.floats(0.95, 1.05))
        o.x, o.y, o.z, o.w = (float(c) for c in v)
    return msg


def pose_is_malformed(msg) -> bool:
    p, o = msg.pose.position, msg.pose.orientation
    values = [p.x, p.y, p.z, o.x, o.y, o.z, o.w]
    if msg.header.frame_id not in ("", BASE) or not all(math.isfinite(v) for v in values):
        return True
    if math.hypot(p.x, p.y, p.z) > MAX_DISTANCE:
        return True
    norm = math.hypot(o.x, o.y, o.z, o.w)
    return not abs(norm - 1.0) <= QUATERNION_NORM_TOLERANCE


@FUZZ_SETTINGS
@given(msg=pose_messages())
def test_fuzzed_target_poses_are_rejected_or_tracked_never_crash(node, msg):
    bringup, client = node
    clear_target_fault(client)
    t0 = time.monotonic()
    client.pose_publisher.publish(msg)
    if pose_is_malformed(msg):
        expect_invalid(client, t0)
    else:
        time.sleep(0.03)
    check_outputs(bringup, client)


# ---------------------------------------------------------------- ~/target_twist
@st.composite
def twist_messages(draw):
    msg = TwistStamped()
    msg.header.frame_id = draw(frames)
    t = msg.twist
    t.linear.x, t.linear.y, t.linear.z = draw(numbers), draw(numbers), draw(numbers)
    t.angular.x, t.angular.y, t.angular.z = draw(numbers), draw(numbers), draw(numbers)
    return msg


def twist_is_malformed(msg) -> bool:
    t = msg.twist
    values = [t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z]
    return msg.header.frame_id not in ("", BASE) or not all(math.isfinite(v) for v in values)


@FUZZ_SETTINGS
@given(msg=twist_messages())
def test_fuzzed_target_twists_are_rejected_or_followed_never_crash(node, msg):
    bringup, client = node
    clear_target_fault(client)
    t0 = time.monotonic()
    client.twist_publisher.publish(msg)
    if twist_is_malformed(msg):
        expect_invalid(client, t0)
    else:
        time.sleep(0.03)
    check_outputs(bringup, client)


def test_after_fuzzing_a_valid_goal_is_still_tracked(node):
    """The node recovers: a valid target is accepted (TRACKING) after the fuzzing."""
    bringup, client = node
    client.joint_state_publisher.publish(valid_joint_state())
    target = ROBOT_MODEL.fk(Q0)
    target[2, 3] += 0.05
    t0 = time.monotonic()
    client.send_pose(target, BASE)
    assert client.wait_for_state("TRACKING", 10.0, since=t0) is not None, client.states[-5:]
    check_outputs(bringup, client)
