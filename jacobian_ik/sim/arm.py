"""The simulated arm: a backend, its commands and the fault injector, without ROS.

``SimArm`` is what the ``sim_arm`` node drives: the node calls ``tick(now)``
from its timer and publishes the returned sample, and hands the command
messages (already converted to arrays) to ``command_velocity``,
``command_position`` and ``command_trajectory``.  Times are seconds of a
monotonic clock chosen by the caller.

Timing.  Each tick advances the backend once by the time elapsed since the
previous tick.  A command received between two ticks is used from the next
tick on (like a ros2_control write that takes effect at the next cycle), so
a command never acts on time before it was received.  If a tick comes late,
the backend is advanced by the whole gap, up to ``MAX_STEP``; the rest of a
longer gap is not simulated (simulated time then falls behind the clock and
``lost_time`` grows) rather than stalling the node with a burst of physics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from jacobian_ik.errors import ConfigurationError
from jacobian_ik.robot import Robot
from jacobian_ik.sim.backend import Backend
from jacobian_ik.sim.command import Command, check_joint_vector
from jacobian_ik.sim.config import SimConfig
from jacobian_ik.sim.faults import FaultInjector, JointSample
from jacobian_ik.sim.trajectory import build_trajectory

#: Longest time one tick simulates [s]; a longer gap between ticks loses the rest.
MAX_STEP = 0.5


def make_backend(config: SimConfig, robot: Robot, initial_position: np.ndarray) -> Backend:
    """The backend named by ``config.backend``, at ``initial_position``."""
    if config.backend == "mujoco":
        from jacobian_ik.sim.mujoco_backend import MujocoBackend

        return MujocoBackend(robot, initial_position, actuator=config.mujoco_actuator,
                             kp=config.mujoco_kp, kv=config.mujoco_kv,
                             timestep=config.mujoco_timestep)
    from jacobian_ik.sim.kinematic import KinematicBackend

    return KinematicBackend(robot, initial_position, velocity_lag=config.velocity_lag)


def initial_position(config: SimConfig, robot: Robot) -> np.ndarray:
    """``config.initial_positions`` checked against the robot, or ``robot.q_mid``. Shape (n,)."""
    if not config.initial_positions:
        return robot.q_mid
    q0 = np.array(config.initial_positions, dtype=np.float64)
    if q0.shape != (robot.dof,):
        raise ConfigurationError(
            f"initial_positions has {q0.size} values; the chain has {robot.dof} joints: "
            f"{', '.join(robot.joint_names)}",
            parameter="initial_positions", value=config.initial_positions)
    outside = [f"{name} = {value:g} not in [{lo:g}, {hi:g}]"
               for name, value, lo, hi in zip(robot.joint_names, q0, robot.lower, robot.upper)
               if not lo <= value <= hi]
    if outside:
        raise ConfigurationError(
            f"initial_positions outside the joint limits: {'; '.join(outside)}",
            parameter="initial_positions", value=config.initial_positions)
    return q0


class SimArm:
    """A simulated chain with ros2_control-like command handling and faults."""

    def __init__(self, config: SimConfig, robot: Robot | None = None) -> None:
        self.config = config
        self.robot = robot if robot is not None else Robot.from_urdf(
            config.robot_source, config.base_link, config.tip_link)
        self.joint_names = self.robot.joint_names
        self.backend = make_backend(config, self.robot, initial_position(config, self.robot))
        self.faults = FaultInjector.from_config(config)
        zero = np.zeros(self.robot.dof)
        # newest accepted command (kind, payload)
        self._latest: tuple[str, Any] = ("velocity", zero)
        self._active: tuple[str, Any] = self._latest  # the command the backend follows
        self._received = 0.0               # [s] receipt time of the newest trajectory
        self._active_received = 0.0
        self._start: float | None = None   # [s] time of the first tick
        self._last = 0.0                   # [s] time of the previous tick
        self.lost_time = 0.0               # [s] gap time not simulated (ticks > MAX_STEP late)
        self.ticks = 0

    # ------------------------------------------------------------ commands
    def command_velocity(self, values: ArrayLike) -> str | None:
        """Accept a velocity command [rad/s] (one per joint); returns the reason if dropped."""
        velocity, reason = check_joint_vector(values, self.joint_names, "velocity command")
        if reason is None:
            self._latest = ("velocity", velocity)
        return reason

    def command_position(self, values: ArrayLike) -> str | None:
        """Accept a position command [rad] (one per joint); returns the reason if dropped."""
        position, reason = check_joint_vector(values, self.joint_names, "position command")
        if reason is None:
            self._latest = ("position", position)
        return reason

    def command_trajectory(self, names: Sequence[str], points: Sequence[Any],
                           now: float) -> str | None:
        """Accept a joint trajectory received at ``now`` [s]; returns the reason if dropped.

        points: ``(time_from_start [s], positions, velocities)`` per point (see
        ``jacobian_ik.sim.trajectory``).  It replaces any previous command.
        """
        trajectory, reason = build_trajectory(names, points, self.joint_names,
                                              self.backend.position, self.backend.velocity)
        if reason is None:
            self._latest = ("trajectory", trajectory)
            self._received = now
        return reason

    def _command_at(self, now: float) -> Command:
        kind, payload = self._active
        if kind == "velocity":
            return Command.velocity_command(payload)
        if kind == "position":
            return Command.position_command(payload)
        position, velocity = payload.sample(now - self._active_received)
        return Command.position_command(position, velocity)

    # ------------------------------------------------------------ stepping
    def tick(self, now: float) -> JointSample | None:
        """Advance to ``now`` [s] and return the sample to publish (None: publish nothing)."""
        if self._start is None:
            self._start = self._last = now
        dt = now - self._last
        if dt > MAX_STEP:
            self.lost_time += dt - MAX_STEP
            dt = MAX_STEP
        if dt > 0.0:
            self.backend.step(dt, self._command_at(now))
        self._last = max(now, self._last)
        self._active, self._active_received = self._latest, self._received
        elapsed = now - self._start
        if self.faults.jump_due(elapsed):
            self.backend.displace(self.backend.position + self.faults.jump_offset)
        self.ticks += 1
        sample = JointSample(now, self.backend.position, self.backend.velocity)
        return self.faults.publish(sample, elapsed)

    @property
    def state(self) -> JointSample:
        """The true (fault-free) joint state after the last tick."""
        return JointSample(self._last if self._last is not None else 0.0,
                           self.backend.position, self.backend.velocity)
