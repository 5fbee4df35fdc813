"""Joint-space derivatives of the geometric Jacobian and of its smallest singular value.

``jacobian_derivative`` gives ``∂J/∂q_k`` for every joint k (the kinematic
Hessian of the tip), ``sigma_min_gradient`` the gradient ``∂σ/∂q`` of a smooth
lower bound of σ_min of the task Jacobian (or of σ_min itself).  Both are
``jit.kernel`` functions over float64 arrays and write into arrays the caller
preallocated; nothing here allocates.

Conventions are those of ``jacobian_ik.kernels.kinematics``: J is the base-frame
geometric Jacobian of the tip origin, Shape (6, n), linear rows on top; a task
uses the rows ``rows`` (k of them) of J; the task Jacobian has m = min(k, n)
singular values.
"""

import math

from jacobian_ik.kernels.jit import kernel
from jacobian_ik.kernels.kinematics import gram_matrix

#: Largest number of Jacobi sweeps of the m × m eigenproblem (m ≤ 6 converges
#: in ≤ 8; the bound only matters for non-finite input).
MAX_EIG_SWEEPS = 30

#: A Jacobi rotation is skipped when it would turn the eigenvectors by less than
#: EIG_ANGLE_TOL [rad] (weighted, see ``_gram_eigen``) or when |G_pq| ≤
#: EIG_ABS_TOL·tr(G) (below the rounding error of G's entries themselves).
EIG_ANGLE_TOL = 1e-10
EIG_ABS_TOL = 1e-18

#: A singular value σ_i ≤ NULL_SIGMA_RATIO·√tr(G) is numerically zero: its
#: vector on the other side of the SVD is not taken from J (0/0) but chosen as a
#: unit vector orthogonal to the other singular vectors (a null vector).
NULL_SIGMA_RATIO = 1e-9

#: Singular values with (σ_i − σ_1)/τ above this weigh e^-45 < 1e-19 in the
#: soft-min: their vectors are not computed.
SOFTMIN_CUTOFF = 45.0


#: Planes (s × s each) of the ``work`` array of ``sigma_min_gradient``.
GRADIENT_SCRATCH_PLANES = 7


def sigma_gradient_scratch_shape(n):
    """Shape of the ``work`` array of ``sigma_min_gradient`` for an n-joint arm:
    (GRADIENT_SCRATCH_PLANES, s, s) with s = max(6, n)."""
    s = max(6, int(n))
    return (GRADIENT_SCRATCH_PLANES, s, s)


@kernel
def jacobian_derivative(frames, axes, joint_types, J, dJ):
    """Derivative of the base-frame geometric Jacobian with respect to each joint.

    ``dJ[k] = ∂J/∂q_k``, Shape (n, 6, n), from J (6, n) of ``jacobian_from_frames``.
    With column i of J written ``[a_i; w_i]`` (a_i = z_i × (p_tip − p_i) and
    w_i = z_i for a revolute joint, a_i = z_i and w_i = 0 for a prismatic one):

        ∂a_i/∂q_k = w_k × a_i   if k ≤ i
                    w_i × a_k   if k > i
        ∂w_i/∂q_k = w_k × w_i   if k < i
                    0           if k ≥ i

    Joint k moves every frame after it: a revolute joint rotates downstream
    vectors (∂z/∂q_k = z_k × z) and points (∂p/∂q_k = z_k × (p − p_k)), a
    prismatic one translates points (∂p/∂q_k = z_k).  For k ≤ i joint i's axis and
    origin and the tip all move rigidly with joint k, so the column turns with
    it: ∂[a_i; w_i] = w_k × [a_i; w_i] (by the Jacobi identity for a_i; k = i adds
    nothing, a joint's axis is fixed under its own motion; a prismatic k only
    translates them, w_k = 0).  For k > i only the tip moves, by a_k, so
    ∂a_i = z_i × a_k for a revolute i and 0 for a prismatic i (w_i = 0).  The
    linear block is symmetric, ∂a_i/∂q_k = ∂a_k/∂q_i, as a Hessian of the tip
    position must be.

    Every term is a cross product of J's columns (prismatic columns have w = 0),
    so only J and ``joint_types`` are read; ``frames`` (n+1, 4, 4) and ``axes``
    (n, 3) are the ones J was built from and keep the signature of the other
    kinematics kernels.
    """
    n = J.shape[1]
    for k in range(n):
        D = dJ[k]
        if joint_types[k] == 1:  # PRISMATIC: w_k = 0
            kx = 0.0
            ky = 0.0
            kz = 0.0
        else:
            kx = J[3, k]
            ky = J[4, k]
            kz = J[5, k]
        for i in range(n):
            if k <= i:
                ax = J[0, i]
                ay = J[1, i]
                az = J[2, i]
                D[0, i] = ky * az - kz * ay
                D[1, i] = kz * ax - kx * az
                D[2, i] = kx * ay - ky * ax
                if k < i:
                    wx = J[3, i]
                    wy = J[4, i]
                    wz = J[5, i]
                    D[3, i] = ky * wz - kz * wy
                    D[4, i] = kz * wx - kx * wz
                    D[5, i] = kx * wy - ky * wx
                else:
                    D[3, i] = 0.0
                    D[4, i] = 0.0
                    D[5, i] = 0.0
            else:
                # symmetric linear block: ∂a_i/∂q_k = w_i × a_k = ∂a_k/∂q_i
                S = dJ[i]
                D[0, i] = S[0, k]
                D[1, i] = S[1, k]
                D[2, i] = S[2, k]
                D[3, i] = 0.0
                D[4, i] = 0.0
                D[5, i] = 0.0


@kernel
def _gram_eigen(G, E, m, rot, T, warm):
    """Jacobi eigendecomposition of the symmetric ``G[:m, :m]`` in place.

    On return ``G[i, i]`` are the eigenvalues and the columns of ``E[:m, :m]``
    the orthonormal eigenvectors: G_in = E diag(G_ii) Eᵀ.  A rotation in the
    plane (p, q) zeroes G_pq with t = tan φ = 2 G_pq sgn(δ)/(|δ| + √(δ² + 4 G_pq²)),
    δ = G_qq − G_pp (for |G_pq| < 10⁻³|δ| by its series t = x − x³ + 2x⁵,
    x = G_pq/δ, and c = cos φ = (1 + t²)^(−1/2) by its series, both exact to
    rounding).  The planes are visited in round-robin order: each round is a set
    of disjoint planes whose rotations are computed independently, then applied.

    A plane is left when the rotation would turn the eigenvectors by less than
    ``EIG_ANGLE_TOL``, weighted by the ratio √(max(G_pp, G_qq)/min(G_pp, G_qq))
    of the two singular values (so the other side Aᵀu/σ of a small σ is resolved
    to that relative accuracy too):
    G_pq² max(G_pp, G_qq) ≤ tol² δ² min(G_pp, G_qq), or when |G_pq| ≤
    ``EIG_ABS_TOL``·tr(G).

    With ``warm`` the iteration starts from the basis in E (the last call's
    eigenvectors, for a G that changed little): E is re-orthonormalised
    (Gram–Schmidt) and G replaced by EᵀGE, which is then nearly diagonal; an
    E that is not a basis (a column whose norm after projection is outside
    (1/2, 2), or not finite) is replaced by I.  Without ``warm`` E starts as I.  The result is the same
    decomposition to the tolerance above either way.  ``rot`` (≥ 4, ≥ ⌈m/2⌉)
    and T (≥ m, ≥ m) are scratch.  Returns tr(G) (≤ 0: G is zero; not finite:
    G had non-finite entries; then E = I).
    """
    trace = 0.0
    for i in range(m):
        trace += G[i, i]
    if not (trace > 0.0 and trace < math.inf):
        warm = False
    if warm:
        for j in range(m):
            for p in range(j):
                dot = 0.0
                for r in range(m):
                    dot += E[r, p] * E[r, j]
                for r in range(m):
                    E[r, j] -= dot * E[r, p]
            nrm = 0.0
            for r in range(m):
                nrm += E[r, j] * E[r, j]
            if not (nrm > 0.25 and nrm < 4.0):
                warm = False
                break
            inv = 1.0 / math.sqrt(nrm)
            for r in range(m):
                E[r, j] *= inv
    if warm:
        for i in range(m):  # T = G E
            for j in range(m):
                acc = 0.0
                for r in range(m):
                    acc += G[i, r] * E[r, j]
                T[i, j] = acc
        for i in range(m):  # G = Eᵀ T
            for j in range(i + 1):
                acc = 0.0
                for r in range(m):
                    acc += E[r, i] * T[r, j]
                G[i, j] = acc
                G[j, i] = acc
    else:
        for i in range(m):
            for j in range(m):
                E[i, j] = 1.0 if i == j else 0.0
    if not (trace > 0.0 and trace < math.inf):
        return trace
    floor = EIG_ABS_TOL * trace
    tol2 = EIG_ANGLE_TOL * EIG_ANGLE_TOL
    players = m + (m & 1)  # round-robin over an even number of indices
    last = players - 1
    half = players // 2
    for _sweep in range(MAX_EIG_SWEEPS):
        rotated = False
        for rnd in range(last):
            for slot in range(half):
                # circle method: index `last` meets rnd, the others pair up around it
                if slot == 0:
                    p = rnd
                    q = last
                else:
                    p = rnd + slot
                    if p >= last:
                        p -= last
                    q = rnd - slot
                    if q < 0:
                        q += last
                    if p > q:
                        p, q = q, p
                rot[0, slot] = 0.0
                if q >= m:
                    continue
                apq = G[p, q]
                app = G[p, p]
                aqq = G[q, q]
                delta = aqq - app
                big = app if app > aqq else aqq
                small = aqq if app > aqq else app
                if abs(apq) <= floor or apq * apq * big <= tol2 * delta * delta * small:
                    continue
                if abs(apq) < 1e-3 * abs(delta):
                    x = apq / delta
                    x2 = x * x
                    t = x * (1.0 - x2 * (1.0 - 2.0 * x2))
                    t2 = t * t
                    c = 1.0 - t2 * (0.5 - t2 * (0.375 - 0.3125 * t2))
                else:
                    g2 = 2.0 * apq
                    root = math.sqrt(delta * delta + g2 * g2)
                    if delta >= 0.0:
                        t = g2 / (delta + root)
                    else:
                        t = -g2 / (root - delta)
                    c = 1.0 / math.sqrt(1.0 + t * t)
                rot[0, slot] = t
                rot[1, slot] = c
                rot[2, slot] = p
                rot[3, slot] = q
            for slot in range(half):
                t = rot[0, slot]
                if t == 0.0:
                    continue
                rotated = True
                c = rot[1, slot]
                s = t * c
                p = int(rot[2, slot])
                q = int(rot[3, slot])
                apq = G[p, q]
                G[p, p] -= t * apq
                G[q, q] += t * apq
                G[p, q] = 0.0
                G[q, p] = 0.0
                for r in range(m):
                    if r != p and r != q:
                        grp = G[r, p]
                        grq = G[r, q]
                        G[r, p] = c * grp - s * grq
                        G[p, r] = G[r, p]
                        G[r, q] = s * grp + c * grq
                        G[q, r] = G[r, q]
                    erp = E[r, p]
                    erq = E[r, q]
                    E[r, p] = c * erp - s * erq
                    E[r, q] = s * erp + c * erq
        if not rotated:
            break
    return trace


@kernel
def _null_partner(dJ, rows, E, O, M, B, W, rot, small_side, d, m, i, done):
    """Column i of ``O[:d, :m]`` ← the partner vector x of a zero singular value.

    x ranges over the unit vectors orthogonal to the columns j of O with
    ``done[j] > 0`` (orthonormal): for the zero σ_i these are the null vectors
    of A (k ≤ n) or of Aᵀ (k > n) that are not taken.  To first order
    σ_i(q + ε δq) ≥ ε |g(x)·δq| for each of them, with g_j(x) = e_iᵀ ∂A/∂q_j x
    (e_i = column i of E) when k ≤ n, resp. xᵀ ∂A/∂q_j e_i, i.e. g(x) = M x.
    The x of largest ‖P Mᵀ M P‖ eigenvalue (P the projector on the allowed
    space) maximizes ‖g‖: the direction in which σ_i provably grows fastest.
    When M P = 0, x is the unit vector e_l whose part outside the taken columns
    is largest, orthogonalised.  Scratch: M (n, d), B (d, d), W (d, d), rot (≥ 4, ≥ d).
    """
    n = dJ.shape[0]
    k = rows.shape[0]
    # M[j, :] = g_j as a linear function of x
    for j in range(n):
        D = dJ[j]
        if small_side:  # x = v ∈ R^n: g_j = Σ_r u_r D[rows[r], c] x_c
            for c in range(d):
                s = 0.0
                for r in range(k):
                    s += E[r, i] * D[rows[r], c]
                M[j, c] = s
        else:  # x = u ∈ R^k: g_j = Σ_r x_r Σ_c D[rows[r], c] v_c
            for r in range(d):
                s = 0.0
                for c in range(n):
                    s += D[rows[r], c] * E[c, i]
                M[j, r] = s
    # M ← M P
    for jj in range(m):
        if done[jj] > 0.0:
            for j in range(n):
                s = 0.0
                for c in range(d):
                    s += M[j, c] * O[c, jj]
                for c in range(d):
                    M[j, c] -= s * O[c, jj]
    # B = (M P)ᵀ (M P), its top eigenvector
    for a in range(d):
        for b in range(a + 1):
            s = 0.0
            for j in range(n):
                s += M[j, a] * M[j, b]
            B[a, b] = s
            B[b, a] = s
    trace = _gram_eigen(B, W, d, rot, M, False)
    best = 0
    for a in range(d):
        if B[a, a] > B[best, best]:
            best = a
    if trace > 0.0 and B[best, best] > 1e-24 * trace:
        for r in range(d):
            O[r, i] = W[r, best]
    else:
        best = 0
        best_res = -1.0
        for l in range(d):
            res = 1.0
            for jj in range(m):
                if done[jj] > 0.0:
                    res -= O[l, jj] * O[l, jj]
            if res > best_res:
                best_res = res
                best = l
        for r in range(d):
            O[r, i] = 1.0 if r == best else 0.0
    # orthogonalise against the taken columns (twice) and normalise
    for _pass in range(2):
        for jj in range(m):
            if done[jj] > 0.0:
                dot = 0.0
                for r in range(d):
                    dot += O[r, jj] * O[r, i]
                for r in range(d):
                    O[r, i] -= dot * O[r, jj]
        nrm = 0.0
        for r in range(d):
            nrm += O[r, i] * O[r, i]
        nrm = math.sqrt(nrm)
        if nrm > 0.0:
            for r in range(d):
                O[r, i] /= nrm


@kernel
def sigma_min_gradient(J, dJ, rows, G, work, grad, tau):
    """Soft-min h of the task Jacobian's singular values and its gradient ∂h/∂q.

    The task Jacobian A = ``J[rows]`` (k × n, J Shape (6, n)) has the m = min(k, n)
    singular values σ_i with unit vectors A v_i = σ_i u_i, Aᵀ u_i = σ_i v_i.  Then

        ∂σ_i/∂q_j = u_iᵀ (∂A/∂q_j) v_i,      ∂A/∂q_j = ``dJ[j][rows]``  (dJ Shape (n, 6, n)
                                                         from ``jacobian_derivative``)
        h = σ_1 − τ log Σ_i exp(−(σ_i − σ_1)/τ),  σ_1 = min_i σ_i
        ∂h/∂q_j = Σ_i π_i ∂σ_i/∂q_j,  π_i = exp(−(σ_i − σ_1)/τ) / Σ_l exp(−(σ_l − σ_1)/τ)

    so σ_1 − τ log m ≤ h ≤ σ_1, h → σ_1 as τ → 0, and h is smooth where σ_1 is
    repeated (the weights of a repeated value are equal, and the sum of its
    ∂σ_i does not depend on the basis chosen in its singular subspace).  With
    ``tau`` ≤ 0 [same unit as σ] h = σ_1 and ``grad`` is ∂σ_1/∂q (of the first
    smallest value if it is repeated).  Returns h; writes ``grad`` Shape (n,).

    The vectors come from a Jacobi eigendecomposition (``_gram_eigen``) of the
    m × m Gram matrix (``gram_matrix``: A Aᵀ when k ≤ n, its eigenvectors are
    the u_i; AᵀA when k > n, the v_i), its eigenvalues λ_i give σ_i ≈ √λ_i.
    Only the σ_i that can carry weight, (σ_i − σ_1)/τ < ``SOFTMIN_CUTOFF`` (σ_1
    alone when τ ≤ 0; all when σ_1 may be zero), get their other side Aᵀu_i/σ_i
    (resp. A v_i/σ_i) with σ_i = ‖Aᵀu_i‖ (resp. ‖A v_i‖), accurate also for small
    σ_i; the others weigh < e^-45 and are left out of h and grad.  A σ_i below
    ``NULL_SIGMA_RATIO``·√tr(G) counts as zero, where σ_i is not differentiable
    (σ_i = |s| for a smooth s nearby): its other-side vector is then the unit
    null vector, orthogonal to the other singular vectors, whose term
    g = u_iᵀ ∂A/∂q v_i is largest (``_null_partner``).  Then to first order
    σ_i(q + ε δq) ≥ ε |g·δq| for every δq: g is a one-sided gradient, a step
    along +g or −g raises σ_i at least at the rate ‖g‖.  If J is zero all σ_i
    are 0; if J is not finite, h = 0 and grad = 0.

    ``work`` also carries the eigenvectors from one call to the next: when
    ``work[2, 2, 0]`` equals this call's m (set by the last call), the Jacobi
    iteration starts from them (``_gram_eigen`` with ``warm``), which saves
    about half the rotations when J changed little since, as between control
    cycles.  The result does not depend on it beyond the eigenvector tolerance
    (``EIG_ANGLE_TOL``); any content of work is safe.  Zero work for a call
    independent of the last.

    Shapes: rows (k,) int64; G (≥ m, ≥ m), overwritten; ``work`` (7, s, s),
    s = max(6, n) (``sigma_gradient_scratch_shape``): work[0] holds the Gram
    eigenvectors (m × m), work[1] the other-side vectors (max(k, n) × m, the
    columns with weight), work[2] row 0 the σ_i, row 1 the weights π_i, row 2
    the start marker, row 3 scratch; work[3] ends as W = Σ_i π_i u_i v_iᵀ
    (k × n); work[3:7] are scratch.
    """
    k = rows.shape[0]
    n = J.shape[1]
    for j in range(n):
        grad[j] = 0.0
    small_side = k <= n
    # G = A Aᵀ (k × k) when k ≤ n, else AᵀA (n × n)
    m = gram_matrix(J, rows, G)
    d = n if small_side else k
    E = work[0]
    O = work[1]
    sig = work[2][0]
    wts = work[2][1]
    state = work[2][2]
    trace = _gram_eigen(G, E, m, work[6], work[3], state[0] == m)
    if not trace < math.inf or trace != trace:
        state[0] = 0.0
        return 0.0
    state[0] = m
    thresh = NULL_SIGMA_RATIO * math.sqrt(trace)
    # σ_i ≈ √λ_i, exact to ~√(ε tr G); only the σ_i that can carry weight get
    # their other side (wts[i] = 1 marks them)
    i_min = 0
    for i in range(m):
        sig[i] = math.sqrt(G[i, i]) if G[i, i] > 0.0 else 0.0
        if sig[i] < sig[i_min]:
            i_min = i
    s1 = sig[i_min]
    for i in range(m):
        if s1 <= 1e3 * thresh:  # σ_1 may be zero: every vector is needed
            wts[i] = 1.0
        elif tau > 0.0:
            wts[i] = 1.0 if (sig[i] - s1) / tau < SOFTMIN_CUTOFF else 0.0
        else:
            wts[i] = 1.0 if i == i_min else 0.0
    # other side: O[:, i] = Aᵀ u_i or A v_i, normalised; σ_i its norm
    any_null = False
    for i in range(m):
        if wts[i] == 0.0:
            continue
        if small_side:
            for c in range(n):
                O[c, i] = 0.0
            for r in range(k):
                Jr = J[rows[r]]
                eri = E[r, i]
                for c in range(n):
                    O[c, i] += Jr[c] * eri
        else:
            for r in range(k):
                Jr = J[rows[r]]
                acc = 0.0
                for c in range(n):
                    acc += Jr[c] * E[c, i]
                O[r, i] = acc
        nrm = 0.0
        for c in range(d):
            nrm += O[c, i] * O[c, i]
        sig[i] = math.sqrt(nrm)
        if sig[i] > thresh:
            inv = 1.0 / sig[i]
            for c in range(d):
                O[c, i] *= inv
        else:
            wts[i] = 0.5  # a zero σ_i: its partner is chosen below
            any_null = True
    if any_null:
        done = work[2][3]
        for i in range(m):
            if wts[i] == 0.5:
                for j in range(m):
                    done[j] = 1.0 if wts[j] == 1.0 else 0.0
                _null_partner(dJ, rows, E, O, work[3], work[4], work[5], work[6], small_side,
                              d, m, i, done)
                wts[i] = 1.0
    # weights over the σ_i with vectors (the others weigh < e^-SOFTMIN_CUTOFF)
    i_min = -1
    for i in range(m):
        if wts[i] > 0.0 and (i_min < 0 or sig[i] < sig[i_min]):
            i_min = i
    s1 = sig[i_min]
    if tau > 0.0:
        total = 0.0
        for i in range(m):
            if wts[i] > 0.0:
                x = (sig[i] - s1) / tau
                wts[i] = math.exp(-x) if x < SOFTMIN_CUTOFF else 0.0
                total += wts[i]
        h = s1 - tau * math.log(total)
        for i in range(m):
            wts[i] /= total
    else:
        h = s1
        for i in range(m):
            wts[i] = 0.0
        wts[i_min] = 1.0
    # ∂h/∂q_j = Σ_i π_i u_iᵀ dJ[j][rows] v_i = ⟨dJ[j][rows], W⟩, W = Σ_i π_i u_i v_iᵀ (k × n)
    if small_side:
        U = E
        V = O
    else:
        U = O
        V = E
    W = work[3]
    for r in range(k):
        for c in range(n):
            W[r, c] = 0.0
    for i in range(m):
        w = wts[i]
        if w < 1e-17:  # below rounding of the sum
            continue
        for r in range(k):
            wu = w * U[r, i]
            for c in range(n):
                W[r, c] += wu * V[c, i]
    for j in range(n):
        D = dJ[j]
        acc = 0.0
        for r in range(k):
            row = rows[r]
            for c in range(n):
                acc += D[row, c] * W[r, c]
        grad[j] = acc
    return h
