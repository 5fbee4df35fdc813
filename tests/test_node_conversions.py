"""Properties of jacobian_ik.node.conversions: ROS messages → arrays, with validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("rclpy")

from geometry_msgs.msg import PoseStamped, TwistStamped
from sensor_msgs.msg import JointState

from jacobian_ik import bundled
from jacobian_ik.node.client import matrix_to_quaternion, pose_message
from jacobian_ik.node.conversions import (
    QUATERNION_NORM_TOLERANCE,
    JointStateReader,
    chain_reach,
    quaternion_to_matrix,
    read_pose,
    read_twist,
)
from jacobian_ik.robot import Robot

JOINTS = ("j1", "j2", "j3")
BASE = "base"


def joint_state(names, positions, velocity=(), effort=()):
    msg = JointState()
    msg.name = list(names)
    msg.position = [float(v) for v in positions]
    msg.velocity = [float(v) for v in velocity]
    msg.effort = [float(v) for v in effort]
    return msg


def pose(x=0.1, y=0.2, z=0.3, q=(0.0, 0.0, 0.0, 1.0), frame=BASE):
    msg = PoseStamped()
    msg.header.frame_id = frame
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = x, y, z
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = q
    return msg


def twist(values=(0.1, 0.0, 0.0, 0.0, 0.0, 0.2), frame=BASE):
    msg = TwistStamped()
    msg.header.frame_id = frame
    t = msg.twist
    t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z = values
    return msg


# ---------------------------------------------------------------- joint states
def test_joint_states_are_matched_by_name_in_any_order_and_extra_joints_ignored():
    """Positions land in chain order whatever the message order; other joints are ignored."""
    reader = JointStateReader(JOINTS)
    q = np.full(3, -1.0)
    check = reader.read(joint_state(["gripper", "j3", "j1", "j2"], [9.0, 3.0, 1.0, 2.0]), q)
    assert check.ok
    np.testing.assert_array_equal(q, [1.0, 2.0, 3.0])


def test_joint_state_reader_follows_a_change_of_name_order():
    """The cached index map is rebuilt when a publisher changes its name order."""
    reader = JointStateReader(JOINTS)
    q = np.zeros(3)
    assert reader.read(joint_state(JOINTS, [1.0, 2.0, 3.0]), q).ok
    assert reader.read(joint_state(["j2", "j3", "j1"], [20.0, 30.0, 10.0]), q).ok
    np.testing.assert_array_equal(q, [10.0, 20.0, 30.0])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_chain_position_is_rejected_and_output_untouched(bad):
    """A NaN/inf position of a chain joint rejects the message, naming the joint."""
    reader = JointStateReader(JOINTS)
    q = np.array([7.0, 8.0, 9.0])
    check = reader.read(joint_state(JOINTS, [0.0, bad, 0.0]), q)
    assert not check.ok and not check.ignored
    assert "j2" in check.reason
    np.testing.assert_array_equal(q, [7.0, 8.0, 9.0])


def test_non_finite_position_of_an_ignored_joint_is_harmless():
    """Joints outside the chain are not read, so their values cannot reject the message."""
    reader = JointStateReader(JOINTS)
    q = np.zeros(3)
    assert reader.read(joint_state(JOINTS + ("finger",), [1.0, 2.0, 3.0, math.nan]), q).ok


@pytest.mark.parametrize("positions, velocity, effort, word", [
    ([1.0, 2.0], (), (), "positions"),
    ([1.0, 2.0, 3.0, 4.0], (), (), "positions"),
    ([1.0, 2.0, 3.0], (0.0,), (), "velocity"),
    ([1.0, 2.0, 3.0], (), (0.0, 0.0), "effort"),
])
def test_mismatched_array_lengths_are_rejected(positions, velocity, effort, word):
    """position must match name; velocity/effort must be empty or match name."""
    reader = JointStateReader(JOINTS)
    check = reader.read(joint_state(JOINTS, positions, velocity, effort), np.zeros(3))
    assert not check.ok and word in check.reason


def test_missing_chain_joint_is_rejected_with_its_name():
    """A message naming some but not all chain joints is rejected, listing the missing ones."""
    reader = JointStateReader(JOINTS)
    check = reader.read(joint_state(["j1", "j3"], [1.0, 3.0]), np.zeros(3))
    assert not check.ok and not check.ignored
    assert "j2" in check.reason and "j1" not in check.reason.split(":")[-1]


def test_message_about_other_joints_only_is_ignored_not_an_error():
    """A message naming none of the chain's joints (e.g. a gripper's) is marked ignored."""
    reader = JointStateReader(JOINTS)
    check = reader.read(joint_state(["finger_1", "finger_2"], [0.0, 0.0]), np.zeros(3))
    assert not check.ok and check.ignored


def test_duplicate_joint_name_is_rejected():
    reader = JointStateReader(JOINTS)
    check = reader.read(joint_state(["j1", "j2", "j3", "j1"], [1.0, 2.0, 3.0, 4.0]),
                        np.zeros(3))
    assert not check.ok and "twice" in check.reason


# ---------------------------------------------------------------- poses
def test_pose_in_base_frame_gives_the_transform():
    """Position and unit quaternion become T_base_target; empty frame means the base."""
    angle = 0.7
    q = (0.0, 0.0, math.sin(angle / 2), math.cos(angle / 2))
    for frame in (BASE, ""):
        T = np.zeros((4, 4))
        assert read_pose(pose(0.1, 0.2, 0.3, q, frame), BASE, 10.0, T).ok
        expected = np.eye(4)
        expected[:2, :2] = [[math.cos(angle), -math.sin(angle)],
                            [math.sin(angle), math.cos(angle)]]
        expected[:3, 3] = [0.1, 0.2, 0.3]
        np.testing.assert_allclose(T, expected, atol=1e-12)


def test_pose_in_another_frame_is_rejected_naming_both_frames():
    T = np.eye(4)
    check = read_pose(pose(frame="world"), BASE, 10.0, T)
    assert not check.ok and "world" in check.reason and BASE in check.reason


@pytest.mark.parametrize("field, value", [("x", math.nan), ("z", math.inf), ("qw", math.nan)])
def test_pose_with_non_finite_numbers_is_rejected(field, value):
    msg = pose()
    if field == "qw":
        msg.pose.orientation.w = value
    else:
        setattr(msg.pose.position, field, value)
    assert not read_pose(msg, BASE, 10.0, np.eye(4)).ok


def test_pose_beyond_the_distance_bound_is_rejected():
    check = read_pose(pose(x=1e30), BASE, 2.0, np.eye(4))
    assert not check.ok and "beyond" in check.reason


@pytest.mark.parametrize("q", [(0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 2.0), (1.0, 1.0, 1.0, 1.0),
                               (0.0, 0.0, 0.0, 1.0 + 2 * QUATERNION_NORM_TOLERANCE)])
def test_quaternion_far_from_unit_norm_is_rejected(q):
    check = read_pose(pose(q=q), BASE, 10.0, np.eye(4))
    assert not check.ok and "norm" in check.reason


@settings(max_examples=50, deadline=None)
@given(st.tuples(*[st.floats(-1.0, 1.0) for _ in range(4)]).filter(
    lambda v: sum(x * x for x in v) > 0.1),
       st.floats(1.0 - QUATERNION_NORM_TOLERANCE * 0.99, 1.0 + QUATERNION_NORM_TOLERANCE * 0.99))
def test_slightly_unnormalised_quaternion_gives_a_rotation_matrix(direction, norm):
    """Within the tolerance the quaternion is normalised: R is orthonormal with det +1."""
    v = np.array(direction) / np.linalg.norm(direction) * norm
    T = np.zeros((4, 4))
    assert read_pose(pose(q=tuple(v)), BASE, 10.0, T).ok
    R = T[:3, :3]
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.tuples(*[st.floats(-1.0, 1.0) for _ in range(4)]).filter(
    lambda v: sum(x * x for x in v) > 0.1))
def test_quaternion_round_trip_through_the_client_helper(direction):
    """matrix_to_quaternion (client side) and quaternion_to_matrix agree."""
    q = np.array(direction) / np.linalg.norm(direction)
    R = np.zeros((4, 4))
    quaternion_to_matrix(*q, R)
    R2 = np.zeros((4, 4))
    quaternion_to_matrix(*matrix_to_quaternion(R[:3, :3]), R2)
    np.testing.assert_allclose(R2[:3, :3], R[:3, :3], atol=1e-9)


def test_pose_message_of_a_transform_reads_back_to_the_same_transform():
    robot = Robot.from_urdf(bundled.urdf_path("panda"), *bundled.robot_links("panda"))
    T = robot.fk(robot.q_mid)
    out = np.zeros((4, 4))
    assert read_pose(pose_message(T, robot.base_link), robot.base_link, 10.0, out).ok
    np.testing.assert_allclose(out, T, atol=1e-12)


# ---------------------------------------------------------------- twists
def test_twist_is_linear_first_in_the_base_frame():
    out = np.zeros(6)
    assert read_twist(twist((1.0, 2.0, 3.0, 4.0, 5.0, 6.0), ""), BASE, out).ok
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])


def test_twist_in_another_frame_or_non_finite_is_rejected_and_output_untouched():
    out = np.arange(6.0)
    assert not read_twist(twist(frame="tool0"), BASE, out).ok
    assert not read_twist(twist((0.0, math.nan, 0.0, 0.0, 0.0, 0.0)), BASE, out).ok
    assert not read_twist(twist((0.0, 0.0, 0.0, 0.0, -math.inf, 0.0)), BASE, out).ok
    np.testing.assert_array_equal(out, np.arange(6.0))


# ---------------------------------------------------------------- reach
@pytest.mark.parametrize("name", bundled.BUNDLED_ROBOTS)
def test_chain_reach_bounds_the_tip_distance_over_random_configurations(name):
    """No configuration puts the tip farther from the base than chain_reach."""
    robot = Robot.from_urdf(bundled.urdf_path(name), *bundled.robot_links(name))
    reach = chain_reach(robot)
    qs = robot.random_configurations(500, np.random.default_rng(0))
    distances = [np.linalg.norm(robot.fk(q)[:3, 3]) for q in qs]
    assert max(distances) <= reach
    assert reach < 3.0 * max(distances)
