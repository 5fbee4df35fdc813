"""The closed loop of the peer benchmark: a perfect kinematic plant and its per-cycle checks.

Plant at 500 Hz: ``q ← q + dq·dt`` exactly; the controller sees the position of
the previous cycle (``delay=1``, a one-cycle measurement delay as in
bench_closed_loop.py) or the current one (``delay=0``).  Every controller gets the
same plant, the same measurements and the same checks, all computed here from
the plant's own state, never from what a controller reports:

* goal reached: ``‖p_goal − p‖ ≤ 1 mm`` and ``angle(R_goal Rᵀ) ≤ 0.01 rad`` (the
  ControllerParams defaults) at the plant's position after a cycle; the run
  ends there, and the time to reach is that cycle's end;
* σ_min: smallest singular value of the 6×n Jacobian at every position the plant
  passes, as ``√λ_min(J Jᵀ)`` in one compiled function with the rest of the
  checks (bench_peer checks it against ``numpy.linalg.svd`` of ``Robot.jacobian``);
  cycles below sigma_stop are counted;
* tip speed: the largest linear [m/s] and angular [rad/s] tip speed over a cycle
  (to compare with the Cartesian speed caps);
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
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from numba import njit
from numpy.typing import ArrayLike

from jacobian_ik.controller import Controller, StepResult
from jacobian_ik.kernels import fk_jacobian
from jacobian_ik.params import ControllerParams
from jacobian_ik.robot import Robot

RATE = 500.0          # [Hz] control and plant rate
DT = 1.0 / RATE       # [s]
GOAL_TIME = 10.0      # [s] budget per goal
#: A run still progresses at its end if its position or orientation error fell by a
#: goal tolerance within this time [s].
PROGRESS_WINDOW = 1.0
#: Relative slack of the velocity / acceleration checks (|dq| ≤ v_max·(1 + slack)).
LIMIT_SLACK = 1e-9
#: Largest excess [rad | m] of a position over its limit that is not counted as a
#: violation (a QP solver's tolerance when a joint settles on its bound).
POSITION_SLACK = 1e-9
#: Largest relative difference of a controller's reported sigma_min from the bench's
#: (the controller's σ_min may come from a warm-started iteration: ~1e-8 apart).
SIGMA_REPORT_TOL = 1e-6

#: What a controller's step returns besides the command (``closed_loop``).
ResultT = TypeVar("ResultT")

_NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?%?")


def reason_class(state: str, reason: str) -> str:
    """``STATE: reason`` with every number replaced by ``#`` (joint names kept)."""
    return f"{state}: {_NUMBER.sub('#', reason)}"


def orientation_error(R_goal: np.ndarray, R: np.ndarray) -> float:
    """Angle [rad] of ``R_goal Rᵀ``, from ``‖R_goal − R‖_F = 2√2·sin(θ/2)`` (exact near 0)."""
    chord = float(np.linalg.norm(R_goal - R)) / (2.0 * math.sqrt(2.0))
    return 2.0 * math.asin(min(1.0, chord))


class PlantProbe:
    """Reference (NumPy) of ``probe_position``: σ_min by ``numpy.linalg.svd`` of
    ``Robot.jacobian``, goal errors from ``Robot.fk``; the bench checks that both agree."""

    def __init__(self, robot: Robot, goal: np.ndarray) -> None:
        self.robot = robot
        self.goal = goal

    def sigma_min(self, q: np.ndarray) -> float:
        return float(np.linalg.svd(self.robot.jacobian(q), compute_uv=False)[-1])

    def errors(self, q: np.ndarray) -> tuple[float, float]:
        T = self.robot.fk(q)
        return (float(np.linalg.norm(self.goal[:3, 3] - T[:3, 3])),
                orientation_error(self.goal[:3, :3], T[:3, :3]))


@njit(cache=True)
def pose_distance(T_a: np.ndarray, T_b: np.ndarray) -> tuple[float, float]:
    """(‖p_a − p_b‖ [m], angle(R_a R_bᵀ) [rad]) of two (4, 4) transforms, the angle
    from ``‖R_a − R_b‖_F = 2√2·sin(θ/2)`` (exact near 0)."""
    d = 0.0
    c = 0.0
    for i in range(3):
        d += (T_a[i, 3] - T_b[i, 3]) ** 2
        for j in range(3):
            c += (T_a[i, j] - T_b[i, j]) ** 2
    return math.sqrt(d), 2.0 * math.asin(min(1.0, math.sqrt(c) / (2.0 * math.sqrt(2.0))))


@njit(cache=True)
def probe_position(placements: np.ndarray, axes: np.ndarray, joint_types: np.ndarray,
                   q: np.ndarray, T_goal: np.ndarray, frames: np.ndarray, J: np.ndarray,
                   out: np.ndarray) -> None:
    """The bench's view of position q: ``out[3] = σ_min = √λ_min(J Jᵀ)`` of the 6×n
    Jacobian (equal to the smallest singular value, see PlantProbe for the SVD
    reference), ``out[4] = ‖p_goal − p‖`` [m], ``out[5] = angle(R_goal Rᵀ)`` [rad]."""
    fk_jacobian(placements, axes, joint_types, q, frames, J)
    lam = np.linalg.eigvalsh(J @ J.T)[0]
    out[3] = math.sqrt(lam) if lam > 0.0 else 0.0
    out[4], out[5] = pose_distance(T_goal, frames[q.shape[0]])


@njit(cache=True)
def plant_cycle(placements: np.ndarray, axes: np.ndarray, joint_types: np.ndarray,
                lower: np.ndarray, upper: np.ndarray, v_max: np.ndarray, a_max: np.ndarray,
                dt: float, T_goal: np.ndarray, q: np.ndarray, dq: np.ndarray,
                dq_prev: np.ndarray, frames: np.ndarray, J: np.ndarray,
                out: np.ndarray) -> None:
    """One plant cycle and its checks.  A non-finite dq is replaced by zeros (out[6] = 1).

    out[0] = max_i |dq_i| / v_max_i;  out[1] = max_i |dq_i − dq_prev_i| / (a_max_i·dt);
    then ``q ← q + dq·dt`` in place, ``dq_prev ← dq``;  out[2] = max_i of
    max(lower_i − q_i, q_i − upper_i) (> 0: outside a limit);  out[3..5]: probe_position;
    out[7] = tip speed ‖p − p_prev‖/dt [m/s], out[8] = angle(R R_prevᵀ)/dt [rad/s] over the
    cycle, with ``frames`` holding the previous position's frames on entry (as every
    probe_position call leaves them).
    """
    n = q.shape[0]
    T_prev = frames[n].copy()
    finite = True
    for i in range(n):
        if not math.isfinite(dq[i]):
            finite = False
    out[6] = 0.0 if finite else 1.0
    if not finite:
        dq[:] = 0.0
    rv = 0.0
    ra = 0.0
    ex = -np.inf
    for i in range(n):
        rv = max(rv, abs(dq[i]) / v_max[i])
        ra = max(ra, abs(dq[i] - dq_prev[i]) / (a_max[i] * dt))
        q[i] += dq[i] * dt
        dq_prev[i] = dq[i]
        ex = max(ex, lower[i] - q[i], q[i] - upper[i])
    out[0] = rv
    out[1] = ra
    out[2] = ex
    probe_position(placements, axes, joint_types, q, T_goal, frames, J, out)
    d, angle = pose_distance(frames[n], T_prev)
    out[7] = d / dt
    out[8] = angle / dt


def probe(robot: Robot, q: ArrayLike, goal: ArrayLike) -> tuple[float, float, float]:
    """``probe_position`` at q: (σ_min, position error [m], orientation error [rad])."""
    n = robot.dof
    out = np.zeros(9)
    probe_position(robot.placements, robot.axes, robot.joint_types,
                   np.ascontiguousarray(q, dtype=np.float64),
                   np.ascontiguousarray(goal, dtype=np.float64),
                   np.zeros((n + 1, 4, 4)), np.zeros((6, n)), out)
    return float(out[3]), float(out[4]), float(out[5])


def _progressing(errors: np.ndarray, tol_position: float, tol_orientation: float) -> bool:
    """The errors fell by at least one goal tolerance over the last PROGRESS_WINDOW."""
    back = int(round(PROGRESS_WINDOW * RATE))
    if errors.shape[0] <= back:
        return True
    then, now = errors[-1 - back], errors[-1]
    return bool(then[0] - now[0] >= tol_position or then[1] - now[1] >= tol_orientation)


def closed_loop(robot: Robot, step: Callable[[np.ndarray], tuple[ArrayLike, ResultT]],
                goal: np.ndarray, q_start: ArrayLike, *, v_max: ArrayLike, a_max: ArrayLike,
                sigma_stop: float, tol_position: float, tol_orientation: float,
                seconds: float = GOAL_TIME, delay: int = 1,
                # (its first argument is a ResultT; typed Any, for mypy's inference)
                check: Callable[[Any, float, bool, dict[str, Any]], None] | None = None,
                ) -> tuple[dict[str, Any], ResultT | None]:
    """One run of ``step`` on the plant from ``q_start`` toward ``goal`` (T_base_goal).

    ``step(q_measured) -> (dq, result)`` is one control cycle (timed here; it must not
    keep q_measured);  ``check(result, sigma_measured, reached_measured, stats)``, if
    given, is called after it with the bench's σ_min and goal test at the position the
    controller saw.  Returns (statistics, the last result).
    """
    if delay not in (0, 1):
        raise ValueError(f"delay must be 0 or 1 cycle, got {delay}")
    n = robot.dof
    kin = (robot.placements, robot.axes, robot.joint_types)
    v_limit = np.asarray(v_max, dtype=np.float64)
    a_limit = np.asarray(a_max, dtype=np.float64)
    goal = np.ascontiguousarray(goal, dtype=np.float64)
    frames = np.zeros((n + 1, 4, 4))
    J = np.zeros((6, n))
    out = np.zeros(9)
    q = np.array(q_start, dtype=np.float64)
    q_before = q.copy()
    dq_prev = np.zeros(n)
    probe_position(*kin, q, goal, frames, J, out)
    sigma = out[3]
    reached = out[4] <= tol_position and out[5] <= tol_orientation
    measured, sigma_measured, reached_measured = q.copy(), sigma, reached
    cycles = int(round(seconds * RATE))
    times = np.empty(cycles)
    errors = np.empty((cycles, 2))   # [m], [rad] after each cycle
    low = sigma
    below = int(sigma < sigma_stop)
    v_viol = a_viol = p_viol = nonfinite = 0
    worst_v = worst_a = 0.0
    worst_p = -np.inf
    tip_v = tip_w = 0.0
    v_bound = a_bound = 1.0 + LIMIT_SLACK
    stats: dict[str, Any] = {"sigma_report_mismatches": 0, "goal_report_mismatches": 0}
    reached_at = None
    result: ResultT | None = None
    k = 0
    perf = time.perf_counter_ns
    for k in range(cycles):
        t0 = perf()
        dq, result = step(measured)
        times[k] = perf() - t0
        if check is not None:
            check(result, sigma_measured, reached_measured, stats)
        dq = np.array(dq, dtype=np.float64)
        q_before[:] = q
        plant_cycle(*kin, robot.lower, robot.upper, v_limit, a_limit, DT, goal, q, dq, dq_prev,
                    frames, J, out)
        nonfinite += out[6] > 0.0
        worst_v = max(worst_v, out[0])
        worst_a = max(worst_a, out[1])
        worst_p = max(worst_p, out[2])
        tip_v = max(tip_v, out[7])
        tip_w = max(tip_w, out[8])
        v_viol += out[0] > v_bound
        a_viol += out[1] > a_bound
        p_viol += out[2] > POSITION_SLACK
        sigma_new = out[3]
        low = min(low, sigma_new)
        below += sigma_new < sigma_stop
        errors[k] = out[4], out[5]
        reached_new = out[4] <= tol_position and out[5] <= tol_orientation
        if delay == 1:
            measured, sigma_measured, reached_measured = q_before.copy(), sigma, reached
        else:
            measured, sigma_measured, reached_measured = q.copy(), sigma_new, reached_new
        sigma, reached = sigma_new, reached_new
        if reached_new:
            reached_at = (k + 1) * DT
            break
    stats.update({
        "reached": reached_at is not None, "time": reached_at, "cycles": k + 1,
        "sigma_min_low": float(low), "cycles_below_sigma_stop": int(below),
        "velocity_violations": int(v_viol), "acceleration_violations": int(a_viol),
        "position_violations": int(p_viol), "nonfinite_commands": int(nonfinite),
        "worst_velocity_ratio": float(worst_v), "worst_acceleration_ratio": float(worst_a),
        "worst_position_excess": float(worst_p),
        "tip_speed_max": float(tip_v), "tip_angular_speed_max": float(tip_w),
        "final_position_error": float(out[4]), "final_orientation_error": float(out[5]),
        "at_rest": bool(np.all(dq_prev == 0.0)),
        "progressing": _progressing(errors[:k + 1], tol_position, tol_orientation),
        "final_joint_speed_ratio": float(np.max(np.abs(dq_prev) / v_limit)),
        "step_ns": times[:k + 1],
    })
    return stats, result


def make_controller(robot: Robot, params: ControllerParams | None = None) -> Controller:
    """A compiled controller for ``robot`` (numba compiles in ``warm_up``, before any cycle)."""
    ctl = Controller(robot, params if params is not None else ControllerParams())
    ctl.warm_up()
    return ctl


def run_ours(robot: Robot, params: ControllerParams | None, goal: np.ndarray,
             start: ArrayLike, *, seconds: float = GOAL_TIME, delay: int = 1) -> dict[str, Any]:
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
    ctl.warm_up()       # as a user does before the first cycle (compiled already: ~1 ms)
    limits = ctl.joint_limits
    states: set[str] = set()

    def step(q_measured: np.ndarray) -> tuple[np.ndarray, StepResult]:
        res = ctl.step(q_measured, goal, DT)
        return res.dq_command, res

    def check(res: StepResult, sigma_measured: float, reached_measured: bool,
              stats: dict[str, Any]) -> None:
        states.add(res.state.name)
        stats["sigma_report_mismatches"] += int(abs(res.sigma_min - sigma_measured)
                                                > SIGMA_REPORT_TOL * max(1.0, sigma_measured))
        stats["goal_report_mismatches"] += int(bool(res.goal_reached) != reached_measured)

    stats, last = closed_loop(robot, step, goal, start, v_max=limits.max_joint_velocity,
                              a_max=limits.max_joint_acceleration,
                              sigma_stop=params.sigma_stop,
                              tol_position=params.goal_position_tolerance,
                              tol_orientation=params.goal_orientation_tolerance,
                              seconds=seconds, delay=delay, check=check)
    if last is None:
        raise ValueError(f"a run of {seconds} s has no control cycle")
    stats.update({"final_state": last.state.name, "final_reason": last.reason,
                  "reason_class": reason_class(last.state.name, last.reason),
                  "final_limited": last.limited, "states": sorted(states)})
    return stats
