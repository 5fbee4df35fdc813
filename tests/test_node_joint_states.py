"""Properties of jacobian_ik.node.joint_states: /joint_states merged by joint name."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("rclpy")

from sensor_msgs.msg import JointState

from jacobian_ik.node.joint_states import JointStateMerger

JOINTS = ("j1", "j2", "j3")


def joint_state(names, positions, velocity=(), effort=(), stamp=(0, 0)):
    msg = JointState()
    msg.name = list(names)
    msg.position = [float(v) for v in positions]
    msg.velocity = [float(v) for v in velocity]
    msg.effort = [float(v) for v in effort]
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    return msg


def test_joint_states_are_matched_by_name_in_any_order_and_extra_joints_ignored():
    """Positions land in chain order whatever the message order; other joints are ignored."""
    merger = JointStateMerger(JOINTS)
    check = merger.update(joint_state(["gripper", "j3", "j1", "j2"], [9.0, 3.0, 1.0, 2.0]),
                          1.0)
    assert check.ok and merger.complete
    np.testing.assert_array_equal(merger.positions, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(merger.received, [1.0, 1.0, 1.0])


def test_merger_follows_a_change_of_name_order():
    """The cached index map is rebuilt when a publisher changes its name order."""
    merger = JointStateMerger(JOINTS)
    assert merger.update(joint_state(JOINTS, [1.0, 2.0, 3.0]), 0.0).ok
    assert merger.update(joint_state(["j2", "j3", "j1"], [20.0, 30.0, 10.0]), 0.0).ok
    np.testing.assert_array_equal(merger.positions, [10.0, 20.0, 30.0])


def test_partial_messages_are_merged_each_joint_with_its_own_receipt_time():
    """Two publishers naming part of the chain each: each joint keeps its latest value
    and receipt time; complete once every joint has one; the age is the oldest's."""
    merger = JointStateMerger(JOINTS)
    assert merger.update(joint_state(["j1", "j2"], [1.0, 2.0]), 10.0).ok
    assert not merger.complete
    assert merger.missing() == ["j3"]
    assert merger.age(10.5, 1.0) == math.inf
    assert merger.update(joint_state(["j3", "finger"], [3.0, 0.5]), 10.2).ok
    assert merger.complete
    np.testing.assert_array_equal(merger.positions, [1.0, 2.0, 3.0])
    assert merger.age(10.5, 1.0) == pytest.approx(0.5)
    assert merger.update(joint_state(["j2", "j1"], [20.0, 10.0]), 10.4).ok
    np.testing.assert_array_equal(merger.positions, [10.0, 20.0, 3.0])
    np.testing.assert_array_equal(merger.received, [10.4, 10.4, 10.2])
    assert merger.age(10.5, 1.0) == pytest.approx(0.3)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_chain_position_rejects_the_whole_message(bad):
    """A NaN/inf position of a chain joint rejects the message, naming the joint; no
    joint of it is merged."""
    merger = JointStateMerger(JOINTS)
    merger.update(joint_state(JOINTS, [7.0, 8.0, 9.0]), 1.0)
    check = merger.update(joint_state(JOINTS, [0.0, bad, 0.0]), 2.0)
    assert not check.ok and not check.ignored
    assert "j2" in check.reason
    np.testing.assert_array_equal(merger.positions, [7.0, 8.0, 9.0])
    np.testing.assert_array_equal(merger.received, [1.0, 1.0, 1.0])


def test_non_finite_position_of_an_ignored_joint_is_harmless():
    """Joints outside the chain are not read, so their values cannot reject the message."""
    merger = JointStateMerger(JOINTS)
    assert merger.update(joint_state(JOINTS + ("finger",), [1.0, 2.0, 3.0, math.nan]), 0.0).ok


@pytest.mark.parametrize("positions, velocity, effort, word", [
    ([1.0, 2.0], (), (), "positions"),
    ([1.0, 2.0, 3.0, 4.0], (), (), "positions"),
    ([1.0, 2.0, 3.0], (0.0,), (), "velocity"),
    ([1.0, 2.0, 3.0], (), (0.0, 0.0), "effort"),
])
def test_mismatched_array_lengths_are_rejected(positions, velocity, effort, word):
    """position must match name; velocity/effort must be empty or match name."""
    merger = JointStateMerger(JOINTS)
    check = merger.update(joint_state(JOINTS, positions, velocity, effort), 0.0)
    assert not check.ok and word in check.reason
    assert not merger.complete


def test_message_about_other_joints_only_is_ignored_not_an_error():
    """A message naming none of the chain's joints (e.g. a gripper's) is marked ignored
    and changes nothing."""
    merger = JointStateMerger(JOINTS)
    check = merger.update(joint_state(["finger_1", "finger_2"], [0.0, 0.0]), 0.0)
    assert not check.ok and check.ignored
    assert list(merger.received) == [-math.inf] * len(JOINTS)


def test_duplicate_joint_name_is_rejected():
    merger = JointStateMerger(JOINTS)
    check = merger.update(joint_state(["j1", "j2", "j3", "j1"], [1.0, 2.0, 3.0, 4.0]), 0.0)
    assert not check.ok and "twice" in check.reason


def test_a_repeated_stamp_keeps_the_value_and_goes_stale_after_stale_after():
    """A message with the same (set) stamp as a joint's value leaves the value alone
    and is counted; while it keeps coming the age is that of the last message, until
    the stamp has repeated for longer than stale_after: then it is the age of the
    message that brought the stamp.  A new stamp or an unset one is merged."""
    merger = JointStateMerger(JOINTS)
    assert merger.update(joint_state(JOINTS, [1.0, 2.0, 3.0], stamp=(5, 100)), 1.0).ok
    assert merger.update(joint_state(JOINTS, [1.5, 2.5, 3.5], stamp=(5, 100)), 1.05).ok
    np.testing.assert_array_equal(merger.positions, [1.0, 2.0, 3.0])
    assert merger.repeated == 1
    assert merger.age(1.06, 0.1) == pytest.approx(0.01)
    assert merger.update(joint_state(JOINTS, [1.0, 2.0, 3.0], stamp=(5, 100)), 1.2).ok
    assert merger.age(1.2, 0.1) == pytest.approx(0.2)
    # another publisher's joint with a new stamp is merged and renewed alone
    assert merger.update(joint_state(["j3"], [30.0], stamp=(5, 200)), 1.2).ok
    np.testing.assert_array_equal(merger.positions, [1.0, 2.0, 30.0])
    np.testing.assert_array_equal(merger.renewed, [1.0, 1.0, 1.2])
    # a publisher that does not set stamps is always new
    assert merger.update(joint_state(JOINTS, [4.0, 5.0, 6.0]), 4.0).ok
    assert merger.update(joint_state(JOINTS, [4.0, 5.0, 6.0]), 5.0).ok
    np.testing.assert_array_equal(merger.renewed, [5.0, 5.0, 5.0])
    assert merger.age(5.0, 0.1) == 0.0
