"""IK benchmark under the TRAC-IK protocol: success rate and solve time per arm.

Protocol (TRAC-IK's README tables): random joint configurations within the limits
(continuous joints in [−π, π]) → forward kinematics → ``solve_ik`` seeded from the
mid-range configuration, tol 1e-5 on each of x, y, z, roll, pitch, yaw, timeout
5 ms; success rate, and mean and p99 wall time per solve (failures count their
full time).  Arms: the bundled ones and the reference arms of example-robot-data.
Each success is re-checked against ``Robot.fk`` outside the solver.

Usage (repository root): ``python -m bench.bench_ik [--quick] [--samples N]``.
Prints a markdown table and writes ``bench/results/ik.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from bench.common import REPOSITORY, write_results
from jacobian_ik import bundled
from jacobian_ik.ik import solve_ik
from jacobian_ik.robot import Robot

TOL = 1e-5
TIMEOUT = 0.005

#: (label, example-robot-data file, base link, tip link, TRAC-IK (success %, mean ms), KDL).
ERD_ARMS = (
    ("UR5 (erd)", "ur_description/urdf/ur5_robot.urdf", "base_link", "ee_link",
     (99.17, 0.37), (16.52, 4.21)),
    ("UR10 (erd)", "ur_description/urdf/ur10_robot.urdf", "base_link", "ee_link",
     (99.33, 0.36), None),
    ("Panda (erd)", "panda_description/urdf/panda.urdf", "panda_link0", "panda_link8",
     (99.88, 0.37), (62.02, 2.11)),
    ("Kinova Jaco2 j2s6s200 (erd)", "kinova_description/robots/kinova.urdf",
     "j2s6s200_link_base", "j2s6s200_end_effector", (99.92, 0.35), None),
    ("Baxter left arm (erd)", "baxter_description/urdf/baxter.urdf", "torso", "left_gripper",
     (99.83, 0.37), None),
    ("PR2 right arm (erd)", "pr2_description/urdf/pr2.urdf", "torso_lift_link",
     "r_wrist_roll_link", (99.96, 0.31), None),
)


def arms() -> list[tuple[str, Robot, tuple[float, float] | None,
                     tuple[float, float] | None]]:
    """(label, Robot, TRAC-IK figures, KDL figures) of every benchmarked arm."""
    out: list[tuple[str, Robot, tuple[float, float] | None, tuple[float, float] | None]] = []
    for name in bundled.BUNDLED_ROBOTS:
        robot = Robot.from_urdf(bundled.urdf_path(name), *bundled.robot_links(name))
        out.append((f"{name} (bundled)", robot, None, None))
    erd = bundled.example_robot_data_dir()
    if erd is None:
        print("example-robot-data is not installed: only the bundled arms are measured")
        return out
    for label, path, base, tip, trac, kdl in ERD_ARMS:
        out.append((label, Robot.from_urdf(erd / path, base, tip), trac, kdl))
    return out


def pose_error_components(T_target: np.ndarray, T: np.ndarray) -> np.ndarray:
    """TRAC-IK's six error components, in the target frame (independent of the solver)."""
    R_t = T_target[:3, :3]
    dp = R_t.T @ (T[:3, 3] - T_target[:3, 3])
    R_err = R_t.T @ T[:3, :3]
    angle = np.arccos(np.clip((np.trace(R_err) - 1.0) / 2.0, -1.0, 1.0))
    axis = np.array([R_err[2, 1] - R_err[1, 2], R_err[0, 2] - R_err[2, 0],
                     R_err[1, 0] - R_err[0, 1]])
    s = np.linalg.norm(axis)
    rot = axis * (angle / s) if s > 1e-12 else 0.5 * axis
    return np.concatenate([dp, rot])


def measure(robot: Robot, samples: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    configs = robot.random_configurations(samples, rng)
    solve_ik(robot, robot.fk(robot.q_mid))  # compile
    times = np.empty(samples)
    success = np.zeros(samples, dtype=bool)
    iterations = np.empty(samples)
    q_seed = robot.q_mid
    for k, q in enumerate(configs):
        T = robot.fk(q)
        res = solve_ik(robot, T, q0=q_seed, tol=TOL, timeout=TIMEOUT, seed=k)
        times[k] = res.time
        iterations[k] = res.iterations
        if res.success:
            err = np.abs(pose_error_components(T, robot.fk(res.q))).max()
            inside = np.all((res.q >= robot.lower) & (res.q <= robot.upper))
            success[k] = err <= TOL * 1.0001 and inside
    return {
        "dof": robot.dof,
        "base_link": robot.base_link,
        "tip_link": robot.tip_link,
        "samples": samples,
        "success_percent": 100.0 * success.mean(),
        "mean_ms": 1e3 * times.mean(),
        "p50_ms": 1e3 * float(np.percentile(times, 50)),
        "p99_ms": 1e3 * float(np.percentile(times, 99)),
        "mean_iterations": float(iterations.mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 samples per arm")
    parser.add_argument("--samples", type=int, default=None, help="samples per arm")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)
    samples = args.samples or (1000 if args.quick else 10000)

    rows = []
    results = {}
    for label, robot, trac, kdl in arms():
        start = time.perf_counter()
        r = measure(robot, samples, args.seed)
        r["trac_ik"] = {"success_percent": trac[0], "mean_ms": trac[1]} if trac else None
        r["kdl"] = {"success_percent": kdl[0], "mean_ms": kdl[1]} if kdl else None
        results[label] = r
        print(f"{label}: {r['success_percent']:.2f}% in {time.perf_counter() - start:.1f} s",
              file=sys.stderr, flush=True)
        trac_text = f"{trac[0]:.2f} / {trac[1]:.2f}" if trac else "–"
        kdl_text = f"{kdl[0]:.2f} / {kdl[1]:.2f}" if kdl else "–"
        rows.append(f"| {label} | {robot.dof} | `{robot.base_link}` → `{robot.tip_link}` | "
                    f"{r['success_percent']:.2f} | {r['mean_ms']:.3f} | {r['p99_ms']:.3f} | "
                    f"{trac_text} | {kdl_text} |")

    print(f"\nIK, TRAC-IK protocol: {samples} random in-limit configurations per arm, "
          f"mid-range seed, tol {TOL:g}, timeout {TIMEOUT * 1e3:g} ms\n")
    print("| arm | DOF | chain | success % | mean ms | p99 ms | TRAC-IK % / ms | KDL % / ms |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    path = write_results("ik", {"benchmark": "bench_ik", "samples": samples, "tol": TOL,
                                "timeout_s": TIMEOUT, "seed": args.seed, "arms": results})
    print(f"\nwritten {path.relative_to(REPOSITORY)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
