"""Distance kernels (``kernels.distance``) against coal, the collision library
pinocchio ships, against the optimality certificate of convex distance, and the
distance gradient against finite differences on the panda arm.

The certificate: for convex A, B with pa ∈ ∂A, pb ∈ ∂B, ``pa − pb = d·nrm`` and
``nrm`` supporting both (``h_B(nrm) = nrm·pb``, ``h_A(−nrm) = −nrm·pa``, h the
support function), every x ∈ A, y ∈ B has ``|x − y| ≥ nrm·(x − y) ≥ d``: d is the
distance.  It checks closest points where they are not unique (parallel
segments, a segment parallel to a face), and to rounding where coal's GJK
witness points on curved surfaces are only ~1e-6 accurate.
"""

from __future__ import annotations

import math
import textwrap
from fractions import Fraction

import coal
import numpy as np
import pytest
from kernel_support import nrt_allocations

from jacobian_ik import bundled
from jacobian_ik.kernels import distance as D
from jacobian_ik.kernels.kinematics import fk_frames
from jacobian_ik.robot import Robot

#: Agreement of a separated distance with coal's [m].
D_TOL = 1e-9
#: Agreement of unique closest points with coal's [m] (coal's GJK witness points).
P_TOL = 1e-6
#: coal's witness points on a cylinder are converged to a few 1e-6 m only.
P_TOL_CYLINDER = 2e-5
#: Tolerance of the certificate and surface conditions [m].
CERT_TOL = 1e-9
#: Pairs closer than this [m] count as touching and are not compared.
GAP_MIN = 1e-3
#: Random cases per family.
CASES = 200

PRIMITIVES = {
    D.OBS_SPHERE: D.capsule_sphere,
    D.OBS_BOX: D.capsule_box,
    D.OBS_CYLINDER: D.capsule_cylinder,
    D.OBS_HALFSPACE: D.capsule_halfspace,
}


# ---------------------------------------------------------------------------- geometry
def rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation matrix (unit quaternion from a Gaussian)."""
    w, x, y, z = rng.normal(size=4) / 1.0
    n = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def capsule(a, b, r) -> np.ndarray:
    """A ``world`` row: Shape (7,)."""
    return np.concatenate([np.asarray(a, float), np.asarray(b, float), [float(r)]])


def obstacle(typ: int, R, p, dims=(0.0, 0.0, 0.0)) -> np.ndarray:
    """An ``obstacles`` row: Shape (16,)."""
    ob = np.zeros(D.OBS_WIDTH)
    ob[D.OBS_TYPE] = typ
    ob[D.OBS_R:D.OBS_R + 9] = np.asarray(R, float).ravel()
    ob[D.OBS_P:D.OBS_P + 3] = p
    ob[D.OBS_DIM:D.OBS_DIM + len(dims)] = dims
    return ob


def random_capsule(rng, spread=0.6, r_max=0.2) -> np.ndarray:
    return capsule(rng.normal(size=3) * spread, rng.normal(size=3) * spread,
                   rng.uniform(0.01, r_max))


def random_obstacle(rng, typ: int) -> np.ndarray:
    return obstacle(typ, rotation(rng), rng.normal(size=3) * 0.3, rng.uniform(0.05, 0.5, size=3))


def segment_distance(x, cap) -> float:
    """Distance [m] from point x to a capsule's core segment."""
    a, b = cap[:3], cap[3:6]
    u = b - a
    uu = u @ u
    t = 0.0 if uu == 0 else float(np.clip((x - a) @ u / uu, 0.0, 1.0))
    return float(np.linalg.norm(x - a - t * u))


def local(ob, x) -> np.ndarray:
    return ob[1:10].reshape(3, 3).T @ (np.asarray(x) - ob[10:13])


def surface_residual(ob, x) -> float:
    """Signed distance-like residual of x to the obstacle's surface (0 on it)."""
    typ = int(ob[0])
    xl = local(ob, x)
    if typ == D.OBS_SPHERE:
        return float(np.linalg.norm(xl) - ob[13])
    if typ == D.OBS_BOX:
        return float(np.max(np.abs(xl) - ob[13:16]))
    if typ == D.OBS_CYLINDER:
        return float(max(np.hypot(xl[0], xl[1]) - ob[13], abs(xl[2]) - ob[14]))
    return float(xl[2])


def support_obstacle(ob, n) -> float:
    """Support function h(n) = max over the obstacle of n·x."""
    typ = int(ob[0])
    R, p = ob[1:10].reshape(3, 3), ob[10:13]
    nl = R.T @ n
    if typ == D.OBS_SPHERE:
        return float(n @ p + ob[13])
    if typ == D.OBS_BOX:
        return float(n @ p + np.abs(nl) @ ob[13:16])
    if typ == D.OBS_CYLINDER:
        return float(n @ p + ob[13] * np.hypot(nl[0], nl[1]) + ob[14] * abs(nl[2]))
    # half-space: bounded only along its normal
    return float(n @ p) if np.allclose(n, R[:, 2], atol=1e-12) else np.inf


def support_capsule(cap, n) -> float:
    return float(max(n @ cap[:3], n @ cap[3:6]) + cap[6])


def check_row(row, cap, other, tol=CERT_TOL):
    """Row invariants: finite unit normal, pa − pb = d·nrm, pa on the capsule's
    surface, pb on the other object's surface (other: a world row or an obstacle)."""
    d, pa, pb, n = row[0], row[1:4], row[4:7], row[7:10]
    assert np.all(np.isfinite(row))
    assert abs(np.linalg.norm(n) - 1.0) < 1e-12
    np.testing.assert_allclose(pa - pb, d * n, atol=tol)
    assert abs(segment_distance(pa, cap) - cap[6]) < tol
    if other.shape[0] == D.WORLD_WIDTH:
        assert abs(segment_distance(pb, other) - other[6]) < tol
    else:
        assert abs(surface_residual(other, pb)) < tol


def check_certificate(row, cap, other, tol=CERT_TOL):
    """The closest points certify d (separated case, see the module docstring)."""
    check_row(row, cap, other, tol)
    pa, pb, n = row[1:4], row[4:7], row[7:10]
    assert abs(support_capsule(cap, -n) + n @ pa) < tol
    h_b = support_capsule(other, n) if other.shape[0] == D.WORLD_WIDTH else \
        support_obstacle(other, n)
    assert abs(h_b - n @ pb) < tol


# ---------------------------------------------------------------------------- coal
def frame_along(u: np.ndarray) -> np.ndarray:
    """A rotation whose z axis is u."""
    z = unit(u)
    a = np.array([1.0, 0, 0]) if abs(z[0]) < 0.9 else np.array([0, 1.0, 0])
    x = unit(np.cross(a, z))
    return np.column_stack([x, np.cross(z, x), z])


def transform(R, p) -> coal.Transform3s:
    T = coal.Transform3s()
    T.setRotation(np.asarray(R, float))
    T.setTranslation(np.asarray(p, float))
    return T


def coal_capsule(cap):
    """coal geometry and pose of a world row.  (coal 3's constructors take the
    full length: ``Capsule(radius, lz)``, ``Cylinder(radius, lz)``.)"""
    a, b, r = cap[:3], cap[3:6], cap[6]
    length = np.linalg.norm(b - a)
    if length == 0.0:
        return coal.Sphere(r), transform(np.eye(3), a)
    return coal.Capsule(r, length), transform(frame_along(b - a), (a + b) / 2)


def coal_obstacle(ob):
    typ = int(ob[0])
    R, p = ob[1:10].reshape(3, 3), ob[10:13]
    if typ == D.OBS_SPHERE:
        return coal.Sphere(ob[13]), transform(R, p)
    if typ == D.OBS_BOX:
        return coal.Box(*(2.0 * ob[13:16])), transform(R, p)
    if typ == D.OBS_CYLINDER:
        return coal.Cylinder(ob[13], 2.0 * ob[14]), transform(R, p)
    n = R[:, 2]
    return coal.Halfspace(n, float(n @ p)), transform(np.eye(3), np.zeros(3))


def coal_distance(cap, other):
    """(d, p1, p2) from coal.  GJK tolerance 1e-11: tighter ones make coal's GJK
    stop early on cylinders (a 7 mm error was seen at 1e-12)."""
    g1, T1 = coal_capsule(cap)
    g2, T2 = coal_capsule(other) if other.shape[0] == D.WORLD_WIDTH else coal_obstacle(other)
    req = coal.DistanceRequest()
    req.enable_signed_distance = True
    req.gjk_tolerance = 1e-11
    req.epa_tolerance = 1e-11
    req.gjk_max_iterations = 1000
    req.epa_max_iterations = 1000
    res = coal.DistanceResult()
    d = coal.distance(g1, T1, g2, T2, req, res)
    return d, np.array(res.getNearestPoint1()), np.array(res.getNearestPoint2())


def compute(cap, other):
    row = np.zeros(D.OUT_WIDTH)
    if other.shape[0] == D.WORLD_WIDTH:
        d = D.capsule_capsule(cap, other, row)
    else:
        d = PRIMITIVES[int(other[0])](cap, other, row)
    assert d == row[0]
    return row


def compare_separated(cases, unique: bool, p_tol=P_TOL, coal_tol=D_TOL) -> int:
    """d equal to coal's (to coal_tol), the certificate, and (unique) points equal
    coal's, on every case farther apart than GAP_MIN; capsule pairs also against
    the exact rational distance (to D_TOL).  Returns how many were compared."""
    compared = 0
    for cap, other in cases:
        dc, p1, p2 = coal_distance(cap, other)
        if not dc > GAP_MIN:
            continue
        row = compute(cap, other)
        assert abs(row[0] - dc) < coal_tol, (row[0], dc)
        if other.shape[0] == D.WORLD_WIDTH:
            exact = exact_capsule_distance(cap, other)
            assert abs(row[0] - exact) < D_TOL, (row[0], exact)
        check_certificate(row, cap, other)
        if unique:
            np.testing.assert_allclose(row[1:4], p1, atol=p_tol)
            np.testing.assert_allclose(row[4:7], p2, atol=p_tol)
        compared += 1
    return compared


# ---------------------------------------------------------------------------- capsule families
def exact_capsule_distance(cap_a, cap_b) -> float:
    """Capsule distance [m] from the segment distance computed in exact rational
    arithmetic (the interior stationary point and the four end-point candidates),
    rounded once at the end: the reference where coal's capsule–capsule loses
    accuracy (up to 1e-7 m on nearly parallel segments)."""
    a, b = [Fraction(x) for x in cap_a[:3]], [Fraction(x) for x in cap_a[3:6]]
    c, e = [Fraction(x) for x in cap_b[:3]], [Fraction(x) for x in cap_b[3:6]]
    u = [b[i] - a[i] for i in range(3)]
    v = [e[i] - c[i] for i in range(3)]
    r = [a[i] - c[i] for i in range(3)]

    def dot(x, y):
        return x[0] * y[0] + x[1] * y[1] + x[2] * y[2]

    def sq(s, t):
        return sum((a[i] + s * u[i] - c[i] - t * v[i]) ** 2 for i in range(3))

    def nearest(x, start, w):  # parameter of the point of start + t w nearest x
        ww = dot(w, w)
        if ww == 0:
            return Fraction(0)
        return min(max(dot([x[i] - start[i] for i in range(3)], w) / ww, Fraction(0)),
                   Fraction(1))

    uu, vv, uv = dot(u, u), dot(v, v), dot(u, v)
    candidates = []
    den = uu * vv - uv * uv
    if den != 0:
        s = (uv * dot(v, r) - vv * dot(u, r)) / den
        t = (uu * dot(v, r) - uv * dot(u, r)) / den
        if 0 <= s <= 1 and 0 <= t <= 1:
            candidates.append(sq(s, t))
    for end in (0, 1):
        x = [a[i] + end * u[i] for i in range(3)]
        candidates.append(sq(Fraction(end), nearest(x, c, v)))
        x = [c[i] + end * v[i] for i in range(3)]
        candidates.append(sq(nearest(x, a, u), Fraction(end)))
    return math.sqrt(min(candidates)) - float(cap_a[6]) - float(cap_b[6])


def capsule_cases(family: str, seed: int, count: int = CASES):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        b = random_capsule(rng)
        if family == "generic":
            a = random_capsule(rng)
        elif family in ("near_parallel", "parallel"):
            u = b[3:6] - b[:3]
            angle = 0.0 if family == "parallel" else 10.0 ** rng.uniform(-9, -3)
            w = unit(np.cross(u, rng.normal(size=3)))
            u2 = (np.cos(angle) * unit(u) + np.sin(angle) * w) * rng.uniform(0.2, 1.5)
            start = b[:3] + rng.uniform(-0.5, 1.0) * u + rng.normal(size=3) * 0.3
            a = capsule(start, start + u2, rng.uniform(0.01, 0.1))
        elif family == "degenerate":
            c = rng.normal(size=3) * 0.6
            a = capsule(c, c, rng.uniform(0.01, 0.2))
        elif family == "both_degenerate":
            c = rng.normal(size=3) * 0.6
            a = capsule(c, c, rng.uniform(0.01, 0.2))
            c = rng.normal(size=3) * 0.6
            b = capsule(c, c, rng.uniform(0.01, 0.2))
        else:
            raise ValueError(family)
        yield a, b


@pytest.mark.parametrize("family,unique,coal_tol", [
    ("generic", True, D_TOL), ("near_parallel", False, 1e-6), ("parallel", False, 1e-6),
    ("degenerate", True, D_TOL), ("both_degenerate", True, D_TOL)])
def test_capsule_capsule_distance_and_closest_points_equal_coal(family, unique, coal_tol):
    """Separated capsules (random, nearly parallel down to 1e-9 rad, parallel, one
    or both of zero length): d equal to the exact (rational arithmetic) distance
    to 1e-9 m and to coal's (1e-9 m; 1e-6 m for nearly parallel segments, where
    coal is off by up to 7e-8 m), the closest points certify it, and where they
    are unique they equal coal's to 1e-6 m."""
    assert compare_separated(capsule_cases(family, 1), unique, coal_tol=coal_tol) > CASES // 4


# ---------------------------------------------------------------------------- obstacle families
def _in_frame(ob, pts):
    """Obstacle-frame points to the base frame."""
    R, p = ob[1:10].reshape(3, 3), ob[10:13]
    return [R @ np.asarray(x, float) + p for x in pts]


def box_cases(family: str, seed: int, count: int = CASES):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        ob = random_obstacle(rng, D.OBS_BOX)
        h = ob[13:16]
        r = rng.uniform(0.01, 0.2)
        gap = rng.uniform(0.01, 0.3)
        s = rng.choice([-1.0, 1.0], size=3)
        if family == "generic":
            yield random_capsule(rng), ob
            continue
        if family in ("face", "edge", "corner"):  # a sphere beyond 1, 2 or 3 faces
            beyond = {"face": 1, "edge": 2, "corner": 3}[family]
            axes = rng.permutation(3)[:beyond]
            c = rng.uniform(-1, 1, size=3) * h
            for k in axes:
                c[k] = s[k] * (h[k] + r + gap * rng.uniform(0.2, 1.0))
            (x,) = _in_frame(ob, [c])
            yield capsule(x, x, r), ob
            continue
        if family == "segment_edge":  # a segment beyond two faces, crossing an edge's direction
            k, m, j = rng.permutation(3)
            a = np.zeros(3)
            a[k] = s[k] * (h[k] + r + gap)
            a[m] = s[m] * (h[m] + r + gap)
            a[j] = rng.uniform(-2, 2) * h[j]
            u = rng.normal(size=3) * 0.3
            yield capsule(*_in_frame(ob, [a, a + u]), r), ob
            continue
        if family == "face_parallel":  # parallel to a face above it: not unique
            k = rng.integers(3)
            a = rng.uniform(-1, 1, size=3) * h
            a[k] = s[k] * (h[k] + r + gap)
            b = rng.uniform(-1, 1, size=3) * h
            b[k] = a[k]
            yield capsule(*_in_frame(ob, [a, b]), r), ob
            continue
        if family == "edge_parallel":  # parallel to an edge beyond it: not unique
            k, m, j = rng.permutation(3)
            a = np.zeros(3)
            a[k] = s[k] * (h[k] + r + gap)
            a[m] = s[m] * (h[m] + r + gap * rng.uniform())
            b = a.copy()
            a[j] = rng.uniform(-1.5, 0.5) * h[j]
            b[j] = rng.uniform(0.6, 1.5) * h[j]
            yield capsule(*_in_frame(ob, [a, b]), r), ob
            continue
        raise ValueError(family)


@pytest.mark.parametrize("family,unique", [("generic", True), ("face", True), ("edge", True),
                                           ("corner", True), ("segment_edge", True),
                                           ("face_parallel", False), ("edge_parallel", False)])
def test_capsule_box_distance_and_closest_points_equal_coal(family, unique):
    """Capsule–box on random segments and spheres nearest a face, an edge or a
    corner, segments past an edge, and segments parallel to a face or an edge:
    d equal to coal's to 1e-9 m, certified closest points, equal to coal's where
    unique."""
    assert compare_separated(box_cases(family, 2), unique) > CASES // 4


def cylinder_cases(family: str, seed: int, count: int = CASES):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        ob = random_obstacle(rng, D.OBS_CYLINDER)
        R, H = ob[13], ob[14]
        r = rng.uniform(0.01, 0.2)
        gap = rng.uniform(0.01, 0.3)
        phi = rng.uniform(0, 2 * np.pi)
        radial = np.array([np.cos(phi), np.sin(phi), 0.0])
        sz = rng.choice([-1.0, 1.0])
        if family == "generic":
            yield random_capsule(rng), ob
        elif family == "rim":  # a sphere beyond the rim
            c = radial * (R + rng.uniform(0.01, 0.3)) + [0, 0, sz * (H + rng.uniform(0.01, 0.3))]
            (x,) = _in_frame(ob, [c])
            yield capsule(x, x, r), ob
        elif family == "side":  # a sphere beside the side
            c = radial * (R + r + gap) + [0, 0, rng.uniform(-1, 1) * H]
            (x,) = _in_frame(ob, [c])
            yield capsule(x, x, r), ob
        elif family == "cap":  # a sphere above a cap
            c = radial * rng.uniform(0, 1) * R + [0, 0, sz * (H + r + gap)]
            (x,) = _in_frame(ob, [c])
            yield capsule(x, x, r), ob
        elif family == "rim_segment":  # a segment crossing over the rim
            c = radial * (R + r + gap) + [0, 0, sz * (H + r + gap)]
            u = np.cross(radial, [0, 0, 1.0]) * rng.uniform(0.05, 0.5) + rng.normal(size=3) * 0.05
            yield capsule(*_in_frame(ob, [c - u, c + u]), r), ob
        elif family == "axis":  # a segment along the axis beyond a cap
            a = np.array([0, 0, sz * (H + r + gap)])
            b = a + [0, 0, sz * rng.uniform(0.05, 0.5)]
            yield capsule(*_in_frame(ob, [a, b]), r), ob
        elif family == "side_parallel":  # parallel to the axis beside the side: not unique
            a = radial * (R + r + gap) + [0, 0, rng.uniform(-1, 0) * H]
            b = a + [0, 0, rng.uniform(0.1, 1) * H]
            yield capsule(*_in_frame(ob, [a, b]), r), ob
        elif family == "cap_parallel":  # parallel to a cap above the disc: not unique
            a = radial * rng.uniform(0, 0.9) * R + [0, 0, sz * (H + r + gap)]
            b = -radial * rng.uniform(0, 0.9) * R + [0, 0, sz * (H + r + gap)]
            yield capsule(*_in_frame(ob, [a, b]), r), ob
        else:
            raise ValueError(family)


@pytest.mark.parametrize("family,unique", [("generic", True), ("rim", True), ("side", True),
                                           ("cap", True), ("rim_segment", True),
                                           ("axis", True), ("side_parallel", False),
                                           ("cap_parallel", False)])
def test_capsule_cylinder_distance_and_closest_points_equal_coal(family, unique):
    """Capsule–cylinder on random segments, spheres beyond the rim, beside the side
    and above a cap, segments over the rim and along the axis, and segments
    parallel to the side or a cap: d equal to coal's to 1e-9 m, certified closest
    points, equal to coal's (whose cylinder witness points are ~1e-6 m accurate)
    where unique."""
    assert compare_separated(cylinder_cases(family, 3), unique, P_TOL_CYLINDER) > CASES // 4


def sphere_halfspace_cases(typ: int, family: str, seed: int, count: int = CASES):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        ob = random_obstacle(rng, typ)
        if family == "generic":
            yield random_capsule(rng), ob
        elif family == "degenerate":
            c = rng.normal(size=3) * 0.6
            yield capsule(c, c, rng.uniform(0.01, 0.2)), ob
        elif family == "parallel":  # half-space: parallel to the plane, not unique
            a = np.array([*rng.normal(size=2), rng.uniform(0.22, 0.6)])
            b = np.array([*rng.normal(size=2), a[2]])
            yield capsule(*_in_frame(ob, [a, b]), rng.uniform(0.01, 0.2)), ob
        else:
            raise ValueError(family)


@pytest.mark.parametrize("typ,family,unique", [
    (D.OBS_SPHERE, "generic", True), (D.OBS_SPHERE, "degenerate", True),
    (D.OBS_HALFSPACE, "generic", True), (D.OBS_HALFSPACE, "degenerate", True),
    (D.OBS_HALFSPACE, "parallel", False)])
def test_capsule_sphere_and_halfspace_distance_and_closest_points_equal_coal(typ, family,
                                                                              unique):
    """Capsule–sphere and capsule–half-space (random, zero-length capsules, a
    segment parallel to the plane): d equal to coal's to 1e-9 m, certified
    closest points, equal to coal's where unique."""
    assert compare_separated(sphere_halfspace_cases(typ, family, 4), unique) > CASES // 4


# ---------------------------------------------------------------------------- penetration
def penetrating(cases):
    for cap, other in cases:
        dc, _p1, _p2 = coal_distance(cap, other)
        if -10.0 < dc < -1e-6:  # (coal's EPA rarely fails with −1.8e308)
            yield cap, other, dc


def overlapping_cases(kind: str, seed: int, count: int = 300):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        cap = random_capsule(rng, spread=0.3, r_max=0.3)
        if kind == "capsule":
            other = random_capsule(rng, spread=0.3, r_max=0.3)
        else:
            other = random_obstacle(rng, kind)
            other[10:13] *= 0.5
        yield cap, other


def deepest_core_depth(cap, ob, samples=20001) -> float:
    """Largest depth min(R − ρ, H − |z|) in the cylinder over a dense sampling of the
    core segment."""
    t = np.linspace(0.0, 1.0, samples)[:, None]
    pts = cap[:3] + t * (cap[3:6] - cap[:3])
    xl = (pts - ob[10:13]) @ ob[1:10].reshape(3, 3)
    depth = np.minimum(ob[13] - np.hypot(xl[:, 0], xl[:, 1]), ob[14] - np.abs(xl[:, 2]))
    return float(depth.max())


@pytest.mark.parametrize("kind", ["capsule", D.OBS_SPHERE, D.OBS_HALFSPACE, D.OBS_BOX])
def test_penetration_depth_is_coals_signed_distance(kind):
    """Penetrating capsule–capsule, capsule–sphere, capsule–half-space and
    capsule–box pairs (including core segments crossing each other or inside the
    box): d < 0 and equal to coal's signed distance (minus the penetration depth,
    EPA) to 1e-9 m; pa − pb = d·nrm, pa on the capsule's and pb on the other
    object's surface."""
    count = inside = 0
    for cap, other, dc in penetrating(overlapping_cases(kind, 5)):
        row = compute(cap, other)
        assert row[0] < 0.0
        assert abs(row[0] - dc) < D_TOL, (row[0], dc)
        check_row(row, cap, other)
        count += 1
        inside += row[0] < -cap[6] - 1e-6
    assert count > 50 and (kind == D.OBS_HALFSPACE or inside > 10)


def test_cylinder_penetration_is_the_deepest_core_point_and_bounds_coals_depth():
    """Penetrating capsule–cylinder pairs: d < 0; with the core segment outside the
    solid d equals coal's signed distance (1e-9 m); with it inside,
    d = −(r + depth of the segment's deepest point x*) (to a dense sampling's
    resolution, never deeper) and |d| never exceeds coal's penetration depth
    (EPA); pa − pb = d·nrm, |pa − x*| = r (pa within the capsule), pb on the
    cylinder's surface."""
    inside = outside = 0
    for cap, ob, dc in penetrating(overlapping_cases(D.OBS_CYLINDER, 6)):
        row = compute(cap, ob)
        d = row[0]
        assert d < 0.0
        depth = deepest_core_depth(cap, ob)
        if depth < 0.0:  # core outside the solid: exact signed distance
            assert abs(d - dc) < D_TOL, (d, dc)
            check_row(row, cap, ob)
            outside += 1
            continue
        sampled = -cap[6] - depth
        step = np.linalg.norm(cap[3:6] - cap[:3]) / 20000  # sampling resolution [m]
        assert sampled - step - 1e-12 <= d <= sampled + 1e-12
        assert d >= dc - 1e-9
        n = row[7:10]
        assert abs(np.linalg.norm(n) - 1.0) < 1e-12
        np.testing.assert_allclose(row[1:4] - row[4:7], d * n, atol=CERT_TOL)
        x_star = row[1:4] + cap[6] * n
        assert segment_distance(x_star, cap) < CERT_TOL
        assert abs(surface_residual(ob, row[4:7])) < CERT_TOL
        inside += 1
    assert inside > 30 and outside > 3


# ---------------------------------------------------------------------------- fallbacks
def test_undefined_normals_fall_back_to_finite_unit_vectors():
    """Coincident and crossing core segments, a sphere centre on the segment,
    coincident spheres, a segment on a cylinder's axis and through a box's
    centre: a finite unit normal, pa − pb = d·nrm, and the exact signed distance
    where it is −(ra + rb) or −(r + depth)."""
    eye = np.eye(3)
    a = capsule([0, 0, 0], [1, 0, 0], 0.1)
    cases = [
        (a, capsule([0, 0, 0], [1, 0, 0], 0.2), -0.3),        # coincident
        (a, capsule([0.5, -1, 0], [0.5, 1, 0], 0.2), -0.3),   # crossing
        (a, capsule([0.2, 0, 0], [0.7, 0, 0], 0.05), -0.15),  # collinear overlap
        (capsule([1, 2, 3], [1, 2, 3], 0.1), capsule([1, 2, 3], [1, 2, 3], 0.1), -0.2),
        (a, obstacle(D.OBS_SPHERE, eye, [0.3, 0, 0], [0.2]), -0.3),
        (capsule([0, 0, 0], [0, 0, 0], 0.1), obstacle(D.OBS_SPHERE, eye, [0, 0, 0], [0.2]), -0.3),
        (capsule([0, 0, -0.1], [0, 0, 0.1], 0.05),
         obstacle(D.OBS_CYLINDER, eye, [0, 0, 0], [0.2, 0.5]), -0.25),
        (capsule([-0.1, 0, 0], [0.1, 0, 0], 0.05),
         obstacle(D.OBS_BOX, eye, [0, 0, 0], [0.3, 0.3, 0.3]), -0.35),
    ]
    for cap, other, expected in cases:
        row = compute(cap, other)
        check_row(row, cap, other)
        assert row[0] == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------------- frames
PANDA = Robot.from_urdf(bundled.urdf_path("panda"), *bundled.robot_links("panda"))


def test_capsules_to_base_transforms_end_points_by_their_frame():
    """world[g] = [T a, T b, r] with T = frames[frame] (identity for −1)."""
    rng = np.random.default_rng(7)
    n = PANDA.dof
    frames = np.zeros((n + 1, 4, 4))
    fk_frames(PANDA.placements, PANDA.axes, PANDA.joint_types,
              PANDA.random_configurations(1, rng)[0], frames)
    caps = np.zeros((n + 2, D.CAP_WIDTH))
    caps[:, 0] = np.arange(-1, n + 1)
    caps[:, 1:7] = rng.normal(size=(n + 2, 6))
    caps[:, 7] = rng.uniform(0.01, 0.1, size=n + 2)
    world = np.zeros((n + 2, D.WORLD_WIDTH))
    D.capsules_to_base(frames, caps, world)
    for g in range(n + 2):
        f = int(caps[g, 0])
        T = np.eye(4) if f < 0 else frames[f]
        for e in range(2):
            x = caps[g, 1 + 3 * e:4 + 3 * e]
            np.testing.assert_allclose(world[g, 3 * e:3 * e + 3], T[:3, :3] @ x + T[:3, 3],
                                       atol=1e-15)
        assert world[g, 6] == caps[g, 7]


# ---------------------------------------------------------------------------- gradient
def panda_model():
    """Capsules on the base (−1), joints 0, 2, 3, 5 and the tip (n); a sphere, a box and a
    cylinder obstacle; self pairs and capsule–obstacle pairs."""
    n = PANDA.dof
    caps = np.array([
        [-1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 0.08],
        [0, 0.0, 0.0, -0.05, 0.0, 0.0, 0.05, 0.06],
        [2, 0.0, 0.0, -0.1, 0.0, 0.0, 0.1, 0.06],
        [3, 0.0, 0.0, 0.0, -0.08, 0.1, 0.0, 0.05],
        [5, 0.0, 0.0, -0.05, 0.05, 0.0, 0.05, 0.05],
        [n, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.04],
        [n, 0.03, 0.02, 0.05, 0.03, 0.02, 0.05, 0.03],  # a sphere on the tip
    ])
    obstacles = np.array([
        obstacle(D.OBS_SPHERE, np.eye(3), [0.5, 0.3, 0.4], [0.1]),
        obstacle(D.OBS_BOX, rotation(np.random.default_rng(8)), [0.4, -0.3, 0.3],
                 [0.1, 0.15, 0.05]),
        obstacle(D.OBS_CYLINDER, rotation(np.random.default_rng(9)), [-0.3, 0.4, 0.5],
                 [0.08, 0.2]),
    ])
    pairs = np.array([[5, 0], [6, 0], [4, 0], [5, 1], [3, 0], [6, 2],
                      [2, -1], [3, -2], [4, -3], [5, -1], [5, -2], [6, -3], [1, -2]],
                     dtype=np.int64)
    return caps, obstacles, pairs


def distances_at(q, caps, obstacles, pairs, cutoff=np.inf):
    n = PANDA.dof
    frames = np.zeros((n + 1, 4, 4))
    fk_frames(PANDA.placements, PANDA.axes, PANDA.joint_types, np.asarray(q, float), frames)
    world = np.zeros((caps.shape[0], D.WORLD_WIDTH))
    D.capsules_to_base(frames, caps, world)
    out = np.zeros((pairs.shape[0], D.OUT_WIDTH))
    best = D.pair_distances(world, obstacles, pairs, cutoff, out)
    return frames, world, out, best


def test_distance_gradient_equals_central_difference_on_the_panda():
    """∂d/∂q of every pair (self pairs including capsules on the base and the tip,
    capsule–sphere/box/cylinder) equals the central difference of d(q) to 1e-6
    at random q where the pair is separated; a base capsule against an obstacle
    has a zero gradient."""
    caps, obstacles, pairs = panda_model()
    rng = np.random.default_rng(10)
    h = 1e-6
    n = PANDA.dof
    row = np.zeros(n)
    checked = 0
    for q in PANDA.random_configurations(20, rng):
        frames, _world, out, _best = distances_at(q, caps, obstacles, pairs)
        for p in range(pairs.shape[0]):
            if not out[p, 0] > 0.01:
                continue
            D.distance_gradient(frames, PANDA.axes, PANDA.joint_types, caps, pairs, out, p, row)
            fd = np.zeros(n)
            for j in range(n):
                dq = np.zeros(n)
                dq[j] = h
                plus = distances_at(q + dq, caps, obstacles, pairs)[2][p, 0]
                minus = distances_at(q - dq, caps, obstacles, pairs)[2][p, 0]
                fd[j] = (plus - minus) / (2 * h)
            np.testing.assert_allclose(row, fd, atol=1e-6)
            frame_a = int(caps[pairs[p, 0], 0])
            if pairs[p, 1] < 0:  # joints past the capsule's frame do not move it
                assert np.all(row[max(frame_a + 1, 0):] == 0.0)
            checked += 1
    assert checked > 100


def test_distance_gradient_of_a_bound_row_is_the_bounds_gradient():
    """A row written from bounding spheres (cutoff below its bound) gets the
    gradient of that bound: the central difference of the bound d(q)."""
    caps, obstacles, pairs = panda_model()
    rng = np.random.default_rng(11)
    n = PANDA.dof
    h = 1e-6
    row = np.zeros(n)
    cutoff = -1.0  # every non-half-space row is a bound
    for q in PANDA.random_configurations(5, rng):
        frames, _world, out, _best = distances_at(q, caps, obstacles, pairs, cutoff)
        for p in range(pairs.shape[0]):
            D.distance_gradient(frames, PANDA.axes, PANDA.joint_types, caps, pairs, out, p, row)
            fd = np.zeros(n)
            for j in range(n):
                dq = np.zeros(n)
                dq[j] = h
                plus = distances_at(q + dq, caps, obstacles, pairs, cutoff)[2][p, 0]
                minus = distances_at(q - dq, caps, obstacles, pairs, cutoff)[2][p, 0]
                fd[j] = (plus - minus) / (2 * h)
            np.testing.assert_allclose(row, fd, atol=1e-6)


def test_distance_gradient_of_a_prismatic_joint_is_the_normal_along_its_axis():
    """A prismatic joint moves the attached point along z_j: ∂d/∂q_j = nrm·z_j (and a
    point on the base frame does not move)."""
    n = 2
    frames = np.tile(np.eye(4), (n + 1, 1, 1))
    axes = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    joint_types = np.array([1, 1], dtype=np.int64)  # PRISMATIC
    caps = np.array([[n, 0, 0, 1.0, 0, 0, 1.0, 0.1], [-1, 0, 0, 0, 0, 0, 0, 0.1]])
    world = np.zeros((2, D.WORLD_WIDTH))
    D.capsules_to_base(frames, caps, world)
    pairs = np.array([[0, 1]], dtype=np.int64)
    out = np.zeros((1, D.OUT_WIDTH))
    D.pair_distances(world, np.zeros((0, D.OBS_WIDTH)), pairs, np.inf, out)
    row = np.zeros(n)
    D.distance_gradient(frames, axes, joint_types, caps, pairs, out, 0, row)
    np.testing.assert_allclose(row, [1.0, 0.0], atol=1e-15)


# ---------------------------------------------------------------------------- pair_distances
def mixed_scene(seed: int, self_pairs=30, obstacle_pairs=50):
    """Random capsules, obstacles of every type, pairs of both kinds."""
    rng = np.random.default_rng(seed)
    G = 16
    world = np.array([random_capsule(rng, spread=0.4, r_max=0.08) for _ in range(G)])
    world[3, 3:6] = world[3, :3]  # a sphere
    obstacles = np.array([random_obstacle(rng, typ) for typ in (0, 1, 2, 3, 0, 1, 2)])
    obstacles[:, 10:13] *= 2.0
    obstacles[:, 13:16] *= 0.5
    pairs = [tuple(int(i) for i in rng.choice(G, size=2, replace=False))
             for _ in range(self_pairs)]
    pairs += [(int(rng.integers(G)), -1 - int(rng.integers(len(obstacles))))
              for _ in range(obstacle_pairs)]
    return world, obstacles, np.array(pairs, dtype=np.int64)


def exact_rows(world, obstacles, pairs):
    rows = np.zeros((pairs.shape[0], D.OUT_WIDTH))
    for k, (i, j) in enumerate(pairs):
        rows[k] = compute(world[i], world[j] if j >= 0 else obstacles[-1 - j])
    return rows


def bound_of(world, obstacles, i, j) -> float:
    cap = world[i]
    c, rad = (cap[:3] + cap[3:6]) / 2, np.linalg.norm(cap[3:6] - cap[:3]) / 2 + cap[6]
    if j >= 0:
        o = world[j]
        oc, orad = (o[:3] + o[3:6]) / 2, np.linalg.norm(o[3:6] - o[:3]) / 2 + o[6]
    else:
        ob = obstacles[-1 - j]
        typ = int(ob[0])
        if typ == D.OBS_HALFSPACE:
            return -np.inf
        oc = ob[10:13]
        orad = {D.OBS_SPHERE: ob[13], D.OBS_BOX: np.linalg.norm(ob[13:16]),
                D.OBS_CYLINDER: np.hypot(ob[13], ob[14])}[typ]
    return float(np.linalg.norm(c - oc) - rad - orad)


@pytest.mark.parametrize("seed", range(5))
def test_pair_distances_without_cutoff_are_exact_and_return_the_argmin(seed):
    """cutoff = inf: every row equals its primitive's, and the returned index is the
    first pair of smallest d."""
    world, obstacles, pairs = mixed_scene(seed)
    out = np.zeros((pairs.shape[0], D.OUT_WIDTH))
    best = D.pair_distances(world, obstacles, pairs, np.inf, out)
    np.testing.assert_array_equal(out, exact_rows(world, obstacles, pairs))
    assert best == int(np.argmin(out[:, 0]))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("cutoff", [0.0, 0.1, 0.3])
def test_pair_distances_beyond_the_cutoff_are_lower_bounds(seed, cutoff):
    """Where the bounding spheres are farther apart than the cutoff the row holds
    that bound: d > cutoff, d ≤ the exact distance, pa − pb = d·nrm on the bounding
    spheres; every other row (half-spaces always) is the exact one; the returned
    index is the argmin of the written d."""
    world, obstacles, pairs = mixed_scene(seed)
    out = np.zeros((pairs.shape[0], D.OUT_WIDTH))
    best = D.pair_distances(world, obstacles, pairs, cutoff, out)
    exact = exact_rows(world, obstacles, pairs)
    bounded = 0
    for k, (i, j) in enumerate(pairs):
        bound = bound_of(world, obstacles, i, j)
        if bound > cutoff:
            assert out[k, 0] == pytest.approx(bound, abs=1e-12)
            assert cutoff < out[k, 0] <= exact[k, 0] + 1e-12
            np.testing.assert_allclose(out[k, 1:4] - out[k, 4:7], out[k, 0] * out[k, 7:10],
                                       atol=1e-12)
            assert abs(np.linalg.norm(out[k, 7:10]) - 1.0) < 1e-12
            bounded += 1
        else:
            np.testing.assert_array_equal(out[k], exact[k])
    assert 0 < bounded < pairs.shape[0]
    assert best == int(np.argmin(out[:, 0]))


def test_pair_distances_of_no_pairs_returns_minus_one():
    """P = 0: nothing written, −1 returned."""
    world, obstacles, _pairs = mixed_scene(0)
    out = np.zeros((0, D.OUT_WIDTH))
    assert D.pair_distances(world, obstacles, np.zeros((0, 2), dtype=np.int64), 0.1, out) == -1


# ---------------------------------------------------------------------------- compilation
def test_distance_kernels_compile_without_reference_counting():
    """Every kernel of the module is a ``jit.kernel`` (no NRT: numba refuses an
    allocation in it) and compiled for the calls above."""
    from numba.core.registry import CPUDispatcher

    found = {name: value for name, value in vars(D).items()
             if isinstance(value, CPUDispatcher) and value.__module__ == D.__name__}
    assert len(found) > 20
    for name, dispatcher in found.items():
        assert dispatcher.targetoptions.get("_nrt") is False, name
    world, obstacles, pairs = mixed_scene(1)
    out = np.zeros((pairs.shape[0], D.OUT_WIDTH))
    D.pair_distances(world, obstacles, pairs, 0.1, out)
    assert D.pair_distances.signatures and D.capsule_cylinder.signatures


@pytest.mark.slow
def test_distance_kernels_do_not_allocate_per_call():
    """Called N times from compiled code, capsules_to_base, pair_distances and
    distance_gradient make as many NRT allocations as when called once."""
    code = textwrap.dedent("""
        import numpy as np
        from numba import njit
        from numba.core.runtime import rtsys
        from jacobian_ik import Robot, bundled
        from jacobian_ik.kernels import distance as D
        from jacobian_ik.kernels.kinematics import fk_frames
        r = Robot.from_urdf(bundled.urdf_path('panda'), *bundled.robot_links('panda'))
        n = r.dof
        caps = np.array([[-1, 0, 0, 0, 0, 0, 0.3, 0.08], [n, 0, 0, 0, 0, 0, 0.1, 0.04],
                         [3, 0, 0, 0, -0.08, 0.1, 0, 0.05]])
        obstacles = np.zeros((4, 16))
        for k in range(4):
            obstacles[k, 0] = k
            obstacles[k, 1] = obstacles[k, 5] = obstacles[k, 9] = 1.0
            obstacles[k, 10:13] = (0.4, 0.1 * k, 0.3)
            obstacles[k, 13:16] = 0.1
        pairs = np.array([[1, 0], [2, 0], [1, -1], [1, -2], [2, -3], [1, -4]], dtype=np.int64)
        frames = np.zeros((n + 1, 4, 4))
        world = np.zeros((3, 7))
        out = np.zeros((6, 10))
        row = np.zeros(n)

        @njit
        def loop(m, P, A, T, q, frames, caps, world, obstacles, pairs, out, row):
            for i in range(m):
                q[0] += 1e-4
                fk_frames(P, A, T, q, frames)
                D.capsules_to_base(frames, caps, world)
                D.pair_distances(world, obstacles, pairs, 0.1, out)
                for p in range(pairs.shape[0]):
                    D.distance_gradient(frames, A, T, caps, pairs, out, p, row)
            return 0

        def allocations(m):
            q = r.q_mid.copy()
            before = rtsys.get_allocation_stats().alloc
            loop(m, r.placements, r.axes, r.joint_types, q, frames, caps, world, obstacles,
                 pairs, out, row)
            return rtsys.get_allocation_stats().alloc - before

        allocations(1)
        print(allocations(1), allocations(1000))
    """)
    once, many = nrt_allocations(code)
    assert once == many
