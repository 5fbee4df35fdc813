"""Batch kernels: Jacobian metrics of many joint configurations at once.

The audit evaluates a robot at many sampled configurations.  Each kernel here
takes the chain arrays of ``kinematics`` (placements, axes, joint_types) and a
C-contiguous batch ``Q`` Shape (N, n) of joint positions [rad | m], and fills
preallocated per-sample output arrays.  The batch is split into chunks of
``chunk`` samples that run in parallel (``prange``); each chunk allocates its
own small scratch arrays once.

Two ways to get singular values:

``batch_metrics``   fast: σ² are the eigenvalues of the task Gram matrix
                    (``gram_matrix``), found by Householder reduction to a
                    tridiagonal matrix and implicit QL iterations.  Backward
                    stable for the Gram matrix, so every λ = σ² carries an
                    absolute error of a small multiple of ε·σ_max²; a σ_min much
                    smaller than σ_max is therefore only accurate to about
                    √ε·σ_max ≈ 1e-8·σ_max, and so is w/σ_max^(m−1) (see
                    ``GRAM_SIGMA_ATOL``).  Plenty for thresholds of order 1e-2.
``batch_exact``     one-sided Jacobi SVD (``jacobi_svd``) of each task
                    Jacobian, with σ_min's singular vectors: high relative
                    accuracy, a few times slower.
"""

import math

import numpy as np
from numba import njit, prange

from jacobian_ik.kernels.jit import kernel
from jacobian_ik.kernels.kinematics import (
    fk_frames,
    gram_matrix,
    jacobi_svd,
    jacobian_from_frames,
    singular_value_count,
)

#: Machine epsilon of float64.
EPS = 2.220446049250313e-16

#: Largest number of QL iterations spent on one eigenvalue (2-3 are typical).
MAX_QL_ITERATIONS = 40

#: Documented accuracy of ``batch_metrics``: |σ − σ_exact| ≤ GRAM_SIGMA_ATOL·σ_max for
#: every σ, and |w − w_exact| ≤ GRAM_SIGMA_ATOL·σ_max^m for the manipulability w = ∏σ.
GRAM_SIGMA_ATOL = 1e-6

#: Samples per parallel chunk (scratch arrays are allocated once per chunk).
DEFAULT_CHUNK = 512


@kernel
def tridiagonalize(A, m, d, e, p):
    """Reduce the symmetric ``A[:m, :m]`` to tridiagonal form ``T = Hᵀ A H``.

    H is a product of m − 2 Householder reflections, so T has A's eigenvalues.
    Step k reflects the column ``x = A[k+1:m, k]`` onto ``α e₁`` with
    ``α = −sign(x₀)‖x‖`` using ``v = x − α e₁``, β = 2/(vᵀv), and updates the
    trailing block ``A ← A − v qᵀ − q vᵀ`` with ``p = β A v``,
    ``q = p − (β vᵀp / 2) v``.  Writes the diagonal ``d[:m]`` and the
    off-diagonal ``e[:m]`` (``e[i] = T[i+1, i]``, ``e[m-1] = 0``).  A is
    overwritten; ``p`` (≥ m,) is scratch.
    """
    for k in range(m - 2):
        d[k] = A[k, k]
        s = 0.0
        for i in range(k + 1, m):
            s += A[i, k] * A[i, k]
        if s == 0.0:
            e[k] = 0.0
            continue
        norm = math.sqrt(s)
        x0 = A[k + 1, k]
        alpha = -norm if x0 >= 0.0 else norm
        A[k + 1, k] = x0 - alpha  # column k below the diagonal now holds v
        beta = 1.0 / (s - x0 * alpha)  # 2 / vᵀv, as vᵀv = 2(s − x₀α)
        vp = 0.0
        for i in range(k + 1, m):
            acc = 0.0
            for j in range(k + 1, m):
                acc += A[i, j] * A[j, k]
            p[i] = beta * acc
            vp += A[i, k] * p[i]
        half = 0.5 * beta * vp
        for i in range(k + 1, m):
            p[i] -= half * A[i, k]
        for i in range(k + 1, m):
            vi = A[i, k]
            qi = p[i]
            for j in range(k + 1, i + 1):
                a = A[i, j] - vi * p[j] - qi * A[j, k]
                A[i, j] = a
                A[j, i] = a
        e[k] = alpha
    if m >= 2:
        d[m - 2] = A[m - 2, m - 2]
        e[m - 2] = A[m - 1, m - 2]
    d[m - 1] = A[m - 1, m - 1]
    e[m - 1] = 0.0


@kernel
def tridiagonal_eigenvalues(d, e, m, atol):
    """Eigenvalues of the symmetric tridiagonal (d, e) by implicit shifted QL.

    ``d[:m]`` is the diagonal, ``e[i]`` couples rows i and i+1 (``e[m-1]`` is
    ignored); on return ``d[:m]`` holds the eigenvalues (unordered) and e is
    destroyed.  For each leading index l, QL sweeps with the shift of the
    eigenvalue of the leading 2 × 2 block nearest ``d[l]`` run on the unreduced
    block l..j until ``e[l]`` is negligible: ``|e| ≤ ε(|d_j| + |d_j+1|)`` or
    ``|e| ≤ atol`` (dropping an e of size ``atol`` moves no eigenvalue by more
    than ``atol``).  Returns the total number of QL sweeps.
    """
    sweeps = 0
    for l in range(m):
        for _it in range(MAX_QL_ITERATIONS):
            j = l
            while j < m - 1:
                off = abs(e[j])
                if off <= atol or off <= EPS * (abs(d[j]) + abs(d[j + 1])):
                    break
                j += 1
            if j == l:
                break
            sweeps += 1
            # shift: eigenvalue of [[d_l, e_l], [e_l, d_l+1]] nearest d_l
            g = (d[l + 1] - d[l]) / (2.0 * e[l])
            r = math.sqrt(g * g + 1.0)
            g = d[j] - d[l] + e[l] / (g + (r if g >= 0.0 else -r))
            sn = 1.0
            cs = 1.0
            shift_acc = 0.0
            deflated = False
            # chase the bulge from the bottom of the block (j) up to l by Givens rotations
            for i in range(j - 1, l - 1, -1):
                f = sn * e[i]
                b = cs * e[i]
                r = math.sqrt(f * f + g * g)
                e[i + 1] = r
                if r == 0.0:
                    d[i + 1] -= shift_acc
                    e[j] = 0.0
                    deflated = True
                    break
                sn = f / r
                cs = g / r
                g = d[i + 1] - shift_acc
                r = (d[i] - g) * sn + 2.0 * cs * b
                shift_acc = sn * r
                d[i + 1] = g + shift_acc
                g = cs * r - b
            if deflated:
                continue
            d[l] -= shift_acc
            e[l] = g
            e[j] = 0.0
    return sweeps


@kernel
def gram_extremes(G, m, d, e, p):
    """(λ_min, λ_max, ∏λ) of the symmetric positive semi-definite ``G[:m, :m]``.

    ``tridiagonalize`` then ``tridiagonal_eigenvalues``; negative round-off
    eigenvalues are clamped to 0.  G is overwritten; d, e, p (≥ m,) scratch.
    For a Gram matrix ``G = J Jᵀ``: σ_min = √λ_min, σ_max = √λ_max and the
    manipulability w = √∏λ.
    """
    trace = 0.0
    for i in range(m):
        trace += G[i, i]
    if not trace > 0.0:
        return 0.0, 0.0, 0.0
    tridiagonalize(G, m, d, e, p)
    tridiagonal_eigenvalues(d, e, m, EPS * trace)
    lo = d[0]
    hi = d[0]
    prod = 1.0
    for i in range(m):
        lam = d[i]
        if lam < 0.0:
            lam = 0.0
        if lam < lo:
            lo = lam
        if lam > hi:
            hi = lam
        prod *= lam
    if lo < 0.0:
        lo = 0.0
    return lo, hi, prod


@njit(cache=True, parallel=True)
def batch_metrics(placements, axes, joint_types, Q, rows, chunk,
                  sigma_min, sigma_max, manipulability, tip_position):
    """σ_min, σ_max, manipulability and tip position of every configuration.

    For each row q of ``Q`` Shape (N, n): FK and Jacobian (``fk_frames``,
    ``jacobian_from_frames``), the task Gram matrix G of ``J[rows]``, and its
    eigenvalues λ (``gram_extremes``):
    ``σ_min = √λ_min``, ``σ_max = √λ_max``, ``w = √∏λ = ∏σ`` over the
    min(k, n) singular values of the task Jacobian.  Outputs Shape (N,) each
    (σ in the Jacobian's mixed units: m/rad for linear rows, 1 for angular
    rows), and ``tip_position`` Shape (N, 3) [m], the tip origin in the base
    frame.  Accuracy: see ``GRAM_SIGMA_ATOL``.  ``chunk`` samples per parallel
    task.
    """
    N = Q.shape[0]
    n = Q.shape[1]
    s = max(6, n)
    n_chunks = (N + chunk - 1) // chunk
    for c in prange(n_chunks):
        frames = np.empty((n + 1, 4, 4))
        J = np.empty((6, n))
        G = np.empty((s, s))
        d = np.empty(s)
        e = np.empty(s)
        p = np.empty(s)
        stop = min(N, (c + 1) * chunk)
        for i in range(c * chunk, stop):
            fk_frames(placements, axes, joint_types, Q[i], frames)
            jacobian_from_frames(frames, axes, joint_types, J)
            m = gram_matrix(J, rows, G)
            lo, hi, prod = gram_extremes(G, m, d, e, p)
            sigma_min[i] = math.sqrt(lo)
            sigma_max[i] = math.sqrt(hi)
            manipulability[i] = math.sqrt(prod)
            for r in range(3):
                tip_position[i, r] = frames[n, r, 3]


@njit(cache=True, parallel=True)
def batch_exact(placements, axes, joint_types, Q, rows, chunk, sv, u_min, v_min,
                tip_position):
    """Exact singular values and σ_min's singular vectors of every configuration.

    For each row q of ``Q`` Shape (N, n): ``jacobi_svd`` of the task Jacobian
    ``J[rows]`` (k rows).  Writes ``sv`` Shape (N, ≥ m) with the m = min(k, n)
    singular values, descending; ``u_min`` Shape (N, k), the unit task-space
    direction of σ_min (ordered as ``rows``); ``v_min`` Shape (N, n), the unit
    joint-space direction of σ_min (largest-magnitude entry positive); and
    ``tip_position`` Shape (N, 3) [m].  Returns m.
    """
    N = Q.shape[0]
    n = Q.shape[1]
    k = rows.shape[0]
    s = max(6, n)
    m = singular_value_count(k, n)
    n_chunks = (N + chunk - 1) // chunk
    for c in prange(n_chunks):
        frames = np.empty((n + 1, 4, 4))
        J = np.empty((6, n))
        work = np.empty((s, s))
        V = np.empty((s, s))
        buf = np.empty(2 * s)
        u = np.empty(6)
        v = np.empty(n)
        stop = min(N, (c + 1) * chunk)
        for i in range(c * chunk, stop):
            fk_frames(placements, axes, joint_types, Q[i], frames)
            jacobian_from_frames(frames, axes, joint_types, J)
            jacobi_svd(J, rows, work, V, buf, True, u, v)
            for j in range(m):
                sv[i, j] = buf[j]
            for j in range(k):
                u_min[i, j] = u[j]
            for j in range(n):
                v_min[i, j] = v[j]
            for r in range(3):
                tip_position[i, r] = frames[n, r, 3]
    return m
