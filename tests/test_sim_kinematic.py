"""KinematicBackend: exact integration of joint commands, first-order lag, URDF limits."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from jacobian_ik import Robot, bundled
from jacobian_ik.sim.command import Command
from jacobian_ik.sim.kinematic import KinematicBackend

ARMS = bundled.BUNDLED_ROBOTS


@functools.cache
def load(name: str) -> Robot:
    return Robot.from_urdf(bundled.urdf_path(name), *bundled.robot_links(name))


def alternating(n: int) -> np.ndarray:
    """+1, -1, +1, ... Shape (n,)."""
    return np.where(np.arange(n) % 2 == 0, 1.0, -1.0)


def run(backend, command, duration, dt=0.002):
    for _ in range(int(round(duration / dt))):
        backend.step(dt, command)


@pytest.mark.parametrize("arm", ARMS)
def test_velocity_command_is_integrated_exactly(arm):
    """q(t) = q0 + v·t and q̇ = v for a velocity command within the limits."""
    robot = load(arm)
    backend = KinematicBackend(robot, robot.q_mid)
    v = 0.3 * alternating(robot.dof)
    run(backend, Command.velocity_command(v), 1.0)
    np.testing.assert_allclose(backend.position, robot.q_mid + v * 1.0, atol=1e-12)
    np.testing.assert_array_equal(backend.velocity, v)
    assert backend.sim_time == pytest.approx(1.0)


@pytest.mark.parametrize("arm", ARMS)
def test_position_command_is_reached_no_faster_than_the_velocity_limit(arm):
    """A position step is reached exactly, each step moving at most v_max·dt."""
    robot = load(arm)
    backend = KinematicBackend(robot, robot.q_mid)
    target = robot.q_mid + 0.4 * alternating(robot.dof)
    dt = 0.002
    previous = backend.position
    for _ in range(200):
        backend.step(dt, Command.position_command(target))
        moved = np.abs(backend.position - previous)
        assert np.all(moved <= robot.velocity_limits * dt + 1e-12)
        previous = backend.position
    np.testing.assert_array_equal(backend.position, target)
    np.testing.assert_array_equal(backend.velocity, np.zeros(robot.dof))


@pytest.mark.parametrize("arm", ARMS)
def test_commanded_velocity_is_saturated_at_the_urdf_velocity_limit(arm):
    """A command of 10× the limit moves the joints at exactly ± the limit."""
    robot = load(arm)
    backend = KinematicBackend(robot, robot.q_mid)
    signs = alternating(robot.dof)
    backend.step(0.01, Command.velocity_command(10.0 * robot.velocity_limits * signs))
    np.testing.assert_allclose(backend.velocity, robot.velocity_limits * signs)


@pytest.mark.parametrize("arm", ARMS)
def test_joints_stop_at_the_position_limits(arm):
    """Velocity and position commands past the limits leave the joints exactly at them,
    reporting zero velocity."""
    robot = load(arm)
    backend = KinematicBackend(robot, robot.q_mid)
    signs = alternating(robot.dof)
    limit = np.where(signs > 0, robot.upper, robot.lower)
    run(backend, Command.velocity_command(robot.velocity_limits * signs), 10.0, dt=0.05)
    np.testing.assert_array_equal(backend.position, limit)
    np.testing.assert_array_equal(backend.velocity, np.zeros(robot.dof))
    backend = KinematicBackend(robot, robot.q_mid)
    run(backend, Command.position_command(limit + signs), 10.0, dt=0.05)
    np.testing.assert_array_equal(backend.position, limit)


def test_joint_at_a_limit_can_move_back_inside():
    """Zero velocity at a limit applies only outward: a command inward moves the joint."""
    robot = load("planar2")
    backend = KinematicBackend(robot, robot.upper)
    backend.step(0.1, Command.velocity_command(np.full(2, -1.0)))
    np.testing.assert_allclose(backend.position, robot.upper - 0.1)


def test_velocity_lag_is_an_exact_first_order_response():
    """With lag τ, q̇(t) = v(1 − e^(−t/τ)) and q(t) = q0 + v(t − τ(1 − e^(−t/τ)))."""
    robot = load("panda")
    tau = 0.1
    backend = KinematicBackend(robot, robot.q_mid, velocity_lag=tau)
    v = 0.5 * alternating(robot.dof)
    t = 0.25
    run(backend, Command.velocity_command(v), t, dt=0.001)
    decay = math.exp(-t / tau)
    np.testing.assert_allclose(backend.velocity, v * (1 - decay), atol=1e-12)
    np.testing.assert_allclose(backend.position,
                               robot.q_mid + v * (t - tau * (1 - decay)), atol=1e-12)


def test_lagged_integration_does_not_depend_on_the_step_size():
    """One 0.3 s step and 300 steps of 1 ms give the same state (closed-form integration)."""
    robot = load("ur5")
    command = Command.velocity_command(0.4 * alternating(robot.dof))
    one = KinematicBackend(robot, robot.q_mid, velocity_lag=0.05)
    one.step(0.3, command)
    many = KinematicBackend(robot, robot.q_mid, velocity_lag=0.05)
    run(many, command, 0.3, dt=0.001)
    np.testing.assert_allclose(one.position, many.position, atol=1e-12)
    np.testing.assert_allclose(one.velocity, many.velocity, atol=1e-12)


def test_position_lag_approaches_the_target_exponentially():
    """With lag τ a small position step closes as 1 − e^(−t/τ)."""
    robot = load("planar2")
    tau = 0.05
    backend = KinematicBackend(robot, robot.q_mid, velocity_lag=tau)
    target = robot.q_mid + 0.01
    run(backend, Command.position_command(target), 0.1, dt=0.001)
    expected = robot.q_mid + 0.01 * (1 - math.exp(-0.1 / tau))
    np.testing.assert_allclose(backend.position, expected, atol=1e-12)


def test_displace_moves_the_joints_within_the_limits():
    """displace() sets the configuration at once, clipped to the limits."""
    robot = load("planar2")
    backend = KinematicBackend(robot, robot.q_mid)
    backend.displace(np.array([0.5, 10.0]))
    np.testing.assert_array_equal(backend.position, [0.5, robot.upper[1]])
