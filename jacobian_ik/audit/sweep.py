"""Run the batch kernels over sampled configurations, in bounded memory.

``sweep`` draws ``samples`` configurations block by block (``BLOCK`` at a time),
evaluates each block with ``kernels.batch.batch_metrics`` on all numba threads
and folds it into streaming summaries (``audit.streaming``): per metric a
``MetricStream``, exact counts below the thresholds, the workspace voxels and
the ``worst`` configurations of smallest σ_min.  The per-sample metrics of the
first ``KEPT_SAMPLES`` samples are kept as well: with at most that many
samples the report's statistics are computed exactly from them, and the
picture draws them.  Memory therefore stays bounded (about 50 MB kept, 22 MB
of histograms) for any number of samples.  ``exact`` then recomputes the worst
few with the exact Jacobi SVD (``kernels.batch.batch_exact``), with σ_min's
singular vectors.

The reported time covers sampling, kernels and summaries, not the compilation
of the kernels (done, or loaded from numba's cache, before the clock starts).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from jacobian_ik.audit.sampling import Sampler
from jacobian_ik.audit.stats import auto_voxel_size
from jacobian_ik.audit.streaming import MetricStream, VoxelMap, WorstKept
from jacobian_ik.errors import ConfigurationError
from jacobian_ik.kernels import batch
from jacobian_ik.robot import Robot

#: Configurations per block (one progress update each).
BLOCK = 65536

#: Samples whose per-sample metrics are kept (2^20: 48 MB).
KEPT_SAMPLES = 1 << 20

#: Metrics summarised by a ``MetricStream`` each.
STREAMED = ("sigma_min", "sigma_max", "condition", "manipulability", "reach")


def condition_number(sigma_min: np.ndarray, sigma_max: np.ndarray) -> np.ndarray:
    """σ_max / σ_min; +inf where σ_min = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        c = sigma_max / sigma_min
    c[sigma_min == 0.0] = np.inf
    return c


@dataclass
class SweepResult:
    """What a sweep keeps of its samples.

    ``sigma_min``, ``sigma_max``, ``manipulability`` Shape (M,) and
    ``tip_position`` Shape (M, 3) [m]: the first M = min(samples, KEPT_SAMPLES)
    samples.  ``streams``: a ``MetricStream`` per name of ``STREAMED`` over all
    samples (filled only when there are more than KEPT_SAMPLES); ``below``:
    {threshold name: samples with σ_min below it}; ``voxels``: σ_min per
    workspace voxel over all samples; ``tip_min`` / ``tip_max`` [m]: bounds of
    all tip positions.
    """

    samples: int
    sigma_min: np.ndarray
    sigma_max: np.ndarray
    manipulability: np.ndarray
    tip_position: np.ndarray
    worst_q: np.ndarray        # Shape (K, n), ascending σ_min (fast estimate)
    seconds: float             # wall time of sampling, kernels and summaries
    streams: dict = field(default_factory=dict)
    below: dict = field(default_factory=dict)
    voxels: VoxelMap | None = None
    tip_min: np.ndarray = field(default_factory=lambda: np.full(3, np.inf))
    tip_max: np.ndarray = field(default_factory=lambda: np.full(3, -np.inf))

    @property
    def complete(self) -> bool:
        """True when every sample's metrics are kept (samples <= KEPT_SAMPLES)."""
        return self.sigma_min.size == self.samples

    @property
    def condition(self) -> np.ndarray:
        """σ_max / σ_min of the kept samples; +inf where σ_min = 0."""
        return condition_number(self.sigma_min, self.sigma_max)


@dataclass
class ExactResult:
    """Exact SVD of some configurations: σ Shape (K, m) descending, directions of σ_min."""

    q: np.ndarray              # Shape (K, n)
    sv: np.ndarray             # Shape (K, m)
    u_min: np.ndarray          # Shape (K, k): task-space direction, ordered as the task rows
    v_min: np.ndarray          # Shape (K, n): joint-space direction
    tip_position: np.ndarray   # Shape (K, 3) [m]


def _compile(robot: Robot, rows: np.ndarray) -> None:
    """Compile (or load from the cache) batch_metrics for this robot's array types."""
    q = np.ascontiguousarray(robot.q_mid.reshape(1, -1))
    batch.batch_metrics(robot.placements, robot.axes, robot.joint_types, q, rows,
                        batch.DEFAULT_CHUNK, np.empty(1), np.empty(1), np.empty(1),
                        np.empty((1, 3)))


def sweep(robot: Robot, rows: np.ndarray, sampler: Sampler, samples: int, worst: int = 10,
          progress: Callable[[int, int], None] | None = None, *, thresholds: dict | None = None,
          voxel: float | None = None,
          on_block: Callable[[np.ndarray], None] | None = None) -> SweepResult:
    """Evaluate ``samples`` configurations from ``sampler`` (see the module docstring).

    ``thresholds``: {name: σ} whose sample counts (``below``) and voxel shares
    are wanted; ``voxel``: the voxel edge [m], None = ``stats.auto_voxel_size``
    of the kept samples.  ``progress(done, total)`` is called after every block
    when given.  ``on_block(q)``, when given, sees every block of configurations
    Shape (count, n) [rad | m] as it is drawn (e.g. the collision counts of
    ``audit.collisions``); the time it takes is not part of ``seconds``.
    """
    if samples < 1:
        raise ConfigurationError(f"samples = {samples} must be at least 1",
                                 parameter="samples", value=samples, valid_range=(1, None))
    if worst < 1:
        raise ConfigurationError(f"worst = {worst} must be at least 1",
                                 parameter="worst", value=worst, valid_range=(1, None))
    thresholds = dict(thresholds or {})
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    kept = min(samples, KEPT_SAMPLES)
    out = SweepResult(samples, np.empty(kept), np.empty(kept), np.empty(kept),
                      np.empty((kept, 3)), np.empty((0, robot.dof)), 0.0,
                      streams={name: MetricStream() for name in STREAMED},
                      below=dict.fromkeys(thresholds, 0))
    best = WorstKept(worst, robot.dof)
    size = min(BLOCK, samples)
    block = (np.empty(size), np.empty(size), np.empty(size), np.empty((size, 3)))
    _compile(robot, rows)
    start = time.perf_counter()
    hook_seconds = 0.0
    done = 0
    while done < samples:
        count = min(BLOCK, samples - done)
        q = sampler.block(count)
        if on_block is not None:
            hook_start = time.perf_counter()
            on_block(q)
            hook_seconds += time.perf_counter() - hook_start
        s_min, s_max, w, tip = (a[:count] for a in block)
        batch.batch_metrics(robot.placements, robot.axes, robot.joint_types, q, rows,
                            batch.DEFAULT_CHUNK, s_min, s_max, w, tip)
        split = min(max(kept - done, 0), count)   # samples of this block to keep
        if split:
            sl = slice(done, done + split)
            out.sigma_min[sl], out.sigma_max[sl] = s_min[:split], s_max[:split]
            out.manipulability[sl], out.tip_position[sl] = w[:split], tip[:split]
            _fold(out, best, q[:split], s_min[:split], s_max[:split], w[:split],
                  tip[:split], thresholds)
            if done + split == kept:
                _kept_all(out, voxel)
        if split < count:
            _fold(out, best, q[split:], s_min[split:], s_max[split:], w[split:], tip[split:],
                  thresholds)
        done += count
        if progress is not None:
            progress(done, samples)
    out.seconds = time.perf_counter() - start - hook_seconds
    out.worst_q = np.ascontiguousarray(best.q)
    return out


def _kept_all(out: SweepResult, voxel: float | None) -> None:
    """Once the kept samples are in: anchor the voxel grid at their smallest tip
    coordinates (all samples' when all are kept) and, when more samples follow,
    let each stream keep the values near its percentiles as the kept samples
    predict them."""
    size = voxel if voxel is not None else auto_voxel_size(out.tip_position)
    out.voxels = VoxelMap(out.tip_position.min(axis=0), size)
    out.voxels.add(out.tip_position, out.sigma_min)
    if out.complete:
        return
    values = {"sigma_min": out.sigma_min, "sigma_max": out.sigma_max,
              "condition": out.condition, "manipulability": out.manipulability,
              "reach": np.linalg.norm(out.tip_position, axis=1)}
    for name, stream in out.streams.items():
        stream.add(values[name])
        stream.focus(values[name])


def _fold(out: SweepResult, best: WorstKept, q: np.ndarray, s_min: np.ndarray,
          s_max: np.ndarray, w: np.ndarray, tip: np.ndarray, thresholds: dict) -> None:
    """Add samples to the streaming summaries of ``out`` and to ``best``."""
    if out.voxels is not None and not out.complete:
        # Beyond the kept samples (which _kept_all added): the streaming summaries.
        streams = out.streams
        streams["sigma_min"].add(s_min)
        streams["sigma_max"].add(s_max)
        streams["condition"].add(condition_number(s_min, s_max))
        streams["manipulability"].add(w)
        streams["reach"].add(np.linalg.norm(tip, axis=1))
    for name, t in thresholds.items():
        out.below[name] += int(np.count_nonzero(s_min < t))
    out.tip_min = np.minimum(out.tip_min, tip.min(axis=0))
    out.tip_max = np.maximum(out.tip_max, tip.max(axis=0))
    if out.voxels is not None:
        out.voxels.add(tip, s_min)
    best.add(q, s_min)


def exact(robot: Robot, rows: np.ndarray, q: np.ndarray) -> ExactResult:
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
