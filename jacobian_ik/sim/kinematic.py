"""Kinematic backend: the joints do what they are told, like ros2_control's mock hardware.

No dynamics.  Each step integrates the command in closed form, so the result
does not depend on how ``dt`` is split into steps:

* velocity command v (saturated at the velocity limits): with ``velocity_lag``
  τ = 0 the joint velocity is v and q advances by v·dt; with τ > 0 the joint
  velocity follows v as a first-order lag, q̇ ← v + (q̇ − v)·e^(−dt/τ), and q
  advances by the exact integral v·dt + (q̇₀ − v)·τ·(1 − e^(−dt/τ));
* position command p (clipped into the position limits): with τ = 0 the joint
  goes to p; with τ > 0 it goes to p + (q − p)·e^(−dt/τ); in both cases it moves
  at most ``velocity_limit``·dt per step (the reported velocity is the
  step's mean velocity).

Positions are clamped at the limits; a joint stopped by a limit reports zero
velocity.
"""

from __future__ import annotations

import math

import numpy as np

from jacobian_ik.robot import Robot
from jacobian_ik.sim.backend import Backend
from jacobian_ik.sim.command import POSITION, Command


class KinematicBackend(Backend):
    """Exact integration of joint commands with an optional first-order lag."""

    name = "kinematic"

    def __init__(self, robot: Robot, initial_position: np.ndarray,
                 velocity_lag: float = 0.0) -> None:
        super().__init__(robot)
        self.velocity_lag = float(velocity_lag)  # [s] time constant τ; 0 = none
        self._q = self.clip_position(np.array(initial_position, dtype=np.float64))
        self._v = np.zeros(self.dof)

    @property
    def position(self) -> np.ndarray:
        return self._q.copy()

    @property
    def velocity(self) -> np.ndarray:
        return self._v.copy()

    def displace(self, position: np.ndarray) -> None:
        self._q = self.clip_position(np.array(position, dtype=np.float64))

    def step(self, dt: float, command: Command) -> None:
        if dt <= 0.0:
            return
        if command.mode == POSITION:
            self._step_position(dt, command.position)
        else:
            self._step_velocity(dt, command.velocity)
        self.sim_time += dt

    def _decay(self, dt: float) -> float:
        """e^(−dt/τ), 0 without lag."""
        return math.exp(-dt / self.velocity_lag) if self.velocity_lag > 0.0 else 0.0

    def _step_velocity(self, dt: float, velocity: np.ndarray) -> None:
        v_cmd = self.hold_at_limits(self._q, self.saturate_velocity(velocity))
        a = self._decay(dt)
        q = self._q + v_cmd * dt + (self._v - v_cmd) * self.velocity_lag * (1.0 - a)
        v = v_cmd + (self._v - v_cmd) * a
        self._set_clamped(q, v)

    def _step_position(self, dt: float, position: np.ndarray) -> None:
        target = self.clip_position(position)
        a = self._decay(dt)
        wanted = target + (self._q - target) * a
        max_move = self.robot.velocity_limits * dt
        move = np.clip(wanted - self._q, -max_move, max_move)
        self._set_clamped(self._q + move, move / dt)

    def _set_clamped(self, q: np.ndarray, v: np.ndarray) -> None:
        clamped = self.clip_position(q)
        self._v = np.where(clamped != q, 0.0, v)
        self._q = clamped
