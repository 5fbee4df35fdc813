"""How many goals of the peer sets any controller can reach without crossing a singularity.

For each goal of the closed-loop peer benchmark's sets (bench/peer_goals.py: same
arms, start, seed and goals), IK is solved from the start and from random seeds
(``--seeds``, default 40) and the solutions are kept that

* lie inside the joint limits less joint_limit_margin,
* have σ_min ≥ the barrier floor (1 + BARRIER_MARGIN)·sigma_stop (below it no
  controller that keeps σ_min above that floor can hold the goal; reported too at
  sigma_stop itself), and
* for a 6-joint arm, lie in the start's solution branch: det J is continuous and
  vanishes only where σ_min = 0, so a configuration where det J has the other sign
  cannot be reached without crossing σ_min = 0.  For the UR5 the branch is sharper:
  det J = a2·a3·s3·s5·(a2·c2 + a3·c23 + d5·s234) (UR5 lengths a2 = −0.425,
  a3 = −0.39225, d5 = 0.09465 m), so each of the three factors (elbow, wrist,
  shoulder) keeps the start's sign; the bench checks this product against det J.

A goal without such a solution is out of reach for a controller that never lets
σ_min fall below the floor; the share with one is an upper bound on its reach rate
(paths inside the branch are not checked).  The 7-joint Panda has no such branches:
its bound only counts the σ_min and joint-limit conditions.

Usage (repository root)::

    python -m bench.bench_reach_bound              # the full peer run's goals (300 per set)
    python -m bench.bench_reach_bound --goals 50   # those of its --quick run
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from bench.bench_peer import GOAL_SEED, GOALS_FULL
from bench.common import write_results
from bench.peer_goals import SET_NAMES, Arm, goal, load_arm
from jacobian_ik.ik import solve_ik
from jacobian_ik.kernels.control import BARRIER_MARGIN
from jacobian_ik.params import ControllerParams

#: UR5 link lengths [m] of det J's closed form (module docstring).
UR5_A2, UR5_A3, UR5_D5 = -0.425, -0.39225, 0.09465
IK_TIMEOUT = 0.01        # [s] per solve
IK_TOL = 1e-6            # [m | rad]


def ur5_factors(q: np.ndarray) -> np.ndarray:
    """The UR5's three det J factors at q: elbow s3, wrist s5 and the shoulder term."""
    return np.array([np.sin(q[2]), np.sin(q[4]),
                     UR5_A2 * np.cos(q[1]) + UR5_A3 * np.cos(q[1] + q[2])
                     + UR5_D5 * np.sin(q[1] + q[2] + q[3])])


def branch(arm: Arm, q: np.ndarray) -> tuple[int, ...]:
    """The solution branch of q: signs of det J's factors (UR5), of det J (other
    6-joint arms), or () (no branches: redundant arms)."""
    J = arm.robot.jacobian(q)
    if J.shape != (6, 6):
        return ()
    det = float(np.linalg.det(J))
    if arm.name == "ur5":
        f = ur5_factors(q)
        closed = UR5_A2 * UR5_A3 * float(np.prod(f))
        if not np.isclose(det, closed, rtol=1e-6, atol=1e-9):
            raise RuntimeError(f"det J {det:.6g} differs from its UR5 closed form {closed:.6g}")
        return tuple(int(v) for v in np.sign(f))
    return (int(np.sign(det)),)


def best_sigma(arm: Arm, T_goal: np.ndarray, seeds: int, margin: float,
               rng: np.random.Generator) -> tuple[float, float]:
    """Highest σ_min over the IK solutions of T_goal inside the margins: (any
    branch, the start's branch)."""
    robot = arm.robot
    start_branch = branch(arm, arm.q_start)
    bounded = robot.continuous == 0
    lo = np.where(bounded, robot.lower + margin, -np.inf)
    hi = np.where(bounded, robot.upper - margin, np.inf)
    best_any = best_own = 0.0
    for k in range(seeds):
        q0 = arm.q_start if k == 0 else robot.random_configurations(1, rng)[0]
        res = solve_ik(robot, T_goal, q0=q0, tol=IK_TOL, timeout=IK_TIMEOUT, seed=k)
        if not res.success or np.any(res.q < lo) or np.any(res.q > hi):
            continue
        sigma = float(robot.singular_values(res.q)[-1])
        best_any = max(best_any, sigma)
        if branch(arm, res.q) == start_branch:
            best_own = max(best_own, sigma)
    return best_any, best_own


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goals", type=int, default=GOALS_FULL,
                        help=f"goals per set (default {GOALS_FULL})")
    parser.add_argument("--seeds", type=int, default=40, help="IK seeds per goal (default 40)")
    parser.add_argument("--set", dest="sets", action="append", choices=SET_NAMES,
                        help="only this goal set (repeatable; default all)")
    args = parser.parse_args(argv)
    params = ControllerParams()
    floor = params.sigma_stop * (1.0 + BARRIER_MARGIN)
    rows, result = [], {}
    for name in args.sets or SET_NAMES:
        arm_name, kind = name.rsplit("_", 1)
        arm = load_arm(arm_name)
        rng = np.random.default_rng(0)
        best = np.array([best_sigma(arm, goal(arm, kind, k, GOAL_SEED), args.seeds,
                                    params.joint_limit_margin, rng)
                         for k in range(args.goals)])
        counts = {
            "floor_any_branch": int(np.sum(best[:, 0] >= floor)),
            "floor_start_branch": int(np.sum(best[:, 1] >= floor)),
            "sigma_stop_start_branch": int(np.sum(best[:, 1] >= params.sigma_stop)),
        }
        result[name] = {"goals": args.goals, **counts,
                        "unreachable_goals": [k for k in range(args.goals)
                                              if best[k, 1] < floor]}
        rows.append((name, counts))
        print(f"{name}: {counts}", flush=True)
    n = args.goals
    print(f"\n| set | IK solution with σ_min ≥ {floor:g} (barrier floor) | … in the start's "
          f"branch | … with σ_min ≥ sigma_stop {params.sigma_stop:g}, start's branch |")
    print("|---|---|---|---|")
    for name, c in rows:
        print(f"| {name} | {100 * c['floor_any_branch'] / n:.0f} % | "
              f"{100 * c['floor_start_branch'] / n:.0f} % | "
              f"{100 * c['sigma_stop_start_branch'] / n:.0f} % |")
    if not args.sets:
        path = write_results("reach_bound", {"benchmark": "bench_reach_bound", "seed": GOAL_SEED,
                                             "ik_seeds": args.seeds, "floor": floor,
                                             "sets": result})
        print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
