"""Derivative kernels against finite differences, pinocchio's kinematic Hessians
and NumPy's SVD."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pinocchio as pin
import pytest
from controller_support import bundled_arm
from kernel_support import nrt_allocations
from pinocchio_reference import PinocchioChain

from jacobian_ik import Robot, bundled, kernels
from jacobian_ik.bundled import example_robot_data_dir
from jacobian_ik.kernels import derivatives

#: example-robot-data arms: (URDF under robots/, base link, tip link).  PR2's
#: left arm from the floor includes the prismatic torso and continuous joints,
#: the Kinova Jaco2 has continuous joints, UR10's tip is a frame past the wrist.
ERD_ARMS = {
    "panda": ("panda_description/urdf/panda.urdf", "panda_link0", "panda_hand"),
    "ur5": ("ur_description/urdf/ur5_robot.urdf", "base_link", "tool0"),
    "ur10": ("ur_description/urdf/ur10_robot.urdf", "world", "ee_link"),
    "jaco2": ("kinova_description/robots/kinova.urdf", "base", "j2s6s200_end_effector"),
    "xarm7": ("xarm_description/urdf/xarm7.urdf", "link_base", "link_eef"),
    "z1": ("z1_description/urdf/z1.urdf", "link00", "link06"),
    "pr2_torso_arm": ("pr2_description/urdf/pr2.urdf", "base_footprint", "l_gripper_tool_frame"),
}
ARMS = [f"bundled:{name}" for name in bundled.BUNDLED_ROBOTS] + [f"erd:{name}" for name in ERD_ARMS]
TASKS = ["pose", "position"]


def _arm_source(arm: str):
    """(URDF path, base, tip) of an ARMS entry; skips when example-robot-data is absent."""
    kind, name = arm.split(":")
    if kind == "bundled":
        return str(bundled.urdf_path(name)), *bundled.robot_links(name)
    robots = example_robot_data_dir()
    if robots is None:
        pytest.skip("example-robot-data is not installed (pip install example-robot-data)")
    path, base, tip = ERD_ARMS[name]
    return str(robots / path), base, tip


_ROBOTS: dict[str, Robot] = {}


def _robot(arm: str) -> Robot:
    if arm not in _ROBOTS:
        kind, name = arm.split(":")
        _ROBOTS[arm] = (bundled_arm(name) if kind == "bundled"
                        else Robot.from_urdf(*_arm_source(arm)))
    return _ROBOTS[arm]


class Derivatives:
    """Preallocated arrays and calls of the derivative kernels for one robot."""

    def __init__(self, robot: Robot):
        n = robot.dof
        self.robot = robot
        self.frames = np.zeros((n + 1, 4, 4))
        self.J = np.zeros((6, n))
        self.dJ = np.zeros((n, 6, n))
        self.G = np.zeros((6, 6))
        self.work = np.zeros(derivatives.sigma_gradient_scratch_shape(n))
        self.grad = np.zeros(n)

    def dJ_at(self, q) -> np.ndarray:
        r = self.robot
        kernels.fk_jacobian(r.placements, r.axes, r.joint_types, np.asarray(q, dtype=float),
                            self.frames, self.J)
        derivatives.jacobian_derivative(self.frames, r.axes, r.joint_types, self.J, self.dJ)
        return self.dJ.copy()

    def soft_min(self, q, task, tau) -> tuple[float, np.ndarray]:
        """(h, ∂h/∂q) at q for the task rows."""
        self.dJ_at(q)
        h = derivatives.sigma_min_gradient(self.J, self.dJ, self.robot.task_rows(task), self.G,
                                           self.work, self.grad, tau)
        return h, self.grad.copy()


def _samples(robot, count, seed):
    return robot.random_configurations(count, np.random.default_rng(seed))


def _sv(robot, q, task):
    return np.linalg.svd(robot.jacobian(q)[robot.task_rows(task)], compute_uv=False)


def _soft_min_numpy(sv, tau):
    s1 = sv.min()
    return s1 - tau * math.log(np.exp(-(sv - s1) / tau).sum()) if tau > 0 else s1


def _central_difference(f, q, h=1e-6):
    """Central differences of f at q along each joint: Shape (n, *f(q).shape)."""
    q = np.asarray(q, dtype=float)
    out = []
    for i in range(q.size):
        e = np.zeros_like(q)
        e[i] = h
        out.append((np.asarray(f(q + e)) - np.asarray(f(q - e))) / (2 * h))
    return np.array(out)


# ------------------------------------------------------------------ ∂J/∂q


@pytest.mark.parametrize("arm", ARMS)
def test_jacobian_derivative_equals_central_difference_of_the_jacobian(arm):
    """dJ[k] = ∂J/∂q_k equals the central difference (h = 1e-6) of the base-frame
    Jacobian from fk_jacobian, every row and column, to 1e-8, at 20 random q."""
    robot = _robot(arm)
    d = Derivatives(robot)
    for q in _samples(robot, 20, seed=1):
        np.testing.assert_allclose(d.dJ_at(q), _central_difference(robot.jacobian, q),
                                   rtol=0, atol=1e-8)


@pytest.mark.parametrize("arm", ARMS)
def test_position_hessian_block_is_symmetric_and_angular_block_lower(arm):
    """∂a_i/∂q_k = ∂a_k/∂q_i (the linear rows are second derivatives of the tip
    position) and ∂w_i/∂q_k = 0 for k ≥ i (a joint's axis moves only with the
    joints before it)."""
    robot = _robot(arm)
    d = Derivatives(robot)
    n = robot.dof
    for q in _samples(robot, 5, seed=2):
        dJ = d.dJ_at(q)
        np.testing.assert_allclose(dJ[:, :3, :], dJ[:, :3, :].transpose(2, 1, 0), atol=1e-15)
        for k in range(n):
            for i in range(k + 1):
                assert np.all(dJ[k, 3:, i] == 0.0)


def _pinocchio_tip_hessian(ref: PinocchioChain, q) -> np.ndarray:
    """pinocchio's kinematic Hessian of the tip frame in LOCAL_WORLD_ALIGNED,
    over our joints, rotated into the base frame: Shape (n, 6, n), [k] = ∂J/∂q_k.

    pinocchio stores the Hessian as an Eigen column-major (6, nv, nv) tensor
    whose element (a, i, k) is ∂J[a, i]/∂q_k; its Python binding hands over that
    buffer unchanged, so it is read in memory order.
    """
    model, data = ref.model, ref.data
    qp = ref.q_pin(q)
    pin.computeJointJacobians(model, data, qp)
    pin.framesForwardKinematics(model, data, qp)
    pin.computeJointKinematicHessians(model, data, qp)
    H = pin.getFrameKinematicHessian(model, data, ref.tip, pin.LOCAL_WORLD_ALIGNED)
    nv = model.nv
    H = np.ravel(H, order="K").reshape(nv, nv, 6)  # [k, i, a] = ∂J[a, i]/∂q_k
    cols = [model.joints[jid].idx_v for jid in ref.joint_ids]
    H = H[np.ix_(cols, cols)].transpose(0, 2, 1)  # [k, a, i]
    R = data.oMf[ref.base].rotation
    return np.concatenate([np.einsum("ba,kbi->kai", R, H[:, :3]),
                           np.einsum("ba,kbi->kai", R, H[:, 3:])], axis=1)


@pytest.mark.parametrize("arm", ARMS)
def test_jacobian_derivative_equals_pinocchio_frame_kinematic_hessian(arm):
    """dJ equals pinocchio's kinematic Hessian of the tip frame (its origin, in
    LOCAL_WORLD_ALIGNED, i.e. the derivative of the Jacobian our kernels build)
    rotated into the base frame, over the chain's joints, to 1e-10, at 20
    random q; continuous joints are mapped to pinocchio's (cos, sin)."""
    robot = _robot(arm)
    ref = PinocchioChain(*_arm_source(arm), robot.joint_names)
    d = Derivatives(robot)
    for q in _samples(robot, 20, seed=3):
        np.testing.assert_allclose(d.dJ_at(q), _pinocchio_tip_hessian(ref, q), rtol=0,
                                   atol=1e-10)


# ------------------------------------------------------------------ ∂σ/∂q


def _simple_sigma_min_samples(robot, task, count, seed, gap=0.02, floor=0.005):
    """Random q where σ_min ≥ floor and σ_2 − σ_min ≥ gap·σ_max (σ_min smooth)."""
    found = []
    for q in _samples(robot, 20 * count, seed):
        sv = _sv(robot, q, task)
        if sv.size == 1 or (sv[-1] >= floor and sv[-2] - sv[-1] >= gap * sv[0]):
            found.append(q)
        if len(found) == count:
            break
    assert len(found) == count
    return found


@pytest.mark.parametrize("arm", ARMS)
@pytest.mark.parametrize("task", TASKS)
def test_sigma_min_gradient_equals_central_difference_of_numpy_sigma_min(arm, task):
    """With τ = 0, the returned value is numpy's σ_min of the task rows (to 1e-12
    relative to σ_max) and grad its central difference (h = 1e-6) to 1e-7, at
    random q where σ_min is simple."""
    robot = _robot(arm)
    d = Derivatives(robot)
    for q in _simple_sigma_min_samples(robot, task, 15, seed=4):
        sv = _sv(robot, q, task)
        h, grad = d.soft_min(q, task, 0.0)
        np.testing.assert_allclose(h, sv[-1], rtol=0, atol=1e-12 * sv[0])
        fd = _central_difference(lambda x: _sv(robot, x, task)[-1], q)
        np.testing.assert_allclose(grad, fd, rtol=0, atol=1e-7)


@pytest.mark.parametrize("arm", ARMS)
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("tau", [0.002, 0.05])
def test_soft_min_is_below_sigma_min_and_its_gradient_equals_central_difference(arm, task, tau):
    """σ_min − τ log m ≤ h ≤ σ_min, h equals the log-sum-exp of numpy's singular
    values, and grad equals the central difference of that numpy h, at random q
    (also where several singular values are within a few τ of σ_min)."""
    robot = _robot(arm)
    d = Derivatives(robot)
    for q in _samples(robot, 15, seed=5):
        sv = _sv(robot, q, task)
        if sv[-1] < 0.005:
            continue  # σ_min is not smooth at 0
        h, grad = d.soft_min(q, task, tau)
        assert sv[-1] - tau * math.log(sv.size) - 1e-14 <= h <= sv[-1] + 1e-14
        np.testing.assert_allclose(h, _soft_min_numpy(sv, tau), rtol=0, atol=1e-12)
        fd = _central_difference(lambda x: _soft_min_numpy(_sv(robot, x, task), tau), q)
        np.testing.assert_allclose(grad, fd, rtol=0, atol=1e-7)


@pytest.mark.parametrize("arm", ["bundled:panda", "bundled:ur5"])
def test_soft_min_tends_to_sigma_min_and_its_gradient_as_tau_shrinks(arm):
    """As τ → 0, h → σ_min (|h − σ_min| ≤ τ log m) and, where σ_min is simple,
    its gradient → ∂σ_min/∂q."""
    robot = _robot(arm)
    d = Derivatives(robot)
    for q in _simple_sigma_min_samples(robot, "pose", 5, seed=6):
        s_min, g_min = d.soft_min(q, "pose", 0.0)
        for tau in (1e-2, 1e-4, 1e-6):
            h, g = d.soft_min(q, "pose", tau)
            assert s_min - tau * math.log(6) - 1e-14 <= h <= s_min + 1e-14
        assert abs(h - s_min) < 1e-12
        np.testing.assert_allclose(g, g_min, atol=1e-12)


def test_soft_min_is_smooth_across_a_crossing_of_the_two_smallest_singular_values():
    """Along a straight joint path on which σ_min and σ_2 of UR5 nearly meet (gap
    < 1e-3, where they exchange their singular vectors),
    h's gradient equals the central difference of numpy's h at every sample
    (including the ones next to the crossing, where σ_min's own gradient jumps),
    and the gradient changes continuously along the path."""
    robot = _robot("bundled:ur5")
    d = Derivatives(robot)
    tau = 0.002
    rng = np.random.default_rng(7)
    for _attempt in range(200):
        q0, q1 = _samples(robot, 2, seed=int(rng.integers(1 << 30)))
        gaps = [np.diff(_sv(robot, q0 + t * (q1 - q0), "pose")[-2:])[0]
                for t in np.linspace(0, 1, 41)]
        signs = np.sign(np.diff(gaps))
        # a crossing shows as the (σ_min − σ_2) gap closing to ~0 and reopening
        i = int(np.argmax(gaps))  # gaps are ≤ 0; the largest is the closest approach
        if gaps[i] > -1e-3 and 0 < i < 40 and signs[i - 1] > 0 > signs[i]:
            break
    else:
        pytest.fail("no crossing of σ_min and σ_2 found")
    ts = np.linspace((i - 1) / 40, (i + 1) / 40, 41)
    previous = None
    for t in ts:
        q = q0 + t * (q1 - q0)
        sv = _sv(robot, q, "pose")
        if sv[-1] < 0.005:
            continue
        _h, grad = d.soft_min(q, "pose", tau)
        fd = _central_difference(lambda x: _soft_min_numpy(_sv(robot, x, "pose"), tau), q)
        np.testing.assert_allclose(grad, fd, rtol=0, atol=1e-6)
        if previous is not None:
            assert np.linalg.norm(grad - previous) < 0.05
        previous = grad


def test_a_call_started_from_the_last_eigenvectors_equals_a_fresh_one():
    """Along a 500 Hz joint trajectory (the control-cycle use, where each call
    starts from the eigenvectors the last one left in work), h and grad equal
    those of a call with a fresh zeroed work (h to 1e-12, grad to 1e-9: the
    eigenvectors are resolved to ~1e-10 rad); and any content of work
    (random numbers, NaN, a basis of another task size) gives the same result."""
    robot = _robot("bundled:panda")
    warm, fresh = Derivatives(robot), Derivatives(robot)
    rng = np.random.default_rng(9)
    q = robot.q_mid.copy()
    for i in range(600):
        if i % 200 == 0:
            direction = rng.normal(size=robot.dof)
            direction *= 2.0 / np.abs(direction).max()
        q = np.clip(q + direction / 500.0, robot.lower, robot.upper)
        for task in ("pose",) if i % 50 else TASKS:
            h, grad = warm.soft_min(q, task, 0.002)
            fresh.work[:] = 0.0
            h0, grad0 = fresh.soft_min(q, task, 0.002)
            assert abs(h - h0) < 1e-12
            np.testing.assert_allclose(grad, grad0, rtol=0, atol=1e-9)
    q = _samples(robot, 1, seed=10)[0]
    fresh.work[:] = 0.0
    h0, grad0 = fresh.soft_min(q, "pose", 0.002)
    for garbage in (rng.normal(size=fresh.work.shape), np.full(fresh.work.shape, np.nan)):
        fresh.work[:] = garbage
        fresh.work[2, 2, 0] = 6  # claims to hold a 6 × 6 basis
        h, grad = fresh.soft_min(q, "pose", 0.002)
        assert abs(h - h0) < 1e-12
        np.testing.assert_allclose(grad, grad0, rtol=0, atol=1e-9)


# ------------------------------------------------------------------ singular configurations

SINGULAR = [
    ("bundled:ur5", [0.3, -1.2, 1.0, -0.5, 0.0, 0.7], "pose"),  # wrist: q5 = 0
    ("bundled:ur5", [0.3, -1.2, 0.0, -0.5, 0.8, 0.7], "pose"),  # stretched elbow: q3 = 0
    ("bundled:planar2", [0.4, 0.0], "position"),  # stretched, k = 3 > n = 2
    ("bundled:panda", [0.0] * 7, "pose"),  # zero configuration, k = 6 < n = 7
]


@pytest.mark.parametrize("arm,q,task", SINGULAR, ids=["ur5-wrist", "ur5-elbow", "planar2-stretched",
                                                      "panda-zero"])
@pytest.mark.parametrize("tau", [0.0, 0.002])
def test_at_a_singular_configuration_the_gradient_is_finite_and_certifies_growth(arm, q, task,
                                                                                 tau):
    """At an exact singularity h ≈ 0 (≤ σ_min + 1e-12) and grad is finite and non-zero,
    and it is a one-sided gradient: along any direction δq, σ_min grows at
    least at the rate |grad·δq| (equal to it where the singular value is
    simple and the null space one-dimensional, as for the UR5)."""
    robot = _robot(arm)
    d = Derivatives(robot)
    q = np.asarray(q, dtype=float)
    s_min = _sv(robot, q, task)[-1]
    assert s_min < 1e-12
    h, grad = d.soft_min(q, task, tau)
    assert np.all(np.isfinite(grad)) and math.isfinite(h)
    assert h <= s_min + 1e-12
    assert np.linalg.norm(grad) > 0.1
    if tau > 0:
        return  # the other singular values are ≫ τ: same gradient as for τ = 0
    rng = np.random.default_rng(8)
    eps = 1e-7
    for _ in range(20):
        dq = rng.normal(size=robot.dof)
        dq /= np.linalg.norm(dq)
        rate = _sv(robot, q + eps * dq, task)[-1] / eps
        assert rate >= abs(grad @ dq) - 1e-5
        if arm == "bundled:ur5":
            assert rate == pytest.approx(abs(grad @ dq), abs=1e-5)


def test_zero_and_non_finite_jacobians_give_finite_output():
    """A zero Jacobian gives h = 0 (all σ are 0) and a finite gradient; a
    Jacobian with NaN or inf gives h = 0 and a zero gradient."""
    n = 7
    dJ = np.zeros((n, 6, n))
    G = np.zeros((6, 6))
    work = np.zeros(derivatives.sigma_gradient_scratch_shape(n))
    grad = np.full(n, 3.0)
    rows = np.arange(6)
    h = derivatives.sigma_min_gradient(np.zeros((6, n)), dJ, rows, G, work, grad, 0.002)
    assert h <= 0.0 and math.isfinite(h) and np.all(np.isfinite(grad))
    for bad in (math.nan, math.inf):
        J = np.ones((6, n))
        J[2, 3] = bad
        grad[:] = 3.0
        assert derivatives.sigma_min_gradient(J, dJ, rows, G, work, grad, 0.002) == 0.0
        assert np.all(grad == 0.0)


# ------------------------------------------------------------------ allocation


def test_derivative_kernels_do_not_allocate_per_call():
    """Called N times from compiled code, jacobian_derivative and
    sigma_min_gradient (pose and position task, smooth and exactly singular
    configurations) make the same number of NRT allocations as when called once."""
    code = textwrap.dedent("""
        import numpy as np
        from numba import njit
        from numba.core.runtime import rtsys
        from jacobian_ik import Robot, bundled, kernels
        from jacobian_ik.kernels import derivatives as D
        r = Robot.from_urdf(bundled.urdf_path('ur5'), *bundled.robot_links('ur5'))
        n = r.dof
        frames = np.zeros((n + 1, 4, 4)); J = np.zeros((6, n)); dJ = np.zeros((n, 6, n))
        G = np.zeros((6, 6)); work = np.zeros(D.sigma_gradient_scratch_shape(n))
        grad = np.zeros(n)
        pose = np.arange(6); position = np.arange(3)

        @njit
        def loop(count, P, A, T, q, frames, J, dJ, pose, position, G, work, grad):
            acc = 0.0
            for i in range(count):
                q[0] += 1e-4
                q[4] = 0.0 if i % 2 == 0 else 0.3  # exact wrist singularity every other call
                kernels.fk_jacobian(P, A, T, q, frames, J)
                D.jacobian_derivative(frames, A, T, J, dJ)
                acc += D.sigma_min_gradient(J, dJ, pose, G, work, grad, 0.002)
                acc += D.sigma_min_gradient(J, dJ, position, G, work, grad, 0.0)
            return acc

        def allocations(count):
            q = np.array([0.3, -1.2, 1.0, -0.5, 0.0, 0.7])
            before = rtsys.get_allocation_stats().alloc
            loop(count, r.placements, r.axes, r.joint_types, q, frames, J, dJ, pose, position,
                 G, work, grad)
            return rtsys.get_allocation_stats().alloc - before

        allocations(1)
        print(allocations(1), allocations(1000))
    """)
    once, many = nrt_allocations(code)
    assert once == many
