"""Shared helper of the kernel tests: NRT allocation counts from a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys


def nrt_allocations(code: str) -> tuple[int, int]:
    """Run ``code`` in a new Python process with numba's NRT statistics on; the code
    prints two counts of allocations (after one call and after many).  Returns them."""
    env = {**os.environ, "NUMBA_NRT_STATS": "1"}
    # The kernels run without the runtime, so nothing may have started it (and its
    # statistics) before the probe's first count: start it here.
    preamble = ("from numba.core.registry import cpu_target\n"
                "from numba.core.runtime import rtsys\n"
                "rtsys.initialize(cpu_target.target_context)\n")
    out = subprocess.run([sys.executable, "-c", preamble + code], capture_output=True,
                         text=True, env=env, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"allocation probe failed:\n{out.stderr}")
    once, many = map(int, out.stdout.split())
    return once, many
