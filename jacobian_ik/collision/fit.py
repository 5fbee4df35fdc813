"""A conservative capsule around a set of balls: every ball lies inside it.

A capsule is a segment a–b and a radius r: the points within r of the segment.  For a
candidate axis direction u the fit is:

1. the axis line: through the centre of the smallest circle enclosing the points
   projected on the plane normal to u (the balls' rims included);
2. the radius: r0 = max over the balls of (distance of the centre from the axis + ball
   radius), so no ball sticks out of the cylinder part;
3. the end points, as short as containment allows: a ball at axial coordinate t,
   distance ρ from the axis and radius s is inside the cap of an end point e when
   |t − e| ≤ w = sqrt((r − s)² − ρ²), so the segment spans
   [min(t + w), max(t − w)] (one point when that interval is empty);
4. a 1-D search over r ≥ r0: a larger radius shortens the segment; the radius of
   least volume π r² L + 4/3 π r³ is kept.

The candidate directions are the three principal axes of the points and the three
axes of their frame; the capsule of least volume wins.  Containment is then
checked for every ball: r grows by what rounding left outside (nothing, in exact
arithmetic) plus ``CONTAINMENT_SLACK``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Radii tried in the 1-D search, between r0 and the radius of the smallest sphere
#: about the axis (two rounds: coarse, then around the best coarse value).
RADIUS_STEPS = 48

#: Radius added so that rounding never leaves a point outside [m].
CONTAINMENT_SLACK = 1e-12

#: A 2-D point (x, y) [m].
Point = tuple[float, float]


@dataclass(frozen=True)
class Capsule:
    """Segment ends ``a``, ``b`` Shape (3,) [m] and radius ``r`` [m], in the frame of
    the points it was fitted to."""

    a: np.ndarray
    b: np.ndarray
    r: float

    @property
    def volume(self) -> float:
        """[m³]"""
        length = float(np.linalg.norm(self.b - self.a))
        return math.pi * self.r ** 2 * length + 4.0 / 3.0 * math.pi * self.r ** 3


def segment_distances(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of each point (Shape (N, 3) [m]) from the segment a–b. Shape (N,) [m]."""
    d = b - a
    dd = float(d @ d)
    if dd == 0.0:
        return np.linalg.norm(points - a, axis=1)
    t = np.clip((points - a) @ d / dd, 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * d), axis=1)


def fit_capsule(points: np.ndarray, radii: np.ndarray) -> Capsule:
    """The capsule of least volume (over the candidate axes) containing every ball
    (centres ``points`` Shape (N, 3) [m], radii ``radii`` Shape (N,) [m])."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    radii = np.asarray(radii, dtype=np.float64).reshape(-1)
    fits = [_fit_along(points, radii, u) for u in _candidate_axes(points)]
    best = min(fits, key=lambda capsule: capsule.volume)
    excess = float(np.max(segment_distances(points, best.a, best.b) + radii - best.r))
    r = best.r + max(excess, 0.0) + CONTAINMENT_SLACK
    return Capsule(best.a, best.b, r)


def _candidate_axes(points: np.ndarray) -> list[np.ndarray]:
    axes = [np.eye(3)[k] for k in range(3)]
    if len(points) >= 2:
        centred = points - points.mean(axis=0)
        _values, vectors = np.linalg.eigh(centred.T @ centred)
        axes.extend(vectors[:, k] for k in (2, 1, 0))
    return axes


def _fit_along(points: np.ndarray, radii: np.ndarray, u: np.ndarray) -> Capsule:
    u = u / np.linalg.norm(u)
    e1 = np.cross(u, (1.0, 0.0, 0.0) if abs(u[0]) < 0.9 else (0.0, 1.0, 0.0))
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(u, e1)
    plane = np.column_stack([points @ e1, points @ e2])
    centre = _enclosing_circle_centre(_with_rims(plane, radii))
    rho = np.linalg.norm(plane - centre, axis=1)
    t = points @ u
    r0 = float(np.max(rho + radii))
    origin = centre[0] * e1 + centre[1] * e2
    # at r_hi every ball fits in the sphere about the axial midpoint of the extents
    mid = 0.5 * (float(np.min(t)) + float(np.max(t)))
    r_hi = float(np.max(np.hypot(t - mid, rho) + radii))
    radius = _least_volume_radius(t, rho, radii, r0, max(r_hi, r0))
    lo, hi = _segment(t, rho, radii, radius)
    return Capsule(origin + lo * u, origin + hi * u, radius)


def _segment(t: np.ndarray, rho: np.ndarray, s: np.ndarray,
             r: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axial coordinates of the shortest segment whose capsule of radius r holds every
    ball; r may be an array of radii (Shape (K,)), then Shape (K,) each."""
    r = np.asarray(r, dtype=np.float64)[..., None]
    w = np.sqrt(np.maximum((r - s) ** 2 - rho ** 2, 0.0))
    upper_of_low = np.min(t + w, axis=-1)   # the low end may be no higher than this
    lower_of_high = np.max(t - w, axis=-1)  # the high end may be no lower than this
    single = upper_of_low >= lower_of_high
    mid = 0.5 * (upper_of_low + lower_of_high)
    lo = np.where(single, mid, upper_of_low)
    hi = np.where(single, mid, lower_of_high)
    return lo, hi


def _least_volume_radius(t: np.ndarray, rho: np.ndarray, s: np.ndarray, r0: float,
                         r_hi: float) -> float:
    if r_hi <= r0:
        return r0
    grid = np.linspace(r0, r_hi, RADIUS_STEPS)
    for _round in range(2):
        lo, hi = _segment(t, rho, s, grid)
        volume = math.pi * grid ** 2 * (hi - lo) + 4.0 / 3.0 * math.pi * grid ** 3
        k = int(np.argmin(volume))
        step = grid[1] - grid[0]
        best = float(grid[k])
        grid = np.linspace(max(r0, best - step), min(r_hi, best + step), RADIUS_STEPS)
    return best


def _with_rims(plane: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """2-D points: the centres, and for each ball of radius > 0 a ring of 16 points on
    its projected rim (used only to place the axis; the radius is exact)."""
    round_balls = radii > 0.0
    if not round_balls.any():
        return plane
    angles = 2.0 * math.pi * np.arange(16) / 16
    ring = np.column_stack([np.cos(angles), np.sin(angles)])
    rims = plane[round_balls, None, :] + radii[round_balls, None, None] * ring
    return np.concatenate([plane, rims.reshape(-1, 2)])


def _enclosing_circle_centre(points: np.ndarray) -> np.ndarray:
    """Centre of the smallest circle enclosing the 2-D points (Shape (N, 2)): Welzl's
    incremental algorithm on the convex hull, in a fixed pseudo-random order."""
    hull = _convex_hull(points)
    order = np.random.default_rng(0).permutation(len(hull))
    pts = [tuple(p) for p in hull[order]]
    c, r2 = pts[0], 0.0
    for i in range(1, len(pts)):
        if _d2(pts[i], c) > r2 * (1 + 1e-12):
            c, r2 = pts[i], 0.0
            for j in range(i):
                if _d2(pts[j], c) > r2 * (1 + 1e-12):
                    c, r2 = _circle2(pts[i], pts[j])
                    for k in range(j):
                        if _d2(pts[k], c) > r2 * (1 + 1e-12):
                            c, r2 = _circle3(pts[i], pts[j], pts[k])
    return np.array(c)



def _d2(p: Point, c: Point) -> float:
    return (p[0] - c[0]) ** 2 + (p[1] - c[1]) ** 2


def _circle2(p: Point, q: Point) -> tuple[Point, float]:
    c = (0.5 * (p[0] + q[0]), 0.5 * (p[1] + q[1]))
    return c, _d2(p, c)


def _circle3(p: Point, q: Point, s: Point) -> tuple[Point, float]:
    ax, ay = q[0] - p[0], q[1] - p[1]
    bx, by = s[0] - p[0], s[1] - p[1]
    d = 2.0 * (ax * by - ay * bx)
    if abs(d) < 1e-18:  # collinear: the circle on the farthest pair
        pairs = [_circle2(p, q), _circle2(p, s), _circle2(q, s)]
        return max(pairs, key=lambda cr: cr[1])
    a2, b2 = ax * ax + ay * ay, bx * bx + by * by
    c = (p[0] + (by * a2 - ay * b2) / d, p[1] + (ax * b2 - bx * a2) / d)
    return c, _d2(p, c)


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Vertices of the 2-D convex hull (Andrew's monotone chain). Shape (H, 2)."""
    unique = np.unique(points, axis=0)  # sorted by x, then y
    if len(unique) <= 2:
        return unique
    pts: list[Point] = [(float(x), float(y)) for x, y in unique]

    def half(seq: list[Point]) -> list[Point]:
        out: list[Point] = []
        for p in seq:
            while len(out) >= 2 and _cross(out[-2], out[-1], p) <= 0.0:
                out.pop()
            out.append(p)
        return out

    return np.array(half(pts)[:-1] + half(pts[::-1])[:-1])


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
