"""Closed-loop runs of the 7-DOF arm without ROS: convergence and the safe stop.

The bundled panda is simulated kinematically at 500 Hz: ``q += dq·dt`` with the
controller seeing the position one cycle late (a one-cycle measurement delay).
Scenarios, each from the home configuration:

* random goals: FK of random configurations within the joint limits;
* nearby goals: FK of home + U(−0.5, 0.5) rad per joint;
* near-singular goals: FK of random configurations whose σ_min is below
  sigma_warn (split at sigma_stop: goals that themselves demand a stop);
* singular twists: a constant random twist held for 6 s (servo mode), which
  drives the arm into a workspace-boundary or wrist singularity or a joint limit.

A run converges when ``goal_reached`` (1 mm, 0.01 rad) within 10 s.  Every cycle
is checked: velocity (|dq| ≤ v_max), acceleration (|Δdq| ≤ a_max·dt), position
limits and σ_min ≥ sigma_stop.

Usage (repository root): ``python -m bench.bench_closed_loop [--quick]``.
Prints a markdown table and writes ``bench/results/closed_loop.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from bench.common import REPOSITORY, write_results
from jacobian_ik import bundled
from jacobian_ik.controller import Controller
from jacobian_ik.params import ControllerParams
from jacobian_ik.robot import Robot

RATE = 500.0
DT = 1.0 / RATE
HOME = np.array([0.0, -0.4, 0.0, -2.2, 0.0, 1.9, 0.8])
GOAL_TIME = 10.0     # [s] budget per goal
TWIST_TIME = 6.0     # [s] a constant twist is held


def run(robot: Robot, params: ControllerParams, target: np.ndarray, seconds: float,
        stop_at_goal: bool) -> dict[str, Any]:
    """One closed-loop run of a fresh controller from HOME; returns its statistics."""
    ctl = Controller(robot, params)
    ctl.warm_up()       # as a user does before the first cycle (compiled already: ~1 ms)
    limits = ctl.joint_limits
    q = HOME.copy()
    measured = q.copy()
    dq_prev = np.zeros(robot.dof)
    sigma_stop = ctl.params.sigma_stop
    worst_v = worst_a = 0.0
    violations = 0
    below = 0
    outside = 0
    sigma_low = np.inf
    converged_at = None
    states = set()
    cycles = int(round(seconds * RATE))
    for k in range(cycles):
        res = ctl.step(measured, target, DT)
        dq = res.dq_command
        ratio_v = float(np.max(np.abs(dq) / limits.max_joint_velocity))
        ratio_a = float(np.max(np.abs(dq - dq_prev) / (limits.max_joint_acceleration * DT)))
        worst_v = max(worst_v, ratio_v)
        worst_a = max(worst_a, ratio_a)
        violations += ratio_v > 1.0 + 1e-9 or ratio_a > 1.0 + 1e-9
        sigma_low = min(sigma_low, res.sigma_min)
        below += res.sigma_min < sigma_stop
        states.add(res.state.name)
        dq_prev = dq
        measured = q.copy()               # the controller sees this next cycle
        q = q + dq * DT
        outside += bool(np.any(q < robot.lower) or np.any(q > robot.upper))
        if res.goal_reached and converged_at is None:
            converged_at = (k + 1) * DT
            if stop_at_goal:
                break
    return {"converged": converged_at is not None, "time": converged_at,
            "final_state": res.state.name, "states": sorted(states),
            "sigma_min_low": float(sigma_low), "cycles_below_sigma_stop": int(below),
            "worst_velocity_ratio": worst_v, "worst_acceleration_ratio": worst_a,
            "cycles_outside_limits": int(outside), "limit_violations": int(violations),
            "at_rest": bool(np.all(dq == 0.0))}


def summarize(name: str, runs: list[dict]) -> dict:
    times = np.array([r["time"] for r in runs if r["converged"]])
    finals: dict[str, int] = {}
    for r in runs:
        finals[r["final_state"]] = finals.get(r["final_state"], 0) + 1
    return {
        "scenario": name, "runs": len(runs),
        "converged_percent": 100.0 * np.mean([r["converged"] for r in runs]),
        "time_p50_s": float(np.percentile(times, 50)) if times.size else None,
        "time_p95_s": float(np.percentile(times, 95)) if times.size else None,
        "final_states": finals,
        "safe_stop_at_rest": sum(r["final_state"] == "SAFE_STOP" and r["at_rest"] for r in runs),
        "sigma_min_lowest": min(r["sigma_min_low"] for r in runs),
        "cycles_below_sigma_stop": sum(r["cycles_below_sigma_stop"] for r in runs),
        "worst_velocity_ratio": max(r["worst_velocity_ratio"] for r in runs),
        "worst_acceleration_ratio": max(r["worst_acceleration_ratio"] for r in runs),
        "cycles_outside_limits": sum(r["cycles_outside_limits"] for r in runs),
        "cycles_violating_velocity_or_acceleration": sum(r["limit_violations"] for r in runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the runs")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    count = 100 if args.quick else 1000
    rng = np.random.default_rng(args.seed)
    robot = Robot.from_urdf(bundled.urdf_path("panda"), *bundled.robot_links("panda"))
    params = ControllerParams(control_rate=RATE)
    ctl = Controller(robot, params)
    ctl.warm_up()

    scenarios = {}
    start = time.perf_counter()
    goals = robot.random_configurations(count, rng)
    scenarios["random goals"] = [run(robot, params, robot.fk(g), GOAL_TIME, True) for g in goals]
    nearby = np.clip(HOME + rng.uniform(-0.5, 0.5, (count, robot.dof)), robot.lower,
                     robot.upper)
    scenarios["nearby goals"] = [run(robot, params, robot.fk(g), GOAL_TIME, True) for g in nearby]
    singular: list[np.ndarray] = []
    demanding: list[np.ndarray] = []
    while len(singular) + len(demanding) < count // 2:
        g = robot.random_configurations(1, rng)[0]
        s = robot.singular_values(g)[-1]
        if s < params.sigma_stop and len(demanding) < count // 4:
            demanding.append(g)
        elif params.sigma_stop <= s < params.sigma_warn and len(singular) < count // 4:
            singular.append(g)
    scenarios["near-singular goals (sigma_stop <= sigma_goal < sigma_warn)"] = [
        run(robot, params, robot.fk(g), GOAL_TIME, True) for g in singular]
    scenarios["singular goals (sigma_goal < sigma_stop)"] = [
        run(robot, params, robot.fk(g), GOAL_TIME, True) for g in demanding]
    twists = rng.normal(size=(count // 4, 6))
    twists[:, :3] *= 0.15 / np.linalg.norm(twists[:, :3], axis=1, keepdims=True)
    twists[:, 3:] *= 0.3 / np.linalg.norm(twists[:, 3:], axis=1, keepdims=True)
    scenarios["constant twists held 6 s"] = [run(robot, params, t, TWIST_TIME, False)
                                             for t in twists]
    elapsed = time.perf_counter() - start

    summary = [summarize(name, runs) for name, runs in scenarios.items()]
    print(f"\nClosed loop, panda at {RATE:g} Hz, one-cycle measurement delay, "
          f"sigma_stop {params.sigma_stop:g} ({elapsed:.0f} s)\n")
    print("| scenario | runs | converged % | time to goal p50 / p95 s | final states | "
          "lowest sigma_min | cycles below sigma_stop | max v/v_max | max Δdq/(a_max dt) | "
          "cycles over v or a limit | cycles outside position limits |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in summary:
        t = (f"{s['time_p50_s']:.2f} / {s['time_p95_s']:.2f}" if s["time_p50_s"] is not None
             else "–")
        finals = ", ".join(f"{k} {v}" for k, v in sorted(s["final_states"].items()))
        print(f"| {s['scenario']} | {s['runs']} | {s['converged_percent']:.1f} | {t} | {finals} | "
              f"{s['sigma_min_lowest']:.5f} | {s['cycles_below_sigma_stop']} | "
              f"{s['worst_velocity_ratio']:.3f} | {s['worst_acceleration_ratio']:.3f} | "
              f"{s['cycles_violating_velocity_or_acceleration']} | "
              f"{s['cycles_outside_limits']} |")
    path = write_results("closed_loop", {
        "benchmark": "bench_closed_loop", "rate_hz": RATE, "seed": args.seed,
        "goal_time_s": GOAL_TIME, "params": params.to_dict(), "scenarios": summary})
    print(f"\nwritten {path.relative_to(REPOSITORY)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
