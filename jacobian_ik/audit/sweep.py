"""Run the batch kernels over sampled configurations and keep the worst ones.

``sweep`` draws ``samples`` configurations block by block (``BLOCK`` at a time,
so memory for joint values stays bounded), evaluates each block with
``kernels.batch.batch_metrics`` on all numba threads, keeps every sample's
σ_min, σ_max, manipulability and tip position, and the ``worst`` configurations
of smallest σ_min.  ``exact`` then recomputes those few with the exact Jacobi
SVD (``kernels.batch.batch_exact``), with σ_min's singular vectors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from jacobian_ik.errors import ConfigurationError
from jacobian_ik.kernels import batch

#: Configurations per block (one progress update each).
BLOCK = 65536


@dataclass
class SweepResult:
    """Per-sample metrics Shape (N,) (tip Shape (N, 3) [m]) and the worst configurations."""

    sigma_min: np.ndarray
    sigma_max: np.ndarray
    manipulability: np.ndarray
    tip_position: np.ndarray
    worst_q: np.ndarray        # Shape (K, n), ascending σ_min (fast estimate)
    seconds: float             # wall time of sampling and kernels

    @property
    def condition(self) -> np.ndarray:
        """σ_max / σ_min; +inf where σ_min = 0."""
        with np.errstate(divide="ignore", invalid="ignore"):
            c = self.sigma_max / self.sigma_min
        c[self.sigma_min == 0.0] = np.inf
        return c


@dataclass
class ExactResult:
    """Exact SVD of some configurations: σ Shape (K, m) descending, directions of σ_min."""

    q: np.ndarray              # Shape (K, n)
    sv: np.ndarray             # Shape (K, m)
    u_min: np.ndarray          # Shape (K, k): task-space direction, ordered as the task rows
    v_min: np.ndarray          # Shape (K, n): joint-space direction
    tip_position: np.ndarray   # Shape (K, 3) [m]


def sweep(robot, rows: np.ndarray, sampler, samples: int, worst: int = 10,
          progress=None) -> SweepResult:
    """Evaluate ``samples`` configurations from ``sampler`` (see the module docstring).

    ``progress(done, total)`` is called after every block when given.
    """
    if samples < 1:
        raise ConfigurationError(f"samples = {samples} must be at least 1")
    if worst < 1:
        raise ConfigurationError(f"worst = {worst} must be at least 1")
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    out = SweepResult(np.empty(samples), np.empty(samples), np.empty(samples),
                      np.empty((samples, 3)), np.empty((0, robot.dof)), 0.0)
    best_q = np.empty((0, robot.dof))
    best_s = np.empty(0)
    start = time.perf_counter()
    done = 0
    while done < samples:
        count = min(BLOCK, samples - done)
        q = sampler.block(count)
        sl = slice(done, done + count)
        batch.batch_metrics(robot.placements, robot.axes, robot.joint_types, q, rows,
                            batch.DEFAULT_CHUNK, out.sigma_min[sl], out.sigma_max[sl],
                            out.manipulability[sl], out.tip_position[sl])
        s = out.sigma_min[sl]
        take = min(worst, count)
        idx = np.argpartition(s, take - 1)[:take] if take < count else np.arange(count)
        best_q = np.concatenate([best_q, q[idx]])
        best_s = np.concatenate([best_s, s[idx]])
        keep = np.argsort(best_s, kind="stable")[:worst]
        best_q, best_s = best_q[keep], best_s[keep]
        done += count
        if progress is not None:
            progress(done, samples)
    out.seconds = time.perf_counter() - start
    out.worst_q = np.ascontiguousarray(best_q)
    return out


def exact(robot, rows: np.ndarray, q: np.ndarray) -> ExactResult:
    """Exact singular values and σ_min directions of configurations ``q`` Shape (K, n)."""
    q = np.ascontiguousarray(q, dtype=np.float64).reshape(-1, robot.dof)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    count = q.shape[0]
    k = rows.size
    m = min(k, robot.dof)
    sv = np.zeros((count, 6))
    u = np.zeros((count, k))
    v = np.zeros((count, robot.dof))
    tip = np.zeros((count, 3))
    if count:
        batch.batch_exact(robot.placements, robot.axes, robot.joint_types, q, rows,
                          max(1, min(batch.DEFAULT_CHUNK, count // 2 or 1)), sv, u, v, tip)
    return ExactResult(q=q, sv=sv[:, :m].copy(), u_min=u, v_min=v, tip_position=tip)
