"""The closed loop of the peer benchmark: a perfect kinematic plant and its per-cycle checks.

Plant at 500 Hz: ``q ← q + dq·dt`` exactly; the controller sees the position of
the previous cycle (``delay=1``, a one-cycle measurement delay as in
bench_closed_loop.py) or the current one (``delay=0``).  Every controller gets the
same plant, the same measurements and the same checks, all computed here from
the plant's own state, never from what a controller reports:

* goal reached: ``‖p_goal − p‖ ≤ 1 mm`` and ``angle(R_goal Rᵀ) ≤ 0.01 rad`` (the
  ControllerParams defaults) at the plant's position after a cycle; the run
  ends there, and the time to reach is that cycle's end;
* σ_min: smallest singular value of the 6×n Jacobian (``numpy.linalg.svd`` of
  ``Robot.jacobian``) at every position the plant passes; cycles below
  sigma_stop are counted;
* limits: cycles with ``|dq_i| > v_max_i`` (velocity), ``|dq_i − dq_prev_i| >
  a_max_i·dt`` (acceleration; counted as a violation only for controllers that
  claim the acceleration limit), positions outside ``[lower, upper]``, and any
  non-finite command (counted and replaced by zero so the run goes on).

``run_ours`` runs ``jacobian_ik.controller.Controller``; it also checks that the
controller's own ``sigma_min`` and ``goal_reached`` agree with the bench's at the
position it was given.
"""

from __future__ import annotations

import math
import re
import time

import numpy as np

from jacobian_ik.controller import Controller
from jacobian_ik.params import ControllerParams

RATE = 500.0          # [Hz] control and plant rate
DT = 1.0 / RATE       # [s]
GOAL_TIME = 10.0      # [s] budget per goal
#: Relative slack of the velocity / acceleration checks (|dq| ≤ v_max·(1 + slack)).
LIMIT_SLACK = 1e-9
#: Largest excess [rad | m] of a position over its limit that is not counted as a
#: violation (a QP solver's tolerance when a joint settles on its bound).
POSITION_SLACK = 1e-9
#: Largest relative difference of a controller's reported sigma_min from the bench's
#: (the controller's σ_min may come from a warm-started iteration: ~1e-8 apart).
SIGMA_REPORT_TOL = 1e-6

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?%?")


def reason_class(state: str, reason: str) -> str:
    """``STATE: reason`` with every number replaced by ``#`` (joint names kept)."""
    return f"{state}: {_NUMBER.sub('#', reason)}"


def orientation_error(R_goal: np.ndarray, R: np.ndarray) -> float:
    """Angle [rad] of ``R_goal Rᵀ``, from ``‖R_goal − R‖_F = 2√2·sin(θ/2)`` (exact near 0)."""
    chord = float(np.linalg.norm(R_goal - R)) / (2.0 * math.sqrt(2.0))
    return 2.0 * math.asin(min(1.0, chord))


class PlantProbe:
    """The bench's own view of a plant position: σ_min and the goal errors."""

    def __init__(self, robot, goal: np.ndarray, tol_position: float, tol_orientation: float):
        self.robot = robot
        self.goal = goal
        self.tol_position = tol_position
        self.tol_orientation = tol_orientation

    def sigma_min(self, q: np.ndarray) -> float:
        return float(np.linalg.svd(self.robot.jacobian(q), compute_uv=False)[-1])

    def errors(self, q: np.ndarray) -> tuple[float, float]:
        T = self.robot.fk(q)
        return (float(np.linalg.norm(self.goal[:3, 3] - T[:3, 3])),
                orientation_error(self.goal[:3, :3], T[:3, :3]))

    def reached(self, errors: tuple[float, float]) -> bool:
        return errors[0] <= self.tol_position and errors[1] <= self.tol_orientation


def closed_loop(robot, step, probe: PlantProbe, q_start: np.ndarray, *, v_max, a_max,
                sigma_stop: float, seconds: float = GOAL_TIME, delay: int = 1,
                check=None) -> dict:
    """One run of ``step`` on the plant from ``q_start``; returns its statistics.

    ``step(q_measured) -> (dq, result)`` is one control cycle (timed here);
    ``check(result, sigma_measured, reached_measured, stats)``, if given, is called
    after it with the bench's σ_min and goal test at the position the controller saw.
    """
    if delay not in (0, 1):
        raise ValueError(f"delay must be 0 or 1 cycle, got {delay}")
    n = robot.dof
    lower, upper = robot.lower, robot.upper
    v_bound = np.asarray(v_max) * (1.0 + LIMIT_SLACK)
    a_bound = np.asarray(a_max) * DT * (1.0 + LIMIT_SLACK)
    q = np.array(q_start, dtype=np.float64)
    dq_prev = np.zeros(n)
    sigma = probe.sigma_min(q)
    reached = probe.reached(probe.errors(q))
    measured, sigma_measured, reached_measured = q.copy(), sigma, reached
    cycles = int(round(seconds * RATE))
    times = np.empty(cycles)
    stats = {"sigma_min_low": sigma, "cycles_below_sigma_stop": int(sigma < sigma_stop),
             "velocity_violations": 0, "acceleration_violations": 0,
             "position_violations": 0, "nonfinite_commands": 0,
             "worst_velocity_ratio": 0.0, "worst_acceleration_ratio": 0.0,
             "worst_position_excess": -np.inf,
             "sigma_report_mismatches": 0, "goal_report_mismatches": 0}
    reached_at = None
    result = None
    k = 0
    for k in range(cycles):
        t0 = time.perf_counter_ns()
        dq, result = step(measured)
        times[k] = time.perf_counter_ns() - t0
        if check is not None:
            check(result, sigma_measured, reached_measured, stats)
        dq = np.asarray(dq, dtype=np.float64)
        if not np.all(np.isfinite(dq)):
            stats["nonfinite_commands"] += 1
            dq = np.zeros(n)
        ratio_v = float(np.max(np.abs(dq) / v_max))
        ratio_a = float(np.max(np.abs(dq - dq_prev) / (np.asarray(a_max) * DT)))
        stats["worst_velocity_ratio"] = max(stats["worst_velocity_ratio"], ratio_v)
        stats["worst_acceleration_ratio"] = max(stats["worst_acceleration_ratio"], ratio_a)
        stats["velocity_violations"] += bool(np.any(np.abs(dq) > v_bound))
        stats["acceleration_violations"] += bool(np.any(np.abs(dq - dq_prev) > a_bound))
        dq_prev = dq
        q_before = q
        q = q + dq * DT
        excess = max(float(np.max(lower - q)), float(np.max(q - upper)))
        stats["worst_position_excess"] = max(stats["worst_position_excess"], excess)
        stats["position_violations"] += excess > POSITION_SLACK
        sigma_new = probe.sigma_min(q)
        stats["sigma_min_low"] = min(stats["sigma_min_low"], sigma_new)
        stats["cycles_below_sigma_stop"] += sigma_new < sigma_stop
        errors = probe.errors(q)
        reached_new = probe.reached(errors)
        if delay == 1:
            measured, sigma_measured, reached_measured = q_before, sigma, reached
        else:
            measured, sigma_measured, reached_measured = q, sigma_new, reached_new
        sigma, reached = sigma_new, reached_new
        if reached_new:
            reached_at = (k + 1) * DT
            break
    position_error, orientation_error_ = probe.errors(q)
    stats.update({
        "reached": reached_at is not None, "time": reached_at, "cycles": k + 1,
        "final_position_error": position_error, "final_orientation_error": orientation_error_,
        "at_rest": bool(np.all(dq_prev == 0.0)),
        "final_joint_speed_ratio": float(np.max(np.abs(dq_prev) / v_max)),
        "step_ns": times[:k + 1],
    })
    return stats, result


def make_controller(robot, params: ControllerParams | None = None) -> Controller:
    """A compiled controller for ``robot`` (numba compiles in ``warm_up``, before any cycle)."""
    ctl = Controller(robot, params if params is not None else ControllerParams())
    ctl.warm_up()
    return ctl


def run_ours(robot, params: ControllerParams | None, goal: np.ndarray, start, *,
             seconds: float = GOAL_TIME, delay: int = 1) -> dict:
    """One closed-loop run of a fresh ``Controller(robot, params)`` toward ``goal``.

    ``goal``: ``T_base_goal``, Shape (4, 4); ``start``: Shape (n,) [rad].  Returns the
    statistics of ``closed_loop`` plus the final state, reason and its class, the
    states visited and the counts of cycles whose reported sigma_min / goal_reached
    disagree with the bench's (``sigma_report_mismatches``, ``goal_report_mismatches``;
    expected 0).
    """
    params = params if params is not None else ControllerParams()
    if params.control_rate != RATE:
        raise ValueError(f"params.control_rate must be {RATE:g} Hz for this plant")
    ctl = Controller(robot, params)
    limits = ctl.joint_limits
    probe = PlantProbe(robot, goal, params.goal_position_tolerance,
                       params.goal_orientation_tolerance)
    states = set()

    def step(q_measured):
        res = ctl.step(q_measured, goal, DT)
        return res.dq_command, res

    def check(res, sigma_measured, reached_measured, stats):
        states.add(res.state.name)
        stats["sigma_report_mismatches"] += (abs(res.sigma_min - sigma_measured)
                                             > SIGMA_REPORT_TOL * max(1.0, sigma_measured))
        stats["goal_report_mismatches"] += bool(res.goal_reached) != reached_measured

    stats, res = closed_loop(robot, step, probe, start, v_max=limits.max_joint_velocity,
                             a_max=limits.max_joint_acceleration,
                             sigma_stop=params.sigma_stop, seconds=seconds, delay=delay,
                             check=check)
    stats.update({"final_state": res.state.name, "final_reason": res.reason,
                  "reason_class": reason_class(res.state.name, res.reason),
                  "final_limited": res.limited, "states": sorted(states)})
    return stats
