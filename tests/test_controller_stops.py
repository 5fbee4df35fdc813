"""Controller stops: every stop brakes from the last command within the acceleration
limits and the position command never steps; frozen measurements are caught."""

from __future__ import annotations

import math

import numpy as np
import pytest
from controller_support import warm_controller

from jacobian_ik.kernels.control import ANCHOR_SETTLE, FROZEN_MIN_TRAVEL
from jacobian_ik.safety import FAULT_STATES, SafetyState

DT = 0.002
Q0 = np.array([0.1, -0.3, 0.2, -2.0, 0.1, 1.9, 0.3])
TWIST = np.array([0.1, 0.0, 0.0, 0.0, 0.0, 0.5])
#: The simulated arm follows the position command with this many cycles of delay
#: (16 ms: a ros2_control bus and servo loop).
LAG = 8


class FollowingArm:
    """An arm that reaches each position command LAG cycles after it was sent, read
    back as the measurement (what a position-controlled arm behind a bus does)."""

    def __init__(self, q0):
        self.pipeline = [q0.copy() for _ in range(LAG)]

    @property
    def q(self):
        return self.pipeline[0].copy()

    def command(self, q_command):
        self.pipeline = self.pipeline[1:] + [q_command.copy()]


def _moving(ctl, arm, cycles=300):
    res = None
    for _ in range(cycles):
        res = ctl.step(arm.q, TWIST, DT)
        arm.command(res.q_command)
    assert res.state is SafetyState.TRACKING
    assert np.abs(res.dq_command).max() > 0.2
    return res


def _stop_cycle(kind, ctl, arm, k):
    """One cycle of the stop ``kind`` (k counts the cycles since it began)."""
    q = arm.q
    if kind == "stale measurement":
        # the stream ended stale_timeout ago: the last measurement stays, ageing
        return ctl.step(arm.frozen, TWIST, DT, measurement_age=0.1 + DT * (k + 1))
    if kind == "frozen measurement":
        return ctl.step(arm.frozen, TWIST, DT)
    if kind == "non-finite measurement":
        q[3] = math.nan
        return ctl.step(q, TWIST, DT)
    if kind == "non-finite target":
        return ctl.step(q, np.array([0.1, 0.0, math.nan, 0.0, 0.0, 0.0]), DT)
    if kind == "rejected input":
        return ctl.step(q, TWIST, DT, rejected="joint_states lacks chain joints: a, b")
    if kind == "stale twist":
        return ctl.step(q, TWIST, DT, target_age=0.2)
    if kind == "pause":
        if k == 0:
            ctl.pause()
        return ctl.step(q, TWIST, DT)
    if kind == "no target":
        return ctl.step(q, None, DT)
    raise AssertionError(kind)


STOPS = ("stale measurement", "frozen measurement", "non-finite measurement",
         "non-finite target", "rejected input", "stale twist", "pause", "no target")


@pytest.mark.parametrize("kind", STOPS)
def test_every_stop_brakes_within_the_limits_and_the_position_command_never_steps(kind):
    """From full motion with a position-following arm eight cycles behind: each stop
    brakes every joint within a_max·dt of the last command down to zero, and each
    position command differs from the last by at most v_max·dt (no re-anchoring on
    the lagging measurement)."""
    # the stale stop alone, without the frozen-measurement stop before it
    ctl = warm_controller("panda", frozen_timeout=1.0 if kind == "stale measurement" else 0.04)
    amax = ctl.joint_limits.max_joint_acceleration
    vmax = ctl.joint_limits.max_joint_velocity
    arm = FollowingArm(Q0)
    last = _moving(ctl, arm)
    arm.frozen = arm.q
    seen = set()
    for k in range(400):
        res = _stop_cycle(kind, ctl, arm, k)
        seen.add(res.state)
        assert np.all(np.abs(res.dq_command - last.dq_command) <= amax * DT * (1 + 1e-9)), k
        assert np.all(np.abs(res.q_command - last.q_command) <= vmax * DT), k
        if res.state is not SafetyState.TRACKING:
            assert np.all(np.abs(res.dq_command) <= np.abs(last.dq_command) + 1e-12), k
        arm.command(res.q_command)
        last = res
    assert np.all(res.dq_command == 0.0)
    if kind == "frozen measurement":
        # the frozen time runs before the stop: a few cycles of tracking first
        assert seen == {SafetyState.TRACKING, SafetyState.STALE_INPUT}
    else:
        assert SafetyState.TRACKING not in seen and len(seen) <= 2, seen


def test_resuming_after_a_stop_continues_the_braked_command_without_a_step():
    """A single rejected cycle mid-motion, then valid input again: the command picks up
    from the braked one (no step back to the lagging measurement)."""
    ctl = warm_controller("panda")
    amax = ctl.joint_limits.max_joint_acceleration
    vmax = ctl.joint_limits.max_joint_velocity
    arm = FollowingArm(Q0)
    last = _moving(ctl, arm)
    for k in range(20):
        rejected = "target_pose quaternion has norm 0" if k == 0 else None
        res = ctl.step(arm.q, TWIST, DT, rejected=rejected)
        assert res.state is (SafetyState.INVALID_INPUT if k == 0 else SafetyState.TRACKING)
        assert np.all(np.abs(res.dq_command - last.dq_command) <= amax * DT * (1 + 1e-9))
        assert np.all(np.abs(res.q_command - last.q_command) <= vmax * DT)
        arm.command(res.q_command)
        last = res


def test_a_short_rest_continues_the_command_and_a_long_one_re_anchors():
    """A stop that reaches rest for one cycle (a slow motion, a rejected cycle 10 ms
    late) and motion again: the position command continues (no step back onto the
    lagging measurement).  After ANCHOR_SETTLE at rest, a new motion starts from the
    measured position."""
    ctl = warm_controller("panda")
    vmax = ctl.joint_limits.max_joint_velocity
    arm = FollowingArm(Q0)
    slow = TWIST * 0.05
    for _ in range(100):
        last = ctl.step(arm.q, slow, DT)
        arm.command(last.q_command)
    res = ctl.step(arm.q, slow, 0.01, rejected="target_twist has non-finite numbers")
    assert np.all(res.dq_command == 0.0) and np.any(last.dq_command != 0.0)
    arm.command(res.q_command)
    last = res
    res = ctl.step(arm.q, slow, DT)
    assert res.state is SafetyState.TRACKING
    assert not np.allclose(arm.q, last.q_command)          # the arm lags behind
    np.testing.assert_allclose(res.q_command, last.q_command + res.dq_command * DT,
                               rtol=0, atol=1e-12)
    for _ in range(int(ANCHOR_SETTLE / DT) + 20):           # rest, the arm catches up
        res = ctl.step(arm.q, None, DT)
        arm.command(res.q_command)
    moved = arm.q + 1e-4                                    # and then is nudged
    res = ctl.step(moved, slow, DT)
    np.testing.assert_allclose(res.q_command, moved + res.dq_command * DT, rtol=0, atol=1e-12)
    assert np.all(np.abs(res.q_command - last.q_command) <= vmax * DT)


def test_the_drift_bound_holds_with_measurements_older_than_a_period():
    """An arm that does not follow, measured 6 ms late every cycle (a loaded ROS
    loop): the position command still leads the measurement by at most
    max_command_drift (+ one step), re-anchored when it gets farther."""
    ctl = warm_controller("panda")
    vmax = ctl.joint_limits.max_joint_velocity
    q = Q0.copy()
    anchored = 0
    for k in range(1000):
        q = q + (1e-9 if k % 2 else -1e-9)      # a live reading of an arm that stays put
        res = ctl.step(q, TWIST, DT, measurement_age=3 * DT)
        assert res.state is SafetyState.TRACKING, res.reason
        lead = np.abs(res.q_command - q).max()
        assert lead <= ctl.params.max_command_drift + vmax.max() * DT
        anchored += lead <= vmax.max() * DT
    assert anchored >= 2


def test_a_stale_measurement_never_re_anchors_the_position_command():
    """Once the measurement is older than one control period, the position command
    integrates the braking command only: it never returns to the old measurement."""
    ctl = warm_controller("panda")
    arm = FollowingArm(Q0)
    last = _moving(ctl, arm)
    old = arm.q
    for k in range(200):
        res = ctl.step(old, TWIST, DT, measurement_age=DT * (k + 1.5))
        np.testing.assert_allclose(res.q_command, last.q_command + res.dq_command * DT,
                                   rtol=0, atol=1e-12)
        last = res


# ---------------------------------------------------------------------- frozen input
def test_a_frozen_measurement_stays_frozen_through_a_stall_of_its_stream():
    """Once frozen, the measurement stays frozen until it changes, even while its
    messages pause for a while (the age grows) and after the arm has stopped."""
    ctl = warm_controller("panda")
    arm = FollowingArm(Q0)
    _moving(ctl, arm)
    frozen = arm.q
    for _ in range(100):
        res = ctl.step(frozen, TWIST, DT)
    assert res.state is SafetyState.STALE_INPUT and np.all(res.dq_command == 0.0)
    for k in range(40):
        res = ctl.step(frozen, TWIST, DT, measurement_age=DT * (k + 1))
        assert res.state is SafetyState.STALE_INPUT, res.reason
        assert np.all(res.dq_command == 0.0)
    res = ctl.step(frozen + 1e-6, TWIST, DT)
    assert res.state is SafetyState.TRACKING


def test_a_frozen_measurement_stops_the_arm_after_frozen_timeout_with_its_own_reason():
    """A bit-identical measurement while commanding motion: TRACKING until frozen for
    frozen_timeout, then STALE_INPUT "joint measurement frozen for N ms while
    commanding V rad/s"; the arm stays stopped until the measurement changes."""
    ctl = warm_controller("panda", frozen_timeout=0.05)
    arm = FollowingArm(Q0)
    last = _moving(ctl, arm)
    frozen = arm.q
    speed = np.abs(last.dq_command).max()
    states = []
    for _ in range(300):
        res = ctl.step(frozen, TWIST, DT)
        states.append(res.state)
    first = states.index(SafetyState.STALE_INPUT)
    # the first frozen cycle repeats the last measurement: 25 cycles = 50 ms later
    assert first == 25, states[:30]
    assert set(states[first:]) == {SafetyState.STALE_INPUT}
    assert res.reason.startswith("joint measurement frozen for ")
    assert f"while commanding {speed:.2g} rad/s (frozen_timeout 0.05 s)" in res.reason
    assert np.all(res.dq_command == 0.0)
    res = ctl.step(frozen + 1e-6, TWIST, DT)
    assert res.state is SafetyState.TRACKING


def test_a_stream_that_stops_is_stale_not_frozen():
    """The same measurement with a growing age (no new message) is left to the stale
    check: TRACKING until measurement_age > stale_timeout, then STALE_INPUT by age."""
    ctl = warm_controller("panda")
    arm = FollowingArm(Q0)
    _moving(ctl, arm)
    last = arm.q
    for k in range(100):
        age = DT * (k + 1)
        res = ctl.step(last, TWIST, DT, measurement_age=age)
        if age <= ctl.params.stale_timeout:
            assert res.state is SafetyState.TRACKING, (k, res.reason)
        else:
            assert res.state is SafetyState.STALE_INPUT
            assert res.reason.startswith("joint measurement is ")


def test_a_late_controller_cycle_is_not_a_frozen_measurement():
    """The controller itself runs 70 ms late (an arm following position commands stood
    still meanwhile, so the next measurement equals the last): the late cycle counts
    as at most MAX_DT_PERIODS periods, not as a frozen measurement."""
    ctl = warm_controller("panda")
    arm = FollowingArm(Q0)
    _moving(ctl, arm)
    q = arm.q
    assert ctl.step(q, TWIST, DT).state is SafetyState.TRACKING
    res = ctl.step(q, TWIST, 0.07)
    assert res.state is SafetyState.TRACKING, res.reason


def test_frozen_time_counts_only_while_the_command_moves():
    """An arm at rest reports the same position forever without a fault; a new
    motion is caught frozen_timeout after it starts, not at once."""
    ctl = warm_controller("panda")
    for _ in range(2000):
        res = ctl.step(Q0, None, DT)
        assert res.state is SafetyState.IDLE
    states = [ctl.step(Q0, TWIST, DT).state for _ in range(100)]
    first = states.index(SafetyState.STALE_INPUT)
    assert set(states[:first]) == {SafetyState.TRACKING}
    assert first * DT >= ctl.params.frozen_timeout


def test_a_changing_measurement_is_never_frozen_even_by_a_tiny_amount():
    """Measurement noise of 1e-9 rad (or an arm that does not follow at all but whose
    reading flickers) is not a frozen measurement."""
    ctl = warm_controller("panda")
    rng = np.random.default_rng(3)
    for _ in range(1000):
        res = ctl.step(Q0 + rng.normal(0.0, 1e-9, 7), TWIST, DT)
        assert res.state is SafetyState.TRACKING, res.reason


def test_a_slow_command_must_travel_the_minimum_before_an_unchanged_reading_counts():
    """A command so slow that a coarse encoder may not tick within frozen_timeout is
    flagged only once the commanded travel passes FROZEN_MIN_TRAVEL."""
    ctl = warm_controller("panda")
    slow = TWIST * 0.01
    travel = 0.0
    for k in range(3000):  # noqa: B007 -- k is read after the loop
        res = ctl.step(Q0, slow, DT)
        if res.state is SafetyState.STALE_INPUT:
            break
        travel += np.abs(res.dq_command).max() * DT
        assert res.state is SafetyState.TRACKING
    assert res.state is SafetyState.STALE_INPUT
    assert k * DT > ctl.params.frozen_timeout
    assert travel >= FROZEN_MIN_TRAVEL - np.abs(res.dq_command).max() * DT


def test_reset_restarts_the_frozen_timer():
    """reset() ends a frozen-measurement stop; the stop returns after frozen_timeout
    of commanded motion if the measurement still does not change."""
    ctl = warm_controller("panda")
    for _ in range(200):
        res = ctl.step(Q0, TWIST, DT)
    assert res.state is SafetyState.STALE_INPUT
    assert ctl.reset() == (True, "frozen-measurement timer restarted; no safe stop is "
                                 "latched")
    # the command is at rest: the timer runs again once it moves
    states = [ctl.step(Q0, TWIST, DT).state for _ in range(100)]
    assert states[0] is SafetyState.TRACKING and SafetyState.STALE_INPUT in states


def test_frozen_timeout_is_tunable_live():
    """frozen_timeout is a tunable parameter: a longer one delays the stop."""
    ctl = warm_controller("panda")
    ctl.update_params(ctl.params.replace(frozen_timeout=0.2))
    states = [ctl.step(Q0, TWIST, DT).state for _ in range(150)]
    first = states.index(SafetyState.STALE_INPUT)
    assert first * DT >= 0.2


# ---------------------------------------------------------------------- fault states
def test_fault_states_are_the_stops_caused_by_something_wrong():
    """is_fault: SAFE_STOP, INVALID_INPUT, STALE_INPUT, JOINT_LIMIT; not the others."""
    assert {s for s in SafetyState if s.is_fault} == set(FAULT_STATES) == {
        SafetyState.SAFE_STOP, SafetyState.INVALID_INPUT, SafetyState.STALE_INPUT,
        SafetyState.JOINT_LIMIT}
