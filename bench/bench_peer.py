"""Closed loop against a peer, same run: our Controller and pink on the same goals.

Both controllers drive the same perfect kinematic plant at 500 Hz (one-cycle
measurement delay) from a fixed non-singular start toward each goal of four sets
(bench/peer_goals.py: random reachable and nearby goals on the example-robot-data
Panda and UR5), 10 s per goal, with the same Cartesian speed caps (0.25 m/s,
1 rad/s) and the same joint velocity limits.  Ours runs with the default
``ControllerParams()``; pink's settings (bench/peer_pink.py) are printed.  The
bench checks every cycle itself (bench/peer_loop.py): goal reached (1 mm,
0.01 rad), σ_min of the 6×n Jacobian, velocity / acceleration / position limits,
finite commands.  Per-cycle time is the controller call alone (for pink:
``Configuration.update`` plus ``solve_ik``), ours and pink interleaved goal by goal
so machine load falls on both alike.

Usage (repository root)::

    python -m bench.bench_peer                     # 300 goals per set, both (≈ 7 min idle)
    python -m bench.bench_peer --quick             # 50 goals per set
    python -m bench.bench_peer --only ours --set ur5_random --goals 50 --misses

About 7 minutes on an idle 2-core machine (pink's ~120 µs cycle dominates); much
longer while other jobs share the cores (``--jobs N`` spreads the goals over N
processes).  Prints a markdown table; a run over every set and both controllers writes
``bench/results/peer.json`` (others only with ``--out NAME``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import write_results  # noqa: E402
from bench.peer_goals import ARMS, SET_NAMES, Arm, goal, load_arm  # noqa: E402
from bench.peer_loop import DT, GOAL_TIME, PlantProbe, make_controller, probe, run_ours  # noqa: E402
from jacobian_ik.params import ControllerParams, JointLimits  # noqa: E402

if TYPE_CHECKING:
    from bench.peer_pink import PinkPeer

#: One run's statistics (peer_loop.closed_loop and what each controller adds).
Run = dict[str, Any]

GOALS_FULL = 300    # goals per set, default run
GOALS_QUICK = 50    # goals per set, --quick
GOAL_SEED = 7       # seed of the goal sets (peer_goals.goal), default run
CONTROLLERS = ("ours", "pink")
PROGRESS_EVERY = 50   # goals between progress lines
#: Positions at or near a singularity where check_setup compares σ_min (UR5: σ_min = 0,
#: elbow stretched and wrist aligned; Panda: straight up, σ_min ≈ 0.043).
STRETCHED = {"panda": np.zeros(7),
             "ur5": np.array([0.0, -np.pi / 2, 0.0, -np.pi / 2, 0.0, 0.0])}


def summarize(runs: list[Run], controller: str, sigma_stop: float) -> dict[str, Any]:
    """Aggregate of the runs of one controller on one set."""
    times = np.array([r["time"] for r in runs if r["reached"]])
    steps = np.concatenate([r["step_ns"] for r in runs]) * 1e-3   # [µs]
    misses = [r for r in runs if not r["reached"]]
    out = {
        "runs": len(runs), "reached": len(runs) - len(misses),
        "reach_percent": 100.0 * (len(runs) - len(misses)) / len(runs),
        "time_to_reach_median_s": float(np.median(times)) if times.size else None,
        "time_to_reach_p95_s": float(np.percentile(times, 95)) if times.size else None,
        "sigma_min_lowest": min(r["sigma_min_low"] for r in runs),
        "sigma_stop": sigma_stop,
        "cycles_below_sigma_stop": sum(r["cycles_below_sigma_stop"] for r in runs),
        "runs_below_sigma_stop": sum(r["cycles_below_sigma_stop"] > 0 for r in runs),
        "velocity_violation_cycles": sum(r["velocity_violations"] for r in runs),
        "position_violation_cycles": sum(r["position_violations"] for r in runs),
        "acceleration_violation_cycles": sum(r["acceleration_violations"] for r in runs),
        "acceleration_limit_claimed": controller == "ours",
        "nonfinite_commands": sum(r["nonfinite_commands"] for r in runs),
        "worst_velocity_ratio": max(r["worst_velocity_ratio"] for r in runs),
        "worst_acceleration_ratio": max(r["worst_acceleration_ratio"] for r in runs),
        "worst_position_excess": max(0.0, max(r["worst_position_excess"] for r in runs)),
        "tip_speed_max": max(r["tip_speed_max"] for r in runs),
        "tip_angular_speed_max": max(r["tip_angular_speed_max"] for r in runs),
        "cycles": int(steps.size),
        "step_us_mean": float(steps.mean()), "step_us_p50": float(np.percentile(steps, 50)),
        "step_us_p99": float(np.percentile(steps, 99)),
        "misses_still_moving": sum(not r["at_rest"] for r in misses),
        "misses_still_progressing": sum(r["progressing"] for r in misses),
    }
    if controller == "ours":
        out["misses_by_final_state"] = dict(Counter(r["final_state"] for r in misses))
        out["misses_by_reason"] = dict(Counter(r["reason_class"] for r in misses).most_common())
        out["sigma_report_mismatch_cycles"] = sum(r["sigma_report_mismatches"] for r in runs)
        out["goal_report_mismatch_cycles"] = sum(r["goal_report_mismatches"] for r in runs)
    else:
        out["qp_failures"] = sum(r["qp_failures"] for r in runs)
    return out


#: Per-run facts of each miss kept in the results file (goal = index in its set).
MISS_FIELDS = ("sigma_min_low", "cycles_below_sigma_stop", "final_position_error",
               "final_orientation_error", "at_rest", "progressing", "final_state",
               "final_reason", "qp_failures")


def miss_records(runs: list[Run]) -> list[dict[str, Any]]:
    """The runs that missed their goal, for the results file."""
    return [{"goal": k, **{key: r[key] for key in MISS_FIELDS if key in r}}
            for k, r in enumerate(runs) if not r["reached"]]


def check_setup(arm: Arm, params: ControllerParams, peer: PinkPeer | None) -> None:
    """The bench's σ_min and goal errors equal their NumPy references (SVD of
    Robot.jacobian, Robot.fk) and Robot.singular_values, also at a singular
    position; pink's tip pose equals Robot.fk; the start is inside the limits and
    clear of singularities.  Raises otherwise."""
    robot = arm.robot
    rng = np.random.default_rng(0)
    qs = [arm.q_start, *robot.random_configurations(20, rng)]
    qs.append(np.clip(STRETCHED[arm.name], robot.lower, robot.upper))
    goal = robot.fk(robot.random_configurations(1, rng)[0])
    reference = PlantProbe(robot, goal)
    for q in qs:
        sigma, d, angle = probe(robot, q, goal)
        ref_d, ref_angle = reference.errors(q)
        checks = {"numpy SVD": reference.sigma_min(q),
                  "Robot.singular_values": robot.singular_values(q)[-1]}
        for what, value in checks.items():
            if abs(sigma - value) > 1e-8:
                raise RuntimeError(f"{arm.name}: bench σ_min {sigma} != {what} {value} at {q}")
        if abs(d - ref_d) > 1e-12 or abs(angle - ref_angle) > 1e-9:
            raise RuntimeError(f"{arm.name}: bench goal errors differ from Robot.fk's at {q}")
        if peer is not None and peer.check_frames(q) > 1e-9:
            raise RuntimeError(f"{arm.name}: pink's tip pose differs from Robot.fk at {q}")
    if np.any(arm.q_start <= robot.lower) or np.any(arm.q_start >= robot.upper):
        raise RuntimeError(f"{arm.name}: start configuration outside the joint limits")
    if probe(robot, arm.q_start, goal)[0] < params.sigma_warn:
        raise RuntimeError(f"{arm.name}: start configuration is near a singularity")


def fmt_time(s: dict[str, Any]) -> str:
    return "–" if s["time_to_reach_median_s"] is None else f"{s['time_to_reach_median_s']:.2f}"


def print_table(summary: dict[str, dict[str, dict[str, Any]]],
                params: ControllerParams) -> None:
    print(f"\n| set | controller | reached | median time to reach [s] | lowest σ_min | "
          f"cycles (runs) below sigma_stop {params.sigma_stop:g} | velocity / position / "
          f"acceleration violations [cycles] | max ‖dq‖/v_max, ‖Δdq‖/(a_max·dt), "
          f"excess over a position limit [rad] | max tip speed [m/s, rad/s] | per cycle mean / "
          f"p50 / p99 [µs] |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, per in summary.items():
        for controller, s in per.items():
            acc = (str(s["acceleration_violation_cycles"]) if s["acceleration_limit_claimed"]
                   else "n/a")
            print(f"| {name} | {controller} | {s['reach_percent']:.1f} % "
                  f"({s['reached']}/{s['runs']}) | {fmt_time(s)} | {s['sigma_min_lowest']:.4f} | "
                  f"{s['cycles_below_sigma_stop']} ({s['runs_below_sigma_stop']}) | "
                  f"{s['velocity_violation_cycles']} / {s['position_violation_cycles']} / {acc} | "
                  f"{s['worst_velocity_ratio']:.5f}, {s['worst_acceleration_ratio']:.2f}, "
                  f"{s['worst_position_excess']:.2g} | "
                  f"{s['tip_speed_max']:.3f}, {s['tip_angular_speed_max']:.3f} | "
                  f"{s['step_us_mean']:.1f} / {s['step_us_p50']:.1f} / {s['step_us_p99']:.1f} |")
    for name, per in summary.items():
        ours = per.get("ours")
        if ours is None or not ours["misses_by_reason"]:
            continue
        print(f"\nours, {name}: {ours['runs'] - ours['reached']} misses "
              f"({ours['misses_still_moving']} still moving at {GOAL_TIME:g} s, "
              f"{ours['misses_still_progressing']} still progressing: "
              f"≥ 1 mm or 0.01 rad closer in the last second), by final state: "
              + ", ".join(f"{k} {v}" for k, v in sorted(ours["misses_by_final_state"].items())))
        for reason, count in ours["misses_by_reason"].items():
            print(f"  {count:4d}  {reason}")
    for name, per in summary.items():
        ours, pink = per.get("ours"), per.get("pink")
        if ours and pink:
            print(f"\n{name}: pink / ours per-cycle time, mean "
                  f"{pink['step_us_mean'] / ours['step_us_mean']:.1f}×, p50 "
                  f"{pink['step_us_p50'] / ours['step_us_p50']:.1f}×, p99 "
                  f"{pink['step_us_p99'] / ours['step_us_p99']:.1f}×", end="")
    print()
    for name, per in summary.items():
        for c, s in per.items():
            odd = {"non-finite commands": s["nonfinite_commands"],
                   "QP failures": s.get("qp_failures", 0),
                   "reported sigma_min differs from the bench's":
                       s.get("sigma_report_mismatch_cycles", 0),
                   "reported goal_reached differs from the bench's":
                       s.get("goal_report_mismatch_cycles", 0)}
            if any(odd.values()):
                print(f"{name} {c}: " + ", ".join(f"{k} {v}" for k, v in odd.items() if v)
                      + " [cycles]")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{GOALS_QUICK} goals per set (default {GOALS_FULL})")
    parser.add_argument("--goals", type=int, default=None, help="goals per set")
    parser.add_argument("--set", dest="sets", action="append", choices=SET_NAMES,
                        help="only this goal set (repeatable; default all)")
    parser.add_argument("--only", choices=CONTROLLERS, default=None,
                        help="run only this controller")
    parser.add_argument("--seed", type=int, default=GOAL_SEED)
    parser.add_argument("--delay", type=int, choices=(0, 1), default=1,
                        help="measurement delay in cycles (default 1)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="worker processes (default 1: per-cycle times undisturbed)")
    parser.add_argument("--misses", action="store_true",
                        help="list each miss of ours (goal index, state, reason)")
    parser.add_argument("--out", default=None,
                        help="results file name (default: 'peer' for a run over every "
                             "set and both controllers, else not written)")
    return parser.parse_args(argv)


class Bench:
    """The arms, our compiled controllers and the pink peers of one process."""

    def __init__(self, sets: Iterable[str], controllers: Sequence[str], seed: int,
                 delay: int) -> None:
        self.params = ControllerParams()
        self.controllers, self.seed, self.delay = controllers, seed, delay
        self.arms: dict[str, Arm] = {}
        self.limits: dict[str, JointLimits] = {}
        self.peers: dict[str, PinkPeer] = {}
        for name in sets:
            arm_name = name.rsplit("_", 1)[0]
            if arm_name in self.arms:
                continue
            arm = self.arms[arm_name] = load_arm(arm_name)
            self.limits[arm_name] = make_controller(arm.robot, self.params).joint_limits
            if "pink" in controllers:
                from bench.peer_pink import PinkPeer  # pink is imported only when it runs
                self.peers[arm_name] = PinkPeer(arm.robot, arm.urdf_path, self.params,
                                                self.limits[arm_name])

    def run_goal(self, name: str, k: int) -> dict[str, Run]:
        """Goal k of set ``name`` run by each controller: {controller: run statistics}."""
        arm_name, kind = name.rsplit("_", 1)
        arm = self.arms[arm_name]
        T_goal = goal(arm, kind, k, self.seed)
        runs = {}
        if "ours" in self.controllers:
            runs["ours"] = run_ours(arm.robot, self.params, T_goal, arm.q_start,
                                    delay=self.delay)
        if "pink" in self.controllers:
            runs["pink"] = self.peers[arm_name].run(T_goal, arm.q_start, delay=self.delay)
        return runs


_WORKER: Bench | None = None


def _worker_init(sets: Sequence[str], controllers: Sequence[str], seed: int,
                 delay: int) -> None:
    global _WORKER
    _WORKER = Bench(sets, controllers, seed, delay)


def _worker_run(task: tuple[str, int]) -> dict[str, Run]:
    if _WORKER is None:
        raise RuntimeError("the worker process was not initialised (_worker_init)")
    return _WORKER.run_goal(*task)


def run_all(bench: Bench, sets: Sequence[str], count: int,
            jobs: int) -> Iterator[tuple[str, dict[str, list[Run]]]]:
    """Yields (set name, {controller: [runs in goal order]}) set by set."""
    tasks = [(name, k) for name in sets for k in range(count)]
    if jobs == 1:
        results: Iterator[dict[str, Run]] = (bench.run_goal(*task) for task in tasks)
        pool = None
    else:
        pool = ProcessPoolExecutor(jobs, initializer=_worker_init,
                                   initargs=(sets, bench.controllers, bench.seed, bench.delay))
        results = pool.map(_worker_run, tasks, chunksize=2)
    try:
        runs: dict[str, list[Run]] = {}
        for (name, k), result in zip(tasks, results):
            for c, r in result.items():
                runs.setdefault(c, []).append(r)
            if (k + 1) % PROGRESS_EVERY == 0 and k != count - 1:
                print(f"  {name}: {k + 1} of {count} goals", flush=True)
            if k == count - 1:
                yield name, runs
                runs = {}
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    count = args.goals or (GOALS_QUICK if args.quick else GOALS_FULL)
    sets = args.sets or list(SET_NAMES)
    controllers = [args.only] if args.only else list(CONTROLLERS)
    bench = Bench(sets, controllers, args.seed, args.delay)
    params = bench.params
    print(f"closed loop at {1 / DT:g} Hz, perfect kinematic plant, measurement delay "
          f"{args.delay} cycle(s), {GOAL_TIME:g} s per goal, {count} goals per set, seed "
          f"{args.seed}, {args.jobs} process(es); ours: default ControllerParams() "
          f"(sigma_stop {params.sigma_stop:g}, speed caps {params.max_linear_speed:g} m/s, "
          f"{params.max_angular_speed:g} rad/s)", flush=True)
    settings = {}
    for arm_name, arm in bench.arms.items():
        peer = bench.peers.get(arm_name)
        check_setup(arm, params, peer)
        if peer is not None:
            settings[arm_name] = peer.settings()
        print(f"{arm_name}: {arm.robot!r}, start {np.round(arm.q_start, 4).tolist()}, "
              f"velocity limits {bench.limits[arm_name].max_joint_velocity.tolist()}",
              flush=True)
    if settings:
        first = next(iter(settings.values()))
        print("pink settings:", {k: v for k, v in first.items() if k != "limits"},
              "ConfigurationLimit gain", first["limits"]["ConfigurationLimit"],
              "VelocityLimit: as ours", flush=True)

    summary, records = {}, {}
    total_start = time.perf_counter()
    for name, runs in run_all(bench, sets, count, args.jobs):
        summary[name] = {c: summarize(runs[c], c, params.sigma_stop) for c in controllers}
        records[name] = {c: miss_records(runs[c]) for c in controllers}
        rates = ", ".join(f"{c} {summary[name][c]['reach_percent']:.1f} %" for c in controllers)
        print(f"{name}: {rates} ({time.perf_counter() - total_start:.0f} s)", flush=True)
        if args.misses and "ours" in controllers:
            for k, r in enumerate(runs["ours"]):
                if not r["reached"]:
                    print(f"  goal {k}: {r['final_state']}: {r['final_reason']} "
                          f"(error {1e3 * r['final_position_error']:.1f} mm, "
                          f"{r['final_orientation_error']:.3f} rad; limited "
                          f"'{r['final_limited']}'"
                          + ("; still progressing" if r["progressing"] else "") + ")")
    elapsed = time.perf_counter() - total_start
    print_table(summary, params)
    print(f"\n{elapsed:.0f} s")

    out = args.out
    if out is None and not args.sets and not args.only:
        out = "peer"
    if out:
        path = write_results(out, {
            "benchmark": "bench_peer", "rate_hz": 1 / DT, "goal_time_s": GOAL_TIME,
            "measurement_delay_cycles": args.delay, "goals_per_set": count, "seed": args.seed,
            "processes": args.jobs,
            "start": {a: arm.q_start.tolist() for a, arm in bench.arms.items()},
            "urdf": {a: ARMS[a][0] for a in bench.arms},
            "params": params.to_dict(), "pink_settings": settings,
            "summary": summary, "misses": records, "elapsed_s": elapsed})
        print(f"written {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
