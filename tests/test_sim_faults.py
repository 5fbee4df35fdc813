"""Fault injection: each fault option happens, with the configured size, reproducibly."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from jacobian_ik import Robot, bundled
from jacobian_ik.sim.arm import SimArm
from jacobian_ik.sim.config import SimConfig
from jacobian_ik.sim.faults import FaultInjector, JointSample

PERIOD = 0.002  # [s] tick period used by these tests


@functools.cache
def load(name: str) -> Robot:
    return Robot.from_urdf(bundled.urdf_path(name), *bundled.robot_links(name))


def sim(arm: str = "panda", **faults) -> SimArm:
    base, tip = bundled.robot_links(arm)
    config = SimConfig(urdf_path=str(bundled.urdf_path(arm)), base_link=base, tip_link=tip,
                       **faults)
    return SimArm(config, load(arm))


def run(arm: SimArm, duration: float, start: float = 0.0):
    """Tick every PERIOD from ``start`` for ``duration``; returns [(tick time, sample|None)]."""
    out = []
    for k in range(int(round(duration / PERIOD))):
        now = start + k * PERIOD
        out.append((now, arm.tick(now)))
    return out


def still_sample(n: int, t: float = 0.0) -> JointSample:
    return JointSample(t, np.zeros(n), np.zeros(n))


def test_noise_has_the_configured_standard_deviation():
    """Published positions carry zero-mean noise whose sample std is within 3 % of noise_std;
    velocities are not touched."""
    faults = FaultInjector(noise_std=0.01, seed=3)
    out = np.array([faults.publish(still_sample(7, k * PERIOD), k * PERIOD).position
                    for k in range(3000)])
    assert out.std() == pytest.approx(0.01, rel=0.03)
    assert abs(out.mean()) < 0.01 * 4 / np.sqrt(out.size)
    assert np.all(faults.publish(still_sample(7), 0.0).velocity == 0.0)


def test_without_faults_the_true_state_is_published_every_tick():
    """All fault options off: every tick publishes the exact simulated state."""
    arm = sim()
    arm.command_velocity(np.full(7, 0.1))
    for k in range(100):
        now = k * PERIOD
        sample = arm.tick(now)
        assert sample is not None and sample.time == now
        np.testing.assert_array_equal(sample.position, arm.state.position)
    assert np.all(sample.position != arm.robot.q_mid)  # the arm moved meanwhile


def test_latency_delays_the_published_state_by_the_configured_time():
    """With latency L, the published sample at time t is the state measured at t − L
    (to one tick), and it keeps its measurement time as stamp."""
    latency = 0.05
    arm = sim(latency=latency)
    arm.command_velocity(np.full(7, 0.2))
    truth = {}
    published = []
    for k in range(200):
        now = k * PERIOD
        sample = arm.tick(now)
        truth[round(now / PERIOD)] = arm.state.position
        if sample is not None:
            published.append((now, sample))
    first_time = published[0][0]
    assert first_time == pytest.approx(latency)
    for now, sample in published:
        assert now - sample.time == pytest.approx(latency, abs=PERIOD + 1e-9)
        np.testing.assert_array_equal(sample.position, truth[round(sample.time / PERIOD)])


def test_drops_happen_with_the_configured_probability():
    """Over 10 000 ticks the fraction of missing messages is drop_probability ± 0.02."""
    faults = FaultInjector(drop_probability=0.3, seed=11)
    missing = sum(faults.publish(still_sample(2, k * PERIOD), k * PERIOD) is None
                  for k in range(10_000))
    assert missing / 10_000 == pytest.approx(0.3, abs=0.02)
    assert faults.dropped == missing


def test_freeze_stops_all_output_after_freeze_after():
    """Samples are published before freeze_after and none from then on, while ticking goes on."""
    arm = sim(freeze_after=0.5)
    out = run(arm, 1.0)
    before = [s for t, s in out if t < 0.5 - 1e-9]
    after = [s for t, s in out if t >= 0.5 - 1e-9]
    assert all(s is not None for s in before) and len(before) > 200
    assert after and all(s is None for s in after)
    assert arm.faults.frozen


@pytest.mark.parametrize("mode", ["repeat", "stuck"])
def test_a_frozen_publisher_keeps_sending_the_last_positions(mode):
    """freeze_mode repeat: every tick from freeze_after on publishes the last sample
    itself (its time, hence its stamp); stuck: the last positions and velocities with
    the tick's time.  The simulation goes on underneath."""
    arm = sim(freeze_after=0.5, freeze_mode=mode)
    arm.command_velocity(np.full(7, 0.1))
    out = run(arm, 1.0)
    before = [s for t, s in out if t < 0.5 - 1e-9]
    after = [(t, s) for t, s in out if t >= 0.5 - 1e-9]
    last = before[-1]
    assert len(after) > 200
    for t, s in after:
        np.testing.assert_array_equal(s.position, last.position)
        np.testing.assert_array_equal(s.velocity, last.velocity)
        if mode == "repeat":
            assert s is last
        else:
            assert s.time == pytest.approx(t)
    assert not np.array_equal(arm.state.position, last.position)


def test_jump_moves_the_simulated_configuration_once_and_it_stays():
    """At jump_after every joint moves by jump_offset (clipped to the limits), once; under a zero
    velocity command the arm stays at the jumped configuration."""
    robot = load("planar2")
    q0 = np.array([0.0, robot.upper[1] - 0.05])
    base, tip = bundled.robot_links("planar2")
    config = SimConfig(urdf_path=str(bundled.urdf_path("planar2")), base_link=base,
                       tip_link=tip, initial_positions=tuple(q0), jump_after=0.3,
                       jump_offset=0.2)
    arm = SimArm(config, robot)
    out = run(arm, 0.6)
    jumped = np.clip(q0 + 0.2, robot.lower, robot.upper)
    for now, sample in out:
        expected = q0 if now < 0.3 - 1e-9 else jumped
        np.testing.assert_allclose(sample.position, expected, atol=1e-12)


def test_jump_with_a_position_command_is_driven_back_at_the_velocity_limit():
    """After a jump the kinematic arm returns to its commanded position no faster than the
    velocity limit (it does not snap back)."""
    robot = load("planar2")
    arm = sim("planar2", jump_after=0.1, jump_offset=0.5)
    arm.command_position(robot.q_mid)
    out = run(arm, 0.6)
    positions = np.array([s.position for _, s in out])
    steps = np.abs(np.diff(positions, axis=0))
    jump_index = int(np.argmax(steps.max(axis=1)))
    assert steps[jump_index].max() == pytest.approx(0.5)
    after = np.delete(steps, jump_index, axis=0)
    assert after.max() <= robot.velocity_limits.max() * PERIOD + 1e-12
    np.testing.assert_allclose(positions[-1], robot.q_mid, atol=1e-12)


def test_same_seed_gives_the_same_faults_and_another_seed_does_not():
    """Noise and drops are reproducible from the seed."""
    def stream(seed):
        arm = sim(noise_std=0.01, drop_probability=0.2, seed=seed)
        return [None if s is None else s.position.tolist() for _, s in run(arm, 0.2)]
    assert stream(5) == stream(5)
    assert stream(5) != stream(6)


def test_noise_does_not_depend_on_the_drop_probability():
    """The noise of a published message is the same with and without drops enabled (separate
    random streams), for the messages that are published."""
    quiet = FaultInjector(noise_std=0.01, seed=9)
    first = quiet.publish(still_sample(3), 0.0).position
    dropping = FaultInjector(noise_std=0.01, drop_probability=0.5, seed=9)
    published = None
    for k in range(50):
        published = dropping.publish(still_sample(3, k * PERIOD), k * PERIOD)
        if published is not None:
            break
    np.testing.assert_array_equal(published.position, first)
