"""Report blocks shared by both report kinds: the robot, the task, one configuration."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from jacobian_ik.audit.stats import ROW_NAMES, involved_joints

if TYPE_CHECKING:
    from jacobian_ik.audit.source import AuditTarget


def robot_block(target: AuditTarget) -> dict:
    """The audited chain: where it came from, its joints and their limits [rad | m]."""
    robot = target.robot
    return {
        "source": target.source,
        "urdf": target.urdf,
        "config": target.config,
        "base_link": robot.base_link,
        "tip_link": robot.tip_link,
        "dof": robot.dof,
        "joint_names": list(robot.joint_names),
        "lower": [float(x) for x in robot.lower],
        "upper": [float(x) for x in robot.upper],
    }


def task_block(task: str, rows: np.ndarray, dof: int) -> dict:
    """The task: its name, Jacobian rows (0..5 = vx vy vz wx wy wz) and σ count min(k, n)."""
    return {"name": task, "rows": [int(r) for r in rows],
            "singular_values": int(min(len(rows), dof))}


def configuration_record(names: Sequence[str], rows: np.ndarray, q: np.ndarray,
                         sv: np.ndarray, u_min: np.ndarray, v_min: np.ndarray,
                         tip: np.ndarray) -> dict:
    """One configuration with its exact singular values and σ_min's directions.

    ``q`` [rad | m] and ``joint_direction`` (the unit right singular vector of
    σ_min: the joint motion the tip barely follows) by joint name;
    ``task_direction`` (the unit left singular vector: the tip motion the arm
    barely produces) by twist row; ``involved_joints`` see
    ``stats.involved_joints``.
    """
    s_min = float(sv[-1])
    s_max = float(sv[0])
    return {
        "sigma_min": s_min,
        "sigma_max": s_max,
        "condition": s_max / s_min if s_min > 0.0 else math.inf,
        "manipulability": float(np.prod(sv)),
        "q": {name: float(x) for name, x in zip(names, q)},
        "tip_position": [float(x) for x in tip],
        "joint_direction": {name: float(x) for name, x in zip(names, v_min)},
        "task_direction": {ROW_NAMES[r]: float(x) for r, x in zip(rows, u_min)},
        "involved_joints": involved_joints(v_min, names),
    }
