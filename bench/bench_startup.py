"""Time from starting the controller process to its "controller ready" line.

Usage: ``python -m bench.bench_startup [--warm-runs N] [--uncached]``.
Writes ``bench/results/startup.json`` and prints a markdown table.

All runs use a fresh, empty numba cache folder (``NUMBA_CACHE_DIR``), so the
numbers do not depend on what ran before:

* uncached (with ``--uncached``; minutes): the node compiles its kernels
  itself (no install-time precompile);
* precompile: ``jacobian-ik precompile --only controller`` into the empty cache;
* cold: the first start after that precompile;
* warm: the next starts (median and max of ``--warm-runs``).

Ready = the process is started (Python, rclpy, numba and the kernels loaded,
the robot built) and the controller logs "controller ready"; the simulator is
not started.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench.common import markdown_table, report
from jacobian_ik.node.bringup import Bringup, BringupConfig, ros_environment

ROBOT = "panda"


def time_to_ready(env: dict[str, str]) -> float:
    lines: list[str] = []
    runner = Bringup(BringupConfig(robot=ROBOT, sim="none"), env=env, sink=lines.append)
    started = time.monotonic()
    with runner:
        if not runner.wait_ready(600.0):
            raise RuntimeError("controller not ready:\n" + "\n".join(lines[-20:]))
        return time.monotonic() - started


def precompile(env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "jacobian_ik.audit", "precompile", "--only",
                    "controller"], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument("--uncached", action="store_true",
                        help="also time a start without a precompiled cache (minutes)")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"robot": ROBOT, "load_average_1min_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="bench_numba_") as uncached, \
            tempfile.TemporaryDirectory(prefix="bench_numba_") as folder:
        if args.uncached:
            print("start without a precompiled cache ...", flush=True)
            result["uncached_s"] = time_to_ready(
                ros_environment({**os.environ, "NUMBA_CACHE_DIR": uncached}, announce=None))
        env = ros_environment({**os.environ, "NUMBA_CACHE_DIR": folder}, announce=None)
        print("precompile ...", flush=True)
        result["precompile_s"] = precompile(env)
        print("first start after precompile ...", flush=True)
        result["cold_s"] = time_to_ready(env)
        warm = []
        for _ in range(args.warm_runs):
            print("warm start ...", flush=True)
            warm.append(time_to_ready(env))
        result["warm_s"] = {"median": statistics.median(warm), "max": max(warm), "runs": warm}
    result["load_average_1min_after"] = os.getloadavg()[0]
    rows = []
    if "uncached_s" in result:
        rows.append(("no precompile (kernels compiled at start)", f"{result['uncached_s']:.1f} s"))
    rows += [("`jacobian-ik precompile --only controller` itself",
              f"{result['precompile_s']:.1f} s"),
             ("cold: first start after precompile", f"{result['cold_s']:.2f} s"),
             ("warm: later starts, median (max)",
              f"{result['warm_s']['median']:.2f} s ({result['warm_s']['max']:.2f} s)")]
    table = markdown_table(("start", 'time to "controller ready"'), rows)
    return report("startup", result, table,
                  f"\nmachine load (1-min average) before / after: "
                  f"{result['load_average_1min_before']:.1f} / "
                  f"{result['load_average_1min_after']:.1f}")


if __name__ == "__main__":
    sys.exit(main())
