"""The joint-space fallback: paths that keep σ_min up, the Cartesian route preview,
bounded search slices, no compilation after warm-up, and a far goal reached
through a joint move."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from controller_support import bundled_arm, warm_controller

from jacobian_ik import fallback
from jacobian_ik.fallback import (
    SAMPLE_SPACING,
    SEARCHING,
    JointPathFinder,
    samples_between,
)
from jacobian_ik.kernels.lookahead import LOOKAHEAD_MARGIN
from jacobian_ik.params import ControllerParams
from jacobian_ik.precompile import kernel_dispatchers

DT = 0.002
UR5_START = np.array([0.0, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0])
#: A UR5 goal configuration whose Cartesian route from UR5_START meets the σ_min
#: barrier (the task would slide along it for seconds), while a joint path does not.
UR5_FAR = np.array([-5.825815, -3.240424, -1.240515, -1.946769, -5.716047, -2.394867])


def test_samples_between_keeps_the_spacing():
    """Consecutive σ samples along a path are at most SAMPLE_SPACING apart (∞-norm)."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = rng.uniform(-3, 3, 6), rng.uniform(-3, 3, 6)
        k = samples_between(a, b)
        assert np.max(np.abs(b - a)) / k <= SAMPLE_SPACING + 1e-12
        assert k >= 2


@pytest.fixture(scope="module")
def ur5_finder():
    robot = bundled_arm("ur5")
    finder = JointPathFinder(robot, robot.task_rows("pose"))
    finder.warm_up()
    return finder


def _compiled() -> dict[str, int]:
    """Signatures compiled (or loaded from numba's cache) per kernel, in this process."""
    return {name: len(dispatcher.signatures)
            for name, dispatcher in kernel_dispatchers().items()}


def _search(finder, *args, **kwargs):
    finder.start(*args, **kwargs)
    slices, spent = 0, []
    while True:
        out = finder.step()
        slices += 1
        spent.append(finder._spent)
        if out is not SEARCHING:
            return out, slices, spent


def _dense_lowest(robot, points):
    lowest = np.inf
    for a, b in itertools.pairwise(points):
        for t in np.linspace(0.0, 1.0, 4 * samples_between(a, b) + 1):
            lowest = min(lowest, robot.singular_values(a + (b - a) * t)[-1])
    return lowest


def test_a_path_found_keeps_sigma_min_above_the_guard_and_reaches_the_goal(ur5_finder):
    """Every configuration along the path (sampled 4× denser than checked) keeps
    σ_min above 0.97 × the look-ahead guard, and the last one reaches the goal pose."""
    robot = ur5_finder.robot
    params = ControllerParams()
    T_goal = robot.fk(UR5_FAR)
    path, _, _ = _search(ur5_finder, UR5_START.copy(), T_goal, params, blocked=True)
    assert path is not None
    T_end = robot.fk(path[-1])
    assert np.linalg.norm(T_end[:3, 3] - T_goal[:3, 3]) < 1e-3
    guard = params.sigma_stop * (1.0 + LOOKAHEAD_MARGIN)
    assert _dense_lowest(robot, [UR5_START] + list(path)) >= 0.97 * guard


def test_the_route_preview_keeps_the_cartesian_motion_where_it_keeps_sigma_min_up(ur5_finder):
    """A goal 10 cm away from a well-conditioned configuration: the search ahead
    previews the straight Cartesian route, finds it clear and returns no joint path."""
    robot = ur5_finder.robot
    T_goal = robot.fk(UR5_START)
    T_goal[:3, 3] += [0.0, 0.1, 0.0]
    path, slices, _ = _search(ur5_finder, UR5_START.copy(), T_goal, ControllerParams(),
                              preview=True)
    assert path is None
    assert slices < fallback.IK_CANDIDATES           # ended before any IK candidate


def test_the_route_preview_hands_a_blocked_route_to_a_joint_path(ur5_finder):
    """The far goal's Cartesian route meets the barrier: the search ahead returns a
    straight joint path instead."""
    robot = ur5_finder.robot
    path, _, _ = _search(ur5_finder, UR5_START.copy(), robot.fk(UR5_FAR), ControllerParams(),
                         preview=True)
    assert path is not None and len(path) == 1


def test_search_slices_spend_a_bounded_number_of_sigma_samples(ur5_finder):
    """No slice of a search goes on past SLICE_SAMPLES σ_min samples by more than one
    path check (≤ the samples of the longest straight path in the joint box)."""
    robot = ur5_finder.robot
    _, _, spent = _search(ur5_finder, UR5_START.copy(), robot.fk(UR5_FAR), ControllerParams(),
                          blocked=True)
    longest = samples_between(robot.lower, robot.upper)
    assert max(spent) <= fallback.SLICE_SAMPLES + longest


def test_a_far_goal_beyond_the_barrier_is_reached_by_a_joint_move():
    """Closed loop on the UR5: the goal whose Cartesian route would slide along the
    σ_min barrier is reached within 10 s, through JOINT_MOVE, with σ_min never below
    sigma_stop and the velocity and acceleration limits held every cycle (without the
    collision model: the goal folds the elbow to 164°, where the wrist's capsule
    comes near the upper arm's)."""
    ctl = warm_controller("ur5", collision=False)
    compiled = _compiled()
    T_goal = ctl.robot.fk(UR5_FAR)
    amax = ctl.joint_limits.max_joint_acceleration
    vmax = ctl.joint_limits.max_joint_velocity
    q = UR5_START.copy()
    measured = q.copy()
    dq_prev = np.zeros(6)
    states = set()
    for _ in range(5000):
        res = ctl.step(measured, T_goal, DT)
        assert res.sigma_min >= ctl.params.sigma_stop
        assert np.all(np.abs(res.dq_command) <= vmax * (1 + 1e-9))
        assert np.all(np.abs(res.dq_command - dq_prev) <= amax * DT * (1 + 1e-9))
        states.add(res.state.name)
        dq_prev = res.dq_command
        measured = q.copy()                      # one cycle of measurement delay
        q = q + res.dq_command * DT
        if res.goal_reached:
            break
    assert res.goal_reached, res.reason
    assert "JOINT_MOVE" in states
    assert _compiled() == compiled          # nothing compiled or loaded inside a cycle


def test_a_blocked_search_compiles_nothing_after_warm_up():
    """A controller warmed up on an arm whose q_mid is singular (the UR5: σ_min = 0
    there) runs a blocked search, the route preview and the waypoint stages without
    compiling or loading any kernel."""
    ctl = warm_controller("ur5")
    compiled = _compiled()
    finder = JointPathFinder(ctl.robot, ctl.robot.task_rows("pose"))
    T_goal = ctl.robot.fk(UR5_FAR)
    for kwargs in ({"preview": True}, {"blocked": True}, {}):
        _search(finder, UR5_START.copy(), T_goal, ControllerParams(), **kwargs)
    assert _compiled() == compiled


def test_a_path_may_start_nearer_than_the_clearance_and_leave_the_obstacle():
    """An arm held on a collision row (its hand 2 mm beyond the stop distance above a
    table, nearer than the paths' PATH_CLEARANCE) still gets a joint path that lifts
    it to a goal above: a segment that starts nearer than the clearance may keep its
    pairs at DISTANCE_HOLD of its start's distance, never deeper; every sample of the
    path found stays there."""
    from jacobian_ik.collision.scene import Scene
    from jacobian_ik.kernels.distance import path_min_distance

    params = ControllerParams()
    ctl = warm_controller("panda")
    robot = ctl.robot
    q0 = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.785])
    # the table's top where the lowest moving capsule is 2 mm beyond the stop distance
    # (a half-space's signed distance is exact, inside it too)
    ctl.set_scene(Scene().add_plane("table", (0.0, 0.0, 1.0), 1.0))
    lowest = ctl.step(q0, None, DT).min_distance + 1.0
    start = params.collision_stop_distance + 0.002
    ctl.set_scene(Scene().add_plane("table", (0.0, 0.0, 1.0), lowest - start))
    ctl.step(q0, None, DT)
    assert ctl.step(q0, None, DT).min_distance == pytest.approx(start, abs=1e-9)
    assert start < params.collision_stop_distance + fallback.PATH_CLEARANCE
    q1 = q0 + np.array([0.0, -0.4, 0.0, 0.3, 0.0, -0.2, 0.0])
    T1 = robot.fk(q1)
    path = ctl._fallback.find(q0, T1, params)
    assert path is not None
    floor = max(params.collision_stop_distance, fallback.DISTANCE_HOLD * start)
    finder = ctl._fallback
    a = q0
    for b in path:
        samples = max(fallback.PATH_SAMPLES, samples_between(a, b)) * 4
        low = path_min_distance(robot.placements, robot.axes, robot.joint_types, a, b - a,
                                samples, finder._frames, finder._caps, finder._world,
                                finder._obstacles, finder._pairs, 1.0, finder._dist,
                                finder._probe)
        assert low >= floor - 1e-4, (low, floor)
        a = b
    assert np.linalg.norm(robot.fk(path[-1])[:3, 3] - T1[:3, 3]) < 1e-4
