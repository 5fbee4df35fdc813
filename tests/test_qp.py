"""The box QP with one linear inequality, against an exhaustive KKT reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from jacobian_ik.kernels.qp import box_qp


def _reference(H, g, lo, hi, a, b):
    """The minimiser of ½xᵀHx + gᵀx over lo ≤ x ≤ hi, aᵀx ≥ b: every choice of
    which bounds (and whether the linear constraint) hold with equality gives a
    KKT point; the feasible one of least objective is the solution (H ≻ 0)."""
    n = g.shape[0]
    best, best_f = None, np.inf
    for fixed in itertools.product((0, -1, 1), repeat=n):
        for use_a in (False, True):
            free = [i for i in range(n) if fixed[i] == 0]
            x = np.array([lo[i] if fixed[i] < 0 else hi[i] if fixed[i] > 0 else 0.0
                          for i in range(n)])
            if free:
                F = np.array(free)
                rhs = -(g[F] + H[np.ix_(F, [i for i in range(n) if fixed[i] != 0])]
                        @ x[[i for i in range(n) if fixed[i] != 0]])
                if use_a:
                    # [H_FF −a_F; a_Fᵀ 0] [x_F; μ] = [rhs; b − a_Xᵀ x_X]
                    m = len(free)
                    K = np.zeros((m + 1, m + 1))
                    K[:m, :m] = H[np.ix_(F, F)]
                    K[:m, m] = -a[F]
                    K[m, :m] = a[F]
                    r = np.append(rhs, b - a @ x + a[F] @ x[F])
                    try:
                        sol = np.linalg.solve(K, r)
                    except np.linalg.LinAlgError:
                        continue
                    x[F] = sol[:m]
                else:
                    x[F] = np.linalg.solve(H[np.ix_(F, F)], rhs)
            elif use_a and abs(a @ x - b) > 1e-9:
                continue
            if np.all(x >= lo - 1e-9) and np.all(x <= hi + 1e-9) and a @ x >= b - 1e-9:
                f = 0.5 * x @ H @ x + g @ x
                if f < best_f:
                    best, best_f = x, f
    return best


@pytest.mark.parametrize("seed", range(40))
def test_box_qp_finds_the_constrained_minimiser(seed):
    """Random strictly convex QPs (2–4 variables) whose start x = 0 is feasible:
    box_qp's x equals the exhaustive KKT reference, and its working set marks the
    bounds x sits on."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 5))
    A = rng.normal(size=(n, n))
    H = A @ A.T + 0.1 * np.eye(n)
    g = rng.normal(size=n) * 3.0
    lo = -rng.uniform(0.1, 1.0, n)
    hi = rng.uniform(0.1, 1.0, n)
    a = rng.normal(size=n) if seed % 3 else np.zeros(n)
    b = -rng.uniform(0.0, 0.5)
    x = np.zeros(n)
    work, c, p, y, z, x_free = (np.zeros(n) for _ in range(6))
    Lf = np.zeros((n, n))
    _it, _active, _mu, ok = box_qp(H, g, lo, hi, a, b, x, Lf, work, c, p, y, z, x_free, 50)
    assert ok
    ref = _reference(H, g, lo, hi, a, b)
    assert np.allclose(x, ref, atol=1e-8)
    assert np.allclose(x_free, np.linalg.solve(H, -g))
    for i in range(n):
        if work[i] < 0:
            assert x[i] == lo[i]
        elif work[i] > 0:
            assert x[i] == hi[i]


def test_a_feasible_unconstrained_minimiser_is_the_solution():
    """Where −H⁻¹g lies in the box and keeps aᵀx ≥ b, box_qp returns it with an
    empty working set (the fast path of the control cycle's inverse relies on it)."""
    rng = np.random.default_rng(7)
    n = 5
    A = rng.normal(size=(n, n))
    H = A @ A.T + np.eye(n)
    x_star = rng.uniform(-0.2, 0.2, n)
    g = -H @ x_star
    lo, hi = -np.ones(n), np.ones(n)
    a = rng.normal(size=n)
    b = min(0.0, a @ x_star) - 0.1
    x = np.zeros(n)
    work, c, p, y, z, x_free = (np.zeros(n) for _ in range(6))
    box_qp(H, g, lo, hi, a, b, x, np.zeros((n, n)), work, c, p, y, z, x_free, 50)
    assert np.allclose(x, x_star, atol=1e-12)
    assert np.all(work == 0.0)


def _rows_reference(H, g, lo, hi, A, b):
    """The minimiser of ½xᵀHx + gᵀx over lo ≤ x ≤ hi, A x ≥ b: the feasible KKT
    point of least objective over every choice of tight bounds and rows (H ≻ 0)."""
    n, m = g.shape[0], b.shape[0]
    best, best_f = None, np.inf
    for fixed in itertools.product((0, -1, 1), repeat=n):
        F = [i for i in range(n) if fixed[i] == 0]
        X = [i for i in range(n) if fixed[i] != 0]
        for tight in itertools.product((0, 1), repeat=m):
            W = [k for k in range(m) if tight[k]]
            x = np.array([lo[i] if fixed[i] < 0 else hi[i] if fixed[i] > 0 else 0.0
                          for i in range(n)])
            nf, nw = len(F), len(W)
            K = np.zeros((nf + nw, nf + nw))
            r = np.zeros(nf + nw)
            if nf:
                K[:nf, :nf] = H[np.ix_(F, F)]
                r[:nf] = -(g[F] + H[np.ix_(F, X)] @ x[X])
            for j, k in enumerate(W):
                K[:nf, nf + j] = -A[k, F]
                K[nf + j, :nf] = A[k, F]
                r[nf + j] = b[k] - A[k, X] @ x[X]
            try:
                sol = np.linalg.solve(K, r) if nf + nw else np.zeros(0)
            except np.linalg.LinAlgError:
                continue
            x[F] = sol[:nf]
            if np.all(x >= lo - 1e-9) and np.all(x <= hi + 1e-9) and np.all(A @ x >= b - 1e-9):
                f = 0.5 * x @ H @ x + g @ x
                if f < best_f:
                    best, best_f = x.copy(), f
    return best


@pytest.mark.parametrize("seed", range(60))
def test_rows_qp_finds_the_constrained_minimiser_with_several_rows(seed):
    """rows_qp's x equals the exhaustive KKT reference, stays in the box and keeps
    every row, with parallel (scaled duplicate) rows and zero rows among them; the
    unused rows (m ≤ R) are never read (they hold NaN)."""
    from jacobian_ik.kernels.qp import rows_qp

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 5))
    m = int(rng.integers(0, 4))
    M = rng.normal(size=(n, n))
    H = M @ M.T + 0.1 * np.eye(n)
    g = 3.0 * rng.normal(size=n)
    lo = -rng.uniform(0.2, 2.0, size=n)
    hi = rng.uniform(0.2, 2.0, size=n)
    x0 = rng.uniform(0.5 * lo, 0.5 * hi)
    A = rng.normal(size=(m, n))
    if m >= 2 and seed % 3 == 0:
        A[1] = 2.0 * A[0]
    if m >= 3 and seed % 5 == 0:
        A[2] = 0.0
    b = A @ x0 - rng.uniform(0.0, 0.5, size=m)
    if m >= 3 and seed % 5 == 0:
        b[2] = 0.0
    R = m + 1
    A_all = np.full((R, n), np.nan)
    A_all[:m] = A
    b_all = np.full(R, np.nan)
    b_all[:m] = b
    x = x0.copy()
    scratch = [np.zeros(n) for _ in range(5)]
    _it, _w, ok = rows_qp(H, g, lo, hi, A_all, b_all, m, x, np.zeros((n, n)), np.zeros(n),
                          np.zeros(R), *scratch, np.zeros((R + 2, R + n + 2)), np.zeros(R), 60)
    assert ok
    np.testing.assert_allclose(x, _rows_reference(H, g, lo, hi, A, b), atol=1e-8)
    assert np.all(x >= lo) and np.all(x <= hi)
    assert m == 0 or np.all(A @ x >= b - 1e-10)
