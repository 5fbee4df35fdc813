"""Signed distances between the robot's capsules and to the obstacles, for collision
avoidance: the pair distances of a cycle and the gradient ∂d/∂q of one pair.

Every function is a ``jit.kernel`` over float64 arrays that writes into arrays the
caller preallocated; nothing here allocates.

Data (all rows float64 unless stated):

``caps``       Shape (G, 8). Row ``[frame, ax, ay, az, bx, by, bz, r]``: the capsule is
               the set of points within r [m] of the segment a–b [m], expressed in
               chain frame ``frame`` (a float: −1 the base frame itself, 0..n
               ``frames[i]`` of ``kinematics.fk_frames``).  a == b is a sphere.
``world``      Shape (G, 7). Row ``[ax, ay, az, bx, by, bz, r]``: the capsule in the
               base frame (``capsules_to_base``).
``obstacles``  Shape (O, 16). Row ``[type, r00, r01, r02, r10, r11, r12, r20, r21, r22,
               px, py, pz, d0, d1, d2]``: ``T_base_obj`` (R row-major, p [m]) and the
               dimensions [m] of the ``OBS_*`` type (see the constants).  Obstacles do
               not move with the arm.
``pairs``      Shape (P, 2) int64. Row ``(i, j)``: capsule i against capsule j when
               j ≥ 0 (self collision), against obstacle ``−1 − j`` when j < 0.
``out``        Shape (P, 10). Row ``[d, pa(3), pb(3), nrm(3)]`` in the base frame:

               d     signed distance [m], negative in penetration;
               pa    the closest point on capsule i's surface [m] (in a
                     cylinder penetration see below);
               pb    the closest point on the other object's surface [m];
               nrm   unit vector from B toward A, the direction in which d grows
                     when A moves relative to B.  Always ``pa − pb = d·nrm``, so
                     ``nrm = (pa − pb)/d`` when d > 0.

Separated objects (d > 0): d, pa and pb are exact (closed form, or converged to
1e-13 in the segment parameter for the cylinder).

In penetration (the capsule's core segment within r of the other object):

* capsule–capsule, capsule–sphere, capsule–half-space, capsule–box: d is the
  exact signed distance, minus the penetration depth (the length of the shortest
  translation of A that separates the two), nrm that translation's direction,
  pa the capsule's deepest surface point along −nrm and pb the point of B it
  touches after the translation.  Capsule–capsule/sphere/half-space:
  ``d = dist(core, B's core) − r_A − r_B``; capsule–box see ``capsule_box``.
* capsule–cylinder, while the core segment stays outside the solid: again
  exactly ``d = dist(segment, cylinder) − r``.  Once the segment enters it,
  ``d = −(depth(x*) + r)`` with ``depth(x)`` the distance from x to the
  cylinder's surface and x* the segment's deepest point (the maximiser of the
  concave ``depth`` along the segment, found exactly): the penetration depth of
  the ball of radius r about x*.  nrm is the outward normal of the surface
  nearest x* (its push-out direction), pb that surface point and
  ``pa = x* − r·nrm`` (on the capsule's surface when nrm ⊥ segment, else inside
  the capsule).  |d| is a lower bound of the true penetration depth (the
  deepest ball of the capsule is not deeper than the capsule), continuous with
  the separated value −r where the segment touches the surface.

When a normal is undefined (crossing or coincident core segments, a sphere centre
on the segment, a deepest point on a cylinder's axis) it is chosen
deterministically: the normalised cross product of the two segment directions,
else a fixed perpendicular of the longer one, else +z (or the obstacle's x axis).
"""

import math

from jacobian_ik.kernels.jit import kernel
from jacobian_ik.kernels.kinematics import PRISMATIC, fk_frames

#: Obstacle types (column 0 of an obstacle row).
#: Sphere: d0 radius [m], centred at p.
OBS_SPHERE = 0
#: Box: d0, d1, d2 half extents [m] along the obstacle's x, y, z, centred at p.
OBS_BOX = 1
#: Cylinder: d0 radius [m], d1 half length [m] along the obstacle's z, centred at p.
OBS_CYLINDER = 2
#: Half-space: the solid {x : n·(x − p) ≤ 0}, n = the obstacle's z axis R[:, 2].
OBS_HALFSPACE = 3

#: Columns of a ``caps`` row.
CAP_FRAME = 0
CAP_A = 1
CAP_B = 4
CAP_R = 7
#: Width of a ``caps`` row.
CAP_WIDTH = 8
#: Width of a ``world`` row ``[a(3), b(3), r]``.
WORLD_WIDTH = 7
#: Columns of an ``obstacles`` row: type, R (row-major 3×3), p, dimensions.
OBS_TYPE = 0
OBS_R = 1
OBS_P = 10
OBS_DIM = 13
#: Width of an ``obstacles`` row.
OBS_WIDTH = 16
#: Columns of an ``out`` row: d, pa, pb, nrm.
OUT_D = 0
OUT_PA = 1
OUT_PB = 4
OUT_NRM = 7
#: Width of an ``out`` row.
OUT_WIDTH = 10

#: |u × v|² ≤ PARALLEL_EPS·|u|²|v|²: no interior segment–segment solution is tried
#: (the end-point candidates are exact for parallel segments).
PARALLEL_EPS = 1e-24
#: |u × v|² > CONDITIONED_EPS·|u|²|v|² (angle > 1e-3 rad): an interior segment–segment
#: solution is accurate to rounding and taken without the end-point candidates.
CONDITIONED_EPS = 1e-6
#: Relative size of a cross product below which two directions count as parallel
#: for the fallback normal.
NORMAL_PARALLEL_EPS = 1e-9
#: Distance [m] between core points below which their direction is noise: the
#: fallback normal is used (capsule, sphere) or the pair counts as penetrating (box,
#: cylinder: the core segment touches or meets the solid).
NORMAL_EPS = 1e-12
#: Convergence of the segment parameter t (unitless, in [0, 1]) of segment–cylinder.
CYLINDER_T_TOL = 1e-13
#: Most safeguarded Newton iterations of segment–cylinder (bisection alone needs 44).
CYLINDER_MAX_ITER = 100


# ============================================================================ small helpers
@kernel
def _clamp01(t):
    """t clamped to [0, 1]."""
    if t < 0.0:
        return 0.0
    if t > 1.0:
        return 1.0
    return t


@kernel
def _point_segment_t(px, py, pz, ax, ay, az, ux, uy, uz, uu):
    """Parameter t ∈ [0, 1] of the point a + t·u nearest to p; uu = u·u (0: t = 0)."""
    if uu <= 0.0:
        return 0.0
    return _clamp01(((px - ax) * ux + (py - ay) * uy + (pz - az) * uz) / uu)


@kernel
def _perpendicular(ux, uy, uz):
    """A unit vector perpendicular to u ≠ 0: u × e_k, e_k the axis of u's smallest
    component (ties: x before y before z)."""
    x = abs(ux)
    y = abs(uy)
    z = abs(uz)
    if x <= y and x <= z:  # u × e_x
        px, py, pz = 0.0, uz, -uy
    elif y <= z:  # u × e_y
        px, py, pz = -uz, 0.0, ux
    else:  # u × e_z
        px, py, pz = uy, -ux, 0.0
    s = 1.0 / math.sqrt(px * px + py * py + pz * pz)
    return px * s, py * s, pz * s


@kernel
def _fallback_normal(ux, uy, uz, vx, vy, vz):
    """Deterministic unit normal when the core points coincide: u × v normalised,
    else ``_perpendicular`` of the longer of u, v, else +z."""
    wx = uy * vz - uz * vy
    wy = uz * vx - ux * vz
    wz = ux * vy - uy * vx
    nu = math.sqrt(ux * ux + uy * uy + uz * uz)
    nv = math.sqrt(vx * vx + vy * vy + vz * vz)
    nw = math.sqrt(wx * wx + wy * wy + wz * wz)
    if nw > NORMAL_PARALLEL_EPS * nu * nv and nw > 0.0:
        return wx / nw, wy / nw, wz / nw
    if nu >= nv and nu > 0.0:
        return _perpendicular(ux, uy, uz)
    if nv > 0.0:
        return _perpendicular(vx, vy, vz)
    return 0.0, 0.0, 1.0


@kernel
def _write_row(row, d, pax, pay, paz, pbx, pby, pbz, nx, ny, nz):
    """``row = [d, pa, pb, nrm]``; returns d."""
    row[0] = d
    row[1] = pax
    row[2] = pay
    row[3] = paz
    row[4] = pbx
    row[5] = pby
    row[6] = pbz
    row[7] = nx
    row[8] = ny
    row[9] = nz
    return d


@kernel
def _write_spheres(row, cax, cay, caz, ra, cbx, cby, cbz, rb, ux, uy, uz):
    """Row of two spheres (centres ca, cb, radii [m]) whose core points are ca, cb:
    ``d = |ca − cb| − ra − rb``, ``nrm = (ca − cb)/|ca − cb|`` (fallback from the
    directions u and 0 when the centres coincide), ``pa = ca − ra·nrm``,
    ``pb = cb + rb·nrm``; returns d."""
    dx = cax - cbx
    dy = cay - cby
    dz = caz - cbz
    dist = math.sqrt(dx * dx + dy * dy + dz * dz)
    if dist > NORMAL_EPS:
        nx = dx / dist
        ny = dy / dist
        nz = dz / dist
    else:
        nx, ny, nz = _fallback_normal(ux, uy, uz, 0.0, 0.0, 0.0)
    return _write_row(row, dist - ra - rb, cax - ra * nx, cay - ra * ny, caz - ra * nz,
                      cbx + rb * nx, cby + rb * ny, cbz + rb * nz, nx, ny, nz)


@kernel
def _to_local(ob, x, y, z):
    """Coordinates in the obstacle frame of the base-frame point x: ``Rᵀ(x − p)``."""
    dx = x - ob[10]
    dy = y - ob[11]
    dz = z - ob[12]
    return (ob[1] * dx + ob[4] * dy + ob[7] * dz,
            ob[2] * dx + ob[5] * dy + ob[8] * dz,
            ob[3] * dx + ob[6] * dy + ob[9] * dz)


@kernel
def _rotate(ob, x, y, z):
    """The obstacle-frame vector v in the base frame: ``R v``."""
    return (ob[1] * x + ob[2] * y + ob[3] * z,
            ob[4] * x + ob[5] * y + ob[6] * z,
            ob[7] * x + ob[8] * y + ob[9] * z)


@kernel
def _to_base(ob, x, y, z):
    """The obstacle-frame point x in the base frame: ``R x + p``."""
    bx, by, bz = _rotate(ob, x, y, z)
    return bx + ob[10], by + ob[11], bz + ob[12]


@kernel
def _write_local(row, ob, d, cx, cy, cz, r, qx, qy, qz, nx, ny, nz):
    """Row from obstacle-frame quantities: core point c, surface point q of the
    obstacle, unit normal n (from the obstacle toward the capsule):
    ``pa = c − r·n``, ``pb = q``, all rotated to the base frame; returns d."""
    pax, pay, paz = _to_base(ob, cx - r * nx, cy - r * ny, cz - r * nz)
    pbx, pby, pbz = _to_base(ob, qx, qy, qz)
    bnx, bny, bnz = _rotate(ob, nx, ny, nz)
    return _write_row(row, d, pax, pay, paz, pbx, pby, pbz, bnx, bny, bnz)


# ============================================================================ frames
@kernel
def capsules_to_base(frames, caps, world):
    """Every capsule in the base frame: ``world[g] = [T a, T b, r]`` with
    ``T = frames[f]`` for ``f = caps[g, 0] ≥ 0`` and the identity for f = −1.
    Shapes: frames (n+1, 4, 4), caps (G, 8), world (G, 7)."""
    for g in range(caps.shape[0]):
        f = int(caps[g, 0])
        if f < 0:
            for c in range(6):
                world[g, c] = caps[g, 1 + c]
        else:
            T = frames[f]
            for e in range(2):
                x = caps[g, 1 + 3 * e]
                y = caps[g, 2 + 3 * e]
                z = caps[g, 3 + 3 * e]
                for r in range(3):
                    world[g, 3 * e + r] = T[r, 0] * x + T[r, 1] * y + T[r, 2] * z + T[r, 3]
        world[g, 6] = caps[g, 7]


# ============================================================================ segments
@kernel
def _segment_sq(ax, ay, az, ux, uy, uz, s, bx, by, bz, vx, vy, vz, t):
    """|a + s·u − (b + t·v)|² [m²]."""
    dx = ax + s * ux - bx - t * vx
    dy = ay + s * uy - by - t * vy
    dz = az + s * uz - bz - t * vz
    return dx * dx + dy * dy + dz * dz


@kernel
def segment_closest(ax, ay, az, ux, uy, uz, bx, by, bz, vx, vy, vz):
    """Parameters (s, t) ∈ [0, 1]² of the closest points a + s·u, b + t·v of two
    segments (any may have zero length, parallel ones included).

    ``f(s, t) = |a + s u − b − t v|²`` is a convex quadratic on the unit square:
    its minimum is the interior stationary point when that lies in the square,
    ``s = ((b − a) × v)·w / |w|²``, ``t = ((b − a) × u)·w / |w|²``, w = u × v, else
    on an edge, where it is an end point's nearest point on the other segment.
    An interior point of segments at more than 1e-3 rad is returned at once;
    otherwise all five candidates are evaluated and the smallest f is kept (first
    one on ties: interior, s = 0, s = 1, t = 0, t = 1), so rounding in the nearly
    parallel interior solution never costs accuracy.
    """
    uu = ux * ux + uy * uy + uz * uz
    vv = vx * vx + vy * vy + vz * vz
    best = math.inf
    bs = 0.0
    bt = 0.0
    if uu > 0.0 and vv > 0.0:
        wx = uy * vz - uz * vy
        wy = uz * vx - ux * vz
        wz = ux * vy - uy * vx
        ww = wx * wx + wy * wy + wz * wz
        if ww > PARALLEL_EPS * uu * vv:
            rx = bx - ax
            ry = by - ay
            rz = bz - az
            s = ((ry * vz - rz * vy) * wx + (rz * vx - rx * vz) * wy
                 + (rx * vy - ry * vx) * wz) / ww
            t = ((ry * uz - rz * uy) * wx + (rz * ux - rx * uz) * wy
                 + (rx * uy - ry * ux) * wz) / ww
            if 0.0 <= s <= 1.0 and 0.0 <= t <= 1.0:
                if ww > CONDITIONED_EPS * uu * vv:  # the exact minimum, well conditioned
                    return s, t
                best = _segment_sq(ax, ay, az, ux, uy, uz, s, bx, by, bz, vx, vy, vz, t)
                bs = s
                bt = t
    # s = 0 and s = 1: a, a + u against segment b
    for e in range(2):
        s = float(e)
        t = _point_segment_t(ax + s * ux, ay + s * uy, az + s * uz, bx, by, bz, vx, vy, vz, vv)
        f = _segment_sq(ax, ay, az, ux, uy, uz, s, bx, by, bz, vx, vy, vz, t)
        if f < best:
            best = f
            bs = s
            bt = t
    # t = 0 and t = 1: b, b + v against segment a
    for e in range(2):
        t = float(e)
        s = _point_segment_t(bx + t * vx, by + t * vy, bz + t * vz, ax, ay, az, ux, uy, uz, uu)
        f = _segment_sq(ax, ay, az, ux, uy, uz, s, bx, by, bz, vx, vy, vz, t)
        if f < best:
            best = f
            bs = s
            bt = t
    return bs, bt


# ============================================================================ primitives
@kernel
def capsule_capsule(cap_a, cap_b, row):
    """Capsule A against capsule B (``world`` rows, Shape (7,)) into ``row`` (10,);
    returns d.

    ``d = |ca − cb| − ra − rb`` with ca, cb the closest points of the core segments
    (``segment_closest``): exact, and the exact signed distance in penetration.
    ``nrm = (ca − cb)/|ca − cb|`` (fallback: u × v, see the module docstring),
    ``pa = ca − ra·nrm``, ``pb = cb + rb·nrm``.
    """
    ax = cap_a[0]
    ay = cap_a[1]
    az = cap_a[2]
    ux = cap_a[3] - ax
    uy = cap_a[4] - ay
    uz = cap_a[5] - az
    bx = cap_b[0]
    by = cap_b[1]
    bz = cap_b[2]
    vx = cap_b[3] - bx
    vy = cap_b[4] - by
    vz = cap_b[5] - bz
    s, t = segment_closest(ax, ay, az, ux, uy, uz, bx, by, bz, vx, vy, vz)
    cax = ax + s * ux
    cay = ay + s * uy
    caz = az + s * uz
    cbx = bx + t * vx
    cby = by + t * vy
    cbz = bz + t * vz
    dx = cax - cbx
    dy = cay - cby
    dz = caz - cbz
    dist = math.sqrt(dx * dx + dy * dy + dz * dz)
    if dist > NORMAL_EPS:
        nx = dx / dist
        ny = dy / dist
        nz = dz / dist
    else:
        nx, ny, nz = _fallback_normal(ux, uy, uz, vx, vy, vz)
    ra = cap_a[6]
    rb = cap_b[6]
    return _write_row(row, dist - ra - rb, cax - ra * nx, cay - ra * ny, caz - ra * nz,
                      cbx + rb * nx, cby + rb * ny, cbz + rb * nz, nx, ny, nz)


@kernel
def capsule_sphere(cap, ob, row):
    """Capsule (``world`` row) against an ``OBS_SPHERE`` obstacle row (radius d0,
    centre p) into ``row``; returns d.

    ``d = |c − p| − r − d0`` with c the point of the core segment nearest p:
    exact, the exact signed distance in penetration.  ``nrm = (c − p)/|c − p|``
    (fallback: perpendicular to the segment, +z for a sphere), ``pa = c − r·nrm``,
    ``pb = p + d0·nrm``.
    """
    ax = cap[0]
    ay = cap[1]
    az = cap[2]
    ux = cap[3] - ax
    uy = cap[4] - ay
    uz = cap[5] - az
    px = ob[10]
    py = ob[11]
    pz = ob[12]
    t = _point_segment_t(px, py, pz, ax, ay, az, ux, uy, uz, ux * ux + uy * uy + uz * uz)
    return _write_spheres(row, ax + t * ux, ay + t * uy, az + t * uz, cap[6], px, py, pz, ob[13],
                          ux, uy, uz)


@kernel
def capsule_halfspace(cap, ob, row):
    """Capsule (``world`` row) against an ``OBS_HALFSPACE`` obstacle row into
    ``row``; returns d.

    With n = R[:, 2] and the end point's heights ``h = n·(x − p)``:
    ``d = min(h_a, h_b) − r``, exact (also in penetration).  ``nrm = n``,
    ``pa = c − r·n`` for the lower end point c (a on ties), ``pb = pa − d·n``
    its foot on the boundary plane.
    """
    nx = ob[3]
    ny = ob[6]
    nz = ob[9]
    ha = nx * (cap[0] - ob[10]) + ny * (cap[1] - ob[11]) + nz * (cap[2] - ob[12])
    hb = nx * (cap[3] - ob[10]) + ny * (cap[4] - ob[11]) + nz * (cap[5] - ob[12])
    e = 0
    h = ha
    if hb < ha:
        e = 3
        h = hb
    r = cap[6]
    d = h - r
    pax = cap[e] - r * nx
    pay = cap[e + 1] - r * ny
    paz = cap[e + 2] - r * nz
    return _write_row(row, d, pax, pay, paz, pax - d * nx, pay - d * ny, paz - d * nz,
                      nx, ny, nz)


# ---------------------------------------------------------------------------- box
@kernel
def _box_breakpoint(a, u, h, t_lo, t_hi):
    """t_hi lowered to the first t ∈ (t_lo, t_hi) where a + t·u crosses ±h."""
    if u != 0.0:
        t = (h - a) / u
        if t_lo < t < t_hi:
            t_hi = t
        t = (-h - a) / u
        if t_lo < t < t_hi:
            t_hi = t
    return t_hi


@kernel
def _box_piece(a, u, h, tm):
    """One axis' terms (u², u·o) of the quadratic ``(o + t u)²`` of the squared
    distance on the piece containing tm: o = a ∓ h when a + tm·u lies beyond ±h,
    no term (0, 0) when within the slab."""
    x = a + tm * u
    if x > h:
        return u * u, u * (a - h)
    if x < -h:
        return u * u, u * (a + h)
    return 0.0, 0.0


@kernel
def _box_excess(x, h):
    """x minus its clamp to [−h, h]."""
    if x > h:
        return x - h
    if x < -h:
        return x + h
    return 0.0


@kernel
def _box_sq(ax, ay, az, ux, uy, uz, hx, hy, hz, t):
    """Squared distance [m²] from a + t·u to the box (box frame)."""
    ex = _box_excess(ax + t * ux, hx)
    ey = _box_excess(ay + t * uy, hy)
    ez = _box_excess(az + t * uz, hz)
    return ex * ex + ey * ey + ez * ez


@kernel
def _box_min_t(ax, ay, az, ux, uy, uz, hx, hy, hz):
    """(t*, f(t*)): the exact minimiser over t ∈ [0, 1] of the squared distance
    ``f(t) = Σ_k (|x_k(t)| − h_k)₊²`` from x(t) = a + t u to the box (box frame).

    f is convex and piecewise quadratic, with break points where a coordinate
    crosses ±h_k.  On each piece ``f = Σ_active (o_k + t u_k)²`` (o_k = a_k ∓ h_k) is
    minimised exactly, t = −Σ u_k o_k / Σ u_k² clamped to the piece, left to right
    until the minimum lies inside a piece (by convexity the global one).  An
    infinite h_k leaves axis k out."""
    t_lo = 0.0
    best_f = math.inf
    best_t = 0.0
    for _piece in range(8):  # ≤ 6 break points: ≤ 7 pieces
        t_hi = 1.0
        t_hi = _box_breakpoint(ax, ux, hx, t_lo, t_hi)
        t_hi = _box_breakpoint(ay, uy, hy, t_lo, t_hi)
        t_hi = _box_breakpoint(az, uz, hz, t_lo, t_hi)
        tm = 0.5 * (t_lo + t_hi)
        qx, lx = _box_piece(ax, ux, hx, tm)
        qy, ly = _box_piece(ay, uy, hy, tm)
        qz, lz = _box_piece(az, uz, hz, tm)
        quad = qx + qy + qz
        t = tm  # f is constant on the piece: its midpoint, clear of the break points
        if quad > 0.0:
            t = -(lx + ly + lz) / quad
            if t < t_lo:
                t = t_lo
            elif t > t_hi:
                t = t_hi
        f = _box_sq(ax, ay, az, ux, uy, uz, hx, hy, hz, t)
        if f < best_f:
            best_f = f
            best_t = t
        if t < t_hi or t_hi >= 1.0:
            break
        t_lo = t_hi
    return best_t, best_f


@kernel
def _axis(k, x, y, z):
    """Component k (0, 1, 2) of (x, y, z)."""
    if k == 0:
        return x
    if k == 1:
        return y
    return z


@kernel
def _edge_normal(k, ux, uy, uz):
    """``e_k × u``: the normal of the faces of box ⊕ segment swept by the edges along
    e_k."""
    if k == 0:
        return 0.0, -uz, uy
    if k == 1:
        return uz, 0.0, -ux
    return -uy, ux, 0.0


@kernel
def capsule_box(cap, ob, row):
    """Capsule (``world`` row) against an ``OBS_BOX`` obstacle row (half extents
    h = d0, d1, d2) into ``row``; returns d.

    Separated core (in the box frame, x(t) = a + t u): ``d = √f(t*) − r`` with
    f(t*) the exact minimum of the squared distance along the segment
    (``_box_min_t``), pb the box point nearest x(t*),
    ``nrm = (x − pb)/|x − pb|``, ``pa = x − r·nrm``.

    Core segment meeting the box (within ``NORMAL_EPS``): the exact signed
    distance ``d = −(D + r)``, D the distance from the origin to the boundary of
    K = box ⊕ (−segment) (the translations of the segment that meet the box):
    ``D = min_n h_K(n)`` over
    unit n, attained at a facet normal of K, so over the 12 candidates ±e_k (the
    box's faces) and ±(e_k × u)/|e_k × u| (its edges swept along the segment),
    with ``h_K(n) = Σ_k h_k |n_k| − min(n·a, n·b)``.  nrm is the minimising n
    (the shortest push-out of the capsule), pa the capsule's deepest point
    along −nrm, pb the box point it touches after that push (on the face, or the
    edge point nearest the core segment).
    """
    ax, ay, az = _to_local(ob, cap[0], cap[1], cap[2])
    bx, by, bz = _to_local(ob, cap[3], cap[4], cap[5])
    ux = bx - ax
    uy = by - ay
    uz = bz - az
    hx = ob[13]
    hy = ob[14]
    hz = ob[15]
    r = cap[6]
    t, f = _box_min_t(ax, ay, az, ux, uy, uz, hx, hy, hz)
    cx = ax + t * ux
    cy = ay + t * uy
    cz = az + t * uz
    dist = math.sqrt(f)
    if dist > NORMAL_EPS:
        ex = _box_excess(cx, hx)
        ey = _box_excess(cy, hy)
        ez = _box_excess(cz, hz)
        return _write_local(row, ob, dist - r, cx, cy, cz, r, cx - ex, cy - ey, cz - ez,
                            ex / dist, ey / dist, ez / dist)
    # the core segment meets the box: the nearest facet of box ⊕ (−segment)
    best = math.inf
    best_i = 0
    for i in range(6):  # faces: n = σ e_k
        k = i // 2
        sg = 1.0 if i % 2 == 0 else -1.0
        lo = sg * _axis(k, ax, ay, az)
        hi = sg * _axis(k, bx, by, bz)
        depth = _axis(k, hx, hy, hz) - (lo if lo < hi else hi)
        if depth < best:
            best = depth
            best_i = i
    uu = math.sqrt(ux * ux + uy * uy + uz * uz)
    for k in range(3):  # edges along e_k swept along u: n = ±(e_k × u)/|e_k × u|
        wx, wy, wz = _edge_normal(k, ux, uy, uz)
        nw = math.sqrt(wx * wx + wy * wy + wz * wz)
        if not nw > NORMAL_PARALLEL_EPS * uu:
            continue
        h_n = (hx * abs(wx) + hy * abs(wy) + hz * abs(wz)) / nw
        n_a = (wx * ax + wy * ay + wz * az) / nw
        if h_n - n_a < best:
            best = h_n - n_a
            best_i = 6 + 2 * k
        if h_n + n_a < best:
            best = h_n + n_a
            best_i = 7 + 2 * k
    if best_i < 6:
        k = best_i // 2
        sg = 1.0 if best_i % 2 == 0 else -1.0
        nx = sg if k == 0 else 0.0
        ny = sg if k == 1 else 0.0
        nz = sg if k == 2 else 0.0
        su = sg * _axis(k, ux, uy, uz)
        if su > 0.0:
            t = 0.0
        elif su < 0.0:
            t = 1.0
        else:  # parallel to the face: a core point over the face
            t, _f = _box_min_t(ax, ay, az, ux, uy, uz, math.inf if k == 0 else hx,
                               math.inf if k == 1 else hy, math.inf if k == 2 else hz)
        cx = ax + t * ux
        cy = ay + t * uy
        cz = az + t * uz
        qx = sg * hx if k == 0 else cx
        qy = sg * hy if k == 1 else cy
        qz = sg * hz if k == 2 else cz
        return _write_local(row, ob, -best - r, cx, cy, cz, r, qx, qy, qz, nx, ny, nz)
    k = (best_i - 6) // 2
    sg = 1.0 if best_i % 2 == 0 else -1.0
    wx, wy, wz = _edge_normal(k, ux, uy, uz)
    nw = sg / math.sqrt(wx * wx + wy * wy + wz * wz)
    nx = wx * nw
    ny = wy * nw
    nz = wz * nw
    # the edge along e_k on the box's side of n: the other coordinates ±h_j by n's signs
    ex = hx if nx >= 0.0 else -hx
    ey = hy if ny >= 0.0 else -hy
    ez = hz if nz >= 0.0 else -hz
    vx = 0.0
    vy = 0.0
    vz = 0.0
    if k == 0:
        ex = -hx
        vx = 2.0 * hx
    elif k == 1:
        ey = -hy
        vy = 2.0 * hy
    else:
        ez = -hz
        vz = 2.0 * hz
    s, t = segment_closest(ax, ay, az, ux, uy, uz, ex, ey, ez, vx, vy, vz)
    return _write_local(row, ob, -best - r, ax + s * ux, ay + s * uy, az + s * uz, r,
                        ex + t * vx, ey + t * vy, ez + t * vz, nx, ny, nz)


# ---------------------------------------------------------------------------- cylinder
@kernel
def _cylinder_slope(t, ax, ay, az, ux, uy, uz, R, H):
    """``g = ½ f'(t)`` and ``g' = ½ f''(t)`` of the squared distance f from
    x(t) = a + t u to the solid cylinder (radius R, half length H along z):
    ``g = (x − proj x)·u`` with the radial excess ``(1 − R/ρ)(x, y)`` beyond ρ > R
    and the axial one ``z ∓ H`` beyond |z| > H;
    ``g' = (R/ρ³)((x, y)·(ux, uy))² + (1 − R/ρ)(ux² + uy²) + [|z| > H] uz²``."""
    x = ax + t * ux
    y = ay + t * uy
    z = az + t * uz
    g = 0.0
    dg = 0.0
    rho = math.sqrt(x * x + y * y)
    if rho > R:
        er = 1.0 - R / rho
        xu = x * ux + y * uy
        g += er * xu
        dg += R * xu * xu / (rho * rho * rho) + er * (ux * ux + uy * uy)
    if z > H:
        g += (z - H) * uz
        dg += uz * uz
    elif z < -H:
        g += (z + H) * uz
        dg += uz * uz
    return g, dg


@kernel
def _cylinder_project(x, y, z, R, H):
    """Nearest point of the solid cylinder to (x, y, z) (itself when inside)."""
    rho = math.sqrt(x * x + y * y)
    qx = x
    qy = y
    if rho > R:
        s = R / rho
        qx = x * s
        qy = y * s
    qz = z
    if z > H:
        qz = H
    elif z < -H:
        qz = -H
    return qx, qy, qz


@kernel
def _cylinder_depth(t, ax, ay, az, ux, uy, uz, R, H):
    """Depth ``min(R − ρ, H − |z|)`` of a + t·u in the cylinder (negative outside)."""
    x = ax + t * ux
    y = ay + t * uy
    z = az + t * uz
    dr = R - math.sqrt(x * x + y * y)
    dz = H - abs(z)
    return dr if dr < dz else dz


@kernel
def _cylinder_min_t(ax, ay, az, ux, uy, uz, R, H):
    """The t ∈ [0, 1] minimising the convex, C¹ squared distance f(t) from a + t u to
    the cylinder: the root of the nondecreasing g = ½ f' by Newton's method
    safeguarded by bisection of the bracket (``rtsafe``), to ``CYLINDER_T_TOL``
    (Newton step or bracket width)."""
    g0, _dg = _cylinder_slope(0.0, ax, ay, az, ux, uy, uz, R, H)
    if g0 >= 0.0:
        return 0.0
    g1, _dg = _cylinder_slope(1.0, ax, ay, az, ux, uy, uz, R, H)
    if g1 <= 0.0:
        return 1.0
    lo = 0.0
    hi = 1.0
    t = g0 / (g0 - g1)  # secant start
    if not 0.0 < t < 1.0:
        t = 0.5
    dx_old = 1.0
    dx = 1.0
    for _it in range(CYLINDER_MAX_ITER):
        g, dg = _cylinder_slope(t, ax, ay, az, ux, uy, uz, R, H)
        if g == 0.0:
            return t
        if g < 0.0:
            lo = t
        else:
            hi = t
        if hi - lo <= CYLINDER_T_TOL:
            return 0.5 * (lo + hi)
        tn = -1.0
        if dg > 0.0:
            step = g / dg
            if abs(step) <= CYLINDER_T_TOL:  # converged (the bracket may still be wide)
                tn = t - step
                return lo if tn < lo else (hi if tn > hi else tn)
            tn = t - step
        if not lo < tn < hi or abs(2.0 * g) > abs(dx_old * dg):
            dx_old = dx
            dx = 0.5 * (hi - lo)
            tn = lo + dx
        else:
            dx_old = dx
            dx = tn - t
        t = tn
        if abs(dx) <= CYLINDER_T_TOL:
            return t
    return t


@kernel
def _quadratic_roots(A, B, C):
    """Real roots of ``A t² + B t + C = 0`` (numerically stable form); NaN for a
    missing one (a degenerate equation gives its linear root, or none)."""
    if A == 0.0:
        if B == 0.0:
            return math.nan, math.nan
        return -C / B, math.nan
    disc = B * B - 4.0 * A * C
    if disc < 0.0:
        return math.nan, math.nan
    sq = math.sqrt(disc)
    qq = -0.5 * (B + sq) if B >= 0.0 else -0.5 * (B - sq)
    if qq == 0.0:
        return 0.0, 0.0
    return qq / A, C / qq


@kernel
def _cylinder_try(t, best_t, best_depth, ax, ay, az, ux, uy, uz, R, H):
    """(best_t, best_depth) updated with candidate t when t ∈ [0, 1] is deeper."""
    if 0.0 <= t <= 1.0:
        depth = _cylinder_depth(t, ax, ay, az, ux, uy, uz, R, H)
        if depth > best_depth:
            return t, depth
    return best_t, best_depth


@kernel
def capsule_cylinder(cap, ob, row):
    """Capsule (``world`` row) against an ``OBS_CYLINDER`` obstacle row (radius
    R = d0, half length H = d1 along its z, centred at p) into ``row``; returns d.

    In the cylinder frame ``f(t) = dist²(a + t u, cylinder)`` is convex and C¹ in t;
    its minimiser t* solves ½ f'(t) = (x − proj x)·u = 0, found by safeguarded
    Newton to 1e-13 in t (``_cylinder_min_t``).  Separated core: ``d = √f(t*) − r``,
    pb the cylinder point nearest x(t*), ``nrm = (x − pb)/|x − pb|``,
    ``pa = x − r·nrm``.

    Core segment meeting the cylinder (within ``NORMAL_EPS``): the deepest point
    x* maximises the concave ``depth(t) = min(R − ρ(t), H − |z(t)|)``; its maximum
    is at t = 0, 1, the segment's closest approach to the axis, its crossing of
    z = 0, or where ``ρ(t) = R − H ± z(t)`` (a quadratic in t for each sign: all
    roots are tried).
    ``d = −depth − r``; nrm radial ``(x, y, 0)/ρ`` (the cylinder's x axis on the
    axis) when the side is nearest, else ``±z`` toward the nearer cap (+z at z = 0),
    pb the deepest point's projection onto that surface, ``pa = x* − r·nrm``.
    """
    ax, ay, az = _to_local(ob, cap[0], cap[1], cap[2])
    bx, by, bz = _to_local(ob, cap[3], cap[4], cap[5])
    ux = bx - ax
    uy = by - ay
    uz = bz - az
    R = ob[13]
    H = ob[14]
    r = cap[6]
    t = _cylinder_min_t(ax, ay, az, ux, uy, uz, R, H)
    cx = ax + t * ux
    cy = ay + t * uy
    cz = az + t * uz
    qx, qy, qz = _cylinder_project(cx, cy, cz, R, H)
    ex = cx - qx
    ey = cy - qy
    ez = cz - qz
    dist = math.sqrt(ex * ex + ey * ey + ez * ez)
    if dist > NORMAL_EPS:
        return _write_local(row, ob, dist - r, cx, cy, cz, r, qx, qy, qz,
                            ex / dist, ey / dist, ez / dist)
    # the core segment meets the cylinder: its deepest point
    best_t = 0.0
    best_depth = _cylinder_depth(0.0, ax, ay, az, ux, uy, uz, R, H)
    best_t, best_depth = _cylinder_try(1.0, best_t, best_depth, ax, ay, az, ux, uy, uz, R, H)
    qa = ux * ux + uy * uy
    qb = 2.0 * (ax * ux + ay * uy)
    qc = ax * ax + ay * ay
    if qa > 0.0:
        best_t, best_depth = _cylinder_try(-0.5 * qb / qa, best_t, best_depth,
                                           ax, ay, az, ux, uy, uz, R, H)
    if uz != 0.0:
        best_t, best_depth = _cylinder_try(-az / uz, best_t, best_depth,
                                           ax, ay, az, ux, uy, uz, R, H)
    for e in range(2):
        sg = 1.0 if e == 0 else -1.0
        c0 = R - H + sg * az
        c1 = sg * uz
        t1, t2 = _quadratic_roots(qa - c1 * c1, qb - 2.0 * c0 * c1, qc - c0 * c0)
        best_t, best_depth = _cylinder_try(t1, best_t, best_depth, ax, ay, az, ux, uy, uz, R, H)
        best_t, best_depth = _cylinder_try(t2, best_t, best_depth, ax, ay, az, ux, uy, uz, R, H)
    cx = ax + best_t * ux
    cy = ay + best_t * uy
    cz = az + best_t * uz
    rho = math.sqrt(cx * cx + cy * cy)
    dr = R - rho
    dz = H - abs(cz)
    if dr < dz:
        if rho > 0.0:
            nx = cx / rho
            ny = cy / rho
        else:
            nx = 1.0
            ny = 0.0
        return _write_local(row, ob, -dr - r, cx, cy, cz, r, R * nx, R * ny, cz, nx, ny, 0.0)
    nz = 1.0 if cz >= 0.0 else -1.0
    return _write_local(row, ob, -dz - r, cx, cy, cz, r, cx, cy, nz * H, 0.0, 0.0, nz)


# ============================================================================ pairs
@kernel
def capsule_obstacle(cap, ob, row):
    """Capsule against obstacle row ``ob`` of any ``OBS_*`` type into ``row``;
    returns d.  An unknown type is never near: d = +inf (pa the capsule's a, pb
    the obstacle's p, nrm +z)."""
    typ = int(ob[0])
    if typ == OBS_SPHERE:
        return capsule_sphere(cap, ob, row)
    if typ == OBS_BOX:
        return capsule_box(cap, ob, row)
    if typ == OBS_CYLINDER:
        return capsule_cylinder(cap, ob, row)
    if typ == OBS_HALFSPACE:
        return capsule_halfspace(cap, ob, row)
    return _write_row(row, math.inf, cap[0], cap[1], cap[2], ob[10], ob[11], ob[12],
                      0.0, 0.0, 1.0)


@kernel
def obstacle_radius(ob):
    """Radius [m] of the obstacle's circumscribed sphere about p: sphere d0, box
    |(d0, d1, d2)|, cylinder √(d0² + d1²); +inf for a half-space (and unknown types)."""
    typ = int(ob[0])
    if typ == OBS_SPHERE:
        return ob[13]
    if typ == OBS_BOX:
        return math.sqrt(ob[13] * ob[13] + ob[14] * ob[14] + ob[15] * ob[15])
    if typ == OBS_CYLINDER:
        return math.sqrt(ob[13] * ob[13] + ob[14] * ob[14])
    return math.inf


@kernel
def _capsule_sphere_bound(cap):
    """Bounding sphere of a ``world`` row: centre (a + b)/2, radius |b − a|/2 + r."""
    ux = cap[3] - cap[0]
    uy = cap[4] - cap[1]
    uz = cap[5] - cap[2]
    return (0.5 * (cap[0] + cap[3]), 0.5 * (cap[1] + cap[4]), 0.5 * (cap[2] + cap[5]),
            0.5 * math.sqrt(ux * ux + uy * uy + uz * uz) + cap[6], ux, uy, uz)


@kernel
def pair_distances(world, obstacles, pairs, cutoff, out):
    """Distance of every pair into ``out`` (Shape (P, 10), see the module docstring);
    returns the index of the pair with the smallest d (the first on ties; −1 for
    P = 0).

    First a lower bound from bounding spheres (capsule: centre (a + b)/2, radius
    |b − a|/2 + r; sphere, box, cylinder: the circumscribed sphere about p):
    ``d_lb = |c_A − c_B| − ρ_A − ρ_B``.  Where ``d_lb > cutoff`` [m] the row holds
    the bound: d = d_lb, pa and pb the bounding spheres' closest points, nrm
    along ``c_A − c_B`` (so ``distance_gradient`` gives the bound's gradient), and
    no exact computation is made.  Otherwise, and always for a half-space (its
    distance is as cheap as a bound), the exact primitive.  cutoff = inf: every
    row exact.  Shapes: world (G, 7), obstacles (O, 16), pairs (P, 2) int64.
    """
    best = -1
    best_d = math.inf
    for k in range(pairs.shape[0]):
        cap = world[pairs[k, 0]]
        j = pairs[k, 1]
        row = out[k]
        cx, cy, cz, ra, ux, uy, uz = _capsule_sphere_bound(cap)
        if j >= 0:
            other = world[j]
            ox, oy, oz, rb, _vx, _vy, _vz = _capsule_sphere_bound(other)
            dx = cx - ox
            dy = cy - oy
            dz = cz - oz
            bound = math.sqrt(dx * dx + dy * dy + dz * dz) - ra - rb
            if bound > cutoff:
                d = _write_spheres(row, cx, cy, cz, ra, ox, oy, oz, rb, ux, uy, uz)
            else:
                d = capsule_capsule(cap, other, row)
        else:
            ob = obstacles[-1 - j]
            rb = obstacle_radius(ob)
            d = math.inf
            if rb < math.inf:
                dx = cx - ob[10]
                dy = cy - ob[11]
                dz = cz - ob[12]
                bound = math.sqrt(dx * dx + dy * dy + dz * dz) - ra - rb
                if bound > cutoff:
                    d = _write_spheres(row, cx, cy, cz, ra, ob[10], ob[11], ob[12], rb,
                                       ux, uy, uz)
                else:
                    d = capsule_obstacle(cap, ob, row)
            else:
                d = capsule_obstacle(cap, ob, row)
        if best < 0 or d < best_d:
            best = k
            best_d = d
    return best


# ============================================================================ gradient
@kernel
def _point_rate(frames, axes, joint_types, f, px, py, pz, nx, ny, nz, sign, row):
    """``row[j] += sign · nᵀ ∂x/∂q_j`` for the point x attached to chain frame f
    (−1: the base, fixed): revolute ``z_j × (x − o_j)``, prismatic ``z_j``, for
    j ≤ min(f, n − 1), ``z_j = frames[j][:3, :3]·axes[j]``, ``o_j = frames[j][:3, 3]``."""
    n = axes.shape[0]
    last = f if f < n - 1 else n - 1
    for j in range(last + 1):
        F = frames[j]
        ax = axes[j, 0]
        ay = axes[j, 1]
        az = axes[j, 2]
        zx = F[0, 0] * ax + F[0, 1] * ay + F[0, 2] * az
        zy = F[1, 0] * ax + F[1, 1] * ay + F[1, 2] * az
        zz = F[2, 0] * ax + F[2, 1] * ay + F[2, 2] * az
        if joint_types[j] == PRISMATIC:
            row[j] += sign * (nx * zx + ny * zy + nz * zz)
        else:
            dx = px - F[0, 3]
            dy = py - F[1, 3]
            dz = pz - F[2, 3]
            row[j] += sign * (nx * (zy * dz - zz * dy) + ny * (zz * dx - zx * dz)
                              + nz * (zx * dy - zy * dx))


@kernel
def distance_gradient(frames, axes, joint_types, caps, pairs, out, p, row):
    """∂d/∂q of pair p (from its ``out`` row at the configuration of ``frames``) into
    ``row[:n]`` (Shape (n,)): ``ḋ = nrmᵀ (v(pa) − v(pb))`` with v the velocity of the
    point as attached to its capsule's chain frame (``_point_rate``); an obstacle
    does not move.  Shapes: frames (n+1, 4, 4), axes (n, 3), joint_types (n,),
    caps (G, 8), pairs (P, 2), out (P, 10).

    For a separated pair the closest points move with their bodies at first order
    (envelope theorem); in penetration, and for a bounding-sphere row, the same
    formula is the derivative of the row's d (pa − ca is along nrm, so the
    rotation of the body adds nothing)."""
    n = axes.shape[0]
    for j in range(n):
        row[j] = 0.0
    o = out[p]
    nx = o[7]
    ny = o[8]
    nz = o[9]
    _point_rate(frames, axes, joint_types, int(caps[pairs[p, 0], 0]), o[1], o[2], o[3],
                nx, ny, nz, 1.0, row)
    other = pairs[p, 1]
    if other >= 0:
        _point_rate(frames, axes, joint_types, int(caps[other, 0]), o[4], o[5], o[6],
                    nx, ny, nz, -1.0, row)


@kernel
def path_min_distance(placements, axes, joint_types, q_start, step, samples, frames, caps,
                      world, obstacles, pairs, cutoff, out, q_probe):
    """Smallest pair distance [m] at ``q_start + step·t`` for t = i/samples,
    i = 1..samples (the straight joint-space path, without its start): exact where it
    is below ``cutoff``, else a lower bound above it (``pair_distances``).  ``frames``
    Shape (n+1, 4, 4), ``world`` (G, 7), ``out`` (P, 10) and ``q_probe`` (n,) are
    scratch; +inf without pairs."""
    lowest = math.inf
    if pairs.shape[0] == 0:
        return lowest
    n = q_start.shape[0]
    for i in range(1, samples + 1):
        t = i / samples
        for j in range(n):
            q_probe[j] = q_start[j] + step[j] * t
        fk_frames(placements, axes, joint_types, q_probe, frames)
        capsules_to_base(frames, caps, world)
        k = pair_distances(world, obstacles, pairs, cutoff, out)
        if out[k, OUT_D] < lowest:
            lowest = out[k, OUT_D]
    return lowest
