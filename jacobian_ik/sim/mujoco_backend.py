"""MuJoCo backend: the chain as a rigid-body model with gravity and joint servos.

The model comes from the robot's URDF (``mujoco_model.build_mujoco_model``):
URDF inertias, gravity, fixed base, a torque motor per joint with the URDF
effort as force limit.  ``step(dt, command)`` runs ``floor(dt / timestep)``
physics steps (the remainder is carried to the next call, so simulated time
tracks the sum of the ``dt``).

Joint servos: a cascade, like an industrial drive, recomputed every physics
step (kp = ``mujoco_kp`` [N·m/rad], kv = ``mujoco_kv`` [N·m·s/rad], h the time
step, n joints):

* velocity loop: τ = kv·(v_ref − q̇⁺), where q̇⁺ is the velocity at the end of
  the step, from the joint-space dynamics M·(q̇⁺ − q̇) = h·(τ + τ_passive −
  τ_bias).  Solving for τ (an n×n linear system) makes the loop implicit:
  stable at any gain and step.  τ is limited to ± the URDF effort (when it
  is > 0): the joint most over its limit is held at the limit and the others
  are solved again, until none is over, so a saturated arm stays
  consistent.  There is no gravity compensation.
* position loop (not in velocity mode of the "velocity" actuator):
  v_ref = v_s + (kp/kv)·(q_s − q), saturated at the velocity limit.  The
  product (kp/kv)·h must stay ≤ 1 (``SimConfig`` checks it).

Set points (q_s, v_s) by command:

* actuator "velocity", velocity command v: v_ref = v, no position loop.
  Under a gravity load τ_g the joint moves τ_g/kv [rad/s] slower than
  commanded: it sags, and a zero command drifts at τ_g/kv.
* actuator "position", velocity command v: q_s integrates v (clipped at the
  limits), v_s = v: no drift, a static error τ_g/kp [rad].
* position command p (either actuator): q_s moves toward p at no more than
  the velocity limit, v_s is that motion (or, once q_s is at p, the
  trajectory's velocity).  Static error τ_g/kp [rad].

Braking.  The position-loop term and any velocity toward a position limit are
limited to √(2·a·d), the speed from which the joint can stop within the
distance d left, with a = half of effort / M_jj (M_jj the joint's own inertia
now); so an effort-limited joint brakes in time for its limits and for a
position target instead of overshooting.  Velocity references are also
saturated at the URDF velocity limits.  MuJoCo's joint range constraint is the
hard stop behind the soft limits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from jacobian_ik.errors import ConfigurationError
from jacobian_ik.robot import Robot
from jacobian_ik.sim.backend import Backend
from jacobian_ik.sim.command import POSITION, Command
from jacobian_ik.sim.config import MUJOCO_ACTUATORS
from jacobian_ik.sim.mujoco_model import build_mujoco_model, import_mujoco


def full_inertia_function(mj: Any) -> Callable[[Any, Any, np.ndarray], None]:
    """``f(model, data, out)`` writing the dense joint-space inertia matrix into out.

    MuJoCo ≥ 3.3 takes ``mj_fullM(model, data, out)``; older releases take
    ``mj_fullM(model, out, data.qM)``.
    """
    if hasattr(mj.MjData, "qM"):
        return lambda model, data, out: mj.mj_fullM(model, out, data.qM)
    return mj.mj_fullM


#: Velocity references toward a stop (position limit, position set point) are
#: limited so that the joint can stop there decelerating with this share of
#: effort / M_jj (the rest is left for gravity and the other joints' coupling) ...
BRAKING_SHARE = 0.5
#: ... [rad/s²] (a cap, for joints without effort limit) ...
MAX_BRAKING = 1.0e6
#: ... and reaches the stop no sooner than this many physics steps ahead.
LIMIT_HORIZON = 2.0


def _approach_speed(distance: np.ndarray, braking: np.ndarray, h: float) -> np.ndarray:
    """Largest speed [rad/s] toward a stop ``distance`` [rad] ahead (Shape (n,)) from
    which the joint can still stop there: min(d / (LIMIT_HORIZON·h), √(2·a·d));
    negative (back toward the stop) once the joint is past it."""
    ahead = np.maximum(distance, 0.0)
    speed = np.minimum(ahead / (LIMIT_HORIZON * h), np.sqrt(2.0 * braking * ahead))
    return np.where(distance > 0.0, speed, distance / (LIMIT_HORIZON * h))


class MujocoBackend(Backend):
    """Rigid-body simulation of the chain in MuJoCo with cascaded joint servos."""

    name = "mujoco"

    def __init__(self, robot: Robot, initial_position: np.ndarray, *,
                 actuator: str = "velocity", kp: float, kv: float, timestep: float) -> None:
        super().__init__(robot)
        for name, value in (("kp", kp), ("kv", kv), ("timestep", timestep)):
            if not (math.isfinite(value) and value > 0.0):
                raise ConfigurationError(f"MuJoCo {name} must be a finite number > 0; got {value}")
        if actuator not in MUJOCO_ACTUATORS:
            raise ConfigurationError(f"actuator '{actuator}' is unknown; actuators are: "
                                     f"{', '.join(MUJOCO_ACTUATORS)}")
        self._mj = mj = import_mujoco()
        self.actuator = actuator   # "velocity" | "position"
        self.kp = float(kp)        # [N·m/rad]
        self.kv = float(kv)        # [N·m·s/rad]
        self.timestep = float(timestep)  # [s] physics step h
        self.model = build_mujoco_model(robot, self.timestep)
        self.data = mj.MjData(self.model)
        jids = [mj.mj_name2id(self.model, mj.mjtObj.mjOBJ_JOINT, n) for n in self.joint_names]
        self._qadr = np.array([self.model.jnt_qposadr[j] for j in jids], dtype=np.int64)
        self._dadr = np.array([self.model.jnt_dofadr[j] for j in jids], dtype=np.int64)
        self._aids = np.array([mj.mj_name2id(self.model, mj.mjtObj.mjOBJ_ACTUATOR, n)
                               for n in self.joint_names], dtype=np.int64)
        self._effort = np.where(self.model.actuator_forcelimited[self._aids] > 0,
                                self.model.actuator_forcerange[self._aids, 1], np.inf)
        self._base_body = mj.mj_name2id(self.model, mj.mjtObj.mjOBJ_BODY, robot.base_link)
        self._tip_body = mj.mj_name2id(self.model, mj.mjtObj.mjOBJ_BODY, robot.tip_link)
        self._M_full = np.zeros((self.model.nv, self.model.nv))
        self._eye = np.eye(self.dof)
        self._dofs_in_order = bool(np.array_equal(self._dadr, np.arange(self.model.nv)))
        self._full_inertia = full_inertia_function(mj)
        self._carry = 0.0          # [s] part of the requested time not simulated yet
        self.physics_steps = 0     # number of physics steps so far
        self._setpoint = np.zeros(self.dof)
        self.displace(initial_position)

    # ------------------------------------------------------------ state
    @property
    def position(self) -> np.ndarray:
        return self.data.qpos[self._qadr].copy()

    @property
    def velocity(self) -> np.ndarray:
        return self.data.qvel[self._dadr].copy()

    @property
    def joint_torque(self) -> np.ndarray:
        """Servo torques of the last physics step [N·m | N]. Shape (n,)."""
        return self.data.actuator_force[self._aids].copy()

    def tip_pose(self) -> np.ndarray:
        """``T_base_tip`` from MuJoCo's body poses (of the current state). Shape (4, 4)."""
        def pose(body: int) -> np.ndarray:
            T = np.eye(4)
            T[:3, :3] = self.data.xmat[body].reshape(3, 3)
            T[:3, 3] = self.data.xpos[body]
            return T
        return np.linalg.solve(pose(self._base_body), pose(self._tip_body))

    def displace(self, position: np.ndarray) -> None:
        q = self.clip_position(np.array(position, dtype=np.float64))
        self.data.qpos[self._qadr] = q
        self._setpoint = q.copy()
        self._mj.mj_forward(self.model, self.data)

    # ------------------------------------------------------------ stepping
    def step(self, dt: float, command: Command) -> None:
        if dt <= 0.0:
            return
        self._carry += dt
        steps = int(self._carry / self.timestep + 1e-9)
        self._carry -= steps * self.timestep
        model, data, mj = self.model, self.data, self._mj
        for _ in range(steps):
            mj.mj_step1(model, data)
            data.ctrl[self._aids] = self._servo_torque(command)
            mj.mj_step2(model, data)
        self.physics_steps += steps
        self.sim_time += steps * self.timestep
        if steps:
            mj.mj_forward(model, data)  # body poses and sensors of the new state

    def _servo_torque(self, command: Command) -> np.ndarray:
        """Torques of the velocity loop on the next state (module docstring). Shape (n,)."""
        h, kv = self.timestep, self.kv
        q = self.data.qpos[self._qadr]
        v = self.data.qvel[self._dadr]
        self._full_inertia(self.model, self.data, self._M_full)
        f_other = self.data.qfrc_passive - self.data.qfrc_bias
        if self._dofs_in_order:
            M = self._M_full
        else:
            M = self._M_full[np.ix_(self._dadr, self._dadr)]
            f_other = f_other[self._dadr]
        braking = np.minimum(BRAKING_SHARE * self._effort / np.diag(M), MAX_BRAKING)
        v_ref = self._velocity_reference(command, q, h, braking)
        # τ + h·kv·W·(τ + f_other) = kv·(v_ref − q̇), W = M⁻¹, on unsaturated joints.
        W = np.linalg.inv(M)
        rhs = kv * (v_ref - v) - h * kv * (W @ f_other)
        tau = np.linalg.solve(self._eye + h * kv * W, rhs)
        if np.all(np.abs(tau) <= self._effort):
            return tau
        return self._saturated_torque(W, rhs, tau)

    def _saturated_torque(self, W: np.ndarray, rhs: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """Active set: hold the joint most over its effort at the limit, solve the others
        again, until none is over. Shape (n,)."""
        hkv = self.timestep * self.kv
        free = np.ones(self.dof, dtype=bool)
        while True:
            excess = np.where(free, np.abs(tau) / self._effort, 0.0)
            worst = int(np.argmax(excess))
            if excess[worst] <= 1.0:
                return tau
            tau[worst] = np.clip(tau[worst], -self._effort[worst], self._effort[worst])
            free[worst] = False
            if not free.any():
                return tau
            fixed = ~free
            A = np.eye(int(free.sum())) + hkv * W[np.ix_(free, free)]
            b = rhs[free] - hkv * (W[np.ix_(free, fixed)] @ tau[fixed])
            tau[free] = np.linalg.solve(A, b)

    def _velocity_reference(self, command: Command, q: np.ndarray, h: float,
                            braking: np.ndarray) -> np.ndarray:
        """v_ref [rad/s] of the velocity loop for this physics step. Shape (n,).

        braking: Shape (n,) deceleration [rad/s²] the joints can count on.
        """
        if command.mode == POSITION:
            v_s = self._advance_position_setpoint(command, h)
        else:
            v_s = self.hold_at_limits(q, self.saturate_velocity(command.velocity))
            if self.actuator == "velocity":
                self._setpoint = q.copy()
                return self._brake_at_limits(q, v_s, braking)
            self._setpoint = self.clip_position(self._setpoint + v_s * h)
            v_s = self.hold_at_limits(self._setpoint, v_s)
        error = self._setpoint - q
        speed = np.minimum((self.kp / self.kv) * np.abs(error),
                           _approach_speed(np.abs(error), braking, h))
        v_fb = np.sign(error) * speed
        v_ref = self.saturate_velocity(v_s + v_fb)
        return self._brake_at_limits(q, v_ref, braking)

    def _brake_at_limits(self, q: np.ndarray, v_ref: np.ndarray,
                         braking: np.ndarray) -> np.ndarray:
        """``v_ref`` limited so that each joint can stop at its position limits with the
        ``braking`` deceleration (a joint past a limit is sent back). Shape (n,)."""
        h = self.timestep
        return np.clip(v_ref, -_approach_speed(q - self.robot.lower, braking, h),
                       _approach_speed(self.robot.upper - q, braking, h))

    def _advance_position_setpoint(self, command: Command, h: float) -> np.ndarray:
        """Move the set point toward the command's target at ≤ the velocity limit;
        returns the feed-forward velocity [rad/s]. Shape (n,)."""
        target = self.clip_position(command.position)
        max_move = self.robot.velocity_limits * h
        gap = target - self._setpoint
        move = np.clip(gap, -max_move, max_move)
        self._setpoint = self._setpoint + move
        reached = np.abs(gap) <= max_move
        v_ff = np.where(reached, self.saturate_velocity(command.velocity), move / h)
        return self.hold_at_limits(self._setpoint, v_ff)
