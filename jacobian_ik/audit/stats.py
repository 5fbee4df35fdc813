"""Summary statistics of audit metrics.

Percentile pX of N samples is the smallest sample value with at least X % of the
samples at or below it (numpy's ``inverted_cdf`` method): always a value that
was observed, and well defined when some values are +inf (a condition number
at σ_min = 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Percentiles reported for every metric, and their keys.
PERCENTILES = (1, 5, 50, 95, 99)
STAT_KEYS = tuple(f"p{p}" for p in PERCENTILES) + ("min", "max", "mean")

#: A joint counts as involved in a singular direction while the joints with larger
#: components, together with it, hold less than this share of v's squared norm.
INVOLVEMENT_SHARE = 0.9

#: Names of the six twist rows (linear first), for task-space directions.
ROW_NAMES = ("vx", "vy", "vz", "wx", "wy", "wz")


def summary(values: np.ndarray) -> dict:
    """Percentiles (``PERCENTILES``), min, max and mean of a 1-D array, as floats."""
    values = np.asarray(values, dtype=np.float64)
    pct = np.percentile(values, PERCENTILES, method="inverted_cdf")
    out = {f"p{p}": float(v) for p, v in zip(PERCENTILES, pct)}
    out["min"] = float(values.min())
    out["max"] = float(values.max())
    with np.errstate(invalid="ignore", over="ignore"):
        out["mean"] = float(values.mean())
    return out


def fraction_below(values: np.ndarray, threshold: float) -> float:
    """Share of samples strictly below ``threshold``."""
    return float(np.count_nonzero(values < threshold)) / max(values.size, 1)


def involved_joints(v: np.ndarray, names: Sequence[str]) -> list[str]:
    """Joints of the unit joint direction v, largest |v_i| first, until they hold
    ``INVOLVEMENT_SHARE`` of ‖v‖² (at least one joint)."""
    v = np.asarray(v, dtype=np.float64)
    total = float(v @ v)
    order = np.argsort(-np.abs(v), kind="stable")
    out, acc = [], 0.0
    for i in order:
        out.append(names[i])
        acc += v[i] * v[i]
        if acc >= INVOLVEMENT_SHARE * total:
            break
    return out


def joint_involvement(v_min: np.ndarray, names: Sequence[str]) -> dict:
    """Mean squared component v_i² of each joint over several unit directions (sums to 1)."""
    v_min = np.asarray(v_min, dtype=np.float64).reshape(-1, len(names))
    share = (v_min ** 2).mean(axis=0) if v_min.shape[0] else np.zeros(len(names))
    return {name: float(x) for name, x in zip(names, share)}


def auto_voxel_size(tip_position: np.ndarray, cells: int = 24) -> float:
    """A voxel edge [m] giving about ``cells`` voxels across the largest extent of
    the tip positions, rounded to 1 mm (at least 1 mm)."""
    extent = float(np.max(tip_position.max(axis=0) - tip_position.min(axis=0))) \
        if tip_position.size else 0.0
    return max(round(extent / cells, 3), 0.001)
