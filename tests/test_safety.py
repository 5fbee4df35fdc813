"""The singularity safe stop: graded approach, the σ_min barrier the arm slides along,
the stop where no admissible direction makes progress, recovery, hysteresis."""

from __future__ import annotations

import numpy as np
import pytest
from controller_support import bundled_arm, warm_controller
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from jacobian_ik.controller import Controller
from jacobian_ik.kernels.control import BARRIER_MARGIN
from jacobian_ik.params import MIN_SIGMA_STOP, ControllerParams
from jacobian_ik.safety import SafetyState

DT = 0.002


#: (robot, task, start configuration, constant twist that drives it into a singularity)
DRIVES = {
    "planar2 stretched": ("planar2", "position", [0.3, 1.2], [0.25, 0.05, 0, 0, 0, 0]),
    "panda elbow": ("panda", "pose", None, [0.1, 0, 0, 0, 0, 0]),
    "panda elbow, position task": ("panda", "position", None, [0.1, 0, 0, 0, 0, 0]),
    "ur5 wrist/elbow": ("ur5", "pose", [0, -1.2, 1.5, -1.5, -1.5, 0.0], [0, -0.1, 0, 0, 0, 0]),
}


def _drive(name):
    """Drive one arm into its singularity; check the stop every cycle; return the run."""
    robot_name, task, q0, twist = DRIVES[name]
    # the singular configurations alone: the UR5's wrist singularity lies where its
    # wrist comes near its upper arm (tests/test_controller_collisions.py: collisions)
    ctl = warm_controller(robot_name, task=task, collision=False)
    robot = ctl.robot
    q = robot.q_mid.copy() if q0 is None else np.array(q0, dtype=float)
    twist = np.array(twist, dtype=float)
    amax = ctl.joint_limits.max_joint_acceleration
    vmax = ctl.joint_limits.max_joint_velocity
    dq_prev = np.zeros(robot.dof)
    states = []
    for _ in range(6000):
        res = ctl.step(q, twist, DT)
        assert np.all(np.abs(res.dq_command - dq_prev) <= amax * DT * (1 + 1e-9))
        assert np.all(np.abs(res.dq_command) <= vmax * (1 + 1e-9))
        assert res.sigma_min >= ctl.params.sigma_stop, res.reason
        dq_prev = res.dq_command
        q = q + res.dq_command * DT
        if not states or states[-1] is not res.state:
            states.append(res.state)
    return ctl, q, twist, res, states


@pytest.mark.parametrize("name", sorted(DRIVES))
def test_a_twist_into_a_singularity_ends_on_the_barrier_and_never_crosses(name):
    """A twist pushing into a singularity: the speed is scaled down (APPROACHING), the
    arm moves within its velocity and acceleration limits (checked every cycle),
    sigma_min never falls below sigma_stop, and the arm ends on the barrier's floor:
    still sliding along it while the twist has a share along the boundary, else in
    SAFE_STOP at rest, saying that no direction makes progress."""
    ctl, _q, _twist, res, states = _drive(name)
    floor = ctl.params.sigma_stop * (1.0 + BARRIER_MARGIN)
    assert states[0] is SafetyState.TRACKING
    assert SafetyState.APPROACHING_SINGULARITY in states
    assert ctl.params.sigma_stop <= res.sigma_min <= floor * 1.02
    if res.state is SafetyState.APPROACHING_SINGULARITY:
        assert res.reason.startswith("sliding along the sigma_min barrier")
        assert 0.0 < res.speed_scale < 0.3
    else:
        assert res.state is SafetyState.SAFE_STOP
        assert res.reason.startswith("no admissible direction makes progress: the sigma_min "
                                     "barrier holds the arm")
        assert np.all(res.dq_command == 0.0)


def test_safe_stop_holds_against_a_command_that_goes_on_toward_the_singularity():
    """In SAFE_STOP the same (toward) command gives zero velocity and no drift of the
    position command."""
    ctl, q, twist, res, _ = _drive("planar2 stretched")
    for _ in range(200):
        again = ctl.step(q, twist, DT)
        assert again.state is SafetyState.SAFE_STOP and np.all(again.dq_command == 0.0)
        np.testing.assert_array_equal(again.q_command, res.q_command)


@pytest.mark.parametrize("name", ["planar2 stretched", "panda elbow", "ur5 wrist/elbow"])
def test_a_command_leaving_the_singularity_moves_at_once_without_reset(name):
    """On the barrier (at rest in SAFE_STOP, or sliding), the opposite command moves the
    arm at once, within the acceleration limits; sigma_min rises past sigma_resume and
    the state returns to APPROACHING or TRACKING without reset."""
    ctl, q, twist, res, _ = _drive(name)
    amax = ctl.joint_limits.max_joint_acceleration
    dq_prev = res.dq_command
    res = ctl.step(q, -twist, DT)
    assert res.state is not SafetyState.SAFE_STOP
    for _ in range(3000):
        assert np.all(np.abs(res.dq_command - dq_prev) <= amax * DT * (1 + 1e-9))
        dq_prev = res.dq_command
        q = q + res.dq_command * DT
        res = ctl.step(q, -twist, DT)
        if res.sigma_min > ctl.params.sigma_warn * 1.1:
            break
    assert res.state is SafetyState.TRACKING
    assert res.sigma_min > ctl.params.sigma_resume


def _latched_planar2():
    """planar2 measured just inside sigma_stop (moved there by hand): a latched stop."""
    ctl = warm_controller("planar2", task="position")
    robot = ctl.robot
    grid = np.linspace(0.02, 0.2, 2001)
    sig = np.array([robot.singular_values([0.3, g], "position")[-1] for g in grid])
    q = np.array([0.3, grid[np.argmin(np.abs(sig - 0.8 * ctl.params.sigma_stop))]])
    res = ctl.step(q, np.array([0.25, 0.05, 0, 0, 0, 0]), DT)
    return ctl, q, res


def test_below_sigma_stop_the_stop_latches_and_a_leaving_command_recovers():
    """sigma_min measured below sigma_stop latches SAFE_STOP; a command whose probe step
    raises sigma_min moves at reduced speed (reason 'leaving'), and the latch clears
    above sigma_resume."""
    ctl, q, res = _latched_planar2()
    assert res.state is SafetyState.SAFE_STOP
    assert res.reason.startswith(f"sigma_min {res.sigma_min:.4g} < sigma_stop")
    away = np.array([-0.05, -0.01, 0, 0, 0, 0])
    res = ctl.step(q, away, DT)
    assert res.state is SafetyState.SAFE_STOP
    assert res.reason.startswith("leaving the singularity at reduced speed")
    sigma = res.sigma_min
    for _ in range(3000):
        q = q + res.dq_command * DT
        res = ctl.step(q, away, DT)
        if res.state is not SafetyState.SAFE_STOP:
            break
        assert res.sigma_min >= sigma - 1e-9
        sigma = res.sigma_min
    assert res.state in (SafetyState.APPROACHING_SINGULARITY, SafetyState.TRACKING)
    assert res.sigma_min > ctl.params.sigma_resume


def test_a_pose_goal_past_the_singularity_stops_and_a_reachable_one_recovers():
    """planar2: a goal out of reach ends in SAFE_STOP; a reachable goal afterwards is
    reached without reset."""
    ctl = warm_controller("planar2", task="position")
    q = np.array([0.3, 1.2])
    T = np.eye(4)
    T[:3, 3] = [1.5, 0.2, 0.0]
    for _ in range(3000):
        res = ctl.step(q, T, DT)
        q = q + res.dq_command * DT
    assert res.state is SafetyState.SAFE_STOP and np.all(res.dq_command == 0.0)
    T[:3, 3] = [0.5, 0.3, 0.0]
    for _ in range(4000):
        res = ctl.step(q, T, DT)
        q = q + res.dq_command * DT
        if res.goal_reached:
            break
    assert res.goal_reached


def test_no_chattering_while_sigma_min_dithers_around_sigma_stop():
    """Measured positions alternating just above and below sigma_stop (noise) give one
    transition into SAFE_STOP and no flicker out of it."""
    ctl = warm_controller("planar2", task="position")
    robot = ctl.robot
    sigma_stop = ctl.params.sigma_stop
    # q2 where sigma_min (position task) crosses sigma_stop
    grid = np.linspace(0.05, 0.2, 3001)
    sig = np.array([robot.singular_values([0.3, g], "position")[-1] for g in grid])
    q2 = grid[np.argmin(np.abs(sig - sigma_stop))]
    twist = np.array([0.25, 0.05, 0, 0, 0, 0])       # toward the stretched singularity
    changes = 0
    last = None
    for k in range(2000):
        q = np.array([0.3, q2 + (2e-3 if k % 2 else -2e-3)])
        res = ctl.step(q, twist, DT)
        if last is not None and res.state is not last:
            changes += 1
        last = res.state
    assert last is SafetyState.SAFE_STOP
    assert changes <= 1


def test_no_chattering_around_sigma_warn():
    """Noise around sigma_warn does not flicker between TRACKING and APPROACHING."""
    ctl = warm_controller("planar2", task="position")
    robot = ctl.robot
    grid = np.linspace(0.1, 0.4, 3001)
    sig = np.array([robot.singular_values([0.3, g], "position")[-1] for g in grid])
    q2 = grid[np.argmin(np.abs(sig - ctl.params.sigma_warn))]
    changes, last = 0, None
    for k in range(2000):
        q = np.array([0.3, q2 + (1e-3 if k % 2 else -1e-3)])
        res = ctl.step(q, np.zeros(6), DT)
        changes += last is not None and res.state is not last
        last = res.state
    assert changes <= 1


def test_speed_scale_depends_on_sigma_not_direction_away_from_the_barrier():
    """At one configuration in the warning band where the barrier does not bind, a
    command toward and a command away from the singularity are scaled alike."""
    q = np.array([0.3, 0.17])
    twist = np.array([0.002, 0.0004, 0, 0, 0, 0])   # too slow for the barrier to bind
    scales = []
    for sign in (1.0, -1.0):
        # the arm is held still (no frozen-measurement stop): the command settles
        ctl = warm_controller("planar2", task="position", frozen_timeout=10.0)
        for _ in range(500):
            res = ctl.step(q, sign * twist, DT)
        assert res.state is SafetyState.APPROACHING_SINGULARITY
        scales.append(res.speed_scale)
    assert 0.1 < scales[0] < 1.0
    assert scales[0] == pytest.approx(scales[1], rel=1e-9)


def test_the_barrier_slows_only_the_motion_toward_the_singularity():
    """Near the barrier's floor, a fast command toward the singularity is cut by the
    barrier (limited 'singularity', less of it delivered); the same command away is
    not cut; switching between them stays within the acceleration limits."""
    ctl = warm_controller("planar2", task="position", frozen_timeout=10.0)  # held still
    q = np.array([0.3, 0.17])
    twist = np.array([0.05, 0.01, 0, 0, 0, 0])
    amax = ctl.joint_limits.max_joint_acceleration
    shares = []
    dq_prev = np.zeros(2)
    for sign in (1.0, -1.0):
        for _ in range(500):
            res = ctl.step(q, sign * twist, DT)
            assert np.all(np.abs(res.dq_command - dq_prev) <= amax * DT * (1 + 1e-9))
            dq_prev = res.dq_command
        shares.append(res.speed_scale)
        sigma_rate = ctl.robot.singular_values(q + 1e-4 * res.dq_command, "position")[-1] \
            - res.sigma_min
        assert (sigma_rate < 0.0) == (sign > 0.0)
    assert shares[0] < 0.5 * shares[1]


def test_speed_scale_rises_no_faster_than_speed_scale_rate():
    """After a stop, the singularity speed scale ramps up at most speed_scale_rate per s."""
    ctl = warm_controller("panda", frozen_timeout=10.0)   # the arm is held still
    q = np.array([0.1, -0.3, 0.2, -2.0, 0.1, 1.9, 0.3])
    twist = np.array([0.01, 0, 0, 0, 0, 0.0])
    previous = 0.0
    for _ in range(300):
        res = ctl.step(q, twist, DT)
        assert res.speed_scale <= previous + ctl.params.speed_scale_rate * DT + 1e-12
        previous = res.speed_scale
    assert previous == pytest.approx(1.0)


def test_reset_is_refused_at_the_singularity_and_needless_after_leaving():
    """reset() keeps a latched stop while sigma_min <= sigma_resume (message says why);
    once the arm has left, the stop is already cleared and reset() says so."""
    ctl, q, res = _latched_planar2()
    ok, message = ctl.reset()
    assert not ok
    assert message.startswith(f"cannot reset: sigma_min {res.sigma_min:.4g} <= sigma_resume")
    ctl.step(q, None, DT, measurement_age=1.0)
    ok, message = ctl.reset()
    assert not ok and "STALE_INPUT" in message
    res = ctl.step(np.array([0.3, 1.2]), None, DT)       # the arm was moved away by hand
    assert res.state is SafetyState.IDLE
    assert ctl.reset() == (True, "no safe stop is latched")


def test_an_unreachable_goal_is_declared_and_held_until_another_goal():
    """A pose goal past the workspace boundary: the arm stops on the barrier, no
    joint-space path exists, and the state says so ('goal unreachable without crossing
    a singularity'), at rest; the same goal keeps it; another goal is tracked."""
    ctl = warm_controller("planar2", task="position")
    q = np.array([0.3, 1.2])
    T = np.eye(4)
    T[:3, 3] = [1.5, 0.2, 0.0]
    for _ in range(3000):
        res = ctl.step(q, T, DT)
        assert res.sigma_min >= ctl.params.sigma_stop
        q = q + res.dq_command * DT
    assert res.state is SafetyState.SAFE_STOP and np.all(res.dq_command == 0.0)
    assert res.reason.startswith("goal unreachable without crossing a singularity")
    T2 = T.copy()
    T2[:3, 3] = [0.5, 0.3, 0.0]
    res = ctl.step(q, T2, DT)
    assert res.state is not SafetyState.SAFE_STOP


# ---------------------------------------------------------------------- every parameter set
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), data=st.data())
def test_sigma_min_never_falls_below_sigma_stop_for_any_accepted_parameters(seed, data):
    """Over the accepted parameter space (thresholds from the smallest sigma_stop up,
    gains, damping, speed caps) and the bundled arms, closed loop with a one-cycle
    measurement delay toward a random pose goal or a constant twist: sigma_min never
    falls below sigma_stop, and no velocity or acceleration limit is exceeded."""
    rng = np.random.default_rng(seed)
    name = data.draw(st.sampled_from(["panda", "ur5", "planar2"]))
    task = "position" if name == "planar2" else data.draw(st.sampled_from(["pose", "position"]))
    s_stop = 10 ** data.draw(st.floats(np.log10(MIN_SIGMA_STOP), -1.0))
    s_resume = s_stop * data.draw(st.floats(1.05, 2.0))
    s_warn = s_resume * data.draw(st.floats(1.0, 3.0))
    params = ControllerParams(
        task=task, sigma_stop=s_stop, sigma_resume=s_resume, sigma_warn=s_warn,
        sigma_damp=s_warn * data.draw(st.floats(0.5, 2.0)),
        lambda_max=s_stop * data.draw(st.floats(0.5, 3.0)),
        barrier_gain=10 ** data.draw(st.floats(-0.5, 2.0)),
        speed_scale_floor=data.draw(st.floats(0.01, 1.0)),
        max_linear_speed=data.draw(st.floats(0.05, 1.0)),
        max_angular_speed=data.draw(st.floats(0.2, 3.0)))
    robot = bundled_arm(name)
    ctl = Controller(robot, params)
    lo = np.where(robot.continuous, -np.pi, robot.lower)
    hi = np.where(robot.continuous, np.pi, robot.upper)
    q = rng.uniform(lo + 0.3 * (hi - lo), hi - 0.3 * (hi - lo))
    assume(robot.singular_values(q, task)[-1] > 3.0 * s_stop)
    if data.draw(st.booleans()):
        target = rng.normal(size=6)
        target[:3] *= 0.5 / np.linalg.norm(target[:3])
        target[3:] *= 1.0 / np.linalg.norm(target[3:])
    else:
        target = robot.fk(rng.uniform(lo, hi))
    vmax = ctl.joint_limits.max_joint_velocity
    amax = ctl.joint_limits.max_joint_acceleration
    measured = q.copy()
    dq_prev = np.zeros(robot.dof)
    for _ in range(3000):
        res = ctl.step(measured, target, DT)
        assert res.sigma_min >= s_stop, (res.state, res.reason)
        assert np.all(np.abs(res.dq_command) <= vmax * (1 + 1e-9))
        assert np.all(np.abs(res.dq_command - dq_prev) <= amax * DT * (1 + 1e-9))
        dq_prev = res.dq_command
        measured = q.copy()
        q = q + res.dq_command * DT


def test_small_thresholds_keep_the_guarantee_on_a_fast_ur5_move():
    """Thresholds ten times below the defaults, a long UR5 move: sigma_min stays above
    sigma_stop in every cycle, and the goal is reached."""
    params = ControllerParams(sigma_warn=0.004, sigma_stop=0.002, sigma_resume=0.003,
                              sigma_damp=0.004, lambda_max=0.003)
    robot = bundled_arm("ur5")
    ctl = Controller(robot, params, collision=False)   # the goal folds the elbow to 164°
    q = np.array([0.0, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0])
    T = robot.fk(np.array([0.237568, -0.667818, 2.858858, 5.65259, 5.611673, -5.32734]))
    measured = q.copy()
    for _ in range(5000):
        res = ctl.step(measured, T, DT)
        assert res.sigma_min >= params.sigma_stop, (res.state, res.reason)
        measured = q.copy()
        q = q + res.dq_command * DT
        if res.goal_reached:
            break
    assert res.goal_reached


def test_a_fast_crossing_far_above_sigma_warn_is_seen_by_the_first_order_rest_value():
    """Small thresholds (sigma_stop 0.0042, sigma_warn 2·sigma_stop), no speed scaling
    (speed_scale_floor 1): a constant twist drives the Panda's position task at the
    joint speed limit toward a singular surface it would cross within the braking
    distance while σ_min is still far above GRADIENT_RANGE·sigma_warn.  The σ_min
    gradient is computed there (the rest path can reach the guard), the first-order
    rest value sees the crossing, and σ_min never falls below sigma_stop."""
    rng = np.random.default_rng(13320)
    s_stop = 10 ** -2.375
    params = ControllerParams(
        task="position", sigma_stop=s_stop, sigma_resume=2 * s_stop, sigma_warn=2 * s_stop,
        sigma_damp=2 * s_stop, lambda_max=s_stop, barrier_gain=1.0, speed_scale_floor=1.0,
        max_linear_speed=1.0, max_angular_speed=1.0)
    robot = bundled_arm("panda")
    ctl = Controller(robot, params)
    lo, hi = robot.lower, robot.upper
    q = rng.uniform(lo + 0.3 * (hi - lo), hi - 0.3 * (hi - lo))
    twist = rng.normal(size=6)
    twist[:3] *= 0.5 / np.linalg.norm(twist[:3])
    twist[3:] *= 1.0 / np.linalg.norm(twist[3:])
    measured = q.copy()
    for _ in range(1500):
        res = ctl.step(measured, twist, DT)
        assert res.sigma_min >= s_stop, (res.state, res.reason)
        measured = q.copy()
        q = q + res.dq_command * DT
