"""Rotation matrices from an axis and an angle (NumPy, outside the control cycle).

The rotation between two orientations is ``kernels.pose_error``'s rotation vector."""

from __future__ import annotations

import numpy as np


def axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix of ``angle`` [rad] about the unit vector ``axis`` (Rodrigues).
    Shape (3, 3)."""
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)

