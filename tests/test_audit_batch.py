"""Properties of the batch kernels (jacobian_ik.kernels.batch) used by the audit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jacobian_ik import bundled
from jacobian_ik.kernels import batch
from jacobian_ik.robot import Robot


@pytest.fixture(scope="module")
def robots():
    out = {}
    for name in bundled.BUNDLED_ROBOTS:
        base, tip = bundled.robot_links(name)
        out[name] = Robot.from_urdf(bundled.urdf_path(name), base, tip)
    return out


def _metrics(robot, q, task):
    q = np.ascontiguousarray(q, dtype=np.float64)
    n = q.shape[0]
    out = (np.empty(n), np.empty(n), np.empty(n), np.empty((n, 3)))
    batch.batch_metrics(robot.placements, robot.axes, robot.joint_types, q,
                        robot.task_rows(task), 64, *out)
    return out


def _near_singular(robot, rng, count):
    """Configurations with one joint pushed to 0 or a limit: where arms lose rank."""
    q = robot.random_configurations(count, rng)
    for i in range(count):
        j = rng.integers(robot.dof)
        target = rng.choice([0.0, robot.lower[j], robot.upper[j]])
        q[i, j] = np.clip(target, robot.lower[j], robot.upper[j])
    return q


@pytest.mark.parametrize("name", sorted(bundled.BUNDLED_ROBOTS))
@pytest.mark.parametrize("task", ["pose", "position"])
def test_batch_metrics_match_numpy_svd_within_documented_tolerance(robots, name, task):
    """σ_min, σ_max and w = ∏σ of batch_metrics equal numpy's SVD of Robot.jacobian:
    |Δσ_min| ≤ GRAM_SIGMA_ATOL·σ_max, σ_max to 1e-12 relative, |Δw| ≤
    GRAM_SIGMA_ATOL·σ_max^m; the tip equals Robot.fk."""
    robot = robots[name]
    rng = np.random.default_rng(7)
    q = np.vstack([robot.random_configurations(150, rng), _near_singular(robot, rng, 150)])
    s_min, s_max, w, tip = _metrics(robot, q, task)
    rows = robot.task_rows(task)
    for i in range(q.shape[0]):
        sv = np.linalg.svd(robot.jacobian(q[i])[rows], compute_uv=False)
        assert abs(s_min[i] - sv[-1]) <= batch.GRAM_SIGMA_ATOL * sv[0]
        assert s_max[i] == pytest.approx(sv[0], rel=1e-12)
        assert abs(w[i] - np.prod(sv)) <= batch.GRAM_SIGMA_ATOL * sv[0] ** sv.size
        np.testing.assert_allclose(tip[i], robot.fk(q[i])[:3, 3], atol=1e-12)


@pytest.mark.parametrize("name", sorted(bundled.BUNDLED_ROBOTS))
def test_batch_exact_equals_single_configuration_jacobi_svd(robots, name):
    """batch_exact gives Robot.singular_values (jacobi_svd) per configuration, and its
    v_min is a unit joint vector with ‖J v_min‖ = σ_min and u_min = J v_min / σ_min."""
    robot = robots[name]
    rng = np.random.default_rng(3)
    q = np.ascontiguousarray(robot.random_configurations(200, rng))
    rows = robot.task_rows("pose")
    k, n = rows.size, robot.dof
    m = min(k, n)
    sv = np.empty((q.shape[0], 6))
    u = np.empty((q.shape[0], k))
    v = np.empty((q.shape[0], n))
    tip = np.empty((q.shape[0], 3))
    assert batch.batch_exact(robot.placements, robot.axes, robot.joint_types, q, rows, 16,
                             sv, u, v, tip) == m
    for i in range(q.shape[0]):
        np.testing.assert_allclose(sv[i, :m], robot.singular_values(q[i], "pose"),
                                   rtol=1e-13, atol=1e-15)
        J = robot.jacobian(q[i])[rows]
        assert np.linalg.norm(v[i]) == pytest.approx(1.0, abs=1e-12)
        assert np.linalg.norm(J @ v[i]) == pytest.approx(sv[i, m - 1], abs=1e-12)
        np.testing.assert_allclose(J @ v[i], sv[i, m - 1] * u[i], atol=1e-11)


def test_stretched_planar_arm_has_sigma_min_zero_exactly_at_q2_zero(robots):
    """planar2, position task: σ_min σ_max = l1 l2 |sin q2| = 0.2 |sin q2| (the 2 × 2
    determinant), so σ_min ≈ 0 at q2 = 0 and only there."""
    robot = robots["planar2"]
    q2 = np.linspace(-3.0, 3.0, 601)
    q2[300] = 0.0
    q = np.column_stack([np.full_like(q2, 0.4), q2])
    s_min, _s_max, w, _ = _metrics(robot, q, "position")
    np.testing.assert_allclose(w, 0.2 * np.abs(np.sin(q2)), atol=1e-12)
    assert s_min[300] < 1e-7
    assert np.all(s_min[np.abs(q2) > 0.05] > 1e-3)
    assert np.argmin(s_min) == 300


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 6), rank=st.integers(0, 6),
       repeated=st.booleans())
def test_gram_extremes_match_numpy_eigvalsh(seed, m, rank, repeated):
    """gram_extremes returns (λ_min, λ_max, ∏λ) of a PSD matrix to ≲ 1e-13·λ_max, also
    for rank-deficient matrices and repeated eigenvalues."""
    rng = np.random.default_rng(seed)
    rank = min(rank, m)
    if repeated:
        basis, _ = np.linalg.qr(rng.normal(size=(m, m)))
        lam = np.repeat(rng.uniform(0.1, 3.0, size=2), m)[:m]
        lam[:m - rank] = 0.0
        G = (basis * lam) @ basis.T
    else:
        A = rng.normal(size=(m, rank)) * rng.uniform(0.01, 3.0, size=rank)
        G = A @ A.T
    G = np.ascontiguousarray(G)
    ref = np.linalg.eigvalsh(G)
    scratch = np.empty((3, 6))
    lo, hi, prod = batch.gram_extremes(G.copy(), m, scratch[0], scratch[1], scratch[2])
    scale = max(ref[-1], 1e-300)
    assert abs(lo - max(ref[0], 0.0)) <= 1e-13 * scale
    assert abs(hi - ref[-1]) <= 1e-13 * scale
    assert abs(prod - np.prod(np.clip(ref, 0.0, None))) <= 1e-12 * scale ** m
    assert lo >= 0.0


def test_tridiagonal_eigenvalues_of_a_known_matrix():
    """The (2, −1) tridiagonal matrix of size 5 has eigenvalues 2 − 2cos(jπ/6), j = 1..5."""
    m = 5
    d = np.full(6, 2.0)
    e = np.full(6, -1.0)
    batch.tridiagonal_eigenvalues(d, e, m, 0.0)
    expected = 2.0 - 2.0 * np.cos(np.arange(1, m + 1) * np.pi / (m + 1))
    np.testing.assert_allclose(np.sort(d[:m]), expected, atol=1e-14)


def test_batch_metrics_writes_every_sample_for_counts_not_multiple_of_chunk(robots):
    """Every output row is written when N is not a multiple of the chunk size
    (outputs start as NaN; none is left)."""
    robot = robots["ur5"]
    q = np.ascontiguousarray(robot.random_configurations(1001, np.random.default_rng(1)))
    out = [np.full(1001, np.nan), np.full(1001, np.nan), np.full(1001, np.nan),
           np.full((1001, 3), np.nan)]
    batch.batch_metrics(robot.placements, robot.axes, robot.joint_types, q,
                        robot.task_rows("pose"), 100, *out)
    for arr in out:
        assert np.all(np.isfinite(arr))
