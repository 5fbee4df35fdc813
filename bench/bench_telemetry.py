"""Telemetry overhead: does the control loop notice the exporter and a 1 s scrape?

Usage: ``python -m bench.bench_telemetry [--seconds S] [--rounds N]`` from the
repository root.  Writes ``bench/results/telemetry.json`` and prints a table.

Three configurations, run in turn ``rounds`` times each (the machine is
shared, so the reference is measured in the same run, interleaved):

* reference: simulator + controller (500 Hz, metrics every cycle, flight
  recorder on), no exporter;
* exporter: the same plus the ``telemetry_exporter`` process, scraped once a
  second over HTTP during the whole window;
* exporter, metrics every 10th cycle: ``metrics_rate`` 50 Hz at 500 Hz (the totals
  still count every cycle), which cuts the exporter's message rate tenfold.

In both, a client keeps the arm moving between two goals 16 cm apart.  Per
window: late-cycle share of the controller (overruns / cycles, from the
node's own counters in /diagnostics), controller CPU (utime + stime from /proc,
% of one core, and per control cycle: the load-independent figure) and the
exporter's CPU.  Medians over the rounds.  In-process:
the time the telemetry hooks add to one control cycle (aggregates + flight-
recorder row) next to ``Controller.step``.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.common import cpu_seconds, markdown_table, report
from jacobian_ik import bundled
from jacobian_ik.node.bringup import EXPORTER_NODE, Bringup, BringupConfig, ros_environment
from jacobian_ik.robot import Robot

if TYPE_CHECKING:
    from jacobian_ik.node.client import ControllerClient

ROBOT = "panda"
SCRAPE_PERIOD = 1.0   # [s]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def diagnostic_values(client: ControllerClient) -> dict[str, float]:
    """The numeric values of the node's latest diagnostics, by key."""
    status = client.diagnostics
    out = {}
    for kv in status.values if status is not None else ():
        try:
            out[kv.key] = float(kv.value)
        except ValueError:
            pass
    return out


def _counters(client: ControllerClient) -> tuple[float, float]:
    """(cycles, overruns) of the node's latest diagnostics, after a fresh one arrived."""
    first = client.diagnostics
    client.wait_for(lambda: client.diagnostics is not first, 3.0)
    d = diagnostic_values(client)
    return d["cycles"], d["overruns"]


CONTROL_RATE = 500.0    # [Hz] the bundled configuration's rate

CONFIGURATIONS = (("reference", False, 1), ("exporter", True, 1),
                  ("exporter, metrics every 10th cycle", True, 10))


def measure(seconds: float, robot: Robot, with_exporter: bool,
            decimation: int = 1) -> dict[str, Any]:
    from jacobian_ik.node.client import ControllerClient
    from jacobian_ik.telemetry.scrape import scrape

    port = _free_port() if with_exporter else None
    config = BringupConfig(robot=ROBOT, metrics_port=port,
                           controller_parameters={"metrics_rate": CONTROL_RATE / decimation})
    lines: list[str] = []
    scrapes = {"ok": 0, "failed": 0}
    with Bringup(config, env=ros_environment(announce=None), sink=lines.append) as runner:
        if not runner.wait_ready(120.0):
            raise RuntimeError("controller not ready:\n" + "\n".join(lines[-30:]))
        client = ControllerClient(robot.joint_names, domain_id=runner.domain_id,
                                  node_name="bench_telemetry")
        stop = threading.Event()

        def scraper() -> None:
            url = f"http://127.0.0.1:{port}/metrics"
            while not stop.wait(SCRAPE_PERIOD):
                try:
                    scrape(url)
                    scrapes["ok"] += 1
                except OSError:
                    scrapes["failed"] += 1

        thread = threading.Thread(target=scraper, daemon=True)
        try:
            if not client.wait_until_connected(60.0):
                raise RuntimeError("no joint states:\n" + "\n".join(lines[-30:]))
            home = robot.fk(client.latest_q())
            away = home.copy()
            away[:3, 3] += [0.0, 0.16, 0.0]
            targets = (away, home)
            pid = runner.processes["ik_controller"].pid
            exporter_pid = runner.processes[EXPORTER_NODE[0]].pid if with_exporter else None
            if with_exporter:
                thread.start()
            client.send_pose(away, robot.base_link)
            time.sleep(3.0)                              # settle
            cycles0, overruns0 = _counters(client)
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            exp0 = cpu_seconds(exporter_pid) if exporter_pid is not None else 0.0
            k = 0
            while time.monotonic() - t0 < seconds:
                client.send_pose(targets[k % 2], robot.base_link)
                k += 1
                time.sleep(max(0.0, min(1.5, seconds - (time.monotonic() - t0))))
            cpu1, t1 = cpu_seconds(pid), time.monotonic()
            exp1 = cpu_seconds(exporter_pid) if exporter_pid is not None else 0.0
            cycles1, overruns1 = _counters(client)
        finally:
            stop.set()
            client.close()
    cycles = cycles1 - cycles0
    return {
        "exporter": with_exporter,
        "metrics_decimation": decimation,
        "cycles": int(cycles),
        "controller_cpu_us_per_cycle": 1e6 * (cpu1 - cpu0) / cycles if cycles else None,
        "late_share": (overruns1 - overruns0) / cycles if cycles > 0 else float("nan"),
        "controller_cpu_percent": 100.0 * (cpu1 - cpu0) / (t1 - t0),
        "exporter_cpu_percent": 100.0 * (exp1 - exp0) / (t1 - t0) if with_exporter else None,
        "scrapes": dict(scrapes),
        "window_s": t1 - t0,
        "load_average_1min": os.getloadavg()[0],
    }


def hook_cost(robot: Robot, cycles: int = 20000) -> dict[str, float]:
    """Mean time [µs] of Controller.step and of the telemetry hooks of one cycle."""
    from jacobian_ik.controller import Controller
    from jacobian_ik.params import ControllerParams
    from jacobian_ik.telemetry.aggregate import CycleAggregates, reason_class
    from jacobian_ik.telemetry.names import STATE_NAMES
    from jacobian_ik.telemetry.recorder import FlightRecorder, RecorderSettings

    params = ControllerParams()
    controller = Controller(robot, params)
    controller.warm_up()
    q = robot.q_mid.copy()
    target = robot.fk(q)
    target[:3, 3] += [0.0, 0.05, 0.0]
    aggregates = CycleAggregates(params.sigma_stop, params.sigma_warn,
                                 params.collision_stop_distance,
                                 params.collision_influence_distance)
    recorder = FlightRecorder(robot.joint_names, params.control_rate,
                              RecorderSettings(folder="/nonexistent-unused"), STATE_NAMES)
    period = 1.0 / params.control_rate
    results = []
    t = time.perf_counter()
    for _ in range(cycles):
        results.append(controller.step(q, target, period))
    step_us = (time.perf_counter() - t) / cycles * 1e6
    previous = None
    t = time.perf_counter()
    for i, r in enumerate(results):
        aggregates.cycle(r.sigma_min, 1e-4, r.min_distance)
        if r.state is not previous:
            aggregates.transition(r.state.name, reason_class(
                r.state.name, r.sigma_min, r.goal_reached, params.sigma_stop, params.sigma_warn,
                node_rejected=False, measurement_stale=False))
            previous = r.state
        aggregates.set_overruns(0)
        recorder.record(i * period, q, r.dq_command, r.q_command, r.sigma_min, int(r.state), 1,
                        target)
    hooks_us = (time.perf_counter() - t) / cycles * 1e6
    recorder.close()
    return {"controller_step_us": step_us, "telemetry_hooks_us": hooks_us,
            "hooks_over_step": hooks_us / step_us}


def median(rows: list[dict[str, Any]], key: str) -> float:
    return float(np.median([r[key] for r in rows]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="measurement window per run [s] (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each configuration, interleaved (default %(default)s)")
    args = parser.parse_args(argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    robot = Robot.from_urdf(bundled.urdf_path(ROBOT), *bundled.robot_links(ROBOT))
    print("telemetry hooks per control cycle (in-process) ...", flush=True)
    hooks = hook_cost(robot)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in CONFIGURATIONS}
    for round_ in range(args.rounds):
        for name, with_exporter, decimation in CONFIGURATIONS:
            print(f"round {round_ + 1}: {name} for {args.seconds:g} s ...", flush=True)
            row = measure(args.seconds, robot, with_exporter, decimation)
            row["configuration"] = name
            rows[name].append(row)
    summary: dict[str, dict[str, Any]] = {}
    for name, with_exporter, _ in CONFIGURATIONS:
        runs = rows[name]
        summary[name] = {
            "late_share": median(runs, "late_share"),
            "controller_cpu_percent": median(runs, "controller_cpu_percent"),
            "controller_cpu_us_per_cycle": median(runs, "controller_cpu_us_per_cycle"),
            "exporter_cpu_percent": median(runs, "exporter_cpu_percent")
            if with_exporter else None,
            "load_average_1min": median(runs, "load_average_1min"),
        }
    reference = summary["reference"]
    for name in summary:
        summary[name]["ratio_cpu_per_cycle"] = (summary[name]["controller_cpu_us_per_cycle"]
                                                / reference["controller_cpu_us_per_cycle"])
    result = {"robot": ROBOT, "control_rate_hz": 500.0, "scrape_period_s": SCRAPE_PERIOD,
              "cpu_count": os.cpu_count(), "rounds": args.rounds, "hooks": hooks,
              "summary": summary, "runs": [r for name in rows for r in rows[name]]}
    table = []
    for name, values in summary.items():
        exporter = values["exporter_cpu_percent"]
        table.append((name, f"{100 * values['late_share']:.1f} %",
                      f"{values['controller_cpu_percent']:.0f} % of a core",
                      f"{values['controller_cpu_us_per_cycle']:.0f} µs "
                      f"({values['ratio_cpu_per_cycle']:.2f}×)",
                      "-" if exporter is None else f"{exporter:.0f} % of a core",
                      f"{values['load_average_1min']:.1f}"))
    return report("telemetry", result,
                  markdown_table(("configuration (medians)", "late cycles", "controller CPU",
                                  "controller CPU per cycle", "exporter CPU", "load"), table),
                  f"\ntelemetry hooks in the cycle: {hooks['telemetry_hooks_us']:.1f} µs "
                  f"(Controller.step {hooks['controller_step_us']:.1f} µs)")


if __name__ == "__main__":
    sys.exit(main())
