"""Rotation helpers: the axis-angle between two rotations and Rodrigues' formula."""

from __future__ import annotations

import numpy as np
import pytest

from jacobian_ik.rotations import axis_rotation, rotation_between


@pytest.mark.parametrize("angle", [0.0, 0.3, 2.0, np.pi])
def testrotation_between_invertsaxis_rotation(angle):
    """rotation_between(R, Rot(axis, angle)·R) gives back the angle, and rotating by
    what it returns maps R to the target (also for a half turn)."""
    rng = np.random.default_rng(int(angle * 10))
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    other = rng.normal(size=3)
    R_a = axis_rotation(other / np.linalg.norm(other), 1.1)
    R_b = axis_rotation(axis, angle) @ R_a
    k, a = rotation_between(R_a, R_b)
    assert a == pytest.approx(angle, abs=1e-9)
    assert np.allclose(axis_rotation(k, a) @ R_a, R_b, atol=1e-9)
