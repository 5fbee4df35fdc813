"""The path audit: exact singular values along a recorded path, and threshold crossings.

Every sample is evaluated with the exact Jacobi SVD (``kernels.batch.batch_exact``):
a path is short next to a joint-space sweep, and its crossings are reported
with σ_min's singular directions.  A threshold is *crossed* at the first sample
whose σ_min is strictly below it (sample 0 if the path starts below).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jacobian_ik.audit import stats
from jacobian_ik.audit.records import configuration_record, robot_block, task_block
from jacobian_ik.audit.schema import SCHEMA_VERSION
from jacobian_ik.audit.source import AuditTarget
from jacobian_ik.audit.sweep import ExactResult, exact
from jacobian_ik.audit.trajectory import Trajectory


def _record(index: int, trajectory: Trajectory, names: Sequence[str], rows: np.ndarray,
            ex: ExactResult) -> dict:
    time = float(trajectory.time[index]) if trajectory.time is not None else None
    out = {"index": int(index), "time": time}
    out.update(configuration_record(names, rows, ex.q[index], ex.sv[index], ex.u_min[index],
                                    ex.v_min[index], ex.tip_position[index]))
    return out


def first_below(values: np.ndarray, threshold: float) -> int | None:
    """Index of the first value strictly below ``threshold``, or None."""
    hits = np.flatnonzero(values < threshold)
    return int(hits[0]) if hits.size else None


def run_path_audit(target: AuditTarget, trajectory: Trajectory) -> tuple[dict, ExactResult]:
    """Audit ``trajectory`` (``trajectory.Trajectory``) on ``target``; returns
    (report dict, ExactResult of every sample)."""
    robot = target.robot
    settings = target.settings
    rows = robot.task_rows(settings.task)
    ex = exact(robot, rows, trajectory.q)
    sigma_min = ex.sv[:, -1]
    sigma_max = ex.sv[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        condition = np.where(sigma_min > 0.0, sigma_max / sigma_min, np.inf)
    names = robot.joint_names
    crossings = {}
    for key, threshold in (("warn", settings.sigma_warn), ("stop", settings.sigma_stop)):
        i = first_below(sigma_min, threshold)
        crossings[key] = None if i is None else _record(i, trajectory, names, rows, ex)
    n = trajectory.q.shape[0]
    time = trajectory.time
    report = {
        "schema_version": SCHEMA_VERSION,
        "kind": "path",
        "robot": robot_block(target),
        "task": task_block(settings.task, rows, robot.dof),
        "thresholds": settings.to_dict(),
        "input": {
            "path": trajectory.path,
            "format": trajectory.format,
            "topic": trajectory.topic,
            "duration": float(time[-1] - time[0]) if time is not None else None,
        },
        "samples": int(n),
        "warn_samples": int(np.count_nonzero(sigma_min < settings.sigma_warn)),
        "stop_samples": int(np.count_nonzero(sigma_min < settings.sigma_stop)),
        "warn_fraction": stats.fraction_below(sigma_min, settings.sigma_warn),
        "stop_fraction": stats.fraction_below(sigma_min, settings.sigma_stop),
        "sigma_min": stats.summary(sigma_min),
        "sigma_max": stats.summary(sigma_max),
        "condition": stats.summary(condition),
        "manipulability": stats.summary(np.prod(ex.sv, axis=1)),
        "minimum": _record(int(np.argmin(sigma_min)), trajectory, names, rows, ex),
        "first_warn": crossings["warn"],
        "first_stop": crossings["stop"],
        "gates": [],
        "baseline": None,
    }
    return report, ex
