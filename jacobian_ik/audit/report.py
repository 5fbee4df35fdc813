"""The joint-space audit: sample, evaluate, summarise into a report dict.

``run_audit`` is the whole ``jacobian-ik audit`` computation without the
command line; its result is the report documented in docs/audit.md (kind
"audit").  The fractions below the thresholds are shares of the sampled
configurations, i.e. of joint space within the limits (uniform measure).
Memory stays bounded for any number of samples (see ``audit.sweep``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numba
import numpy as np

from jacobian_ik.audit import stats
from jacobian_ik.audit.records import configuration_record, robot_block, task_block
from jacobian_ik.audit.sampling import Sampler
from jacobian_ik.audit.schema import SCHEMA_VERSION
from jacobian_ik.audit.source import AuditTarget
from jacobian_ik.audit.streaming import VoxelMap
from jacobian_ik.audit.sweep import SweepResult, exact, sweep
from jacobian_ik.errors import ConfigurationError

if TYPE_CHECKING:
    from jacobian_ik.audit.collisions import CollisionCounter


def run_audit(target: AuditTarget, *, samples: int = 100_000, seed: int = 0,
              method: str = "uniform", worst: int = 10, voxel: float | None = None,
              progress: Callable[[int, int], None] | None = None,
              collisions: CollisionCounter | None = None,
              ) -> tuple[dict, SweepResult]:
    """Audit ``target`` (``source.AuditTarget``); returns (report dict, SweepResult).

    ``collisions`` (``audit.collisions.CollisionCounter``, ``--collisions``) counts
    the same sampled configurations; its figures are the report's ``collisions``
    block (None without it)."""
    if voxel is not None and not voxel > 0.0:
        raise ConfigurationError(f"voxel size {voxel!r} must be a positive length [m]",
                                 parameter="voxel", value=voxel, valid_range=(0.0, None))
    robot = target.robot
    settings = target.settings
    rows = robot.task_rows(settings.task)
    thresholds = {"warn": settings.sigma_warn, "stop": settings.sigma_stop}
    sampler = Sampler(robot, seed, method)
    result = sweep(robot, rows, sampler, samples, worst=worst, progress=progress,
                   thresholds=thresholds, voxel=voxel,
                   on_block=None if collisions is None else collisions.add)
    worst_exact = exact(robot, rows, result.worst_q)
    order = np.argsort(worst_exact.sv[:, -1], kind="stable")

    names = robot.joint_names
    worst_records = []
    for rank, i in enumerate(order, start=1):
        record = {"rank": rank}
        record.update(configuration_record(
            names, rows, worst_exact.q[i], worst_exact.sv[i], worst_exact.u_min[i],
            worst_exact.v_min[i], worst_exact.tip_position[i]))
        worst_records.append(record)

    voxels = result.voxels
    if voxels is None:  # sweep() always makes it; an empty map for the type checker
        voxels = VoxelMap(np.zeros(3), 1.0)
    cut = voxels.fractions(thresholds)
    report = {
        "schema_version": SCHEMA_VERSION,
        "kind": "audit",
        "robot": robot_block(target),
        "task": task_block(settings.task, rows, robot.dof),
        "thresholds": settings.to_dict(),
        "sampling": {"method": method, "samples": int(samples), "seed": int(seed)},
        "warn_fraction": result.below["warn"] / samples,
        "stop_fraction": result.below["stop"] / samples,
        **_summaries(result),
        "workspace": {
            "tip_min": [float(x) for x in result.tip_min],
            "tip_max": [float(x) for x in result.tip_max],
            "voxel_size": float(voxels.voxel),
            "voxels": voxels.count,
            "warn_voxel_fraction": cut["warn"],
            "stop_voxel_fraction": cut["stop"],
        },
        "collisions": None if collisions is None else collisions.report(),
        "worst": worst_records,
        "joint_involvement": stats.joint_involvement(worst_exact.v_min, names),
        "timing": {
            "seconds": result.seconds,
            "configurations_per_second": samples / result.seconds if result.seconds > 0
            else 0.0,
            "threads": numba.get_num_threads(),
        },
        "gates": [],
        "baseline": None,
    }
    return report, result


def _summaries(result: SweepResult) -> dict:
    """Percentiles, min, max and mean of each metric: exact from the kept samples
    when they are all the samples, else from the streaming summaries."""
    if not result.complete:
        return {name: stream.summary() for name, stream in result.streams.items()}
    return {
        "sigma_min": stats.summary(result.sigma_min),
        "sigma_max": stats.summary(result.sigma_max),
        "condition": stats.summary(result.condition),
        "manipulability": stats.summary(result.manipulability),
        "reach": stats.summary(np.linalg.norm(result.tip_position, axis=1)),
    }
