"""Rotation helpers on 3×3 matrices (NumPy, outside the control cycle)."""

from __future__ import annotations

import numpy as np


def axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix of ``angle`` [rad] about the unit vector ``axis`` (Rodrigues).
    Shape (3, 3)."""
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def rotation_between(R_a: np.ndarray, R_b: np.ndarray) -> tuple[np.ndarray, float]:
    """Unit axis (in the frame R_a and R_b are expressed in) and angle [rad] in [0, π]
    of the rotation R with ``R @ R_a = R_b``."""
    R = R_b @ R_a.T
    angle = float(np.arccos(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)))
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    norm = float(np.linalg.norm(w))
    if norm > 1e-9:
        return w / norm, angle
    if angle < 1e-6:
        return np.array([1.0, 0.0, 0.0]), 0.0
    M = R + np.eye(3)        # a half turn: R + I = 2·axis·axisᵀ
    col = M[:, int(np.argmax(np.diag(M)))]
    return col / np.linalg.norm(col), angle
