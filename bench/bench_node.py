"""Controller-node benchmark: loop rate, period jitter, compute time and CPU use.

Usage: ``python -m bench.bench_node [--seconds S] [--rates 500 1000]`` from the
repository root.  Writes ``bench/results/node.json`` and prints a markdown table.

For each control rate, the bring-up runner starts the kinematic simulator
(Panda, /joint_states at 500 Hz) and the ``ik_controller`` node (velocity
output, metrics every cycle); a client in this process keeps the arm moving
between two goal poses 16 cm apart.  Over the measurement window:

* loop rate, start-to-start period p50 / p99 / max and overruns (a cycle that
  starts more than 1.5 periods after the previous one or computes longer than
  a period): the node's own measurements, read from /diagnostics;
* cycle time in the node (controller step + publishing the command) p50 / p99 /
  max, and the part spent in ``Controller.step``: ``compute_time`` and
  ``step_time`` of every ``~/jacobian_metrics`` message;
* CPU use of the node process: utime + stime from /proc over the window, in
  percent of one core.

Every process shares the same 2 cores with this client and the simulator.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from bench.common import percentiles, write_results
from jacobian_ik import bundled
from jacobian_ik.node.bringup import Bringup, BringupConfig, ros_environment
from jacobian_ik.robot import Robot

ROBOT = "panda"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process [s]."""
    with open(f"/proc/{pid}/stat") as stream:
        fields = stream.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def diagnostic_values(client) -> dict[str, float]:
    status = client.diagnostics
    out = {}
    for kv in status.values:
        try:
            out[kv.key] = float(kv.value)
        except ValueError:
            pass
    return out


def measure(rate: float, seconds: float, robot: Robot, decimation: int = 1) -> dict:
    from jacobian_ik.node.client import ControllerClient

    env = ros_environment(announce=None)
    config = BringupConfig(robot=ROBOT, controller_parameters={
        "control_rate": float(rate), "metrics_decimation": int(decimation)})
    lines: list[str] = []
    with Bringup(config, env=env, sink=lines.append) as runner:
        if not runner.wait_ready(120.0):
            raise RuntimeError("controller not ready:\n" + "\n".join(lines[-30:]))
        client = ControllerClient(robot.joint_names, domain_id=runner.domain_id,
                                  record_metrics=True, node_name="bench_node")
        try:
            if not client.wait_until_connected(60.0):
                raise RuntimeError("no joint states:\n" + "\n".join(lines[-30:]))
            home = robot.fk(client.q)  # type: ignore[arg-type]  # set once connected
            away = home.copy()
            away[:3, 3] += [0.0, 0.16, 0.0]
            targets = (away, home)
            pid = runner.processes["ik_controller"].pid
            client.send_pose(away, robot.base_link)
            time.sleep(2.0)                                  # settle, fill the buffers
            client.clear_records()
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            k = 0
            while time.monotonic() - t0 < seconds:
                client.send_pose(targets[k % 2], robot.base_link)
                k += 1
                time.sleep(min(1.5, seconds - (time.monotonic() - t0)) or 0.0)
            cpu1, t1 = cpu_seconds(pid), time.monotonic()
            # The node's diagnostics cover its last 4096 cycles, published at ~1 Hz.
            stamp = time.monotonic()
            client.wait_for(lambda: client.diagnostics is not None, 5.0)
            time.sleep(max(0.0, 1.1 - (time.monotonic() - stamp)))
            diag = diagnostic_values(client)
            _, _, metrics = client.recorded()
        finally:
            client.close()
    compute = np.array([row[8] for _, row in metrics])
    step = np.array([row[11] for _, row in metrics])
    return {
        "rate_target_hz": rate,
        "metrics_decimation": decimation,
        "rate_achieved_hz": diag.get("rate_achieved_hz"),
        "period_ms": {"p50": diag.get("period_p50_ms"), "p99": diag.get("period_p99_ms"),
                      "max": diag.get("period_max_ms")},
        "overruns": int(diag.get("overruns", -1)),
        "cycles": int(diag.get("cycles", -1)),
        "compute_us": {k: v * 1e6 for k, v in percentiles(compute).items()},
        "step_us": {k: v * 1e6 for k, v in percentiles(step).items()},
        "metrics_received": int(compute.size),
        "cpu_percent_of_one_core": 100.0 * (cpu1 - cpu0) / (t1 - t0),
        "window_s": t1 - t0,
    }


def table(rows) -> str:
    out = ["| target rate | metrics every | achieved rate | period p50 / p99 / max "
           "| cycle p50 / p99 / max | of which step p50 / p99 | overruns | node CPU "
           "| machine load |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p, c, s = r["period_ms"], r["compute_us"], r["step_us"]
        out.append(
            f"| {r['rate_target_hz']:.0f} Hz | {r['metrics_decimation']} cycle(s) "
            f"| {r['rate_achieved_hz']:.1f} Hz "
            f"| {p['p50']:.2f} / {p['p99']:.2f} / {p['max']:.1f} ms "
            f"| {c['p50']:.0f} / {c['p99']:.0f} / {c['max']:.0f} µs "
            f"| {s['p50']:.0f} / {s['p99']:.0f} µs "
            f"| {r['overruns']} of {r['cycles']} "
            f"| {r['cpu_percent_of_one_core']:.0f} % of a core "
            f"| {max(r['load_average_1min']):.1f} |")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="measurement window per rate [s] (default %(default)s)")
    parser.add_argument("--runs", nargs="+", default=["500", "1000", "1000/10"],
                        metavar="RATE[/N]",
                        help="control rates [Hz], each optionally with the metrics "
                             "decimation N (metrics every N-th cycle; default 1)")
    args = parser.parse_args(argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    robot = Robot.from_urdf(bundled.urdf_path(ROBOT), *bundled.robot_links(ROBOT))
    rows = []
    for run in args.runs:
        rate, _, decimation = run.partition("/")
        rate, decimation = float(rate), int(decimation or 1)
        print(f"measuring the node at {rate:g} Hz (metrics every {decimation} cycles) for "
              f"{args.seconds:g} s ...", flush=True)
        load_before = os.getloadavg()[0]
        row = measure(rate, args.seconds, robot, decimation)
        # Load of the machine (1-minute average, all processes) around the run.
        row["load_average_1min"] = [load_before, os.getloadavg()[0]]
        rows.append(row)
    print()
    print(table(rows))
    path = write_results("node", {
        "robot": ROBOT, "simulator": "kinematic, /joint_states at 500 Hz",
        "cpu_count": os.cpu_count(), "results": rows})
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
