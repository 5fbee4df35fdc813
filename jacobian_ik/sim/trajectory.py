"""Joint trajectories as joint_trajectory_controller follows them, in plain Python.

``build_trajectory`` checks a trajectory message (already converted to names
and ``(time_from_start [s], positions, velocities)`` points) against the
simulated joints and returns a ``JointTrajectory`` or the reason it is
rejected.  The rules follow joint_trajectory_controller's defaults:

* every simulated joint must be named, once; names of joints that are not
  simulated reject the message; values are reordered to chain order;
* every point has one finite position per name, and either no velocities or
  one finite velocity per name (the same choice for all points);
* ``time_from_start`` is finite, ≥ 0 and strictly increasing;
* a message without points means "stop": hold the current position.

Timing starts when the message is received (header.stamp is not used).
Interpolation starts from the state at receipt (or from the first point if
its time_from_start is 0): linear in position between
points given without velocities, cubic Hermite (positions and velocities
matched at both ends) when velocities are given.  After the last point the
trajectory holds its position.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class JointTrajectory:
    """Knots of a trajectory, time 0 = its start (receipt).

    times Shape (m,) [s] strictly increasing, times[0] = 0 (the start state);
    positions, velocities Shape (m, n); ``cubic`` False = linear interpolation.
    """

    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray
    cubic: bool

    @property
    def duration(self) -> float:
        """Time of the last point [s]."""
        return float(self.times[-1])

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(position, velocity) at time ``t`` [s] after the start. Shapes (n,)."""
        times = self.times
        if t >= times[-1]:
            return self.positions[-1].copy(), np.zeros(self.positions.shape[1])
        t = max(t, 0.0)
        k = int(np.searchsorted(times, t, side="right")) - 1
        k = min(max(k, 0), len(times) - 2)
        h = times[k + 1] - times[k]
        p0, p1 = self.positions[k], self.positions[k + 1]
        if not self.cubic:
            s = (t - times[k]) / h
            return p0 + s * (p1 - p0), (p1 - p0) / h
        v0, v1 = self.velocities[k], self.velocities[k + 1]
        s = (t - times[k]) / h
        h00, h10 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s
        h01, h11 = -2 * s**3 + 3 * s**2, s**3 - s**2
        position = h00 * p0 + h10 * h * v0 + h01 * p1 + h11 * h * v1
        d00, d10 = (6 * s**2 - 6 * s) / h, 3 * s**2 - 4 * s + 1
        d01, d11 = (-6 * s**2 + 6 * s) / h, 3 * s**2 - 2 * s
        velocity = d00 * p0 + d10 * v0 + d01 * p1 + d11 * v1
        return position, velocity


def hold_trajectory(position: np.ndarray) -> JointTrajectory:
    """A trajectory that stays at ``position``."""
    p = np.array(position, dtype=np.float64).reshape(1, -1)
    return JointTrajectory(np.zeros(1), p, np.zeros_like(p), cubic=False)


def build_trajectory(names: Sequence[str], points: Sequence[Any], joint_names: tuple[str, ...],
                     start_position: np.ndarray,
                     start_velocity: np.ndarray) -> tuple[JointTrajectory | None, str | None]:
    """``(JointTrajectory, None)`` from a message, or ``(None, reason)`` if it is rejected.

    names: joint names of the message; points: sequence of
    ``(time_from_start [s], positions, velocities)`` (velocities may be empty);
    joint_names: the simulated joints (chain order); start_*: the state at receipt.
    """
    names = list(names)
    column, reason = _columns(names, joint_names)
    if reason:
        return None, reason
    if len(points) == 0:
        return hold_trajectory(start_position), None
    times: list[float] = []
    positions = []
    velocities = []
    has_velocities = None
    for i, (t, pos, vel) in enumerate(points):
        t = float(t)
        if not math.isfinite(t) or t < 0.0 or (times and t <= times[-1]):
            return None, (f"trajectory point {i}: time_from_start {t} s must be finite, >= 0 "
                          "and greater than the previous point's; dropped")
        pos = np.asarray(pos, dtype=np.float64)
        vel = np.asarray(vel, dtype=np.float64)
        if pos.shape != (len(names),) or not np.all(np.isfinite(pos)):
            return None, (f"trajectory point {i}: needs {len(names)} finite positions, one per "
                          f"joint name; dropped")
        given = vel.size > 0
        if has_velocities is None:
            has_velocities = given
        if given != has_velocities:
            return None, "trajectory points must all have velocities or all have none; dropped"
        if given and (vel.shape != (len(names),) or not np.all(np.isfinite(vel))):
            return None, (f"trajectory point {i}: needs {len(names)} finite velocities, one per "
                          f"joint name, or none; dropped")
        times.append(t)
        positions.append(pos[column])
        velocities.append(vel[column] if given else np.zeros(len(joint_names)))
    if times[0] > 0.0:  # the state at receipt is the first knot
        start_v = np.asarray(start_velocity, float) if has_velocities else np.zeros(
            len(joint_names))
        times.insert(0, 0.0)
        positions.insert(0, np.asarray(start_position, float))
        velocities.insert(0, start_v)
    return JointTrajectory(np.array(times), np.vstack(positions), np.vstack(velocities),
                           cubic=bool(has_velocities)), None


def _columns(names: list[str],
             joint_names: tuple[str, ...]) -> tuple[np.ndarray | None, str | None]:
    """(index of each simulated joint in ``names``, None) or (None, reason)."""
    if len(set(names)) != len(names):
        return None, f"trajectory names a joint twice ({', '.join(names)}); dropped"
    unknown = [n for n in names if n not in joint_names]
    if unknown:
        return None, (f"trajectory names joints that are not simulated: {', '.join(unknown)}; "
                      f"simulated joints are: {', '.join(joint_names)}; dropped")
    missing = [n for n in joint_names if n not in names]
    if missing:
        return None, (f"trajectory misses joints {', '.join(missing)}; it must name every "
                      f"simulated joint ({', '.join(joint_names)}); dropped")
    return np.array([names.index(n) for n in joint_names], dtype=np.int64), None
