"""Rotation helpers: Rodrigues' formula, the inverse of pose_error's rotation vector."""

from __future__ import annotations

import numpy as np
import pytest

from jacobian_ik.kernels import pose_error
from jacobian_ik.rotations import axis_rotation


@pytest.mark.parametrize("angle", [0.0, 0.3, 2.0, np.pi])
def test_axis_rotation_turns_by_the_rotation_vector_pose_error_reports(angle):
    """Turning R_a by axis_rotation(axis, angle) gives an orthonormal R_b; pose_error's
    rotation vector from R_a to R_b has length ``angle``, and rotating R_a by that
    vector (axis and length) gives R_b back (also for a half turn)."""
    rng = np.random.default_rng(int(angle * 10))
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    other = rng.normal(size=3)
    R_a = axis_rotation(other / np.linalg.norm(other), 1.1)
    R_b = axis_rotation(axis, angle) @ R_a
    assert np.allclose(R_b @ R_b.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R_b) == pytest.approx(1.0, abs=1e-12)
    T_a, T_b = np.eye(4), np.eye(4)
    T_a[:3, :3], T_b[:3, :3] = R_a, R_b
    err = np.zeros(6)
    pose_error(T_a, T_b, err)
    turn = float(np.linalg.norm(err[3:]))
    assert turn == pytest.approx(angle, abs=1e-9)
    unit = err[3:] / turn if turn > 0.0 else err[3:]
    assert np.allclose(axis_rotation(unit, turn) @ R_a, R_b, atol=1e-9)
