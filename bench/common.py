"""Helpers shared by the benchmarks: percentiles, process CPU time and the results folder."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from jacobian_ik.robot import Robot

#: The repository root (the benchmarks run from there: ``python -m bench.<name>``).
REPOSITORY = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPOSITORY / "bench" / "results"


def trajectory(robot: Robot, cycles: int, speed: float, seed: int = 0) -> np.ndarray:
    """Joint positions of a random smooth motion within limits at 500 Hz: a new
    uniform velocity in [−speed, speed] [rad/s] per joint every 500 cycles.
    Shape (cycles, n)."""
    rng = np.random.default_rng(seed)
    q = robot.q_mid.copy()
    out = np.empty((cycles, robot.dof))
    for i in range(cycles):
        if i % 500 == 0:
            velocity = rng.uniform(-speed, speed, robot.dof)  # [rad/s]
        q = np.clip(q + velocity / 500.0, robot.lower + 0.01, robot.upper - 0.01)
        out[i] = q
    return out


def percentiles(samples: ArrayLike) -> dict[str, float]:
    """p50 / p90 / p99 / max / mean of a sample array."""
    a = np.asarray(samples, dtype=float)
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max()), "mean": float(a.mean())}


#: Clock ticks per second of /proc/<pid>/stat times.
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process [s] (from /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as stream:
        fields = stream.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def write_results(name: str, result: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` with the machine it was measured on."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {"measured": time.strftime("%Y-%m-%d %H:%M:%S"),
               "machine": {"cpu": platform.processor() or platform.machine(),
                           "python": platform.python_version()},
               **result}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A markdown table of ``header`` and ``rows`` (cells as given), one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def report(name: str, result: dict[str, Any], table: str, note: str) -> int:
    """Print ``table`` after a blank line, then ``note``; write ``result`` with
    ``write_results`` and print the file's path.  Returns 0 (the benchmark's exit code)."""
    print()
    print(table)
    print(note)
    path = write_results(name, result)
    print(f"written: {path}")
    return 0
