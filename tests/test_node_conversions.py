"""Properties of jacobian_ik.node.conversions: ROS messages → arrays, with validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("rclpy")

from geometry_msgs.msg import PoseStamped, TwistStamped

from jacobian_ik import bundled
from jacobian_ik.node.client import matrix_to_quaternion, pose_message
from jacobian_ik.node.conversions import (
    QUATERNION_NORM_TOLERANCE,
    chain_reach,
    quaternion_to_matrix,
    read_pose,
    read_twist,
)
from jacobian_ik.robot import Robot

BASE = "base"


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
