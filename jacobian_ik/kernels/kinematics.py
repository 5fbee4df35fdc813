"""Kinematics kernels of a serial chain: forward kinematics, geometric Jacobian,
singular values and the damped least squares step.

Every function is a ``jit.kernel``, works on float64 arrays, and writes its
results into arrays the caller preallocated (see ``jacobian_ik.robot.Workspace``):
nothing here allocates, so the kernels can run inside a control cycle.

The chain (built by ``jacobian_ik.robot.Robot``) is described by three arrays:

``placements``   Shape (n+1, 4, 4). ``placements[0]`` is ``T_base_joint0`` at
                 zero joint motion; ``placements[i]`` (0 < i < n) is
                 ``T_joint(i-1)_joint(i)``; ``placements[n]`` is ``T_joint(n-1)_tip``.
``axes``         Shape (n, 3). Unit joint axis in the joint's own frame.
``joint_types``  Shape (n,), int64: ``REVOLUTE`` (also continuous) or ``PRISMATIC``.

Joint motion is applied after the placement:
``T_base_joint(i) = T_base_joint(i-1) · placements[i] · M_i(q_i)`` where ``M_i`` is a
rotation by ``q_i`` [rad] about ``axes[i]`` or a translation by ``q_i`` [m] along it.

Twists and Jacobian rows are ordered linear first: ``(vx, vy, vz, wx, wy, wz)``.
A task may use a subset of those rows (``rows``, int64 indices into 0..5): position
only is ``rows = [0, 1, 2]``.
"""

import math

from jacobian_ik.kernels.jit import kernel, view

REVOLUTE = 0
PRISMATIC = 1

#: Largest number of Jacobi sweeps of the SVD; 6x7 problems converge in < 10.
MAX_SVD_SWEEPS = 60


@kernel
def fk_frames(placements, axes, joint_types, q, frames):
    """Frames of every joint and of the tip, in the base frame.

    ``frames[i] = T_base_joint(i)`` after joint i's motion, for i < n, and
    ``frames[n] = T_base_tip``.  Shapes: placements (n+1, 4, 4), axes (n, 3),
    joint_types (n,), q (n,) [rad | m], frames (n+1, 4, 4), written in place.
    """
    n = q.shape[0]
    for i in range(n + 1):
        P = placements[i]
        F = frames[i]
        if i == 0:
            for r in range(4):
                for c in range(4):
                    F[r, c] = P[r, c]
        else:
            G = frames[i - 1]
            for r in range(3):
                g0 = G[r, 0]
                g1 = G[r, 1]
                g2 = G[r, 2]
                for c in range(4):
                    F[r, c] = g0 * P[0, c] + g1 * P[1, c] + g2 * P[2, c]
                F[r, 3] += G[r, 3]
            F[3, 0] = 0.0
            F[3, 1] = 0.0
            F[3, 2] = 0.0
            F[3, 3] = 1.0
        if i < n:
            ax = axes[i, 0]
            ay = axes[i, 1]
            az = axes[i, 2]
            if joint_types[i] == PRISMATIC:
                d = q[i]
                for r in range(3):
                    F[r, 3] += d * (F[r, 0] * ax + F[r, 1] * ay + F[r, 2] * az)
            else:
                # Rodrigues: R = I + s K + (1 - c) K^2, K = [axis]x
                s = math.sin(q[i])
                c = math.cos(q[i])
                v = 1.0 - c
                r00 = c + v * ax * ax
                r01 = v * ax * ay - s * az
                r02 = v * ax * az + s * ay
                r10 = v * ax * ay + s * az
                r11 = c + v * ay * ay
                r12 = v * ay * az - s * ax
                r20 = v * ax * az - s * ay
                r21 = v * ay * az + s * ax
                r22 = c + v * az * az
                for r in range(3):
                    f0 = F[r, 0]
                    f1 = F[r, 1]
                    f2 = F[r, 2]
                    F[r, 0] = f0 * r00 + f1 * r10 + f2 * r20
                    F[r, 1] = f0 * r01 + f1 * r11 + f2 * r21
                    F[r, 2] = f0 * r02 + f1 * r12 + f2 * r22


@kernel
def jacobian_from_frames(frames, axes, joint_types, J):
    """Geometric Jacobian of the tip in the base frame, from ``fk_frames`` output.

    Column i: revolute ``[z_i × (p_tip − p_i); z_i]``, prismatic ``[z_i; 0]`` with
    ``z_i`` the joint axis and ``p_i`` the joint origin, both in the base frame.
    ``J`` Shape (6, n), linear rows on top, maps dq [rad/s | m/s] to the tip twist
    (v [m/s] of the tip origin, ω [rad/s]) expressed in the base frame.
    """
    n = J.shape[1]
    T = frames[n]
    px = T[0, 3]
    py = T[1, 3]
    pz = T[2, 3]
    for i in range(n):
        F = frames[i]
        ax = axes[i, 0]
        ay = axes[i, 1]
        az = axes[i, 2]
        zx = F[0, 0] * ax + F[0, 1] * ay + F[0, 2] * az
        zy = F[1, 0] * ax + F[1, 1] * ay + F[1, 2] * az
        zz = F[2, 0] * ax + F[2, 1] * ay + F[2, 2] * az
        if joint_types[i] == PRISMATIC:
            J[0, i] = zx
            J[1, i] = zy
            J[2, i] = zz
            J[3, i] = 0.0
            J[4, i] = 0.0
            J[5, i] = 0.0
        else:
            dx = px - F[0, 3]
            dy = py - F[1, 3]
            dz = pz - F[2, 3]
            J[0, i] = zy * dz - zz * dy
            J[1, i] = zz * dx - zx * dz
            J[2, i] = zx * dy - zy * dx
            J[3, i] = zx
            J[4, i] = zy
            J[5, i] = zz


@kernel
def rotate_jacobian_to_tip(T_base_tip, J_base, J_tip):
    """Express a base-frame Jacobian in the tip frame: ``J_tip = diag(Rᵀ, Rᵀ) J_base``.

    R is the rotation of ``T_base_tip``.  The reference point stays the tip origin,
    so this equals pinocchio's ``LOCAL`` frame Jacobian.  Shapes (4, 4), (6, n), (6, n).
    ``J_tip`` must not alias ``J_base``.
    """
    n = J_base.shape[1]
    for i in range(n):
        for blk in range(2):
            o = 3 * blk
            a0 = J_base[o, i]
            a1 = J_base[o + 1, i]
            a2 = J_base[o + 2, i]
            for r in range(3):
                J_tip[o + r, i] = T_base_tip[0, r] * a0 + T_base_tip[1, r] * a1 + T_base_tip[2, r] * a2


@kernel
def fk_jacobian(placements, axes, joint_types, q, frames, J):
    """``fk_frames`` then ``jacobian_from_frames``: tip pose in ``frames[n]``, J (6, n)."""
    fk_frames(placements, axes, joint_types, q, frames)
    jacobian_from_frames(frames, axes, joint_types, J)


@kernel
def singular_value_count(n_rows, n_joints):
    """How many singular values a (n_rows × n_joints) task Jacobian has: min(k, n)."""
    return n_rows if n_rows < n_joints else n_joints


@kernel
def jacobi_svd(J, rows, work, V, sv, want_vectors, u_min, v_min):
    """Singular values of the task Jacobian ``J[rows, :]`` by one-sided Jacobi.

    With k = len(rows) and n = J.shape[1], the task Jacobian has m = min(k, n)
    singular values; they are written to ``sv[:m]`` in descending order and m is
    returned.  Only these m values exist, so an arm with fewer joints than task
    rows (a 2-link planar arm asked for a 6-D twist) reports σ_min = σ_m, which
    is zero only at a real singularity of that arm.

    One-sided Jacobi orthogonalises the columns of A = J_taskᵀ (n × k) when
    k ≤ n, else of A = J_task (k × n), by plane rotations; the column norms are
    then the singular values, to high relative accuracy even when σ_min is tiny
    (unlike eigenvalues of J Jᵀ).  Column norms are updated analytically between
    rotations (α' = α − tγ, β' = β + tγ) and recomputed exactly at the end.

    With ``want_vectors`` the rotations are accumulated in V, and ``u_min[:k]``
    gets the unit task-space direction (left singular vector, in the ordering of
    ``rows``) and ``v_min[:n]`` the unit joint-space direction (right singular
    vector) of σ_min.  Their common sign makes the largest-magnitude entry of
    ``v_min`` positive.

    Workspace: work (≥ max(k,n), ≥ min(k,n)), V (≥ min(k,n), ≥ min(k,n)), and
    sv (≥ 2 min(k,n)): its upper half holds the running column norms.
    """
    k = rows.shape[0]
    n = J.shape[1]
    transpose = k <= n
    m_rows = n if transpose else k
    m_cols = k if transpose else n
    if transpose:
        for i in range(n):
            for j in range(k):
                work[i, j] = J[rows[j], i]
    else:
        for i in range(k):
            for j in range(n):
                work[i, j] = J[rows[i], j]
    if want_vectors:
        for i in range(m_cols):
            for j in range(m_cols):
                V[i, j] = 1.0 if i == j else 0.0
    norms = sv[m_cols:]
    for j in range(m_cols):
        acc = 0.0
        for i in range(m_rows):
            acc += work[i, j] * work[i, j]
        norms[j] = acc

    eps = 1e-15
    for _sweep in range(MAX_SVD_SWEEPS):
        rotated = False
        for p in range(m_cols - 1):
            for r in range(p + 1, m_cols):
                gamma = 0.0
                for i in range(m_rows):
                    gamma += work[i, p] * work[i, r]
                alpha = norms[p]
                beta = norms[r]
                if gamma == 0.0 or abs(gamma) <= eps * math.sqrt(alpha * beta):
                    continue
                rotated = True
                zeta = (beta - alpha) / (2.0 * gamma)
                if zeta >= 0.0:
                    t = 1.0 / (zeta + math.sqrt(1.0 + zeta * zeta))
                else:
                    t = -1.0 / (-zeta + math.sqrt(1.0 + zeta * zeta))
                c = 1.0 / math.sqrt(1.0 + t * t)
                s = c * t
                norms[p] = alpha - t * gamma
                norms[r] = beta + t * gamma
                for i in range(m_rows):
                    wp = work[i, p]
                    wr = work[i, r]
                    work[i, p] = c * wp - s * wr
                    work[i, r] = s * wp + c * wr
                if want_vectors:
                    for i in range(m_cols):
                        vp = V[i, p]
                        vr = V[i, r]
                        V[i, p] = c * vp - s * vr
                        V[i, r] = s * vp + c * vr
        if not rotated:
            break

    i_min = 0
    for j in range(m_cols):
        acc = 0.0
        for i in range(m_rows):
            acc += work[i, j] * work[i, j]
        sv[j] = math.sqrt(acc)
        if sv[j] < sv[i_min]:
            i_min = j

    if want_vectors:
        s_min = sv[i_min]
        # A = U S Vᵀ: the unit columns of A·V are A's left vectors, V's columns its right.
        # transpose (A = Jᵀ): A's left vectors are J's joint-space ones, V holds task-space.
        if transpose:
            for i in range(n):
                v_min[i] = work[i, i_min] / s_min if s_min > 0.0 else 0.0
            for i in range(k):
                u_min[i] = V[i, i_min]
            if s_min == 0.0:
                _null_vector(J, rows, v_min)
        else:
            for i in range(k):
                u_min[i] = work[i, i_min] / s_min if s_min > 0.0 else 0.0
            for i in range(n):
                v_min[i] = V[i, i_min]
        big = 0
        for i in range(n):
            if abs(v_min[i]) > abs(v_min[big]):
                big = i
        if v_min[big] < 0.0:
            for i in range(n):
                v_min[i] = -v_min[i]
            for i in range(k):
                u_min[i] = -u_min[i]

    # insertion sort, descending (m ≤ 6)
    for a in range(1, m_cols):
        x = sv[a]
        b = a - 1
        while b >= 0 and sv[b] < x:
            sv[b + 1] = sv[b]
            b -= 1
        sv[b + 1] = x
    return m_cols


@kernel
def _null_vector(J, rows, v_out):
    """Unit joint vector with J[rows] v = 0, for the exactly singular case: the
    column of largest norm of the projector I − pinv(J)J is approximated by
    picking the joint whose column is zero, else leaving v_out as is."""
    n = J.shape[1]
    for j in range(n):
        nz = 0.0
        for r in range(rows.shape[0]):
            nz += abs(J[rows[r], j])
        if nz == 0.0:
            for i in range(n):
                v_out[i] = 0.0
            v_out[j] = 1.0
            return


@kernel
def singular_values(J, rows, work, V, sv):
    """``jacobi_svd`` without vectors: writes ``sv[:m]`` descending, returns m."""
    return jacobi_svd(J, rows, work, V, sv, False, sv, sv)


@kernel
def gram_matrix(J, rows, G):
    """Gram matrix of the task Jacobian into ``G[:m, :m]``, m = min(k, n); returns m.

    ``G = J_task J_taskᵀ`` (k × k) when k ≤ n, else ``J_taskᵀ J_task`` (n × n): the
    square one whose eigenvalues are the m squared singular values.
    """
    k = rows.shape[0]
    n = J.shape[1]
    if k <= n:
        for a in range(k):
            ra = rows[a]
            for b in range(a + 1):
                rb = rows[b]
                s = 0.0
                for j in range(n):
                    s += J[ra, j] * J[rb, j]
                G[a, b] = s
                G[b, a] = s
        return k
    normal_matrix(J, rows, G)
    return n


@kernel
def normal_matrix(J, rows, out):
    """``J_taskᵀ J_task`` (n × n) into ``out[:n, :n]``."""
    n = J.shape[1]
    k = rows.shape[0]
    for a in range(n):
        for b in range(a + 1):
            s = 0.0
            for r in range(k):
                s += J[rows[r], a] * J[rows[r], b]
            out[a, b] = s
            out[b, a] = s


@kernel
def sigma_extremes(J, rows, G, L, X_min, X_max, Y, warm, max_iter, rtol):
    """σ_min and σ_max of the task Jacobian by two-vector subspace iteration.

    The per-cycle alternative to ``jacobi_svd``: σ² are the eigenvalues of the
    Gram matrix G (``gram_matrix``, m × m).  The two columns of ``X_min`` span a
    subspace driven toward G's two smallest eigenvectors by inverse iteration
    (``X ← G⁻¹ X`` through the Cholesky factor L, whose pivots are clamped at
    μ = 1e-13·tr(G)/m so it exists at a singularity); ``X_max`` toward the two largest by
    power iteration.  Each value is the extreme Rayleigh–Ritz value θ of G on its
    subspace (a 2 × 2 eigenproblem in closed form), so it converges at the rate
    λ_min/λ_3 (resp. λ_{m-2}/λ_max) even when the two extreme values are nearly
    equal.  Iteration stops when the Ritz residual ‖G x − θ x‖ ≤ ``rtol``·tr(G)
    (then an eigenvalue lies within that distance of θ, and for a converged
    subspace within its square over the spectral gap), or after ``max_iter``.
    With ``warm`` both subspaces start from the last cycle's: the Jacobian moves
    little between control cycles, so one iteration usually suffices; otherwise
    they start from fixed generic vectors.  The θ for σ_min is never below the
    true λ_min, nor the θ for σ_max above λ_max.

    Shapes: G, L (≥ m, ≥ m); X_min, X_max, Y (≥ m, 2).  Returns (σ_min, σ_max, w)
    with w = ∏σ = √det G, the manipulability.
    """
    m = gram_matrix(J, rows, G)
    trace = 0.0
    for i in range(m):
        trace += G[i, i]
    if not trace > 0.0:
        return 0.0, 0.0, 0.0
    if m == 1:
        s1 = math.sqrt(G[0, 0])
        return s1, s1, s1
    # Cholesky G = L Lᵀ, pivots clamped at μ so a singular G still factors; the
    # diagonal of L holds 1/L_jj (multiplications below).
    mu = 1e-13 * trace / m
    w = 1.0
    for j in range(m):
        d = G[j, j]
        for p in range(j):
            d -= L[j, p] * L[j, p]
        if d < mu:
            d = mu
        d = math.sqrt(d)
        w *= d
        inv = 1.0 / d
        L[j, j] = inv
        for i in range(j + 1, m):
            s = G[i, j]
            for p in range(j):
                s -= L[i, p] * L[j, p]
            L[i, j] = s * inv
    if not warm:
        for i in range(m):
            X_min[i, 0] = 1.0 + 0.1 * i
            X_min[i, 1] = 1.0 if i % 2 == 0 else -0.9
            X_max[i, 0] = 1.0 - 0.07 * i
            X_max[i, 1] = -1.0 if i % 3 == 0 else 0.8
    tol2 = (rtol * trace) ** 2

    lam_min = 0.0
    for _it in range(max_iter):
        # Y ← L⁻¹ X, then X ← L⁻ᵀ Y, both columns at once
        for i in range(m):
            s0 = X_min[i, 0]
            s1 = X_min[i, 1]
            for p in range(i):
                s0 -= L[i, p] * Y[p, 0]
                s1 -= L[i, p] * Y[p, 1]
            Y[i, 0] = s0 * L[i, i]
            Y[i, 1] = s1 * L[i, i]
        for i in range(m - 1, -1, -1):
            s0 = Y[i, 0]
            s1 = Y[i, 1]
            for p in range(i + 1, m):
                s0 -= L[p, i] * X_min[p, 0]
                s1 -= L[p, i] * X_min[p, 1]
            X_min[i, 0] = s0 * L[i, i]
            X_min[i, 1] = s1 * L[i, i]
        lam_min, res2 = _ritz_extreme(G, X_min, Y, m, True)
        if res2 <= tol2:
            break

    lam_max = 0.0
    for _it in range(max_iter):
        for i in range(m):
            s0 = 0.0
            s1 = 0.0
            for p in range(m):
                s0 += G[i, p] * X_max[p, 0]
                s1 += G[i, p] * X_max[p, 1]
            Y[i, 0] = s0
            Y[i, 1] = s1
        for i in range(m):
            X_max[i, 0] = Y[i, 0]
            X_max[i, 1] = Y[i, 1]
        lam_max, res2 = _ritz_extreme(G, X_max, Y, m, False)
        if res2 <= tol2:
            break
    return math.sqrt(max(lam_min, 0.0)), math.sqrt(max(lam_max, 0.0)), w


@kernel
def _ritz_extreme(G, X, Y, m, low):
    """Orthonormalise the two columns of X (Gram–Schmidt), and return the lower
    (``low``) or upper Rayleigh–Ritz value θ of G on their span with the squared
    residual ‖G x − θ x‖² of its Ritz vector x.  Y (m, 2) is scratch (ends as G X)."""
    n0 = 0.0
    for i in range(m):
        n0 += X[i, 0] * X[i, 0]
    if not n0 > 1e-300:
        for i in range(m):
            X[i, 0] = 1.0 if i == 0 else 0.0
        n0 = 1.0
    inv = 1.0 / math.sqrt(n0)
    d = 0.0
    for i in range(m):
        X[i, 0] *= inv
        d += X[i, 0] * X[i, 1]
    n1 = 0.0
    for i in range(m):
        X[i, 1] -= d * X[i, 0]
        n1 += X[i, 1] * X[i, 1]
    if not n1 > 1e-300:
        # degenerate second column: a unit vector orthogonal to the first
        big = 0
        for i in range(m):
            if abs(X[i, 0]) > abs(X[big, 0]):
                big = i
        other = 1 if big == 0 else 0
        for i in range(m):
            X[i, 1] = 0.0
        X[big, 1] = -X[other, 0]
        X[other, 1] = X[big, 0]
        n1 = X[big, 1] * X[big, 1] + X[other, 1] * X[other, 1]
        if not n1 > 0.0:
            X[other, 1] = 1.0
            n1 = 1.0
    inv = 1.0 / math.sqrt(n1)
    h00 = 0.0
    h01 = 0.0
    h11 = 0.0
    for i in range(m):
        X[i, 1] *= inv
    for i in range(m):
        s0 = 0.0
        s1 = 0.0
        for p in range(m):
            s0 += G[i, p] * X[p, 0]
            s1 += G[i, p] * X[p, 1]
        Y[i, 0] = s0
        Y[i, 1] = s1
        h00 += X[i, 0] * s0
        h01 += X[i, 0] * s1
        h11 += X[i, 1] * s1
    mean = 0.5 * (h00 + h11)
    half = 0.5 * (h00 - h11)
    rad = math.sqrt(half * half + h01 * h01)
    theta = mean - rad if low else mean + rad
    # eigenvector (a, b) of the 2 × 2 [[h00, h01], [h01, h11]] for θ
    a1 = h01
    b1 = theta - h00
    a2 = theta - h11
    b2 = h01
    if a1 * a1 + b1 * b1 >= a2 * a2 + b2 * b2:
        a = a1
        b = b1
    else:
        a = a2
        b = b2
    nab = math.sqrt(a * a + b * b)
    if not nab > 0.0:
        return theta, 0.0  # H is a multiple of I: every vector of the span is a Ritz vector
    a /= nab
    b /= nab
    res2 = 0.0
    for i in range(m):
        r = a * (Y[i, 0] - theta * X[i, 0]) + b * (Y[i, 1] - theta * X[i, 1])
        res2 += r * r
    return theta, res2


@kernel
def damping_nakamura(sigma_min, lambda_max, sigma_damp):
    """Variable damping factor λ [same unit as σ]: ``λ² = λ_max² (1 − (σ_min/σ_damp)²)``
    for σ_min < σ_damp, else 0 (Nakamura & Hanafusa; Chiaverini)."""
    if sigma_min >= sigma_damp or sigma_damp <= 0.0:
        return 0.0
    r = sigma_min / sigma_damp
    return lambda_max * math.sqrt(1.0 - r * r)


@kernel
def _cholesky_solve(M, b, m):
    """Solve ``M x = b`` for SPD ``M[:m, :m]`` in place (M → L, b → x).

    Returns False (leaving M, b partly overwritten) when a pivot is not
    positive, i.e. M is singular to working precision.
    """
    for j in range(m):
        d = M[j, j]
        for p in range(j):
            d -= M[j, p] * M[j, p]
        if not d > 1e-300:
            return False
        d = math.sqrt(d)
        M[j, j] = d
        for i in range(j + 1, m):
            s = M[i, j]
            for p in range(j):
                s -= M[i, p] * M[j, p]
            M[i, j] = s / d
    for i in range(m):
        s = b[i]
        for p in range(i):
            s -= M[i, p] * b[p]
        b[i] = s / M[i, i]
    for i in range(m - 1, -1, -1):
        s = b[i]
        for p in range(i + 1, m):
            s -= M[p, i] * b[p]
        b[i] = s / M[i, i]
    return True


@kernel
def dls_step(J, rows, v, lam, M, tmp, dq):
    """Damped least squares joint step ``dq = Jᵀ(JJᵀ + λ²I)⁻¹ v`` on the task rows.

    ``J`` Shape (6, n); ``rows`` (k,) selects the task rows of J and of the twist
    ``v`` Shape (6,); ``lam`` is λ ≥ 0; ``dq`` Shape (n,) is written.  When k > n
    the equal form ``dq = (JᵀJ + λ²I)⁻¹ Jᵀ v`` (an n × n system) is solved instead,
    so the smaller matrix is always factored.  With λ = 0 and J of full rank this
    is the Moore–Penrose pseudo-inverse solution.

    Workspace: M (≥ min(k,n), ≥ min(k,n)), tmp (≥ min(k,n),).  Returns False and
    writes dq = 0 when the system is singular (λ = 0 at a singularity).
    """
    k = rows.shape[0]
    n = J.shape[1]
    m = gram_matrix(J, rows, M)
    lam2 = lam * lam
    for a in range(m):
        M[a, a] += lam2
        if k <= n:
            tmp[a] = v[rows[a]]
        else:  # right-hand side Jᵀ v of the n × n form
            s = 0.0
            for r in range(k):
                s += J[rows[r], a] * v[rows[r]]
            tmp[a] = s
    if not _cholesky_solve(M, tmp, m):
        for j in range(n):
            dq[j] = 0.0
        return False
    if k <= n:
        for j in range(n):
            s = 0.0
            for a in range(k):
                s += J[rows[a], j] * tmp[a]
            dq[j] = s
    else:
        for j in range(n):
            dq[j] = tmp[j]
    return True


@kernel
def dls_cycle(placements, axes, joint_types, q, v, rows, lambda_max, sigma_damp, warm,
              frames, J, scratch, dq):
    """One kinematic cycle: FK, Jacobian, σ_min/σ_max, variable damping, DLS step.

    ``dq = Jᵀ(JJᵀ + λ²I)⁻¹ v`` with ``λ² = λ_max²(1 − (σ_min/σ_damp)²)`` below
    σ_damp.  Writes frames (tip pose in ``frames[n]``), J (6, n) and dq (n,);
    σ by ``sigma_extremes`` (``warm``: start from the last cycle's subspaces).
    ``scratch`` Shape (5, s, s), s = max(6, n), holds the work matrices (see
    ``scratch_views``); one array instead of seven keeps the call cheap.
    Returns (σ_min, σ_max, manipulability, λ, ok).
    """
    G, L, M, X_min, X_max, Y, tmp = scratch_views(scratch)
    fk_frames(placements, axes, joint_types, q, frames)
    jacobian_from_frames(frames, axes, joint_types, J)
    sigma_min, sigma_max, w = sigma_extremes(J, rows, G, L, X_min, X_max, Y, warm, 50, 1e-5)
    lam = damping_nakamura(sigma_min, lambda_max, sigma_damp)
    ok = dls_step(J, rows, v, lam, M, tmp, dq)
    return sigma_min, sigma_max, w, lam, ok


@view
def scratch_views(scratch):
    """Named views of a (5, s, s) scratch array: G, L, M (s, s); X_min, X_max, Y
    (s, 2) from columns 0–1, 2–3, 4–5 of plane 3; tmp (s,) = row 0 of plane 4.
    (Inlined in kernels; Python takes the same views with ``scratch_views.py_func``.)"""
    return (scratch[0], scratch[1], scratch[2], scratch[3][:, 0:2], scratch[3][:, 2:4],
            scratch[3][:, 4:6], scratch[4][0])


@kernel
def pose_error(T_base_tip, T_base_target, err):
    """Pose error of the tip to the target, in the base frame. Shape (6,), linear first.

    ``err[:3] = p_target − p_tip`` [m]; ``err[3:] = log(R_target R_tipᵀ)`` [rad], the
    rotation vector that turns the tip's orientation into the target's, in the
    base frame (so a base-frame angular velocity ω = err[3:]/t gets there in t).
    """
    for r in range(3):
        err[r] = T_base_target[r, 3] - T_base_tip[r, 3]
    # R_err = R_target · R_tipᵀ
    e00 = 0.0
    e01 = 0.0
    e02 = 0.0
    e10 = 0.0
    e11 = 0.0
    e12 = 0.0
    e20 = 0.0
    e21 = 0.0
    e22 = 0.0
    for c in range(3):
        e00 += T_base_target[0, c] * T_base_tip[0, c]
        e01 += T_base_target[0, c] * T_base_tip[1, c]
        e02 += T_base_target[0, c] * T_base_tip[2, c]
        e10 += T_base_target[1, c] * T_base_tip[0, c]
        e11 += T_base_target[1, c] * T_base_tip[1, c]
        e12 += T_base_target[1, c] * T_base_tip[2, c]
        e20 += T_base_target[2, c] * T_base_tip[0, c]
        e21 += T_base_target[2, c] * T_base_tip[1, c]
        e22 += T_base_target[2, c] * T_base_tip[2, c]
    rotation_log(e00, e01, e02, e10, e11, e12, e20, e21, e22, err)


@kernel
def rotation_log(r00, r01, r02, r10, r11, r12, r20, r21, r22, out):
    """Rotation vector (axis·angle, angle in [0, π]) of a rotation matrix, into out[3:6]."""
    tr = r00 + r11 + r22
    cos_t = 0.5 * (tr - 1.0)
    if cos_t > 1.0:
        cos_t = 1.0
    elif cos_t < -1.0:
        cos_t = -1.0
    wx = r21 - r12
    wy = r02 - r20
    wz = r10 - r01
    sin2 = math.sqrt(wx * wx + wy * wy + wz * wz)  # = 2 sin θ
    theta = math.atan2(0.5 * sin2, cos_t)
    if theta < 1e-6:
        # θ/(2 sin θ) ≈ 1/2 + θ²/12
        f = 0.5 + theta * theta / 12.0
        out[3] = f * wx
        out[4] = f * wy
        out[5] = f * wz
        return
    if math.pi - theta > 1e-4:
        f = theta / sin2
        out[3] = f * wx
        out[4] = f * wy
        out[5] = f * wz
        return
    # near π the skew part vanishes: take the axis from R + Rᵀ = 2cosθ I + 2(1 − cosθ) a aᵀ,
    # anchored on its largest diagonal entry, and the sign from what skew part is left.
    d = 1.0 - cos_t
    if r00 >= r11 and r00 >= r22:
        ax = math.sqrt(max((r00 - cos_t) / d, 0.0))
        ay = (r01 + r10) / (2.0 * d * ax)
        az = (r02 + r20) / (2.0 * d * ax)
    elif r11 >= r22:
        ay = math.sqrt(max((r11 - cos_t) / d, 0.0))
        ax = (r01 + r10) / (2.0 * d * ay)
        az = (r12 + r21) / (2.0 * d * ay)
    else:
        az = math.sqrt(max((r22 - cos_t) / d, 0.0))
        ax = (r02 + r20) / (2.0 * d * az)
        ay = (r12 + r21) / (2.0 * d * az)
    norm = math.sqrt(ax * ax + ay * ay + az * az)
    if ax * wx + ay * wy + az * wz < 0.0:
        norm = -norm
    out[3] = theta * ax / norm
    out[4] = theta * ay / norm
    out[5] = theta * az / norm
