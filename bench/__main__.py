"""Run every ``bench/bench_*.py`` in name order, each in its own process.

Usage: ``python -m bench [NAME ...]`` from the repository root; with NAMEs,
only the benchmarks whose module name contains one of them run.  Each module
is run as ``python -m bench.<module>``, so it can import shared helpers from
the ``bench`` package.  Exits non-zero when any benchmark fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def discover(selected: list[str]) -> list[str]:
    names = sorted(path.stem for path in BENCH_DIR.glob("bench_*.py"))
    if selected:
        names = [name for name in names if any(sel in name for sel in selected)]
    return names


def main(argv: list[str]) -> int:
    names = discover(argv)
    if not names:
        print("no benchmarks found in bench/ (bench_*.py)")
        return 0
    env = dict(os.environ)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    failed = []
    for name in names:
        print(f"=== bench.{name}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", f"bench.{name}"],
                               cwd=BENCH_DIR.parent, env=env)
        elapsed = time.perf_counter() - start
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"=== bench.{name}: {status} in {elapsed:.1f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"{len(failed)} of {len(names)} benchmarks failed: {', '.join(failed)}")
        return 1
    print(f"{len(names)} benchmarks ran")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
