"""The control loop as a consumer sees it, next to a bare rclpy loop, same run.

Usage: ``python -m bench.bench_node [--seconds S] [--rates 500 1000]`` from the
repository root.  Writes ``bench/results/node.json`` and prints a markdown table.

For each control rate, one after the other on this machine (the kinematic
simulator, Panda, /joint_states at 500 Hz, always running):

* ``ik_controller`` (velocity output, metrics at 100 Hz) on the EventsExecutor
  and on the SingleThreadedExecutor, goal poses 16 cm apart alternating every
  second (the arm keeps moving);
* the bare rclpy loop (``bench/bare_loop.py``: the same subscription and
  publications, no computation) on each executor.

A consumer in another process (``bench/consumer.py``) records the receipt time
of every command for the window: achieved rate, gap p50 / p99 / max, the share
of gaps longer than 1.5 periods and the longest run of such gaps.  CPU of the
loop process is utime + stime from /proc over the same window, in percent of
one core.  ``cpu vs bare events`` divides by the bare EventsExecutor loop's CPU
at the same rate in the same run.  The controller's time from process start
to its "controller ready" line is reported too (numba cache filled).

Each configuration is measured ``--rounds`` times (default 3), the bare loop
and the controller alternating, so that a burst of machine load falls on both;
a row is the round with the median CPU (every round is in the JSON), and the
ratio divides medians.

``--realtime-priority P`` runs every process at SCHED_FIFO priority P (the
nodes through their ``realtime_priority`` parameter) and writes
``bench/results/node_realtime.json``: the loop on a busy machine when the
scheduler is told what matters.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np

from bench.common import markdown_table, report
from bench.loop_runs import (
    GoalSender,
    bare_loop,
    consume,
    controller,
    loop_figures,
    measurement_env,
    simulator,
    start_pose,
)

EXECUTORS = ("events", "single")


def measure_controller(rate: float, executor: str, seconds: float, home: np.ndarray,
                       priority: int = 0) -> dict:
    env = measurement_env()
    parameters = {"control_rate": float(rate), "executor": executor}
    with controller(env, parameters, priority) as (pid, ready, _):
        goals = GoalSender(env, home)
        try:
            time.sleep(2.0)                       # discovery, first goal, steady state
            info = consume(env, pid, seconds, goals, priority)
        finally:
            goals.close()
    row = loop_figures(info, rate)
    row.update(loop="controller", executor=executor, ready_s=ready)
    return row


def measure_bare(rate: float, executor: str, seconds: float, priority: int = 0) -> dict:
    env = measurement_env()
    with simulator(env, priority), bare_loop(env, rate, executor, priority) as pid:
        time.sleep(2.0)
        info = consume(env, pid, seconds, None, priority)
    row = loop_figures(info, rate)
    row.update(loop="bare rclpy loop", executor=executor)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table; the load column spans the rows' rounds."""
    cells = []
    for r in rows:
        g = r["gap_ms"]
        ratio = r.get("cpu_vs_bare_events")
        loads = [max(x["load_average_1min"]) for x in r.get("rounds", [r])]
        cells.append((
            f"{r['rate_target_hz']:.0f} Hz", r["loop"], r["executor"],
            f"{r['rate_achieved_hz']:.1f} Hz "
            f"({100 * r['rate_achieved_hz'] / r['rate_target_hz']:.2f} %)",
            f"{g['p50']:.2f} / {g['p99']:.2f} / {g['max']:.1f} ms",
            f"{r['late_share_percent']:.2f} %",
            f"{r['cpu_percent_of_one_core']:.0f} %",
            "" if ratio is None else f"{ratio:.2f}×",
            f"{min(loads):.1f}–{max(loads):.1f}"))
    return markdown_table(("rate", "loop", "executor", "achieved", "gap p50 / p99 / max",
                           "gaps > 1.5 periods", "CPU", "CPU vs bare events",
                           "machine load (rounds)"), cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="measurement window per run [s] (default %(default)s)")
    parser.add_argument("--rates", nargs="+", type=float, default=[500.0, 1000.0])
    parser.add_argument("--rounds", type=int, default=3,
                        help="measurements of each configuration, interleaved; a row is "
                             "the median-CPU round (default %(default)s)")
    parser.add_argument("--realtime-priority", type=int, default=0, metavar="P",
                        help="run every process of the measurement (simulator, loop, "
                             "consumer) at SCHED_FIFO priority P (needs the privilege; "
                             "default 0 = normal scheduling)")
    args = parser.parse_args(argv)
    priority = args.realtime_priority
    home = start_pose()
    rows = []
    for rate in args.rates:
        group = []
        for executor in EXECUTORS:
            rounds: dict[str, list[dict[str, Any]]] = {"bare": [], "controller": []}
            for k in range(args.rounds):
                for loop in ("bare", "controller"):
                    print(f"measuring the {loop} loop at {rate:g} Hz on the {executor} "
                          f"executor for {args.seconds:g} s (round {k + 1} of {args.rounds})"
                          " ...", flush=True)
                    load_before = os.getloadavg()[0]
                    row = (measure_bare(rate, executor, args.seconds, priority)
                           if loop == "bare"
                           else measure_controller(rate, executor, args.seconds, home,
                                                   priority))
                    row["load_average_1min"] = [load_before, os.getloadavg()[0]]
                    row["realtime_priority"] = priority
                    rounds[loop].append(row)
            for loop in ("bare", "controller"):
                ordered = sorted(rounds[loop], key=lambda r: r["cpu_percent_of_one_core"])
                row = dict(ordered[(len(ordered) - 1) // 2])
                row["rounds"] = rounds[loop]
                group.append(row)
        reference = next(r for r in group if r["loop"] != "controller"
                         and r["executor"] == "events")["cpu_percent_of_one_core"]
        for row in group:
            row["cpu_vs_bare_events"] = row["cpu_percent_of_one_core"] / reference
        rows += group
    return report("node_realtime" if priority else "node", {
        "robot": "panda", "simulator": "kinematic, /joint_states at 500 Hz",
        "cpu_count": os.cpu_count(), "results": rows}, table(rows), "")


if __name__ == "__main__":
    sys.exit(main())
