"""The peer of the closed-loop benchmark: pink (QP differential IK on pinocchio), tuned fairly.

Per cycle, from the measured position: ``Configuration.update``, then one
``pink.solve_ik`` over

* a FrameTask on the tip link, position and orientation cost 1, gain 3·dt (a
  first-order convergence rate of 3/s, as ControllerParams' position_gain and
  orientation_gain), its gain scaled down this cycle when the commanded tip
  twist ``gain/dt · e`` would exceed max_linear_speed or max_angular_speed (the
  same Cartesian speed caps, applied the same way: one factor on the whole twist);
* a PostureTask toward the start configuration, cost 1e-3, the same gain 3·dt
  (a regulariser that fixes the null space of a redundant arm);
* ConfigurationLimit (pink's default gain 0.5) and VelocityLimit with the same
  per-joint velocity limits our controller uses.

pink has no acceleration limit in this set-up: its AccelerationLimit makes the QP
infeasible in a large part of the Panda runs.  A QP without a solution
(NoSolutionFound) commands zero velocity that cycle and is counted.
The model is the same URDF, with every joint outside the chain (the Panda's
fingers) locked at its neutral position.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from bench.peer_loop import DT, GOAL_TIME, closed_loop
from jacobian_ik.params import ControllerParams, JointLimits
from jacobian_ik.robot import Robot

FRAME_COST = 1.0
POSTURE_COST = 1e-3
CONFIG_LIMIT_GAIN = 0.5
QP_SOLVER = "daqp"


def capped_gain(error: np.ndarray, gain: float, rate: float, v_lin: float,
                v_ang: float) -> float:
    """The frame task's gain, scaled down so that the twist it asks for
    (gain·rate·error, ``error`` Shape (6,): linear [m] then angular [rad]) stays within
    the Cartesian speed caps v_lin [m/s] and v_ang [rad/s]."""
    twist = gain * rate
    lin = twist * float(np.linalg.norm(error[:3]))
    ang = twist * float(np.linalg.norm(error[3:]))
    return gain * min(1.0, v_lin / lin if lin > 0.0 else 1.0, v_ang / ang if ang > 0.0 else 1.0)


class _DropLimitWarnings(logging.Filter):
    """pink logs every cycle its configuration is outside the limits; the bench counts them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "out of limits" not in record.getMessage()


class PinkPeer:
    """pink set up for one arm; ``run(goal, start)`` is one closed-loop run."""

    def __init__(self, robot: Robot, urdf_path: str, params: ControllerParams,
                 joint_limits: JointLimits) -> None:
        """``joint_limits``: our controller's resolved ``JointLimits`` (the same velocity
        limits for both; the acceleration limit is only measured for pink)."""
        import pink
        import pinocchio as pin
        from pink.limits import ConfigurationLimit, VelocityLimit
        from pink.tasks import FrameTask, PostureTask

        self._pin, self._pink = pin, pink
        full = pin.buildModelFromUrdf(urdf_path)
        locked = [j for j in range(1, full.njoints) if full.names[j] not in robot.joint_names]
        model = pin.buildReducedModel(full, locked, pin.neutral(full))
        names = tuple(model.names[j] for j in range(1, model.njoints))
        if names != robot.joint_names or model.nq != robot.dof:
            raise RuntimeError(f"pink model joints {names} differ from the chain's "
                               f"{robot.joint_names}")
        self.robot = robot
        self.model = model
        self.data = model.createData()
        self.params = params
        self.v_max = np.array(joint_limits.max_joint_velocity, dtype=np.float64)
        self.a_max = np.array(joint_limits.max_joint_acceleration, dtype=np.float64)
        self.tip = robot.tip_link
        self.base = robot.base_link
        self.gain = params.position_gain * DT
        if params.orientation_gain != params.position_gain:
            raise ValueError("pink's FrameTask has one gain: position_gain must equal "
                             "orientation_gain")
        self.frame_task = FrameTask(self.tip, position_cost=FRAME_COST,
                                    orientation_cost=FRAME_COST, gain=self.gain)
        self.posture_task = PostureTask(cost=POSTURE_COST, gain=self.gain)
        self.limits = [ConfigurationLimit(model, config_limit_gain=CONFIG_LIMIT_GAIN),
                       VelocityLimit(model, velocity_limit=self.v_max)]
        logging.getLogger().addFilter(_DropLimitWarnings())
        self._no_solution = pink.exceptions.NoSolutionFound

    def settings(self) -> dict:
        """The settings, for the report."""
        import pink
        return {"pink": pink.__version__, "qp_solver": QP_SOLVER,
                "frame_task": {"frame": self.tip, "position_cost": FRAME_COST,
                               "orientation_cost": FRAME_COST, "gain": self.gain,
                               "rate_1_per_s": self.gain / DT,
                               "speed_caps": [self.params.max_linear_speed,
                                              self.params.max_angular_speed]},
                "posture_task": {"cost": POSTURE_COST, "gain": self.gain,
                                 "target": "start configuration"},
                "limits": {"ConfigurationLimit": {"config_limit_gain": CONFIG_LIMIT_GAIN},
                           "VelocityLimit": self.v_max.tolist()},
                "damping": "solve_ik default (1e-12)"}

    def _T_world_base(self, q: np.ndarray) -> np.ndarray:
        pin = self._pin
        pin.framesForwardKinematics(self.model, self.data, q)
        return self.data.oMf[self.model.getFrameId(self.base)].homogeneous.copy()

    def check_frames(self, q: np.ndarray) -> float:
        """Largest difference of pink's base → tip transform from ``Robot.fk`` at q."""
        pin = self._pin
        pin.framesForwardKinematics(self.model, self.data, q)
        T_wb = self.data.oMf[self.model.getFrameId(self.base)].homogeneous
        T_wt = self.data.oMf[self.model.getFrameId(self.tip)].homogeneous
        return float(np.abs(np.linalg.solve(T_wb, T_wt) - self.robot.fk(q)).max())

    def run(self, goal: np.ndarray, start: ArrayLike, *, seconds: float = GOAL_TIME,
            delay: int = 1) -> dict[str, Any]:
        """One closed-loop run toward ``T_base_goal`` from ``start``; see peer_loop.closed_loop."""
        pin, pink = self._pin, self._pink
        p = self.params
        start = np.array(start, dtype=np.float64)
        T_world_goal = self._T_world_base(start) @ goal
        self.frame_task.set_target(pin.SE3(T_world_goal[:3, :3].copy(), T_world_goal[:3, 3].copy()))
        self.posture_task.set_target(start)
        configuration = pink.Configuration(self.model, self.data, start)
        tasks = [self.frame_task, self.posture_task]
        frame_task, limits, no_solution = self.frame_task, self.limits, self._no_solution
        gain, rate = self.gain, 1.0 / DT
        v_lin, v_ang = p.max_linear_speed, p.max_angular_speed
        failures = [0]
        zero = np.zeros(self.robot.dof)

        def step(q_measured: np.ndarray) -> tuple[np.ndarray, None]:
            configuration.update(q_measured)
            frame_task.gain = capped_gain(frame_task.compute_error(configuration), gain, rate,
                                          v_lin, v_ang)
            try:
                v = pink.solve_ik(configuration, tasks, DT, solver=QP_SOLVER, limits=limits,
                                  safety_break=False)
            except no_solution:
                failures[0] += 1
                v = zero
            return v, None

        stats, _ = closed_loop(self.robot, step, goal, start, v_max=self.v_max,
                               a_max=self.a_max, sigma_stop=p.sigma_stop,
                               tol_position=p.goal_position_tolerance,
                               tol_orientation=p.goal_orientation_tolerance,
                               seconds=seconds, delay=delay)
        stats["qp_failures"] = failures[0]
        return stats
