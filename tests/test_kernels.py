"""Kinematics kernels against NumPy / pinocchio references and finite differences."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pinocchio as pin
import pytest
from kernel_support import nrt_allocations

from jacobian_ik import Robot, bundled, kernels

ROBOTS = {name: Robot.from_urdf(bundled.urdf_path(name), *bundled.robot_links(name))
          for name in bundled.BUNDLED_ROBOTS}

PRISMATIC_CONTINUOUS = """<robot name="pc">
  <link name="base"/><link name="a"/><link name="b"/><link name="c"/><link name="tip"/>
  <joint name="j1" type="continuous"><parent link="base"/><child link="a"/>
    <origin xyz="0 0 0.2" rpy="0.1 0.2 0.3"/><axis xyz="0 0 1"/></joint>
  <joint name="j2" type="prismatic"><parent link="a"/><child link="b"/>
    <origin xyz="0.1 0 0" rpy="0 0.5 0"/><axis xyz="0.6 0 0.8"/>
    <limit lower="-0.3" upper="0.3" velocity="0.5" effort="10"/></joint>
  <joint name="j3" type="revolute"><parent link="b"/><child link="c"/>
    <origin xyz="0 0.3 0" rpy="0 0 0"/><axis xyz="1 1 0"/>
    <limit lower="-2" upper="2" velocity="1" effort="10"/></joint>
  <joint name="f" type="fixed"><parent link="c"/><child link="tip"/>
    <origin xyz="0.05 0.05 0.1" rpy="0.3 0 0"/></joint>
</robot>"""
ROBOTS["prismatic_continuous"] = Robot.from_urdf(PRISMATIC_CONTINUOUS, "base", "tip")


def _samples(robot, count=25, seed=0):
    return robot.random_configurations(count, np.random.default_rng(seed))


@pytest.mark.parametrize("name", sorted(ROBOTS))
def test_jacobian_equals_central_difference_of_fk(name):
    """Each Jacobian column is the central finite difference of FK: position rows
    d p/dq, rotation rows log(R(q+h) R(q−h)ᵀ)/2h, to 1e-7."""
    robot = ROBOTS[name]
    h = 1e-6
    for q in _samples(robot):
        J = robot.jacobian(q)
        for i in range(robot.dof):
            dq = np.zeros(robot.dof)
            dq[i] = h
            Tp, Tm = robot.fk(q + dq), robot.fk(q - dq)
            np.testing.assert_allclose(J[:3, i], (Tp[:3, 3] - Tm[:3, 3]) / (2 * h), atol=1e-7)
            w = pin.log3(Tp[:3, :3] @ Tm[:3, :3].T) / (2 * h)
            np.testing.assert_allclose(J[3:, i], w, atol=1e-7)


@pytest.mark.parametrize("name", sorted(ROBOTS))
@pytest.mark.parametrize("task", ["pose", "position"])
def test_singular_values_equal_numpy_svd(name, task):
    """jacobi_svd gives numpy's singular values of the task rows (min(k, n) of them,
    descending) to 1e-12 relative to σ_max."""
    robot = ROBOTS[name]
    rows = robot.task_rows(task)
    for q in _samples(robot):
        J = robot.jacobian(q)
        expected = np.linalg.svd(J[rows], compute_uv=False)
        got = robot.singular_values(q, task)
        assert got.shape == (min(len(rows), robot.dof),)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * expected[0])


@pytest.mark.parametrize("name", sorted(ROBOTS))
def test_singular_vectors_of_sigma_min_satisfy_the_svd_relation(name):
    """u_min and v_min are unit vectors with J_task v_min = σ_min u_min and
    J_taskᵀ u_min = σ_min v_min, sign-normalised (largest |v_min| entry positive)."""
    robot = ROBOTS[name]
    ws = robot.workspace()
    rows = robot.task_rows("pose")
    k = len(rows)
    for q in _samples(robot):
        J = robot.jacobian(q)
        m = kernels.jacobi_svd(J, rows, ws.work, ws.V, ws.sv, True, ws.u_min, ws.v_min)
        s_min = ws.sv[m - 1]
        u, v = ws.u_min[:k], ws.v_min
        np.testing.assert_allclose(np.linalg.norm(v), 1.0, atol=1e-12)
        if k <= robot.dof:
            np.testing.assert_allclose(np.linalg.norm(u), 1.0, atol=1e-12)
            np.testing.assert_allclose(J[rows].T @ u, s_min * v, atol=1e-10)
        np.testing.assert_allclose(J[rows] @ v, s_min * u, atol=1e-10)
        assert v[np.argmax(np.abs(v))] > 0


@pytest.mark.parametrize("name", sorted(ROBOTS))
def test_sigma_extremes_cold_equal_svd_extremes_and_manipulability(name):
    """Cold-started sigma_extremes gives σ_min, σ_max of numpy's SVD to 1e-8
    relative, and manipulability ∏σ = √det(JJᵀ) (or √det(JᵀJ) when k > n)."""
    robot = ROBOTS[name]
    ws = robot.workspace()
    rows = robot.task_rows("pose")
    for q in _samples(robot):
        J = robot.jacobian(q)
        sv = np.linalg.svd(J[rows], compute_uv=False)
        s_min, s_max, w = kernels.sigma_extremes(J, rows, ws.G, ws.L, ws.X_min, ws.X_max, ws.Y,
                                                 False, 200, 1e-12)
        np.testing.assert_allclose(s_min, sv[-1], rtol=1e-8)
        np.testing.assert_allclose(s_max, sv[0], rtol=1e-8)
        np.testing.assert_allclose(w, np.prod(sv), rtol=1e-6)


def test_sigma_extremes_warm_tracks_svd_along_a_fast_trajectory():
    """Warm-started along a 7-DOF trajectory at up to 3 rad/s per joint sampled at
    500 Hz (the control-cycle use), with the per-cycle tolerance rtol = 1e-5,
    σ_min and σ_max stay within 1e-5 relative of the exact SVD, and σ_min is never
    underestimated by more than rounding (Rayleigh–Ritz bound)."""
    robot = ROBOTS["panda"]
    ws = robot.workspace()
    rows = robot.task_rows("pose")
    rng = np.random.default_rng(4)
    q = robot.q_mid.copy()
    worst = 0.0
    for i in range(3000):
        if i % 300 == 0:
            direction = rng.normal(size=robot.dof)
            direction *= 3.0 / np.abs(direction).max()
        q = np.clip(q + direction / 500.0, robot.lower, robot.upper)
        J = robot.jacobian(q)
        sv = np.linalg.svd(J, compute_uv=False)
        s_min, s_max, _ = kernels.sigma_extremes(J, rows, ws.G, ws.L, ws.X_min, ws.X_max, ws.Y,
                                                 i > 0, 50, 1e-5)
        assert s_min ** 2 >= sv[-1] ** 2 - 1e-14 * sv[0] ** 2  # Ritz bound, up to rounding
        worst = max(worst, (s_min - sv[-1]) / sv[-1], (sv[0] - s_max) / sv[0])
    assert worst < 1e-5


def test_planar_arm_has_two_singular_values_and_no_false_singularity():
    """The 2-link planar arm has two singular values in any task.  In the
    position task the smaller is ~0 when stretched (q2 = 0) and clearly positive
    elsewhere; in the 6-D pose task it stays positive even when stretched (the
    two columns still differ in their x–y and yaw parts), so the four rows the
    arm cannot move never make it look singular."""
    robot = ROBOTS["planar2"]
    assert robot.singular_values([0.4, 0.0], "position").shape == (2,)
    assert robot.singular_values([0.4, 0.0], "position")[-1] < 1e-12
    assert robot.singular_values([0.4, 1.2], "position")[-1] > 0.1
    assert robot.singular_values([0.4, 3.0], "position")[-1] < 0.1  # nearly folded
    for q2 in (-2.5, -1.0, 0.0, 1.0, 2.5):
        assert robot.singular_values([0.4, q2], "pose")[-1] > 0.1


def test_arm_with_fewer_joints_than_task_rows_uses_the_joint_space_system():
    """For the 6×2 planar Jacobian the singular values are those of the 2 columns,
    and dls_step solves (JᵀJ + λ²I) dq = Jᵀ v (equal to Jᵀ(JJᵀ + λ²I)⁻¹ v)."""
    robot = ROBOTS["planar2"]
    ws = robot.workspace()
    rows = robot.task_rows("pose")
    J = robot.jacobian([0.3, 0.9])
    v = np.array([0.1, -0.2, 0.0, 0.0, 0.0, 0.3])
    lam = 0.05
    assert kernels.dls_step(J, rows, v, lam, ws.M, ws.tmp, ws.dq)
    expected = J.T @ np.linalg.solve(J @ J.T + lam ** 2 * np.eye(6), v)
    np.testing.assert_allclose(ws.dq, expected, atol=1e-12)


@pytest.mark.parametrize("name", sorted(ROBOTS))
@pytest.mark.parametrize("task", ["pose", "position"])
def test_dls_step_equals_numpy_formula(name, task):
    """dls_step equals Jᵀ(JJᵀ + λ²I)⁻¹ v computed with NumPy on the task rows."""
    robot = ROBOTS[name]
    ws = robot.workspace()
    rows = robot.task_rows(task)
    rng = np.random.default_rng(5)
    for q in _samples(robot, 10):
        J = robot.jacobian(q)
        v = rng.normal(size=6)
        lam = rng.uniform(0.001, 0.2)
        assert kernels.dls_step(J, rows, v, lam, ws.M, ws.tmp, ws.dq)
        Jr = J[rows]
        expected = Jr.T @ np.linalg.solve(Jr @ Jr.T + lam ** 2 * np.eye(len(rows)), v[rows])
        np.testing.assert_allclose(ws.dq, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["panda", "ur5", "planar2"])
def test_dls_without_damping_is_the_pseudo_inverse_solution(name):
    """With λ = 0 on a full-rank Jacobian, dls_step gives pinv(J_task) v."""
    robot = ROBOTS[name]
    ws = robot.workspace()
    rows = robot.task_rows("pose")
    v = np.array([0.05, -0.02, 0.03, 0.1, -0.2, 0.05])
    for q in _samples(robot, 10, seed=6):
        J = robot.jacobian(q)
        assert kernels.dls_step(J, rows, v, 0.0, ws.M, ws.tmp, ws.dq)
        np.testing.assert_allclose(ws.dq, np.linalg.pinv(J) @ v, rtol=1e-8, atol=1e-10)


def test_dls_without_damping_at_a_singularity_reports_failure_and_zero_step():
    """At an exact singularity with λ = 0 the system is singular: dls_step returns
    False and a zero step, never inf or NaN."""
    robot = ROBOTS["planar2"]
    ws = robot.workspace()
    J = robot.jacobian([0.2, 0.0])
    ws.dq[:] = 7.0
    ok = kernels.dls_step(J, robot.task_rows("position"), np.ones(6), 0.0, ws.M, ws.tmp, ws.dq)
    assert not ok
    assert np.all(ws.dq == 0.0)
    # with damping the same configuration gives a finite, bounded step
    assert kernels.dls_step(J, robot.task_rows("position"), np.ones(6), 0.05, ws.M, ws.tmp, ws.dq)
    assert np.all(np.isfinite(ws.dq))


def test_nakamura_damping_ramps_in_below_sigma_damp():
    """λ = λ_max √(1 − (σ/σ_damp)²) below σ_damp, λ_max at σ = 0, and 0 at and above σ_damp."""
    assert kernels.damping_nakamura(0.0, 0.1, 0.05) == pytest.approx(0.1)
    assert kernels.damping_nakamura(0.03, 0.1, 0.05) == pytest.approx(0.1 * math.sqrt(1 - 0.36))
    assert kernels.damping_nakamura(0.05, 0.1, 0.05) == 0.0
    assert kernels.damping_nakamura(0.2, 0.1, 0.05) == 0.0


def test_dls_cycle_equals_its_parts():
    """dls_cycle = FK + Jacobian + sigma_extremes + Nakamura damping + dls_step."""
    robot = ROBOTS["panda"]
    ws = robot.workspace()
    rows = robot.task_rows("pose")
    q = _samples(robot, 1, seed=9)[0]
    v = np.array([0.1, 0.0, -0.1, 0.2, 0.0, 0.1])
    s_min, s_max, w, lam, ok = kernels.dls_cycle(robot.placements, robot.axes, robot.joint_types,
                                                 q, v, rows, 0.08, 0.5, False, ws.frames, ws.J,
                                                 ws.scratch, ws.dq)
    J = robot.jacobian(q)
    sv = np.linalg.svd(J, compute_uv=False)
    assert ok
    np.testing.assert_allclose(ws.frames[-1], robot.fk(q), atol=1e-14)
    np.testing.assert_allclose([s_min, s_max, w], [sv[-1], sv[0], np.prod(sv)], rtol=1e-5)
    expected_lam = 0.08 * math.sqrt(max(0.0, 1 - (sv[-1] / 0.5) ** 2)) if sv[-1] < 0.5 else 0.0
    np.testing.assert_allclose(lam, expected_lam, rtol=1e-5)
    np.testing.assert_allclose(ws.dq, J.T @ np.linalg.solve(J @ J.T + lam ** 2 * np.eye(6), v),
                               rtol=1e-9)


def _random_rotation(rng):
    return pin.exp3(rng.normal(size=3))


@pytest.mark.parametrize("angle", [0.0, 1e-9, 1e-5, 0.3, 2.0, math.pi - 1e-3, math.pi - 1e-6,
                                   math.pi])
def test_pose_error_is_translation_and_rotation_log(angle):
    """pose_error = (p_target − p_tip, log(R_target R_tipᵀ)) equals pinocchio's log3
    for angles from 0 to π, including the near-π branch."""
    rng = np.random.default_rng(int(angle * 1e6) % 1000)
    for _ in range(20):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        R_tip = _random_rotation(rng)
        R_target = pin.exp3(axis * angle) @ R_tip
        T_tip = np.eye(4)
        T_target = np.eye(4)
        T_tip[:3, :3], T_tip[:3, 3] = R_tip, rng.normal(size=3)
        T_target[:3, :3], T_target[:3, 3] = R_target, rng.normal(size=3)
        err = np.zeros(6)
        kernels.pose_error(T_tip, T_target, err)
        np.testing.assert_allclose(err[:3], T_target[:3, 3] - T_tip[:3, 3], atol=1e-15)
        expected = axis * angle
        if angle == math.pi:  # ±axis·π are the same rotation
            assert np.allclose(err[3:], expected, atol=1e-8) or np.allclose(err[3:], -expected,
                                                                               atol=1e-8)
        else:
            np.testing.assert_allclose(err[3:], expected, atol=1e-8)


@pytest.mark.slow
def test_kernels_do_not_allocate_per_call():
    """Called N times from compiled code, the per-cycle kernels make the same number
    of NRT allocations as when called once: nothing is allocated per cycle."""
    code = textwrap.dedent("""
        import numpy as np
        from numba import njit
        from numba.core.runtime import rtsys
        from jacobian_ik import Robot, bundled, kernels
        r = Robot.from_urdf(bundled.urdf_path('panda'), *bundled.robot_links('panda'))
        ws = r.workspace()
        rows = np.arange(6)
        v = np.full(6, 0.1)

        @njit
        def loop(n, P, A, T, q, v, rows, frames, J, scratch, dq, work, V, sv, u, vm, err):
            for i in range(n):
                q[0] += 1e-4
                kernels.dls_cycle(P, A, T, q, v, rows, 0.05, 0.05, i > 0, frames, J, scratch, dq)
                kernels.jacobi_svd(J, rows, work, V, sv, True, u, vm)
                kernels.pose_error(frames[7], frames[6], err)
            return 0

        def allocations(n):
            q = r.q_mid.copy()
            before = rtsys.get_allocation_stats().alloc
            loop(n, r.placements, r.axes, r.joint_types, q, v, rows, ws.frames, ws.J, ws.scratch,
                 ws.dq, ws.work, ws.V, ws.sv, ws.u_min, ws.v_min, ws.err)
            return rtsys.get_allocation_stats().alloc - before

        allocations(1)
        print(allocations(1), allocations(1000))
    """)
    once, many = nrt_allocations(code)
    assert once == many


@pytest.mark.parametrize("seed", range(20))
def test_tip_speed_cut_keeps_the_tip_within_its_limits_on_the_segment_to_the_brake(seed):
    """tip_speed_cut moves dq toward the brake, as little as needed: afterwards the
    tip's linear (and, for a pose task, angular) speed is within its limit, dq lies
    on the segment from the brake to the original dq, and a dq already within the
    limits (or a brake that is not) gives the documented result."""
    from jacobian_ik.kernels.control import tip_speed_cut

    rng = np.random.default_rng(seed)
    n = 7
    J = rng.normal(size=(6, n))
    rows = np.arange(6 if seed % 2 else 3, dtype=np.int64)
    brake = rng.normal(size=n) * 0.01
    dq0 = rng.normal(size=n)
    dq = dq0.copy()
    v_max, w_max = 0.25, 1.0
    changed = tip_speed_cut(J, rows, brake, dq, v_max, w_max)
    d = dq - brake
    c = float(np.dot(d, dq0 - brake) / np.dot(dq0 - brake, dq0 - brake))
    assert np.allclose(d, c * (dq0 - brake), atol=1e-12) and -1e-12 <= c <= 1.0 + 1e-12
    fits = (np.linalg.norm(J[:3] @ brake) <= v_max
            and (rows.shape[0] == 3 or np.linalg.norm(J[3:] @ brake) <= w_max))
    if fits:
        assert np.linalg.norm(J[:3] @ dq) <= v_max * (1 + 1e-9)
        if rows.shape[0] == 6:
            assert np.linalg.norm(J[3:] @ dq) <= w_max * (1 + 1e-9)
    else:
        assert np.allclose(dq, brake)
    assert changed == (not np.allclose(dq, dq0))
    dq_small = dq0 * 1e-4
    assert not tip_speed_cut(J, rows, brake, dq_small.copy(), v_max, w_max) \
        or np.linalg.norm(J[:3] @ dq_small) > v_max


def test_every_kernel_that_does_not_allocate_runs_without_reference_counting():
    """Every compiled function of the kernel modules is built by ``jit.kernel`` or
    ``jit.view`` (no reference-counting runtime, so no atomic count per view in a
    cycle, and numba refuses an allocation), except the parallel sweeps, which
    allocate each thread's scratch on purpose."""
    from jacobian_ik.precompile import kernel_dispatchers

    found = kernel_dispatchers()
    for name, dispatcher in found.items():
        options = dispatcher.targetoptions
        assert options.get("parallel") or options.get("_nrt") is False, \
            f"kernels.{name} is compiled with numba's reference counting"
    assert len(found) > 50
