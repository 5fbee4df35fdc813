"""Proven distance bounds for capsule pairs one or two revolute joints apart.

Two capsules in chain frames i < j move relative to each other with the joints
i+1 .. j alone.  When there are one or two of them (all revolute), their whole
relative motion is swept on a grid (``STEPS_1D`` positions, or ``STEPS_2D`` ×
``STEPS_2D``) over the joints' ranges (one turn at most), instead of sampled at
random.  The distance is Lipschitz in the joint positions: turning joint m by δ
moves every point of the far capsule by at most ρ_m·δ, ρ_m the largest distance of
the capsule from that joint's axis (bounded through the joint's origin for the
first of two joints).  So the true distance anywhere is at least the smallest
grid distance minus ``slack`` = Σ ρ_m·step_m / 2, which proves a pair never
touches when that is above zero.

Distances here are computed with numpy (segment to segment, minus both radii) for
the whole grid at once; they equal coal's capsule distances.
"""

from __future__ import annotations

import math

import numpy as np

from jacobian_ik.kernels import PRISMATIC
from jacobian_ik.robot import Robot

STEPS_1D = 4096
STEPS_2D = 256


def sweepable(robot: Robot, frame_i: int, frame_j: int) -> bool:
    """True when frames i < j are one or two revolute joints apart."""
    between = range(frame_i + 1, frame_j + 1)
    return 1 <= len(between) <= 2 and all(robot.joint_types[k] != PRISMATIC
                                          for k in between)


def sweep_pair(robot: Robot, cap_i: np.ndarray, cap_j: np.ndarray) -> tuple[np.ndarray, float]:
    """Distances [m] (negative: overlap) of two ``caps`` rows whose frames i < j are
    ``sweepable``, at every grid position of the joints between them (Shape (K,)),
    and the ``slack`` [m]: the true distance anywhere in the joints' ranges is at
    least the grid minimum minus it."""
    fi, fj = int(cap_i[0]), int(cap_j[0])
    joints = list(range(fi + 1, fj + 1))
    steps = STEPS_1D if len(joints) == 1 else STEPS_2D
    grids, widths = [], []
    for k in joints:
        lo, hi = float(robot.lower[k]), float(robot.upper[k])
        if robot.continuous[k] or hi - lo >= 2.0 * math.pi:
            lo, hi = -math.pi, math.pi
        grids.append(np.linspace(lo, hi, steps))
        widths.append((hi - lo) / (steps - 1))
    mesh = np.meshgrid(*grids, indexing="ij")
    angles = np.stack([m.ravel() for m in mesh], axis=1)        # Shape (K, len(joints))
    T = np.broadcast_to(np.eye(4), (len(angles), 4, 4))
    for col, k in enumerate(joints):
        T = T @ robot.placements[k] @ _rotations(robot.axes[k], angles[:, col])
    a = T[:, :3, :3] @ cap_j[1:4] + T[:, :3, 3]
    b = T[:, :3, :3] @ cap_j[4:7] + T[:, :3, 3]
    d = segment_segment(cap_i[1:4], cap_i[4:7], a, b) - cap_i[7] - cap_j[7]
    reach = max(float(np.linalg.norm(cap_j[1:4])), float(np.linalg.norm(cap_j[4:7]))) \
        + float(cap_j[7])
    last = robot.axes[joints[-1]]
    levers = [max(float(np.linalg.norm(e - (e @ last) * last))
                  for e in (cap_j[1:4], cap_j[4:7])) + float(cap_j[7])]
    if len(joints) == 2:
        levers.insert(0, float(np.linalg.norm(robot.placements[joints[1]][:3, 3])) + reach)
    slack = sum(lever * 0.5 * width for lever, width in zip(levers, widths))
    return d, slack


def _rotations(axis: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Rotations by q [rad] (Shape (K,)) about the unit ``axis``. Shape (K, 4, 4)."""
    K = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]],
                  [-axis[1], axis[0], 0.0]])
    out = np.tile(np.eye(4), (len(q), 1, 1))
    out[:, :3, :3] += np.sin(q)[:, None, None] * K + (1.0 - np.cos(q))[:, None, None] * (K @ K)
    return out


def segment_segment(p1: np.ndarray, q1: np.ndarray, p2: np.ndarray,
                    q2: np.ndarray) -> np.ndarray:
    """Distance [m] between segments p1–q1 and p2–q2; any argument Shape (3,) or
    (K, 3), broadcast. Shape (K,)."""
    d1 = np.broadcast_to(q1 - p1, np.broadcast_shapes(np.shape(p1), np.shape(p2)))
    d2 = np.broadcast_to(q2 - p2, d1.shape)
    r = p1 - p2
    a = np.einsum("...i,...i", d1, d1)
    e = np.einsum("...i,...i", d2, d2)
    b = np.einsum("...i,...i", d1, d2)
    c = np.einsum("...i,...i", d1, r)
    f = np.einsum("...i,...i", d2, r)
    tiny = 1e-18
    point1, point2 = a <= tiny, e <= tiny
    safe_a, safe_e = np.where(point1, 1.0, a), np.where(point2, 1.0, e)
    denom = a * e - b * b
    # both segments proper: the closest points of the lines, clamped in turn
    s = np.where(denom > 0.0, np.clip((b * f - c * e) / np.where(denom > 0.0, denom, 1.0),
                                      0.0, 1.0), 0.0)
    t = (b * s + f) / safe_e
    s = np.where(t < 0.0, np.clip(-c / safe_a, 0.0, 1.0),
                 np.where(t > 1.0, np.clip((b - c) / safe_a, 0.0, 1.0), s))
    t = np.clip(t, 0.0, 1.0)
    # the second one a point: t = 0; the first one a point: s = 0
    s = np.where(point2, np.clip(-c / safe_a, 0.0, 1.0), s)
    t = np.where(point2, 0.0, t)
    t = np.where(point1, np.clip(f / safe_e, 0.0, 1.0), t)
    s = np.where(point1, 0.0, s)
    t = np.where(point1 & point2, 0.0, t)
    closest = (p1 + s[..., None] * d1) - (p2 + t[..., None] * d2)
    return np.atleast_1d(np.linalg.norm(closest, axis=-1))
