"""The barrier rows of the control QP: each barrier appends rows ``a·dq ≥ b``.

The QP of a control cycle (``kernels.control.inverse_phase``, solved by
``kernels.qp.rows_qp``) keeps the arm inside its box of joint velocities and
satisfies every row of ``A dq ≥ b``.  Row 0 is the σ_min barrier; the collision
barrier appends one row per pair of the collision model closer than
collision_influence_distance.  A new barrier is one more function here that
writes its rows; the solver does not change.

Every row is relaxed to what the braking command achieves,
``b ← min(b, a·dq_brake)``: the brake (always inside the box) satisfies every row,
so the QP always has an admissible start, and a row the acceleration limits cannot
honour yet asks no more than braking does.

σ_min barrier (row 0)::

    ∇h·dq ≥ −γ (h − σ_b)          h the soft-min of the singular values,
                                   σ_b = sigma_stop (1 + BARRIER_MARGIN)

Collision barrier (one row per pair p with d_p < d_influence)::

    ∂d_p/∂q · dq ≥ −γ_c (d_p − d_stop − COLLISION_MARGIN)

where d_p is the pair's signed distance [m] and ∂d_p/∂q = nᵀ(J_a − J_b) from the
point Jacobians at the closest points (``kernels.distance.distance_gradient``).
In discrete time d_p approaches d_stop + COLLISION_MARGIN no faster than ``(1 − γ_c dt)``
per cycle:
the arm slides along the obstacle while the rest of the twist is delivered.
"""

import math

from jacobian_ik.kernels.distance import distance_gradient
from jacobian_ik.kernels.jit import kernel

#: The collision rows aim this far [m] beyond collision_stop_distance: sliding along
#: the barrier, the one-cycle measurement delay and the rows' first-order model let a
#: pair settle up to 0.6 mm below their aim (bench_collisions), so no pair comes
#: closer than the stop distance itself.
COLLISION_MARGIN = 0.002


@kernel
def relax_to_brake(a, b, brake):
    """``min(b, a·dq_brake)``: the row's bound, relaxed so that the brake keeps it."""
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * brake[i]
    return b if b < s else s


@kernel
def sigma_row(grad, brake, h_sigma, sigma_floor, gain, a_row):
    """Row 0, the σ_min barrier: ``a = ∇h`` (Shape (n,), zero where the gradient was
    not computed: the row is then void); returns
    ``b = min(−γ(h − σ_b), ∇h·dq_brake)``."""
    for i in range(grad.shape[0]):
        a_row[i] = grad[i]
    return relax_to_brake(grad, -gain * (h_sigma - sigma_floor), brake)


@kernel
def nearest_pairs(dist, first, influence, row_pair, start, capacity):
    """Pick the pairs (indices ≥ ``first``) whose distance ``dist[p, 0]`` [m] is below
    ``influence``, at most ``capacity`` of them and the nearest ones when more are
    in range, into ``row_pair[start:start + count]`` (as floats); returns count."""
    count = 0
    for p in range(first, dist.shape[0]):
        d = dist[p, 0]
        if not d < influence:
            continue
        if count < capacity:
            row_pair[start + count] = p
            count += 1
            continue
        # full: replace the farthest chosen pair if this one is nearer
        worst = start
        for r in range(start + 1, start + count):
            if dist[int(row_pair[r]), 0] > dist[int(row_pair[worst]), 0]:
                worst = r
        if d < dist[int(row_pair[worst]), 0]:
            row_pair[worst] = p
    return count


@kernel
def collision_rows(frames, axes, joint_types, caps, pairs, dist, first, stop, influence,
                   gain, brake, A, b, row_pair, start):
    """The collision rows: for the nearest pairs (index ≥ ``first``) with distance
    below ``influence`` [m], at most ``A.shape[0] − start`` of them, the rows
    ``∂d/∂q·dq ≥ min(−gain (d − stop − COLLISION_MARGIN), ∂d/∂q·dq_brake)`` into
    ``A[start:]`` (Shape (R, n)) and ``b[start:]``, their pair index into
    ``row_pair``; returns how many.
    ``dist`` (Shape (P, 10)) holds this cycle's ``kernels.distance.pair_distances``
    at the configuration whose ``frames`` are given."""
    count = nearest_pairs(dist, first, influence, row_pair, start, A.shape[0] - start)
    for r in range(start, start + count):
        p = int(row_pair[r])
        a = A[r]
        distance_gradient(frames, axes, joint_types, caps, pairs, dist, p, a)
        b[r] = relax_to_brake(a, -gain * (dist[p, 0] - stop - COLLISION_MARGIN), brake)
    return count


@kernel
def rows_margin(A, b, m, x):
    """``min_k (A[k]·x − b[k])`` over the first m rows (+inf for none): ≥ 0 when x
    keeps every row."""
    worst = math.inf
    for k in range(m):
        s = -b[k]
        for i in range(x.shape[0]):
            s += A[k, i] * x[i]
        if s < worst:
            worst = s
    return worst
