"""One kinematic cycle (FK + Jacobian + σ_min + DLS step), numba kernels vs pinocchio + NumPy.

Both implementations compute the same thing for the bundled 7-DOF arm along the
same moving trajectory (up to 1.5 rad/s per joint, sampled at 500 Hz, as in a
control loop), in the same process, interleaved in blocks so that machine load
affects both alike.  Reported: p50 / p99 per-cycle wall time [µs] of each and
their ratio.  Writes bench/results/kinematics.json.

Run from the repository root: ``python -m bench.bench_kinematics [--cycles N]``.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pinocchio as pin

from bench.common import percentiles, trajectory, write_results
from jacobian_ik import Robot, bundled, kernels

LAMBDA_MAX = 0.05
SIGMA_DAMP = 0.05
SPEED = 1.5  # [rad/s] joint speed bound of the trajectory


class PinocchioCycle:
    """The same cycle written the usual way: pinocchio FK and frame Jacobian,
    numpy.linalg.svd for σ, a NumPy solve for the DLS step."""

    def __init__(self, robot: Robot):
        self.model = pin.buildModelFromXML(robot.urdf_xml)
        self.data = self.model.createData()
        self.tip = self.model.getFrameId(robot.tip_link)
        self.q = pin.neutral(self.model)
        self.idx = [self.model.joints[self.model.getJointId(n)].idx_q for n in robot.joint_names]
        self.eye = np.eye(6)

    def __call__(self, q: np.ndarray, v: np.ndarray) -> tuple[pin.SE3, float, np.ndarray]:
        self.q[self.idx] = q
        pin.framesForwardKinematics(self.model, self.data, self.q)
        T = self.data.oMf[self.tip]
        J = pin.computeFrameJacobian(self.model, self.data, self.q, self.tip,
                                     pin.LOCAL_WORLD_ALIGNED)[:, self.idx]
        sigma = np.linalg.svd(J, compute_uv=False)
        s_min = sigma[-1]
        lam = (LAMBDA_MAX * math.sqrt(1.0 - (s_min / SIGMA_DAMP) ** 2)
               if s_min < SIGMA_DAMP else 0.0)
        dq = J.T @ np.linalg.solve(J @ J.T + lam * lam * self.eye, v)
        return T, s_min, dq

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=50_000)
    args = parser.parse_args()

    robot = Robot.from_urdf(bundled.urdf_path("panda"), *bundled.robot_links("panda"))
    ws = robot.workspace()
    rows = robot.task_rows("pose")
    v = np.array([0.05, -0.02, 0.03, 0.1, -0.1, 0.05])
    qs = trajectory(robot, args.cycles, SPEED)
    reference = PinocchioCycle(robot)
    P, A, T = robot.placements, robot.axes, robot.joint_types
    frames, J, scratch, dq = ws.frames, ws.J, ws.scratch, ws.dq
    cycle = kernels.dls_cycle

    # warm up (compilation happens here, never in the timed loop)
    cycle(P, A, T, qs[0], v, rows, LAMBDA_MAX, SIGMA_DAMP, False, frames, J, scratch, dq)
    reference(qs[0], v)

    ours = np.empty(args.cycles)
    theirs = np.empty(args.cycles)
    max_dq_diff = 0.0
    clock = time.perf_counter_ns
    block = 1000
    for start in range(0, args.cycles, block):
        for i in range(start, min(start + block, args.cycles)):
            q = qs[i]
            t0 = clock()
            cycle(P, A, T, q, v, rows, LAMBDA_MAX, SIGMA_DAMP, i > 0, frames, J, scratch, dq)
            ours[i] = clock() - t0
        for i in range(start, min(start + block, args.cycles)):
            t0 = clock()
            _T, _s, dq_ref = reference(qs[i], v)
            theirs[i] = clock() - t0
        max_dq_diff = max(max_dq_diff, float(np.abs(dq_ref - dq).max()))

    ours_us = percentiles(ours / 1e3)
    theirs_us = percentiles(theirs / 1e3)
    result = {
        "robot": "panda (7-DOF)",
        "cycles": args.cycles,
        "numba_us": ours_us,
        "pinocchio_numpy_us": theirs_us,
        "speedup_p50": theirs_us["p50"] / ours_us["p50"],
        "speedup_p99": theirs_us["p99"] / ours_us["p99"],
        "max_dq_difference": max_dq_diff,
    }
    write_results("kinematics", result)
    print("One cycle: FK + Jacobian + σ_min/σ_max + DLS step, 7-DOF arm, "
          f"{args.cycles} cycles along a moving trajectory\n")
    print("| implementation | p50 [µs] | p99 [µs] |")
    print("|---|---|---|")
    print(f"| jacobian_ik numba kernels (one call) | {ours_us['p50']:.2f} | {ours_us['p99']:.2f} |")
    print(f"| pinocchio + NumPy (same cycle) | {theirs_us['p50']:.2f} | {theirs_us['p99']:.2f} |")
    print(f"| ratio (pinocchio+NumPy / numba) | {result['speedup_p50']:.1f}× | "
          f"{result['speedup_p99']:.1f}× |")
    print(f"\nlargest |dq| difference between the two: {max_dq_diff:.1e} rad/s")


if __name__ == "__main__":
    main()
