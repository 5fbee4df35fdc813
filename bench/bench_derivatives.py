"""∂J/∂q and the σ_min gradient: numba kernels vs pinocchio's kinematic Hessian + NumPy SVD.

Per control cycle of the 7-DOF arm in the pose task, along a moving trajectory
(up to 2 rad/s per joint, 500 Hz): ``jacobian_derivative`` + ``sigma_min_gradient``
(τ = 0.002 and τ = 0), called from compiled code as the control kernel calls
them; timed in blocks of 1000 calls (per-call mean of each block; p50 / p99
over the blocks).  In the same run, interleaved: the one-sided Jacobi SVD with
vectors (``jacobi_svd``, a kernel of similar size) the same way, and the same
result computed the usual way from Python (pinocchio's frame kinematic Hessian,
``numpy.linalg.svd``, the contraction uᵀ ∂J v), per call.  Writes
bench/results/derivatives.json.

Run from the repository root: ``python -m bench.bench_derivatives [--cycles N]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pinocchio as pin
from numba import njit

from bench.common import percentiles, trajectory, write_results
from jacobian_ik import Robot, bundled, kernels
from jacobian_ik.kernels import derivatives

BLOCK = 1000
TAU = 0.002  # [σ unit] soft-min temperature, ~0.1·sigma_stop
SPEED = 2.0  # [rad/s] joint speed bound of the trajectory


@njit
def _fk_block(Q: np.ndarray, P: np.ndarray, A: np.ndarray, T: np.ndarray,
              frames: np.ndarray, Js: np.ndarray) -> None:
    for i in range(Q.shape[0]):
        kernels.fk_jacobian(P, A, T, Q[i], frames, Js[i])


@njit
def _derivative_block(Js: np.ndarray, frames: np.ndarray, A: np.ndarray, T: np.ndarray,
                      dJ: np.ndarray, rows: np.ndarray, G: np.ndarray, work: np.ndarray,
                      grad: np.ndarray, tau: float) -> float:
    acc = 0.0
    for i in range(Js.shape[0]):
        derivatives.jacobian_derivative(frames, A, T, Js[i], dJ)
        acc += derivatives.sigma_min_gradient(Js[i], dJ, rows, G, work, grad, tau)
    return acc


@njit
def _svd_block(Js: np.ndarray, rows: np.ndarray, w: np.ndarray, V: np.ndarray,
               sv: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
    for i in range(Js.shape[0]):
        kernels.jacobi_svd(Js[i], rows, w, V, sv, True, u, v)


class PinocchioGradient:
    """The same result written the usual way: pinocchio's frame kinematic Hessian
    (LOCAL_WORLD_ALIGNED) and Jacobian, numpy.linalg.svd, uᵀ ∂J v per joint."""

    def __init__(self, robot: Robot):
        self.model = pin.buildModelFromXML(robot.urdf_xml)
        self.data = self.model.createData()
        self.tip = self.model.getFrameId(robot.tip_link)
        self.q = pin.neutral(self.model)
        self.idx_q = [self.model.joints[self.model.getJointId(n)].idx_q for n in robot.joint_names]
        self.idx_v = [self.model.joints[self.model.getJointId(n)].idx_v for n in robot.joint_names]

    def __call__(self, q: np.ndarray) -> tuple[float, np.ndarray]:
        self.q[self.idx_q] = q
        pin.computeJointJacobians(self.model, self.data, self.q)
        pin.framesForwardKinematics(self.model, self.data, self.q)
        pin.computeJointKinematicHessians(self.model, self.data, self.q)
        J = pin.getFrameJacobian(self.model, self.data, self.tip,
                                 pin.LOCAL_WORLD_ALIGNED)[:, self.idx_v]
        H = pin.getFrameKinematicHessian(self.model, self.data, self.tip,
                                         pin.LOCAL_WORLD_ALIGNED)
        nv = self.model.nv
        # pinocchio's column-major (6, nv, nv) tensor, read in memory order: [k, i, a]
        H = np.ravel(H, order="K").reshape(nv, nv, 6)[np.ix_(self.idx_v, self.idx_v)]
        U, S, Vt = np.linalg.svd(J)
        m = S.size - 1
        return S[m], np.einsum("a,kia,i->k", U[:, m], H, Vt[m])


def _blocks(cycles: int) -> list[tuple[int, int]]:
    return [(s, min(s + BLOCK, cycles)) for s in range(0, cycles, BLOCK)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=50_000)
    parser.add_argument("--reference-cycles", type=int, default=2_000,
                        help="calls of the pinocchio + NumPy version (it is slow)")
    args = parser.parse_args()

    robot = Robot.from_urdf(bundled.urdf_path("panda"), *bundled.robot_links("panda"))
    n = robot.dof
    rows = robot.task_rows("pose")
    qs = trajectory(robot, args.cycles, SPEED)
    P, A, T = robot.placements, robot.axes, robot.joint_types
    frames = np.zeros((n + 1, 4, 4))
    Js = np.zeros((args.cycles, 6, n))
    _fk_block(qs, P, A, T, frames, Js)
    dJ = np.zeros((n, 6, n))
    G = np.zeros((6, 6))
    work = np.zeros(derivatives.sigma_gradient_scratch_shape(n))
    grad = np.zeros(n)
    ws = robot.workspace()
    reference = PinocchioGradient(robot)

    # warm up (compilation happens here, never in the timed loops)
    _derivative_block(Js[:2], frames, A, T, dJ, rows, G, work, grad, TAU)
    _svd_block(Js[:2], rows, ws.work, ws.V, ws.sv, ws.u_min, ws.v_min)
    reference(qs[0])

    clock = time.perf_counter_ns
    timings: dict[str, list[float]] = {"tau": [], "tau0": [], "svd": []}
    for start, stop in _blocks(args.cycles):
        block = Js[start:stop]
        for key, tau in (("tau", TAU), ("tau0", 0.0)):
            t0 = clock()
            _derivative_block(block, frames, A, T, dJ, rows, G, work, grad, tau)
            timings[key].append((clock() - t0) / (stop - start))
        t0 = clock()
        _svd_block(block, rows, ws.work, ws.V, ws.sv, ws.u_min, ws.v_min)
        timings["svd"].append((clock() - t0) / (stop - start))

    theirs = np.empty(min(args.reference_cycles, args.cycles))
    max_grad_diff = 0.0
    step = max(1, args.cycles // theirs.size)
    for j in range(theirs.size):
        i = j * step
        t0 = clock()
        _s, grad_ref = reference(qs[i])
        theirs[j] = clock() - t0
        _derivative_block(Js[i:i + 1], frames, A, T, dJ, rows, G, work, grad, 0.0)
        max_grad_diff = max(max_grad_diff, float(np.abs(grad - grad_ref).max()))

    ours = percentiles(np.array(timings["tau"]) / 1e3)
    ours0 = percentiles(np.array(timings["tau0"]) / 1e3)
    svd = percentiles(np.array(timings["svd"]) / 1e3)
    ref = percentiles(theirs / 1e3)
    result = {
        "robot": "panda (7-DOF), pose task",
        "cycles": args.cycles,
        "derivatives_tau_us": ours,
        "derivatives_tau0_us": ours0,
        "jacobi_svd_us": svd,
        "pinocchio_numpy_us": ref,
        "tau": TAU,
        "ratio_to_jacobi_svd_p50": ours["p50"] / svd["p50"],
        "speedup_vs_pinocchio_numpy_p50": ref["p50"] / ours0["p50"],
        "max_gradient_difference": max_grad_diff,
    }
    write_results("derivatives", result)
    print("∂J/∂q + σ_min gradient per control cycle, 7-DOF arm, pose task, "
          f"{args.cycles} cycles along a moving trajectory (compiled loop, blocks of {BLOCK})\n")
    print("| implementation | p50 [µs] | p99 [µs] |")
    print("|---|---|---|")
    print(f"| jacobian_derivative + sigma_min_gradient, τ = {TAU} | {ours['p50']:.2f} | "
          f"{ours['p99']:.2f} |")
    print(f"| the same, τ = 0 | {ours0['p50']:.2f} | {ours0['p99']:.2f} |")
    print(f"| jacobi_svd with vectors (same run) | {svd['p50']:.2f} | {svd['p99']:.2f} |")
    print(f"| pinocchio Hessian + NumPy SVD, per call from Python | {ref['p50']:.1f} | "
          f"{ref['p99']:.1f} |")
    print(f"\nratio to jacobi_svd at p50: {result['ratio_to_jacobi_svd_p50']:.2f}; "
          f"pinocchio + NumPy / ours (τ = 0) at p50: "
          f"{result['speedup_vs_pinocchio_numpy_p50']:.0f}×")
    print(f"largest gradient difference between the two: {max_grad_diff:.1e}")


if __name__ == "__main__":
    main()
