"""A small dense quadratic program with box bounds and one linear inequality.

    minimise   ½ xᵀ H x + gᵀ x
    subject to lo ≤ x ≤ hi   (per element),   aᵀ x ≥ b

H Shape (n, n) symmetric positive definite.  Solved exactly by a primal
active-set method (Nocedal & Wright, Numerical Optimization, alg. 16.3) from a
feasible start: every iterate is feasible, so stopping early (iteration cap)
still returns an admissible x.  With n ≤ ~10 variables and n + 1 constraints it
takes a few Cholesky factorisations of the free block of H.  No allocation: the
caller passes the work vectors.
"""

import math

from jacobian_ik.kernels.jit import kernel

#: A step shorter than this (relative to 1 + ‖x‖∞) ends the search of a working set.
STEP_TOL = 1e-12
#: A multiplier above −this counts as non-negative (optimal).
MULTIPLIER_TOL = 1e-12
#: rows_qp: a working-set row whose pivot in A_W H_FF⁻¹ A_Wᵀ is below this fraction of
#: its diagonal depends on the rows before it (or lost its free part) and leaves.
RANK_TOL = 1e-10
#: rows_qp: a row blocks a step p only where a·p < −this · ‖a‖₁ · ‖p‖∞ (a row the step
#: runs along is not added).
ROW_STEP_TOL = 1e-12


@kernel
def _solve_free(H, Lf, work, rhs, out):
    """out = H_FF⁻¹ rhs on the free variables (work[i] == 0) through the Cholesky
    factor Lf of H_FF (already factored, stored in the rows/columns of the free
    variables); out is 0 on fixed variables."""
    n = rhs.shape[0]
    for i in range(n):
        if work[i] != 0.0:
            out[i] = 0.0
            continue
        s = rhs[i]
        for p in range(i):
            if work[p] == 0.0:
                s -= Lf[i, p] * out[p]
        out[i] = s / Lf[i, i]
    for i in range(n - 1, -1, -1):
        if work[i] != 0.0:
            continue
        s = out[i]
        for p in range(i + 1, n):
            if work[p] == 0.0:
                s -= Lf[p, i] * out[p]
        out[i] = s / Lf[i, i]


@kernel
def _factor_free(H, Lf, work):
    """Cholesky factor of H restricted to the free variables (work[i] == 0) into Lf;
    returns False if a pivot is not positive."""
    n = H.shape[0]
    for j in range(n):
        if work[j] != 0.0:
            continue
        d = H[j, j]
        for p in range(j):
            if work[p] == 0.0:
                d -= Lf[j, p] * Lf[j, p]
        if not d > 0.0:
            return False
        d = math.sqrt(d)
        Lf[j, j] = d
        for i in range(j + 1, n):
            if work[i] != 0.0:
                continue
            s = H[i, j]
            for p in range(j):
                if work[p] == 0.0:
                    s -= Lf[i, p] * Lf[j, p]
            Lf[i, j] = s / d
    return True


@kernel
def box_qp(H, g, lo, hi, a, b, x, Lf, work, c, p, y, z, x_free, max_iter):
    """Solve the QP of the module docstring in place, starting from a feasible x.

    Shapes: H, Lf (n, n); g, lo, hi, a, x, work, c, p, y, z, x_free (n,).  ``lo[i]``
    may be −inf and ``hi[i]`` +inf; ``a`` all zero disables the linear constraint.
    On return ``work[i]`` is −1 (x[i] at lo[i]), +1 (at hi[i]) or 0 (free), and
    ``x_free`` holds the unconstrained minimiser −H⁻¹g.  Returns
    (iterations, general constraint active at the solution, its multiplier ≥ 0,
    converged).  Lf, c, p, y, z are scratch.
    """
    n = x.shape[0]
    for i in range(n):
        work[i] = 0.0
    in_set = False          # the linear constraint is in the working set
    mu = 0.0
    a_norm = 0.0
    for i in range(n):
        a_norm += abs(a[i])
    have_a = a_norm > 0.0
    # unconstrained minimiser (also the first search direction's target)
    if not _factor_free(H, Lf, work):
        return 0, False, 0.0, False
    for i in range(n):
        c[i] = -g[i]
    _solve_free(H, Lf, work, c, x_free)
    factored = True
    for it in range(max_iter):
        # gradient c = H x + g
        xs = 0.0
        for i in range(n):
            s = g[i]
            for j in range(n):
                s += H[i, j] * x[j]
            c[i] = s
            if abs(x[i]) > xs:
                xs = abs(x[i])
        if not factored:
            if not _factor_free(H, Lf, work):
                return it, in_set, mu, False
        factored = False
        # equality-constrained step: p = −H⁻¹c + μ H⁻¹a on the free variables
        _solve_free(H, Lf, work, c, y)
        mu = 0.0
        if in_set:
            _solve_free(H, Lf, work, a, z)
            az = 0.0
            ay = 0.0
            for i in range(n):
                if work[i] == 0.0:
                    az += a[i] * z[i]
                    ay += a[i] * y[i]
            if az > 1e-300:
                mu = ay / az
        step = 0.0
        for i in range(n):
            if work[i] != 0.0:
                p[i] = 0.0
            else:
                p[i] = -y[i] + (mu * z[i] if in_set else 0.0)
                if abs(p[i]) > step:
                    step = abs(p[i])
        if step <= STEP_TOL * (1.0 + xs):
            # stationary on this working set: check the multipliers
            worst = -MULTIPLIER_TOL
            drop = -2                    # −1: the linear constraint, ≥ 0: a bound
            if in_set and mu < worst:
                worst = mu
                drop = -1
            for i in range(n):
                if work[i] != 0.0:
                    r = c[i] - (mu * a[i] if in_set else 0.0)
                    nu = r if work[i] < 0.0 else -r
                    if nu < worst:
                        worst = nu
                        drop = i
            if drop == -2:
                return it + 1, in_set, mu if in_set else 0.0, True
            if drop == -1:
                in_set = False
                factored = True      # Lf depends on the bounds only
            else:
                work[drop] = 0.0
            continue
        # step length to the first blocking constraint
        alpha = 1.0
        block = -2
        for i in range(n):
            if work[i] != 0.0:
                continue
            if p[i] < 0.0 and lo[i] > -math.inf:
                t = (lo[i] - x[i]) / p[i]
                if t < alpha:
                    alpha = t if t > 0.0 else 0.0
                    block = i
            elif p[i] > 0.0 and hi[i] < math.inf:
                t = (hi[i] - x[i]) / p[i]
                if t < alpha:
                    alpha = t if t > 0.0 else 0.0
                    block = i
        if have_a and not in_set:
            ap = 0.0
            ax = 0.0
            for i in range(n):
                ap += a[i] * p[i]
                ax += a[i] * x[i]
            if ap < 0.0:
                t = (b - ax) / ap
                if t < alpha:
                    alpha = t if t > 0.0 else 0.0
                    block = -1
        for i in range(n):
            x[i] += alpha * p[i]
        if block == -1:
            in_set = True
            factored = True
        elif block >= 0:
            if p[block] < 0.0:
                x[block] = lo[block]
                work[block] = -1.0
            else:
                x[block] = hi[block]
                work[block] = 1.0
            factored = False
        else:
            factored = True          # same working set: Lf still holds
    return max_iter, in_set, mu if in_set else 0.0, False


@kernel
def _row_dot(A, k, v, work):
    """A[k]·v over the free variables (work[i] == 0)."""
    s = 0.0
    for i in range(v.shape[0]):
        if work[i] == 0.0:
            s += A[k, i] * v[i]
    return s


@kernel
def _working_rows(active, m, idx):
    """Indices of the rows in the working set (active[k] != 0) into idx; returns count."""
    w = 0
    for k in range(m):
        if active[k] != 0.0:
            idx[w] = k
            w += 1
    return w


@kernel
def _row_multipliers(H, Lf, A, work, active, m, c, y, S, mu):
    """Multipliers μ of the working-set rows for the gradient c on the free variables,
    and y = H_FF⁻¹ c; the rows of S hold Z_k = H_FF⁻¹ a_k (k in the working set, in
    order) and its block M = A_W Z (Cholesky in place).  A row whose free part has
    (numerically) vanished, or that depends on the rows before it, leaves the working
    set: its value cannot change along a step that keeps the others.  Returns the
    working-set size."""
    n = c.shape[0]
    R = S.shape[0] - 2
    idx = S[R]
    t = S[R + 1, :n]
    _solve_free(H, Lf, work, c, y)
    w = _working_rows(active, m, idx)
    if w == 0:
        return 0
    # Z rows and the Gram block M, factored row by row; a dependent row is dropped
    j = 0
    while j < w:
        k = int(idx[j])
        for i in range(n):
            t[i] = A[k, i] if work[i] == 0.0 else 0.0
        _solve_free(H, Lf, work, t, S[j, :n])
        # M[j, l] = a_k · Z_l  (l ≤ j), then the Cholesky row j
        scale = 0.0
        for i in range(n):
            scale += t[i] * S[j, i]
        ok = scale > RANK_TOL
        if ok:
            for l in range(j + 1):
                s = 0.0
                for i in range(n):
                    s += t[i] * S[l, i]
                for p_ in range(l):
                    s -= S[j, n + p_] * S[l, n + p_]
                if l < j:
                    S[j, n + l] = s / S[l, n + l]
                else:
                    if s > RANK_TOL * scale:
                        S[j, n + j] = math.sqrt(s)
                    else:
                        ok = False
        if not ok:
            active[k] = 0.0
            mu[k] = 0.0
            for l in range(j, w - 1):
                idx[l] = idx[l + 1]
            w -= 1
            continue
        j += 1
    # μ: M μ = A_W y
    for j in range(w):
        s = _row_dot(A, int(idx[j]), y, work)
        for l in range(j):
            s -= S[j, n + l] * t[l]
        t[j] = s / S[j, n + j]
    for j in range(w - 1, -1, -1):
        s = t[j]
        for l in range(j + 1, w):
            s -= S[l, n + j] * t[l]
        t[j] = s / S[j, n + j]
    for j in range(w):
        mu[int(idx[j])] = t[j]
    return w


@kernel
def rows_qp(H, g, lo, hi, A, b, m, x, Lf, work, active, c, p, y, z, x_free, S, mu,
            max_iter):
    """Solve ``min ½xᵀHx + gᵀx`` subject to ``lo ≤ x ≤ hi`` and ``A[k]·x ≥ b[k]``
    (k < m) in place, from a feasible x, by the primal active-set method of the module
    docstring with a working set of bounds and rows.

    Shapes: H, Lf (n, n); g, lo, hi, x, work, c, p, y, z, x_free (n,); A (R, n), b,
    active, mu (R,) with m ≤ R rows used (the others are not read); S (R + 2, R + n + 2)
    scratch.  On each working set the step is the equality-constrained minimiser on the
    free variables, ``p = −H_FF⁻¹(c − A_Wᵀμ)`` with ``(A_W H_FF⁻¹ A_Wᵀ) μ = A_W H_FF⁻¹ c``;
    a row that became dependent on the others (or whose free part vanished) leaves
    the set (its value is constant along such steps).  Every iterate is feasible.
    On return ``work[i]`` is −1/+1/0 (x[i] at lo/hi/free), ``active[k]`` 1 for a row
    in the final working set, ``mu`` the rows' multipliers (0 when inactive), and
    ``x_free`` the unconstrained minimiser −H⁻¹g.  Returns (iterations, rows in the
    working set, converged).  Lf, c, p, y, z, S are scratch.
    """
    n = x.shape[0]
    for i in range(n):
        work[i] = 0.0
    for k in range(m):
        active[k] = 0.0
        mu[k] = 0.0
    have = False
    for k in range(m):
        for i in range(n):
            if A[k, i] != 0.0:
                have = True
                break
    if not _factor_free(H, Lf, work):
        return 0, 0, False
    for i in range(n):
        c[i] = -g[i]
    _solve_free(H, Lf, work, c, x_free)
    R = S.shape[0] - 2
    w = 0
    for it in range(max_iter):
        xs = 0.0
        for i in range(n):
            s = g[i]
            for j in range(n):
                s += H[i, j] * x[j]
            c[i] = s
            if abs(x[i]) > xs:
                xs = abs(x[i])
        if not _factor_free(H, Lf, work):
            return it, w, False
        if have:
            w = _row_multipliers(H, Lf, A, work, active, m, c, y, S, mu)
        else:
            _solve_free(H, Lf, work, c, y)
        # p = −y + Σ μ_k Z_k on the free variables
        step = 0.0
        for i in range(n):
            if work[i] != 0.0:
                p[i] = 0.0
                continue
            v = -y[i]
            for j in range(w):
                v += mu[int(S[R, j])] * S[j, i]
            p[i] = v
            if abs(v) > step:
                step = abs(v)
        if step <= STEP_TOL * (1.0 + xs):
            # stationary on this working set: check the multipliers
            worst = -MULTIPLIER_TOL
            drop_row = -1
            drop_bound = -1
            for j in range(w):
                k = int(S[R, j])
                if mu[k] < worst:
                    worst = mu[k]
                    drop_row = k
            for i in range(n):
                if work[i] != 0.0:
                    r = c[i]
                    for j in range(w):
                        k = int(S[R, j])
                        r -= mu[k] * A[k, i]
                    nu = r if work[i] < 0.0 else -r
                    if nu < worst:
                        worst = nu
                        drop_bound = i
                        drop_row = -1
            if drop_row < 0 and drop_bound < 0:
                return it + 1, w, True
            if drop_bound >= 0:
                work[drop_bound] = 0.0
            else:
                active[drop_row] = 0.0
                mu[drop_row] = 0.0
            continue
        # step length to the first blocking constraint
        alpha = 1.0
        block = -1
        block_row = -1
        for i in range(n):
            if work[i] != 0.0:
                continue
            if p[i] < 0.0 and lo[i] > -math.inf:
                t = (lo[i] - x[i]) / p[i]
                if t < alpha:
                    alpha = t if t > 0.0 else 0.0
                    block = i
                    block_row = -1
            elif p[i] > 0.0 and hi[i] < math.inf:
                t = (hi[i] - x[i]) / p[i]
                if t < alpha:
                    alpha = t if t > 0.0 else 0.0
                    block = i
                    block_row = -1
        for k in range(m):
            if active[k] != 0.0:
                continue
            ap = 0.0
            ax = 0.0
            a_norm = 0.0
            for i in range(n):
                ap += A[k, i] * p[i]
                ax += A[k, i] * x[i]
                a_norm += abs(A[k, i])
            if ap < -ROW_STEP_TOL * a_norm * step:
                t = (b[k] - ax) / ap
                if t < alpha:
                    alpha = t if t > 0.0 else 0.0
                    block_row = k
                    block = -1
        for i in range(n):
            x[i] += alpha * p[i]
        if block_row >= 0:
            active[block_row] = 1.0
        elif block >= 0:
            if p[block] < 0.0:
                x[block] = lo[block]
                work[block] = -1.0
            else:
                x[block] = hi[block]
                work[block] = 1.0
    return max_iter, w, False
