"""Joint trajectories: joint_trajectory_controller's message rules and interpolation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jacobian_ik.sim.trajectory import build_trajectory

JOINTS = ("a", "b", "c")
START = np.array([0.0, 1.0, 2.0])
STILL = np.zeros(3)


def build(names, points, start=START, start_velocity=STILL):
    return build_trajectory(names, points, JOINTS, start, start_velocity)


def test_linear_trajectory_starts_at_the_state_at_receipt():
    """Without velocities, positions are interpolated linearly from the start state."""
    trajectory, reason = build(JOINTS, [(1.0, [1.0, 1.0, 1.0], [])])
    assert reason is None
    position, velocity = trajectory.sample(0.25)
    np.testing.assert_allclose(position, START + 0.25 * (np.ones(3) - START))
    np.testing.assert_allclose(velocity, np.ones(3) - START)


def test_values_are_reordered_from_message_names_to_chain_order():
    """Joint names in any order map each value to its joint."""
    trajectory, _ = build(("c", "a", "b"), [(0.5, [30.0, 10.0, 20.0], [])])
    position, _ = trajectory.sample(0.5)
    np.testing.assert_array_equal(position, [10.0, 20.0, 30.0])


def test_cubic_trajectory_matches_positions_and_velocities_at_the_points():
    """With velocities, the interpolant passes through each point with its velocity and is
    smooth in between."""
    points = [(0.5, [0.5, 1.5, 2.5], [1.0, 1.0, 1.0]), (1.0, [1.0, 2.0, 3.0], [0.0, 0.0, 0.0])]
    trajectory, _ = build(JOINTS, points)
    for t, pos, vel in points:
        position, velocity = trajectory.sample(t - 1e-12)
        np.testing.assert_allclose(position, pos, atol=1e-9)
        np.testing.assert_allclose(velocity, vel, atol=1e-9)
    # the velocity is the derivative of the position
    p1, _ = trajectory.sample(0.3)
    p2, _ = trajectory.sample(0.3 + 1e-6)
    _, v = trajectory.sample(0.3 + 5e-7)
    np.testing.assert_allclose((p2 - p1) / 1e-6, v, atol=1e-5)


def test_trajectory_holds_its_last_point_after_the_end():
    """After the last point: its position, zero velocity."""
    trajectory, _ = build(JOINTS, [(0.2, [5.0, 6.0, 7.0], [])])
    position, velocity = trajectory.sample(10.0)
    np.testing.assert_array_equal(position, [5.0, 6.0, 7.0])
    np.testing.assert_array_equal(velocity, np.zeros(3))
    assert trajectory.duration == pytest.approx(0.2)


def test_first_point_at_time_zero_replaces_the_start_state():
    """A point with time_from_start 0 is where the trajectory begins."""
    trajectory, _ = build(JOINTS, [(0.0, [9.0, 9.0, 9.0], []), (1.0, [10.0, 10.0, 10.0], [])])
    np.testing.assert_array_equal(trajectory.sample(0.0)[0], [9.0, 9.0, 9.0])


def test_empty_trajectory_holds_the_current_position():
    """A message without points stops the arm where it is."""
    trajectory, reason = build(JOINTS, [])
    assert reason is None
    position, velocity = trajectory.sample(3.0)
    np.testing.assert_array_equal(position, START)
    np.testing.assert_array_equal(velocity, STILL)


@pytest.mark.parametrize("names, points, words", [
    (("a", "b"), [(1.0, [0.0, 0.0], [])], "misses joints c"),
    (("a", "b", "c", "d"), [(1.0, [0.0] * 4, [])], "not simulated: d"),
    (("a", "a", "b"), [(1.0, [0.0] * 3, [])], "twice"),
    (JOINTS, [(1.0, [0.0, math.nan, 0.0], [])], "finite positions"),
    (JOINTS, [(1.0, [0.0, 0.0], [])], "finite positions"),
    (JOINTS, [(1.0, [0.0] * 3, [0.0, 0.0])], "finite velocities"),
    (JOINTS, [(1.0, [0.0] * 3, [0.0, math.inf, 0.0])], "finite velocities"),
    (JOINTS, [(1.0, [0.0] * 3, [0.0] * 3), (2.0, [0.0] * 3, [])], "all have velocities"),
    (JOINTS, [(1.0, [0.0] * 3, []), (1.0, [1.0] * 3, [])], "greater than the previous"),
    (JOINTS, [(-0.5, [0.0] * 3, [])], ">= 0"),
    (JOINTS, [(math.nan, [0.0] * 3, [])], "finite"),
])
def test_bad_trajectories_are_rejected_with_a_reason(names, points, words):
    """Each rule violation returns no trajectory and a reason naming the problem."""
    trajectory, reason = build(names, points)
    assert trajectory is None
    assert words in reason and "dropped" in reason
