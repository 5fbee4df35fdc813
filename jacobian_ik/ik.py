"""Full-pose inverse kinematics: ``solve_ik(robot, T_target)`` → a joint goal.

Levenberg–Marquardt iterations (``jacobian_ik.kernels.ik``) from the seed, then
from random configurations within the joint limits until the target is met or
the time budget is spent.  Success is TRAC-IK's test: each of the six components
of the pose error, expressed in the target frame (x, y, z [m] and the rotation
vector about the target's x, y, z axes [rad], i.e. roll, pitch, yaw to first
order), is within ``tol``.  Given ``seed``, the sequence of tried configurations
is fixed; only where the time budget cuts it depends on the machine (pass
``max_iterations`` for a fully repeatable result).
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from jacobian_ik.errors import ConfigurationError
from jacobian_ik.kernels import ik as ik_kernels
from jacobian_ik.robot import Robot

__all__ = ["IkResult", "IkSolver", "solve_ik"]

#: Iterations of one attempt before a restart from a random configuration.
ATTEMPT_ITERATIONS = 60
#: One solver (workspace) per robot for solve_ik.
_SOLVERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: Iterations per kernel call between two checks of the clock.
CHUNK_ITERATIONS = 400


@dataclass(frozen=True)
class IkResult:
    """Outcome of ``solve_ik``.

    success     the error is within tol.
    q           Shape (n,): the solution, or on failure the best configuration found.
    iterations  forward kinematics + Jacobian evaluations spent.
    error       largest component of the pose error at q, in the target frame [m | rad].
    time        wall time of the solve [s].
    """

    success: bool
    q: np.ndarray
    iterations: int
    error: float
    time: float


class IkSolver:
    """Reusable solver for one robot (keeps its workspace; not thread-safe)."""

    def __init__(self, robot: Robot) -> None:
        self.robot = robot
        n = robot.dof
        self._lim = np.zeros((3, n))
        self._lim[0] = robot.lower
        self._lim[1] = robot.upper
        self._lim[2] = robot.continuous
        self._rows = np.arange(6, dtype=np.int64)
        self._ws = np.zeros(ik_kernels.ik_workspace_size(n))
        self._T = np.eye(4)

    def solve(self, T_target: ArrayLike, q0: ArrayLike | None = None, tol: float = 1e-5,
              timeout: float = 0.005, seed: int = 0,
              max_iterations: int | None = None) -> IkResult:
        """See ``solve_ik``."""
        start = time.perf_counter()
        robot = self.robot
        if np.shape(T_target) != (4, 4):
            raise ConfigurationError(f"T_target must have shape (4, 4), got {np.shape(T_target)}",
                                     parameter="T_target", value=np.shape(T_target))
        self._T[:] = T_target
        if not np.all(np.isfinite(self._T)):
            raise ConfigurationError("T_target has a non-finite value", parameter="T_target")
        if not (tol > 0.0 and timeout > 0.0):
            raise ConfigurationError(
                f"tol = {tol!r} and timeout = {timeout!r} must be positive",
                parameter="tol" if not tol > 0.0 else "timeout",
                value=tol if not tol > 0.0 else timeout, valid_range=(0.0, None))
        q = robot.q_mid if q0 is None else robot.joint_vector(q0).copy()
        q = np.clip(q, robot.lower, robot.upper)
        q_best = q.copy()
        budget_left = np.iinfo(np.int64).max if max_iterations is None else int(max_iterations)
        ik_kernels.seed_rng(int(seed))
        self._ws[0] = np.inf
        used = 0
        restart = False
        ok, err = False, np.inf
        while True:
            chunk = min(CHUNK_ITERATIONS, budget_left - used)
            if chunk <= 0:
                break
            ok, it, err = ik_kernels.ik_search(
                robot.placements, robot.axes, robot.joint_types, self._lim, self._T, self._rows,
                self._ws, q, q_best, float(tol), chunk, ATTEMPT_ITERATIONS, restart)
            used += it
            restart = True
            if ok or time.perf_counter() - start >= timeout:
                break
        q_out = q if ok else q_best
        return IkResult(success=bool(ok), q=q_out.copy(), iterations=int(used), error=float(err),
                        time=time.perf_counter() - start)


def solve_ik(robot: Robot, T_target: ArrayLike, q0: ArrayLike | None = None,
             tol: float = 1e-5, timeout: float = 0.005, seed: int = 0,
             max_iterations: int | None = None) -> IkResult:
    """Joint positions that put the tip of ``robot`` at ``T_target`` (base frame).

    q0          seed, Shape (n,) (default: the mid-range configuration).
    tol         bound on each pose error component [m | rad], see the module docstring.
    timeout     wall-time budget [s]; restarts from random in-limit configurations go on
                until it is spent.
    seed        random generator seed of the restarts.
    max_iterations  optional cap on forward kinematics evaluations.
    Joints stay within their limits; continuous joints are returned in [−π, π].
    Failure (unreachable target, budget spent) is ``success=False`` with the best q found.
    """
    solver = _SOLVERS.get(robot)
    if solver is None:
        solver = _SOLVERS[robot] = IkSolver(robot)
    return solver.solve(T_target, q0=q0, tol=tol, timeout=timeout, seed=seed,
                        max_iterations=max_iterations)
