"""Small dense quadratic programs with box bounds and linear inequality rows.

    minimise   ½ xᵀ H x + gᵀ x
    subject to lo ≤ x ≤ hi   (per element),   A[k]·x ≥ b[k]   (k < m)

H Shape (n, n) symmetric positive definite.  Solved exactly by a primal
active-set method (Nocedal & Wright, Numerical Optimization, alg. 16.3) from a
feasible start: every iterate is feasible, so stopping early (iteration cap)
still returns an admissible x.  With n ≤ ~10 variables it takes a few Cholesky
factorisations of the free block of H.  No allocation: the caller passes the work
vectors.

``rows_qp``  any number m of rows (the control cycle's QP: the σ_min barrier and a
             row per nearby collision pair).
``box_qp``   the original one-row solver (aᵀx ≥ b), kept as it was.
"""

import math

from jacobian_ik.kernels.jit import kernel

#: A step shorter than this (relative to 1 + ‖x‖∞) ends the search of a working set.
STEP_TOL = 1e-12
#: A multiplier above −this counts as non-negative (optimal); ``rows_qp`` scales it
#: by 1 + ‖Hx + g‖∞ (and a row's multiplier by ‖A[k]‖∞ before comparing).
MULTIPLIER_TOL = 1e-12
#: ``rows_qp``: a row whose direction lies within this sine of the span of the
#: working rows (seen from the free variables, in the metric of H⁻¹) is dependent.
DEP_TOL = 1e-10


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


# ---------------------------------------------------------------------------
# rows_qp: any number of rows
# ---------------------------------------------------------------------------

# States of a row in ``active`` while rows_qp runs (converted to 0/1 on return).
_OUT = 0.0          # not in the working set
_IN = 1.0           # in the working set
_IMPLIED = 2.0      # dependent on the working set: implied by it while it stays
_KEPT = 3.0         # in the working set, and not dropped again before a real step


@kernel
def _forward(Lf, work, rhs, out):
    """out = L⁻¹ rhs on the free variables (L the Cholesky factor of H_FF in Lf), 0 on
    the fixed ones; out may be rhs."""
    n = out.shape[0]
    for i in range(n):
        if work[i] != 0.0:
            out[i] = 0.0
            continue
        s = rhs[i]
        for q in range(i):
            if work[q] == 0.0:
                s -= Lf[i, q] * out[q]
        out[i] = s / Lf[i, i]


@kernel
def _backward(Lf, work, rhs, out):
    """out = L⁻ᵀ rhs on the free variables, 0 on the fixed ones; out may be rhs."""
    n = out.shape[0]
    for i in range(n - 1, -1, -1):
        if work[i] != 0.0:
            out[i] = 0.0
            continue
        s = rhs[i]
        for q in range(i + 1, n):
            if work[q] == 0.0:
                s -= Lf[q, i] * out[q]
        out[i] = s / Lf[i, i]


@kernel
def _norm(z, n):
    """‖z[:n]‖₂ without overflow (0 for a zero or NaN vector)."""
    s = 0.0
    for i in range(n):
        if abs(z[i]) > s:
            s = abs(z[i])
    if not (s > 0.0 and s < math.inf):
        return s if s > 0.0 else 0.0
    t = 0.0
    for i in range(n):
        r = z[i] / s
        t += r * r
    return s * math.sqrt(t)


@kernel
def _orthogonalise(S, nw, n, r, z):
    """Project z (n,) off the orthonormal Q rows S[:nw, :n] (modified Gram–Schmidt,
    twice: orthogonal to rounding); the coefficients Qz go to S[r, :nw].  Returns
    ‖z‖ after."""
    for j in range(nw):
        S[r, j] = 0.0
    for _pass in range(2):
        for j in range(nw):
            t = 0.0
            for i in range(n):
                t += S[j, i] * z[i]
            S[r, j] += t
            for i in range(n):
                z[i] -= t * S[j, i]
    return _norm(z, n)


@kernel
def _append(S, nw, n, m, z, rho, k):
    """Row k joins the factorisation as its entry nw: Q row z/ρ, R column
    (S[m + 1, :nw], ρ), index k."""
    for i in range(n):
        S[nw, i] = z[i] / rho
    for j in range(nw):
        S[j, n + nw] = S[m + 1, j]
    S[nw, n + nw] = rho
    S[nw, n + m] = k


@kernel
def _refactor(A, m, Lf, work, S, nw, n, active, z):
    """Factor the nw working rows (indices in S[:nw, n + m]) afresh on the free
    variables; a row found dependent on the ones before it leaves the working set
    as implied.  Returns the new number of working rows."""
    kept = 0
    for j in range(nw):
        k = int(S[j, n + m])
        _forward(Lf, work, A[k], z)
        un = _norm(z, n)
        rho = _orthogonalise(S, kept, n, m + 1, z)
        if not rho > DEP_TOL * un:
            active[k] = _IMPLIED
            continue
        _append(S, kept, n, m, z, rho, k)
        kept += 1
    return kept


@kernel
def _rows_finish(work, active, mu, m, n):
    """The outputs' conventions: work ±1/0, active 1/0, mu ≥ 0 (0 off the working
    set); returns the number of active rows."""
    for i in range(n):
        if work[i] > 0.0:
            work[i] = 1.0
        elif work[i] < 0.0:
            work[i] = -1.0
    count = 0
    for k in range(m):
        s = active[k]
        if s == _IN or s == _KEPT:
            active[k] = 1.0
            if not mu[k] > 0.0:      # also a NaN (an early stop)
                mu[k] = 0.0
            count += 1
        elif s == _IMPLIED:
            active[k] = 1.0
            mu[k] = 0.0
            count += 1
        else:
            active[k] = 0.0
            mu[k] = 0.0
    return count


@kernel
def rows_qp(H, g, lo, hi, A, b, m, x, Lf, work, active, c, p, y, z, x_free, S, mu,
            max_iter):
    """Solve ``min ½xᵀHx + gᵀx`` s.t. ``lo ≤ x ≤ hi``, ``A[k]·x ≥ b[k]`` (k < m) in
    place, from a feasible x.

    Shapes: H, Lf (n, n); g, lo, hi, x, work, c, p, y, z, x_free (n,); A (m_max, n),
    b, active, mu (m_max,) with m ≤ m_max (rows m… are never read or written);
    S at least (m + 2, n + m + 1) — ``(m_max + 2, n + m_max + 2)`` (kernels.layout's
    qp_s) always does.  ``lo[i]`` may be −inf, ``hi[i]`` +inf; an all-zero A[k]
    disables row k (whatever b[k]).

    On return ``work[i]`` is −1 (x[i] at lo[i]), +1 (at hi[i]) or 0 (free),
    ``active[k]`` 1.0 for a row of the final working set (tight at x) and 0.0 else,
    ``mu[k]`` its multiplier (≥ 0; 0 off the working set) and ``x_free`` the
    unconstrained minimiser −H⁻¹g.  Returns (iterations, number of active rows,
    converged).  Lf, c, p, y, z, S are scratch.

    Method (Nocedal & Wright alg. 16.3, primal active set).  The working set W is
    the fixed variables (work ≠ 0) and a list of rows, started empty.  With H_FF =
    LLᵀ the Cholesky factor of H on the free variables F and U = L⁻¹A_W,Fᵀ, U = QR
    by Gram–Schmidt (reorthogonalised; Q, R and W's row list kept in S): R is the
    Cholesky factor of the Schur complement ``A_W H_FF⁻¹ A_Wᵀ = RᵀR``, but formed
    without squaring its condition.  Each iteration, with c = Hx + g, v = L⁻¹c_F:

    * the step minimising the objective on W's face: p_F = −L⁻ᵀ(I − QQᵀ)v, and the
      rows' multipliers ``μ_W = R⁻¹Qᵀv`` (the solution of the Schur system);
    * p ≈ 0 (``STEP_TOL``): the bounds' multipliers ν_i = ±(c − A_Wᵀμ)_i; all
      ≥ −``MULTIPLIER_TOL``·(1 + ‖c‖∞) (a row's μ scaled by ‖A[k]‖∞): converged, x
      is the KKT point, i.e. the minimiser (H ≻ 0); else the most negative leaves W;
    * else the longest step ≤ 1 that keeps every bound and row not in W; the
      first blocking constraint (ties: the bounds, then the rows, in index order)
      joins W.  A bound is set exactly; x stays clamped to the box.

    Degeneracy.  A blocking row whose Gram–Schmidt remainder is ≤ ``DEP_TOL`` of
    its length (numerically linearly dependent on W's rows on the free variables:
    a duplicate, a scaled copy, its negation, a combination, or a row living on
    fixed variables only) does not join W: on W's face it is implied (constant to
    rounding), so it is marked implied (``active`` 1, μ = 0) and skipped by the
    step length test until a constraint leaves W; then it is an ordinary row
    again.  Over a step, such a row moves by at most ``DEP_TOL``·‖A[k]‖_{H⁻¹}·‖Δx‖_H
    (by rounding only for exact copies).  A row of W that becomes dependent when
    a bound joins is treated the same way.  Zero rows never block (A[k]·p = 0).
    Rows and bounds tight at the start block with a zero step and join W one an
    iteration.  Against cycling through rounding: a constraint dropped for a
    (tiny) negative multiplier that blocks the very next step before x moves
    rejoins W kept — not dropped again until x moves; with the ties rule above
    degenerate cycling is otherwise left to the iteration cap.

    Guarantees.  Every iterate keeps the box exactly and each row up to rounding
    (the bound above for an implied row); the objective never increases.  The
    result is finite: non-finite g, x, A[:m], b[:m] (b may be −inf), NaN lo/hi, a
    too small S or an inconsistent shape return at once (0, 0, False) with x
    unchanged; a non-finite step, a multiplier or a failed factorisation midway
    stop with converged False at the last (feasible) iterate.  If the start
    violates a row, the violation does not grow.  Each iteration costs
    O(n²(n + |W|) + mn) flops and no allocation.
    """
    n = x.shape[0]
    if (m < 0 or A.shape[0] < m or b.shape[0] < m or active.shape[0] < m
            or mu.shape[0] < m or A.shape[1] != n or H.shape[0] != n or H.shape[1] != n
            or Lf.shape[0] != n or Lf.shape[1] != n or g.shape[0] != n
            or lo.shape[0] != n or hi.shape[0] != n or work.shape[0] != n
            or c.shape[0] != n or p.shape[0] != n or y.shape[0] != n
            or z.shape[0] != n or x_free.shape[0] != n
            or S.shape[0] < m + 2 or S.shape[1] < n + m + 1):
        return 0, 0, False
    for i in range(n):
        if not (math.isfinite(g[i]) and math.isfinite(x[i])) or lo[i] != lo[i] \
                or hi[i] != hi[i]:
            return 0, 0, False
    for k in range(m):
        if not b[k] < math.inf:          # NaN or +inf
            return 0, 0, False
        for i in range(n):
            if not math.isfinite(A[k, i]):
                return 0, 0, False
    for i in range(n):
        work[i] = 0.0
    for k in range(m):
        active[k] = _OUT
        mu[k] = 0.0
    if not _factor_free(H, Lf, work):
        return 0, 0, False
    for i in range(n):
        c[i] = -g[i]
    _solve_free(H, Lf, work, c, x_free)
    ri = n + m              # S's column of the working rows' indices
    nw = 0                  # rows in the working set
    refactor = False        # the bounds of W changed: L and the rows' QR
    rebuild = False         # a row left W: the rows' QR
    last_kind = 0           # the previous iteration dropped 1: a bound, 2: a row
    last_idx = -1
    converged = False
    rho = 0.0
    it = 0
    while it < max_iter:
        it += 1
        if refactor:
            if not _factor_free(H, Lf, work):
                break
        if refactor or rebuild:
            nw = _refactor(A, m, Lf, work, S, nw, n, active, z)
            refactor = False
            rebuild = False
        # gradient c = Hx + g
        xs = 0.0
        cs = 0.0
        for i in range(n):
            s = g[i]
            for j in range(n):
                s += H[i, j] * x[j]
            c[i] = s
            if abs(x[i]) > xs:
                xs = abs(x[i])
            if abs(s) > cs:
                cs = abs(s)
        # the step on W's face and the rows' multipliers
        _forward(Lf, work, c, y)
        for i in range(n):
            p[i] = y[i]
        _orthogonalise(S, nw, n, m, p)
        for i in range(n):
            p[i] = -p[i]
        _backward(Lf, work, p, p)
        check = 0.0
        for jj in range(nw - 1, -1, -1):
            s = S[m, jj]
            for q in range(jj + 1, nw):
                s -= S[jj, n + q] * S[m, q]
            s /= S[jj, n + jj]
            S[m, jj] = s
            mu[int(S[jj, ri])] = s
            check += abs(s)
        step = 0.0
        for i in range(n):
            check += abs(p[i])
            if abs(p[i]) > step:
                step = abs(p[i])
        if not math.isfinite(check):
            break
        if step <= STEP_TOL * (1.0 + xs):
            # stationary on W's face: the multipliers decide
            worst = -MULTIPLIER_TOL * (1.0 + cs)
            kind = 0
            idx = -1
            for jj in range(nw):
                k = int(S[jj, ri])
                if active[k] == _KEPT:
                    continue
                an = 0.0
                for i in range(n):
                    if abs(A[k, i]) > an:
                        an = abs(A[k, i])
                v = mu[k] * an
                if v < worst:
                    worst = v
                    kind = 2
                    idx = jj
            for i in range(n):
                w = work[i]
                if w != 1.0 and w != -1.0:      # free, or kept
                    continue
                r = c[i]
                for jj in range(nw):
                    k = int(S[jj, ri])
                    r -= mu[k] * A[k, i]
                nu = r if w < 0.0 else -r
                if nu < worst:
                    worst = nu
                    kind = 1
                    idx = i
            if kind == 0:
                converged = True
                break
            if kind == 1:
                work[idx] = 0.0
                refactor = True
                last_idx = idx
            else:
                k = int(S[idx, ri])
                active[k] = _OUT
                mu[k] = 0.0
                for jj in range(idx, nw - 1):
                    S[jj, ri] = S[jj + 1, ri]
                nw -= 1
                rebuild = True
                last_idx = k
            last_kind = kind
            for k in range(m):           # implied rows: W no longer implies them
                if active[k] == _IMPLIED:
                    active[k] = _OUT
            continue
        # step length to the first blocking constraint
        alpha = 1.0
        kind = 0
        idx = -1
        while True:
            alpha = 1.0
            kind = 0
            idx = -1
            for i in range(n):
                if work[i] != 0.0:
                    continue
                if p[i] < 0.0 and lo[i] > -math.inf:
                    t = (lo[i] - x[i]) / p[i]
                    if t < alpha:
                        alpha = t if t > 0.0 else 0.0
                        kind = 1
                        idx = i
                elif p[i] > 0.0 and hi[i] < math.inf:
                    t = (hi[i] - x[i]) / p[i]
                    if t < alpha:
                        alpha = t if t > 0.0 else 0.0
                        kind = 1
                        idx = i
            for k in range(m):
                if active[k] != _OUT:
                    continue
                ap = 0.0
                for i in range(n):
                    ap += A[k, i] * p[i]
                if ap < 0.0:
                    s = -b[k]
                    for i in range(n):
                        s += A[k, i] * x[i]
                    t = s / -ap
                    if t < alpha:
                        alpha = t if t > 0.0 else 0.0
                        kind = 2
                        idx = k
            if kind == 2:
                _forward(Lf, work, A[idx], z)
                un = _norm(z, n)
                rho = _orthogonalise(S, nw, n, m + 1, z)
                if not rho > DEP_TOL * un:
                    active[idx] = _IMPLIED       # dependent: implied by W
                    continue
            break
        moved = alpha * step > STEP_TOL * (1.0 + xs)
        for i in range(n):
            if work[i] != 0.0:
                continue
            xi = x[i] + alpha * p[i]
            if xi < lo[i] and x[i] >= lo[i]:
                xi = lo[i]
            elif xi > hi[i] and x[i] <= hi[i]:
                xi = hi[i]
            x[i] = xi
        if kind == 1:
            keep = (not moved) and last_kind == 1 and last_idx == idx
            if p[idx] < 0.0:
                x[idx] = lo[idx]
                work[idx] = -2.0 if keep else -1.0
            else:
                x[idx] = hi[idx]
                work[idx] = 2.0 if keep else 1.0
            refactor = True
        elif kind == 2:
            _append(S, nw, n, m, z, rho, idx)
            nw += 1
            keep = (not moved) and last_kind == 2 and last_idx == idx
            active[idx] = _KEPT if keep else _IN
            mu[idx] = 0.0
        if moved:
            for i in range(n):
                if work[i] == 2.0:
                    work[i] = 1.0
                elif work[i] == -2.0:
                    work[i] = -1.0
            for k in range(m):
                if active[k] == _KEPT:
                    active[k] = _IN
        last_kind = 0
        last_idx = -1
    return it, _rows_finish(work, active, mu, m, n), converged
