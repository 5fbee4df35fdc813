"""SimArm: command handling (forward_command_controller rules), timing, trajectories."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from jacobian_ik import ConfigurationError, Robot, bundled
from jacobian_ik.sim.arm import MAX_STEP, SimArm
from jacobian_ik.sim.config import SimConfig
from jacobian_ik.sim.kinematic import KinematicBackend

PERIOD = 0.002  # [s]


@functools.cache
def load(name: str) -> Robot:
    return Robot.from_urdf(bundled.urdf_path(name), *bundled.robot_links(name))


def config(arm: str = "panda", **options) -> SimConfig:
    base, tip = bundled.robot_links(arm)
    return SimConfig(urdf_path=str(bundled.urdf_path(arm)), base_link=base, tip_link=tip,
                     **options)


def ticks(arm: SimArm, start: float, duration: float) -> float:
    """Tick every PERIOD from ``start`` for ``duration``; returns the last tick time."""
    now = start
    for k in range(int(round(duration / PERIOD)) + 1):
        now = start + k * PERIOD
        arm.tick(now)
    return now


def test_simulated_joints_are_the_chain_joints_in_order():
    """SimArm loads the URDF itself and simulates the chain's moving joints, base to tip."""
    arm = SimArm(config("ur5"))
    assert arm.joint_names == load("ur5").joint_names
    assert isinstance(arm.backend, KinematicBackend)


def test_the_arm_starts_at_mid_range_or_at_initial_positions():
    """Default start: Robot.q_mid; initial_positions overrides it."""
    np.testing.assert_array_equal(SimArm(config(), load("panda")).state.position,
                                  load("panda").q_mid)
    q0 = (0.1, -0.2)
    arm = SimArm(config("planar2", initial_positions=q0), load("planar2"))
    np.testing.assert_array_equal(arm.state.position, q0)


@pytest.mark.parametrize("q0, words", [
    ((0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0), "panda_joint4 = 0 not in [-3.0718, -0.0698]"),
    ((0.0, 0.0), "has 2 values; the chain has 7 joints"),
])
def test_bad_initial_positions_are_configuration_errors(q0, words):
    """initial_positions outside the limits or of the wrong size raise ConfigurationError."""
    with pytest.raises(ConfigurationError) as info:
        SimArm(config(initial_positions=q0), load("panda"))
    assert words in str(info.value)


def test_nan_and_wrong_size_commands_are_dropped_and_the_last_valid_one_kept():
    """A NaN or wrong-size command returns a reason; the arm keeps following the last valid
    command."""
    robot = load("panda")
    arm = SimArm(config(), robot)
    v = np.full(robot.dof, 0.1)
    assert arm.command_velocity(v) is None
    ticks(arm, 0.0, 0.1)
    nan = v.copy()
    nan[2] = math.nan
    assert "non-finite values for panda_joint3" in arm.command_velocity(nan)
    assert "has 3 values; expected 7" in arm.command_velocity([0.0, 0.0, 0.0])
    assert "has 3 values; expected 7" in arm.command_position([0.0, 0.0, 0.0])
    assert "not an array of numbers" in arm.command_position(["x"] * 7)
    ticks(arm, 0.1 + PERIOD, 0.1)
    np.testing.assert_array_equal(arm.state.velocity, v)
    np.testing.assert_allclose(arm.state.position, robot.q_mid + v * arm.backend.sim_time,
                               atol=1e-12)


def test_a_command_acts_from_the_tick_after_it_arrives():
    """A command received between two ticks does not move the arm over time before it
    arrived: the next tick still uses the previous command."""
    robot = load("planar2")
    arm = SimArm(config("planar2"), robot)
    arm.tick(0.0)
    arm.command_velocity([1.0, 1.0])
    arm.tick(0.01)
    np.testing.assert_array_equal(arm.state.position, robot.q_mid)
    arm.tick(0.02)
    np.testing.assert_allclose(arm.state.position, robot.q_mid + 0.01)


def test_a_late_tick_simulates_at_most_max_step():
    """A gap of MAX_STEP + 0.7 s between ticks advances the simulation by MAX_STEP; the rest
    is lost time."""
    robot = load("planar2")
    arm = SimArm(config("planar2"), robot)
    arm.command_velocity([0.1, 0.1])
    arm.tick(0.0)
    arm.tick(0.001)
    arm.tick(0.001 + MAX_STEP + 0.7)
    assert arm.backend.sim_time == pytest.approx(0.001 + MAX_STEP)
    assert arm.lost_time == pytest.approx(0.7)
    np.testing.assert_allclose(arm.state.position, robot.q_mid + 0.1 * (0.001 + MAX_STEP))


def test_position_command_moves_the_arm_to_the_target():
    """The kinematic arm reaches a position command exactly."""
    robot = load("ur5")
    arm = SimArm(config("ur5"), robot)
    target = robot.q_mid + 0.3
    assert arm.command_position(target) is None
    ticks(arm, 0.0, 0.5)
    np.testing.assert_array_equal(arm.state.position, target)


def test_trajectory_is_followed_in_time_from_receipt():
    """Half-way through a trajectory's only segment the arm is half-way, and at its end it is
    at the point; a new trajectory replaces the old one."""
    robot = load("planar2")
    arm = SimArm(config("planar2"), robot)
    arm.tick(0.0)
    goal = robot.q_mid + np.array([0.4, -0.4])
    received = 0.0
    assert arm.command_trajectory(["joint2", "joint1"], [(1.0, goal[::-1], [])], received) is None
    now = ticks(arm, 0.0, 0.5)
    np.testing.assert_allclose(arm.state.position, robot.q_mid + (goal - robot.q_mid) * now,
                               atol=1e-12)
    ticks(arm, now, 0.6)
    np.testing.assert_allclose(arm.state.position, goal, atol=1e-12)
    assert arm.command_trajectory(["joint1", "joint2"], [(0.2, robot.q_mid, [])], 1.2) is None
    ticks(arm, 1.2, 0.4)
    np.testing.assert_allclose(arm.state.position, robot.q_mid, atol=1e-12)


def test_rejected_trajectory_keeps_the_current_command():
    """A trajectory naming an unknown joint is dropped with a reason; the velocity command
    goes on."""
    robot = load("planar2")
    arm = SimArm(config("planar2"), robot)
    arm.command_velocity([0.2, 0.2])
    reason = arm.command_trajectory(["joint1", "elbow"], [(1.0, [0.0, 0.0], [])], 0.0)
    assert "elbow" in reason
    ticks(arm, 0.0, 0.2)
    np.testing.assert_array_equal(arm.state.velocity, [0.2, 0.2])


def test_mujoco_backend_is_selected_by_name():
    """backend='mujoco' builds the MuJoCo backend with the configured actuator."""
    pytest.importorskip("mujoco")
    arm = SimArm(config("planar2", backend="mujoco", mujoco_actuator="position"), load("planar2"))
    assert arm.backend.name == "mujoco" and arm.backend.actuator == "position"
