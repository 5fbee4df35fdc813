"""Controller: the control law in closed loop, limits, inputs, pause, parameters."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from controller_support import bundled_arm, warm_controller
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from jacobian_ik.controller import MAX_DT_PERIODS, Controller, StepResult
from jacobian_ik.errors import ConfigurationError
from jacobian_ik.params import ControllerParams
from jacobian_ik.safety import SafetyState

DT = 0.002
HYPOTHESIS = settings(max_examples=15, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])


def _check_limits(ctl: Controller, res: StepResult, dq_prev, q_meas, dt):
    """The command is finite and within the velocity, acceleration and position limits."""
    lim = ctl.joint_limits
    robot = ctl.robot
    h = min(dt, MAX_DT_PERIODS / ctl.params.control_rate)
    assert np.all(np.isfinite(res.dq_command)) and np.all(np.isfinite(res.q_command))
    assert np.all(np.abs(res.dq_command) <= lim.max_joint_velocity * (1 + 1e-9))
    assert np.all(np.abs(res.dq_command - dq_prev)
                  <= lim.max_joint_acceleration * h * (1 + 1e-9) + 1e-12)
    assert np.all(res.q_command >= robot.lower - 1e-12)
    assert np.all(res.q_command <= robot.upper + 1e-12)
    lead = np.abs(res.q_command - q_meas)
    assert np.all(lead <= ctl.params.max_command_drift + lim.max_joint_velocity * h + 1e-12)
    for value in (res.sigma_min, res.sigma_max, res.condition_number, res.manipulability,
                  res.speed_scale, res.damping, res.position_error, res.orientation_error):
        assert math.isfinite(value)


def _inner_configuration(robot, rng):
    """A configuration in the middle half of every joint's range."""
    lo = np.where(robot.continuous, -math.pi, robot.lower)
    hi = np.where(robot.continuous, math.pi, robot.upper)
    span = hi - lo
    return rng.uniform(lo + 0.25 * span, hi - 0.25 * span)


# ---------------------------------------------------------------------- convergence
@HYPOTHESIS
@given(seed=st.integers(0, 2**31 - 1))
def test_pose_error_strictly_decreases_every_cycle_in_closed_loop(seed):
    """On a reachable nearby goal the 6-D pose error falls every cycle until the goal
    is reached (Kp = Ko, so the twist points along the error): a property of the
    Cartesian law, so no joint-space move is allowed to start."""
    robot = bundled_arm("panda")
    ctl = warm_controller("panda", joint_move_distance=0.0)
    rng = np.random.default_rng(seed)
    q = _inner_configuration(robot, rng)
    goal = q + rng.uniform(-0.3, 0.3, robot.dof)
    assume(robot.singular_values(q)[-1] > 0.06 and robot.singular_values(goal)[-1] > 0.06)
    T = robot.fk(goal)
    previous = math.inf
    for _ in range(4000):
        res = ctl.step(q, T, DT)
        error = math.hypot(res.position_error, res.orientation_error)
        if res.goal_reached:
            break
        assert error < previous, (error, previous, res.state, res.limited)
        previous = error
        q = q + res.dq_command * DT
    assert res.goal_reached
    assert res.state is SafetyState.TRACKING and res.reason == "goal reached"


@pytest.mark.parametrize("name,task", [("panda", "pose"), ("ur5", "pose"),
                                       ("planar2", "position"), ("panda", "position")])
def test_every_bundled_arm_reaches_nearby_goals(name, task):
    """Closed loop with a one-cycle measurement delay reaches FK(q + δ) within tolerance."""
    robot = bundled_arm(name)
    ctl = warm_controller(name, task=task)
    rng = np.random.default_rng(7)
    reached = 0
    for _ in range(5):
        q = robot.q_mid + rng.uniform(-0.4, 0.4, robot.dof)
        if name == "planar2":
            q[1] = rng.choice([-1.0, 1.0]) * rng.uniform(0.6, 1.8)
        if name == "ur5":
            q = np.array([0.3, -1.2, 1.5, -1.5, -1.5, 0.3]) + rng.uniform(-0.3, 0.3, 6)
        goal = q + rng.uniform(-0.25, 0.25, robot.dof)
        T = robot.fk(goal)
        delayed = q.copy()
        for _ in range(5000):
            res = ctl.step(delayed, T, DT)
            delayed = q.copy()
            q = q + res.dq_command * DT
            if res.goal_reached:
                reached += 1
                break
    assert reached == 5


def test_servo_twist_is_tracked_exactly_when_no_limit_binds():
    """In servo mode, once the speed ramp is done, J(q)·dq equals the commanded twist."""
    robot = bundled_arm("panda")
    ctl = warm_controller("panda")
    q = np.array([0.1, -0.3, 0.2, -2.0, 0.1, 1.9, 0.3])
    twist = np.array([0.05, -0.02, 0.03, 0.1, 0.0, -0.1])
    for _ in range(400):
        res = ctl.step(q, twist, DT)
        q = q + res.dq_command * DT
    assert res.state is SafetyState.TRACKING and res.limited == ""
    np.testing.assert_allclose(robot.jacobian(q - res.dq_command * DT) @ res.dq_command,
                               twist, atol=1e-9)


def test_position_task_ignores_orientation():
    """With task='position', only the position error drives the arm: goal_reached while
    the orientation error stays large."""
    robot = bundled_arm("panda")
    ctl = warm_controller("panda", task="position")
    q = np.array([0.1, -0.3, 0.2, -2.0, 0.1, 1.9, 0.3])
    T = robot.fk(q)
    T[:3, 3] += [0.05, 0.05, -0.05]
    T[:3, :3] = T[:3, :3] @ np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    for _ in range(3000):
        res = ctl.step(q, T, DT)
        q = q + res.dq_command * DT
        if res.goal_reached:
            break
    assert res.goal_reached and res.orientation_error > 1.0


# ---------------------------------------------------------------------- limits (properties)
_TARGET = st.sampled_from(["pose", "twist", "none"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["panda", "ur5", "planar2"]), seed=st.integers(0, 2**31 - 1),
       kinds=st.lists(_TARGET, min_size=1, max_size=4),
       dts=st.lists(st.floats(1e-4, 0.03), min_size=1, max_size=4),
       twist_scale=st.floats(0.0, 5.0), noise=st.floats(0.0, 1e-3))
def test_any_finite_input_gives_a_command_within_all_limits(name, seed, kinds, dts,
                                                           twist_scale, noise):
    """For finite inputs (any pose anywhere, twists up to 5 m/s, any dt, noisy
    measurements) every command is finite and within the velocity, acceleration and
    position limits, and the position command stays near the measured position."""
    robot = bundled_arm(name)
    ctl = warm_controller(name, task="position" if name == "planar2" else "pose")
    rng = np.random.default_rng(seed)
    q = robot.random_configurations(1, rng)[0]
    q = np.clip(q, robot.lower + 0.15, robot.upper - 0.15)
    dq_prev = np.zeros(robot.dof)
    for k in range(120):
        kind = kinds[k % len(kinds)]
        dt = dts[k % len(dts)]
        if kind == "pose":
            target = robot.fk(robot.random_configurations(1, rng)[0])
        elif kind == "twist":
            target = rng.normal(size=6) * twist_scale
        else:
            target = None
        q_meas = q + rng.normal(size=robot.dof) * noise
        res = ctl.step(q_meas, target, dt)
        assert res.state is not SafetyState.INVALID_INPUT
        _check_limits(ctl, res, dq_prev, q_meas, dt)
        dq_prev = res.dq_command
        q = q + res.dq_command * min(dt, MAX_DT_PERIODS / ctl.params.control_rate)


def _bad_inputs():
    nan = st.sampled_from([math.nan, math.inf, -math.inf])
    return st.one_of(
        st.tuples(st.just("q"), st.integers(0, 6), nan),
        st.tuples(st.just("pose"), st.integers(0, 15), nan),
        st.tuples(st.just("twist"), st.integers(0, 5), nan),
        st.tuples(st.just("dt"), st.just(0), st.sampled_from([math.nan, math.inf, 0.0, -0.01])),
        st.tuples(st.just("measurement_age"), st.just(0), st.sampled_from([math.nan, -1.0])),
        st.tuples(st.just("target_age"), st.just(0), nan),
    )


@HYPOTHESIS
@given(bad=_bad_inputs())
def test_any_non_finite_input_is_invalid_and_brakes_without_a_step(bad):
    """A non-finite value anywhere (or a non-positive dt, a negative age) gives
    INVALID_INPUT; the last command brakes within the acceleration limits (a bad dt
    counts as one period) and the position command continues from the last one: no
    velocity or position step, and repeated bad input brings the arm to rest."""
    robot = bundled_arm("panda")
    ctl = warm_controller("panda")
    amax = ctl.joint_limits.max_joint_acceleration
    q = np.array([0.1, -0.3, 0.2, -2.0, 0.1, 1.9, 0.3])
    twist = np.array([0.05, 0.0, 0.0, 0.0, 0.0, 0.0])
    for _ in range(50):
        res = ctl.step(q, twist, DT)
        q = q + res.dq_command * DT
    assert np.any(res.dq_command != 0.0)
    where, index, value = bad
    for _ in range(200):
        args = {"q": q.copy(), "target": twist.copy(), "dt": DT, "measurement_age": 0.0,
                "target_age": 0.0}
        if where == "q":
            args["q"][index] = value
        elif where == "pose":
            args["target"] = robot.fk(q)
            args["target"].flat[index] = value
        elif where == "twist":
            args["target"][index] = value
        else:
            args[where] = value
        last = res
        res = ctl.step(args["q"], args["target"], args["dt"],
                       measurement_age=args["measurement_age"], target_age=args["target_age"])
        assert res.state is SafetyState.INVALID_INPUT
        assert ctl.state is SafetyState.INVALID_INPUT
        assert np.all(np.abs(res.dq_command - last.dq_command) <= amax * DT * (1 + 1e-9))
        assert np.all(np.abs(res.dq_command) <= np.abs(last.dq_command))
        np.testing.assert_allclose(res.q_command, last.q_command + res.dq_command * DT,
                                   rtol=0, atol=1e-12)
        q = q + res.dq_command * DT
    assert np.all(res.dq_command == 0.0)


def test_rejected_input_is_invalid_with_the_callers_reason_and_a_braked_stop():
    """step(..., rejected=text): INVALID_INPUT whose reason is that text; the command
    brakes within the acceleration limits, the position command never steps; the next
    accepted cycle moves on from the braked command."""
    ctl = warm_controller("panda")
    amax = ctl.joint_limits.max_joint_acceleration
    vmax = ctl.joint_limits.max_joint_velocity
    q, twist, last = _moving_panda(ctl)
    for _ in range(10):
        res = ctl.step(q, twist, DT, rejected="target_twist frame_id 'world' is not the base")
        assert res.state is SafetyState.INVALID_INPUT
        assert res.reason == "target_twist frame_id 'world' is not the base"
        assert np.all(np.abs(res.dq_command - last.dq_command) <= amax * DT * (1 + 1e-9))
        assert np.all(np.abs(res.q_command - last.q_command) <= vmax * DT)
        last = res
        q = q + res.dq_command * DT
    assert np.any(res.dq_command != 0.0)    # still braking: one period at a time
    res = ctl.step(q, twist, DT)
    assert res.state is SafetyState.TRACKING
    assert np.all(np.abs(res.dq_command - last.dq_command) <= amax * DT * (1 + 1e-9))
    assert np.all(np.abs(res.q_command - last.q_command) <= vmax * DT)


def test_non_finite_first_measurement_commands_no_motion_at_the_default_position():
    """The one stop without a command to continue: a non-finite measurement before any
    valid one gives zero velocity and, as position command, the last valid measured
    position (robot.q_mid before the first); the first valid measurement anchors it."""
    robot = bundled_arm("panda")
    ctl = warm_controller("panda")
    q = np.full(7, math.nan)
    res = ctl.step(q, None, DT)
    assert res.state is SafetyState.INVALID_INPUT
    assert np.all(res.dq_command == 0.0)
    np.testing.assert_array_equal(res.q_command, robot.q_mid)
    q = np.array([0.1, -0.3, 0.2, -2.0, 0.1, 1.9, 0.3])
    res = ctl.step(q, None, DT)
    np.testing.assert_array_equal(res.q_command, q)


@pytest.mark.parametrize("q,target,fragment", [
    ([0.0] * 6, None, "q_measured must have shape (7,)"),
    ("abc", None, "q_measured must have shape (7,)"),
    (None, np.zeros(3), "target must be None, a (4, 4) pose or a (6,) twist; got shape (3,)"),
    (None, [["a"] * 4] * 4, "malformed input"),
    (None, np.diag([2.0, 1.0, 1.0, 1.0]), "target pose is not a rigid transform"),
    (None, np.diag([-1.0, 1.0, 1.0, 1.0]), "target pose is not a rigid transform"),
])
def test_malformed_input_is_invalid_and_never_raises(q, target, fragment):
    """Wrong shapes, strings, scaled or reflected rotations: INVALID_INPUT, a reason
    saying what is wrong, zero velocity; no exception."""
    ctl = warm_controller("panda")
    q_ok = bundled_arm("panda").q_mid
    res = ctl.step(q_ok if q is None else q, target, DT)
    assert res.state is SafetyState.INVALID_INPUT
    assert fragment in res.reason
    assert np.all(res.dq_command == 0.0)


# ---------------------------------------------------------------------- singular values
def test_two_link_arm_sigma_min_is_its_second_singular_value_and_no_false_stop():
    """planar2 in pose mode: sigma_min is σ₂ of its 6×2 Jacobian (never 0 when
    stretched, since the two columns stay independent); driving it around, even
    through the stretched configuration, never reports a singularity state."""
    robot = bundled_arm("planar2")
    ctl = warm_controller("planar2", task="pose")
    q = np.array([0.3, 0.8])
    res = ctl.step(q, None, DT)
    s = np.linalg.svd(robot.jacobian(q), compute_uv=False)
    assert res.sigma_min == pytest.approx(s[1], rel=1e-6)
    assert res.sigma_max == pytest.approx(s[0], rel=1e-6)
    q = np.array([0.3, 0.0])
    res = ctl.step(q, None, DT)
    assert res.sigma_min > 0.25
    q = np.array([0.3, 0.8])
    for k in range(3000):
        twist = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.5 if k < 1500 else -0.5])
        twist[:2] = 0.2 * np.array([math.cos(k * 0.004), math.sin(k * 0.004)])
        res = ctl.step(q, twist, DT)
        q = q + res.dq_command * DT
        assert res.state in (SafetyState.TRACKING,), res.reason


def test_two_link_arm_in_position_mode_is_singular_only_stretched_or_folded():
    """Position task: σ_min of the 3×2 Jacobian is ≈ 0 at q2 = 0 and q2 = π only."""
    ctl = warm_controller("planar2", task="position")
    for q2, singular in ((0.0, True), (1.2, False), (-2.0, False), (math.pi - 1e-9, True)):
        res = ctl.step(np.array([0.4, q2]), None, DT)
        assert (res.sigma_min < 1e-6) == singular, (q2, res.sigma_min)


# ---------------------------------------------------------------------- stops and holds
def _moving_panda(ctl, steps=300):
    q = np.array([0.1, -0.3, 0.2, -2.0, 0.1, 1.9, 0.3])
    twist = np.array([0.1, 0.0, 0.0, 0.0, 0.0, 0.0])
    for _ in range(steps):
        res = ctl.step(q, twist, DT)
        q = q + res.dq_command * DT
    assert np.linalg.norm(res.dq_command) > 0.05
    return q, twist, res


def _assert_decelerates_and_holds(ctl, step_fn, state, q, dq_prev):
    amax = ctl.joint_limits.max_joint_acceleration
    for _ in range(400):
        res = step_fn(q)
        assert res.state is state, res.reason
        assert np.all(np.abs(res.dq_command - dq_prev) <= amax * DT * (1 + 1e-9))
        assert np.all(np.abs(res.dq_command) <= np.abs(dq_prev) + 1e-15)
        dq_prev = res.dq_command
        q = q + res.dq_command * DT
    assert np.all(res.dq_command == 0.0)
    return q, res


def test_no_target_decelerates_to_idle():
    """target None: IDLE, braking within the acceleration limits to zero, then holding."""
    ctl = warm_controller("panda")
    q, _, res = _moving_panda(ctl)
    q, held = _assert_decelerates_and_holds(ctl, lambda q: ctl.step(q, None, DT),
                                            SafetyState.IDLE, q, res.dq_command)
    np.testing.assert_allclose(held.q_command, ctl.step(q, None, DT).q_command)


def test_stale_measurement_stops_smoothly():
    """measurement_age > stale_timeout: STALE_INPUT, braking, reason gives the age."""
    ctl = warm_controller("panda")
    q, twist, res = _moving_panda(ctl)
    step = lambda q: ctl.step(q, twist, DT, measurement_age=0.25)  # noqa: E731
    q, held = _assert_decelerates_and_holds(ctl, step, SafetyState.STALE_INPUT, q,
                                            res.dq_command)
    assert held.reason == "joint measurement is 0.250 s old > stale_timeout 0.1 s"
    assert ctl.reset() == (True, "no safe stop is latched")


def test_stale_twist_halts_then_expires_but_an_old_pose_target_does_not():
    """A twist older than stale_timeout brakes (STALE_INPUT) within the acceleration
    limits; once the arm has stopped the kernel reports the expiry (IDLE, "twist
    target expired").  A pose target does not expire."""
    ctl = warm_controller("panda")
    amax = ctl.joint_limits.max_joint_acceleration
    q, twist, res = _moving_panda(ctl)
    for _ in range(400):
        last = res
        res = ctl.step(q, twist, DT, target_age=0.2)
        assert np.all(np.abs(res.dq_command - last.dq_command) <= amax * DT * (1 + 1e-9))
        if np.any(last.dq_command != 0.0):
            assert res.state is SafetyState.STALE_INPUT
            assert res.reason.startswith("twist target is 0.200 s old")
        else:
            assert res.state is SafetyState.IDLE
            assert res.reason == ("twist target expired (0.200 s old > stale_timeout 0.1 s): "
                                  "holding")
            assert not res.state.is_fault
        q = q + res.dq_command * DT
    assert res.state is SafetyState.IDLE
    T = bundled_arm("panda").fk(q)
    T[0, 3] += 0.05
    res = ctl.step(q, T, DT, target_age=10.0)
    assert res.state is SafetyState.TRACKING


def test_pause_holds_and_resume_restarts_from_the_measured_position():
    """pause(): PAUSED, braking to zero; resume(): motion restarts with the position
    command anchored on the (moved) measured position and zero starting speed."""
    ctl = warm_controller("panda")
    q, twist, res = _moving_panda(ctl)
    ctl.pause()
    assert ctl.paused
    q, _ = _assert_decelerates_and_holds(ctl, lambda q: ctl.step(q, twist, DT),
                                         SafetyState.PAUSED, q, res.dq_command)
    ctl.resume()
    q_moved = q + 0.03    # someone moved the arm while paused
    res = ctl.step(q_moved, twist, DT)
    assert res.state is SafetyState.TRACKING
    amax = ctl.joint_limits.max_joint_acceleration
    assert np.all(np.abs(res.dq_command) <= amax * DT * (1 + 1e-9))
    np.testing.assert_allclose(res.q_command, q_moved + res.dq_command * DT, atol=1e-15)


def test_position_command_is_reanchored_when_the_arm_does_not_follow():
    """If the measured position stays put (the measurement is alive: it flickers by a
    nanoradian), the integrated position command runs ahead only up to
    max_command_drift and is then re-anchored: never a jump."""
    ctl = warm_controller("panda")
    q = np.array([0.1, -0.3, 0.2, -2.0, 0.1, 1.9, 0.3])
    twist = np.array([0.2, 0.0, 0.0, 0.0, 0.0, 0.0])
    vmax = ctl.joint_limits.max_joint_velocity
    lead_max = 0.0
    anchored = 0
    for k in range(1000):
        q = q + (1e-9 if k % 2 else -1e-9)
        res = ctl.step(q, twist, DT)
        assert res.state is SafetyState.TRACKING, res.reason
        lead = np.abs(res.q_command - q).max()
        assert lead <= ctl.params.max_command_drift + vmax.max() * DT
        anchored += lead <= vmax.max() * DT
        lead_max = max(lead_max, lead)
    assert lead_max > 0.8 * ctl.params.max_command_drift
    assert anchored >= 2


# ---------------------------------------------------------------------- joint limits
def test_joint_brakes_to_the_margin_and_never_overshoots():
    """Driven toward its bound, a joint slows down within its acceleration limit and
    stops at the margin (never inside it), reporting joint_position."""
    robot = bundled_arm("planar2")
    ctl = warm_controller("planar2", task="position")
    q = np.array([2.0, 1.0])
    amax = ctl.joint_limits.max_joint_acceleration
    dq_prev = np.zeros(2)
    seen_limited = False
    bound = robot.upper[0] - ctl.params.joint_limit_margin
    for _ in range(3000):
        res = ctl.step(q, np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0]) + [-0.2, -0.3, 0, 0, 0, 0],
                       DT)
        assert np.all(np.abs(res.dq_command - dq_prev) <= amax * DT * (1 + 1e-9))
        dq_prev = res.dq_command
        q = q + res.dq_command * DT
        assert q[0] <= bound + 1e-12
        seen_limited |= "joint_position" in res.limited
    assert seen_limited
    assert q[0] > bound - 1e-3 and abs(res.dq_command[0]) < 1e-9


def test_outside_joint_limits_stops_but_allows_moving_back():
    """A measured position beyond a URDF limit: JOINT_LIMIT and no motion for a command
    pushing further out; a command moving the joint back inside is allowed."""
    ctl = warm_controller("planar2", task="position")
    q = np.array([3.05, 1.0])          # joint1 upper limit is 3.0
    outward = np.array([-0.2, -0.3, 0, 0, 0, 0], dtype=float)   # drives joint1 further up
    inward = -outward
    for _ in range(50):
        res = ctl.step(q, outward, DT)
        assert res.state is SafetyState.JOINT_LIMIT
        assert res.reason == "joint 'joint1' at 3.0500 is outside its limits"
        assert np.all(res.dq_command == 0.0)
    for _ in range(3000):
        res = ctl.step(q, inward, DT)
        q = q + res.dq_command * DT
        if res.state is not SafetyState.JOINT_LIMIT:
            break
        assert res.dq_command[0] <= 0.0
    assert q[0] <= 3.0 and res.state is SafetyState.TRACKING


# ---------------------------------------------------------------------- parameters, imports
def test_update_params_allows_only_tunable_fields():
    """Gains change live; a safety threshold raises naming it and listing tunables."""
    ctl = warm_controller("panda")
    ctl.update_params(ctl.params.replace(position_gain=1.0, max_linear_speed=0.1))
    assert ctl.params.position_gain == 1.0
    with pytest.raises(ConfigurationError) as info:
        ctl.update_params(ctl.params.replace(sigma_stop=0.01))
    assert str(info.value).startswith("parameter(s) sigma_stop cannot change while the "
                                      "controller runs; tunable parameters are: ")
    assert ctl.params.sigma_stop == 0.02


def test_controller_checks_params_against_thebundled_arm():
    """Per-joint limits of the wrong length raise at construction."""
    with pytest.raises(ConfigurationError, match="has 3 values but the robot has 7 joints"):
        Controller(bundled_arm("panda"), ControllerParams(max_joint_velocity=(1.0, 1.0, 1.0)))


def test_warm_up_leaves_the_controller_untouched():
    """warm_up() compiles but the first real cycle still starts from rest, IDLE before."""
    ctl = warm_controller("panda")
    assert ctl.state is SafetyState.IDLE
    res = ctl.step(bundled_arm("panda").q_mid, np.array([0.1, 0, 0, 0, 0, 0.0]), DT)
    amax = ctl.joint_limits.max_joint_acceleration
    assert np.all(np.abs(res.dq_command) <= amax * DT * (1 + 1e-9))


def test_step_results_are_immutable_and_later_cycles_leave_them_unchanged():
    """A StepResult's fields cannot be set or added, and its arrays and values are
    that cycle's own: later cycles (which reuse the controller's buffers) leave them
    unchanged."""
    ctl = warm_controller("panda")
    q, twist, _last = _moving_panda(ctl)
    res = ctl.step(q, twist, DT)
    kept = {name: (value.copy() if isinstance(value, np.ndarray) else value)
            for name, value in res._asdict().items()}
    for name in kept:
        with pytest.raises(AttributeError):
            setattr(res, name, kept[name])
    with pytest.raises(AttributeError):
        res.extra = 1.0
    for _ in range(20):
        later = ctl.step(q, twist, DT)
        q = q + later.dq_command * DT
    assert np.any(later.q_command != kept["q_command"])
    for name, value in kept.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(res, name), value)
        else:
            assert getattr(res, name) == value, name


def _inputs_another_way(q, target, k):
    """The same numbers as other kinds of input: lists, a read-only q, a Fortran-order
    target; none of them goes to the kernel directly."""
    if k % 3 == 0:
        q = q.tolist()
    elif k % 3 == 1:
        q = q.copy()
        q.flags.writeable = False
    if target is not None:
        target = np.asfortranarray(target) if k % 2 else target.tolist()
    return q, target


def test_every_kind_of_input_gives_the_same_cycle_bit_for_bit():
    """Float64 C-order arrays go straight to the kernel; lists and other arrays are
    checked and copied in Python first: both give identical results, cycle by cycle,
    through a far and a near pose goal, a twist, a hold, a late cycle and rejected or
    non-finite input."""
    robot = bundled_arm("panda")
    direct, checked = warm_controller("panda"), warm_controller("panda")
    q = np.array([0.1, -0.3, 0.2, -2.0, 0.1, 1.9, 0.3])
    far = robot.fk(np.array([1.2, 0.4, -0.8, -1.2, 0.6, 1.2, -0.5]))
    near = robot.fk(q + 0.05)
    twist = np.array([0.05, -0.02, 0.03, 0.0, 0.2, 0.0])
    for k in range(600):
        target = far if k < 250 else near if k < 400 else twist if k < 500 else None
        dt = 3 * DT if k == 420 else DT
        kind = {"rejected": "test input" if k == 450 else None}
        if k == 460:
            dt = math.nan
        a = direct.step(q, target, dt, **kind)
        qb, tb = _inputs_another_way(q, target, k)
        b = checked.step(qb, tb, dt, **kind)
        for name, value in a._asdict().items():
            other = getattr(b, name)
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(value, other, err_msg=f"{name}, cycle {k}")
            else:
                assert value == other, (name, k, value, other)
        q = q + a.dq_command * DT
    assert direct.state is checked.state is SafetyState.IDLE


def test_after_warm_up_an_unusual_input_type_does_not_compile_in_the_cycle():
    """After warm_up() the kernel behind step() compiles nothing more: a read-only or
    Fortran-order array, an integer dt or a list is handled without a new signature."""
    from jacobian_ik.kernels import control as K

    ctl = warm_controller("panda")
    robot = bundled_arm("panda")
    before = list(K.control_cycle.signatures)
    q = robot.q_mid.copy()
    q.flags.writeable = False
    T = np.asfortranarray(robot.fk(robot.q_mid))
    for target, dt in ((T, DT), (None, 1), (list(map(list, T)), DT)):
        res = ctl.step(q, target, dt)
        assert res.state is not SafetyState.INVALID_INPUT
    assert list(K.control_cycle.signatures) == before


@pytest.mark.slow
def test_importing_the_core_does_not_import_ros():
    """jacobian_ik.controller, .params, .safety and .ik never import rclpy."""
    code = ("import sys; import jacobian_ik.controller, jacobian_ik.params, jacobian_ik.safety, "
            "jacobian_ik.ik; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('rclpy', 'rosidl_runtime_py', 'std_msgs')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
