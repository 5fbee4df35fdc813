"""solve_ik: reachable targets are met to tol within limits, failures are honest."""

from __future__ import annotations

import math

import numpy as np
import pytest
from controller_support import bundled_arm

from jacobian_ik import bundled
from jacobian_ik.errors import ConfigurationError
from jacobian_ik.ik import IkResult, solve_ik
from jacobian_ik.robot import Robot


def _error_components(T_target, T):
    """TRAC-IK's six error components in the target frame, computed with numpy."""
    R_t = T_target[:3, :3]
    dp = R_t.T @ (T[:3, 3] - T_target[:3, 3])
    R = R_t.T @ T[:3, :3]
    angle = math.acos(max(-1.0, min(1.0, (np.trace(R) - 1.0) / 2.0)))
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    s = np.linalg.norm(w)
    return np.concatenate([dp, w * angle / s if s > 1e-12 else 0.5 * w])


@pytest.mark.parametrize("name", bundled.BUNDLED_ROBOTS)
def test_random_reachable_targets_are_solved_within_tol_and_limits(name):
    """FK of random in-limit configurations, solved from the mid-range seed: every
    solve succeeds, each error component is within tol, joints within limits."""
    robot = bundled_arm(name)
    rng = np.random.default_rng(11)
    for q in robot.random_configurations(60, rng):
        T = robot.fk(q)
        res = solve_ik(robot, T, tol=1e-5, timeout=0.05)
        assert isinstance(res, IkResult)
        assert res.success, (q, res)
        assert np.abs(_error_components(T, robot.fk(res.q))).max() <= 1e-5 * 1.0001
        assert res.error <= 1e-5
        assert np.all(res.q >= robot.lower) and np.all(res.q <= robot.upper)
        assert res.time > 0.0 and res.iterations >= 1


def test_unreachable_target_fails_honestly():
    """A target 3 m away: success False, the error reported is the real error of the
    best q returned, the time budget is spent, q within limits."""
    robot = bundled_arm("panda")
    T = robot.fk(robot.q_mid)
    T[:3, 3] = [3.0, 0.0, 0.5]
    res = solve_ik(robot, T, timeout=0.01)
    assert not res.success
    assert res.time >= 0.01
    assert res.error == pytest.approx(np.abs(_error_components(T, robot.fk(res.q))).max(),
                                      rel=1e-9)
    assert res.error > 1.0
    assert np.all(res.q >= robot.lower) and np.all(res.q <= robot.upper)


def test_planar_arm_cannot_reach_out_of_plane_and_says_so():
    """planar2: a target off its plane (z = 0.1) fails; an in-plane one succeeds."""
    robot = bundled_arm("planar2")
    T = robot.fk([0.4, 0.9])
    assert solve_ik(robot, T).success
    T[2, 3] = 0.1
    res = solve_ik(robot, T, timeout=0.002)
    assert not res.success and res.error == pytest.approx(0.1, rel=1e-6)


def test_solve_is_deterministic_given_seed_and_iteration_cap():
    """Same seed and max_iterations: the same answer; the seed drives the restarts."""
    robot = bundled_arm("panda")
    T = robot.fk(np.array([2.5, 1.5, -2.5, -0.3, 2.5, 0.2, -2.5]))
    a = solve_ik(robot, T, seed=3, max_iterations=2000, timeout=1.0)
    b = solve_ik(robot, T, seed=3, max_iterations=2000, timeout=1.0)
    assert a.success == b.success and a.iterations == b.iterations
    np.testing.assert_array_equal(a.q, b.q)


def test_seed_at_the_solution_returns_at_once():
    """q0 already solving the target: one evaluation, q unchanged."""
    robot = bundled_arm("ur5")
    q = np.array([0.3, -1.2, 1.5, -1.5, -1.5, 0.3])
    res = solve_ik(robot, robot.fk(q), q0=q)
    assert res.success and res.iterations == 1
    np.testing.assert_array_equal(res.q, q)


def test_continuous_joints_are_wrapped(erd_robots_dir):
    """A Kinova Jaco2 (three continuous joints): solutions are in [-π, π] on those."""
    robot = Robot.from_urdf(erd_robots_dir / "kinova_description/robots/kinova.urdf",
                            "j2s6s200_link_base", "j2s6s200_end_effector")
    assert robot.continuous.any()
    rng = np.random.default_rng(5)
    for q in robot.random_configurations(30, rng):
        q_far = q.copy()
        q_far[robot.continuous] += 2.0 * math.pi    # the same pose, joint angles unwrapped
        T = robot.fk(q_far)
        res = solve_ik(robot, T, timeout=0.05)
        assert res.success
        assert np.all(np.abs(res.q[robot.continuous]) <= math.pi)


@pytest.mark.parametrize("T,match", [(np.eye(3), "shape"), (np.full((4, 4), np.nan),
                                                             "non-finite")])
def test_invalid_target_raises_configuration_error(T, match):
    """solve_ik is not a loop function: a malformed target raises ConfigurationError."""
    with pytest.raises(ConfigurationError, match=match):
        solve_ik(bundled_arm("panda"), T)
