"""Throughput of the audit's batch kernels: configurations per second.

One configuration = FK + Jacobian + σ_min + σ_max + manipulability + tip
position (``kernels.batch.batch_metrics``, Gram eigenvalues), for the bundled
robots in the pose task, on all numba threads and on one.  For comparison: the
exact Jacobi SVD with singular vectors (``batch_exact``), and the whole
``jacobian-ik audit`` computation (sampling, kernels, statistics, worst
configurations) for the 7-DOF arm.  Each figure is the median of several
repeats, with the best; the machine may be shared, so the spread matters.  The
process CPU time per configuration (all threads together) depends much less on
other load than the wall-clock rate: on n free cores the rate would be about
n / (CPU time per configuration).

Run from the repository root: ``python -m bench.bench_audit [--samples N]``.
Prints a markdown table and writes bench/results/audit.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numba
import numpy as np

from bench.common import write_results
from jacobian_ik import bundled
from jacobian_ik.audit.report import run_audit
from jacobian_ik.audit.source import load_target
from jacobian_ik.kernels import batch

if TYPE_CHECKING:
    from jacobian_ik.robot import Robot

#: numba's thread count (numba.config has no type information for it).
NUMBA_THREADS: int = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]

#: The throughput the audit is meant to reach for the 7-DOF arm on all threads.
TARGET_PER_SECOND = 500_000


def _rates(fn: Callable[[], object], count: int, repeats: int) -> tuple[float, float, float]:
    """(median, best) of count / wall seconds over ``repeats`` calls of fn(), and the
    median CPU time of the process per configuration [µs] (all threads together)."""
    rates, cpu = [], []
    for _ in range(repeats):
        wall = time.perf_counter()
        used = time.process_time()
        fn()
        cpu.append(1e6 * (time.process_time() - used) / count)
        rates.append(count / (time.perf_counter() - wall))
    return float(np.median(rates)), float(np.max(rates)), float(np.median(cpu))


def _metrics_kernel(robot: Robot, q: np.ndarray, rows: np.ndarray) -> Callable[[], object]:
    n = q.shape[0]
    out = (np.empty(n), np.empty(n), np.empty(n), np.empty((n, 3)))
    return lambda: batch.batch_metrics(robot.placements, robot.axes, robot.joint_types, q,
                                       rows, batch.DEFAULT_CHUNK, *out)


def _exact_kernel(robot: Robot, q: np.ndarray, rows: np.ndarray) -> Callable[[], object]:
    n = q.shape[0]
    out = (np.empty((n, 6)), np.empty((n, rows.size)), np.empty((n, robot.dof)),
           np.empty((n, 3)))
    return lambda: batch.batch_exact(robot.placements, robot.axes, robot.joint_types, q, rows,
                                     batch.DEFAULT_CHUNK, *out)


def measure(samples: int, repeats: int) -> list[dict]:
    threads_all = NUMBA_THREADS
    rows_out = []
    for name in ("panda", "ur5", "planar2"):
        target = load_target(name)
        robot = target.robot
        rows = robot.task_rows("pose")
        q = np.ascontiguousarray(robot.random_configurations(samples,
                                                             np.random.default_rng(0)))
        kernels = [("batch_metrics (Gram eigenvalues)", _metrics_kernel(robot, q, rows),
                    samples)]
        if name == "panda":
            k = max(samples // 5, 1)
            kernels.append(("batch_exact (Jacobi SVD + vectors)",
                            _exact_kernel(robot, q[:k], rows), k))
        for label, fn, count in kernels:
            fn()  # compile / load from cache
            for threads in sorted({threads_all, 1}, reverse=True):
                numba.set_num_threads(threads)
                median, best, cpu_us = _rates(fn, count, repeats)
                rows_out.append({"robot": name, "dof": robot.dof, "what": label,
                                 "threads": threads, "configurations": count,
                                 "per_second_median": median, "per_second_best": best,
                                 "cpu_us_per_configuration": cpu_us})
            numba.set_num_threads(threads_all)
    target = load_target("panda")
    run_audit(target, samples=1000)  # warm-up
    median, best, cpu_us = _rates(lambda: run_audit(target, samples=samples), samples, repeats)
    rows_out.append({"robot": "panda", "dof": 7, "what": "run_audit (end to end)",
                     "threads": threads_all, "configurations": samples,
                     "per_second_median": median, "per_second_best": best,
                     "cpu_us_per_configuration": cpu_us})
    return rows_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=1_000_000,
                        help="configurations per measurement (default 1000000)")
    parser.add_argument("--repeats", type=int, default=7, help="repeats (default 7)")
    args = parser.parse_args(argv)
    rows = measure(args.samples, args.repeats)
    print("| robot | what | threads | configurations/s (median) | best | CPU µs per "
          "configuration |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['robot']} ({r['dof']}-DOF) | {r['what']} | {r['threads']} | "
              f"{r['per_second_median']:,.0f} | {r['per_second_best']:,.0f} | "
              f"{r['cpu_us_per_configuration']:.2f} |")
    panda = next(r for r in rows if r["robot"] == "panda" and r["what"].startswith("batch_m")
                 and r["threads"] == NUMBA_THREADS)
    meets = panda["per_second_median"] >= TARGET_PER_SECOND
    projected = panda["threads"] * 1e6 / panda["cpu_us_per_configuration"]
    print(f"\n7-DOF batch_metrics on {panda['threads']} threads: "
          f"{panda['per_second_median']:,.0f} configurations/s (median of {args.repeats}); "
          f"target {TARGET_PER_SECOND:,}: {'met' if meets else 'NOT met'}. "
          f"CPU time {panda['cpu_us_per_configuration']:.2f} µs per configuration, i.e. "
          f"{projected:,.0f}/s on {panda['threads']} free cores. "
          f"CPUs: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    path = write_results("audit", {
        "robot_task": "pose", "cpus": os.cpu_count(),
        "numba_threads": NUMBA_THREADS,
        "load_average_1min": os.getloadavg()[0], "repeats": args.repeats,
        "target_per_second": TARGET_PER_SECOND, "target_met": meets,
        "projected_per_second_on_free_cores": projected,
        "robots": list(bundled.BUNDLED_ROBOTS), "results": rows})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
