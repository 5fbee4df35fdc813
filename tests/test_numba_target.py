"""``jacobian_ik.numba_target``: numba's CPU target set up without SciPy.

Each test runs a new interpreter: the test process has set numba up long ago.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest


def _run(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_kernels_load_without_scipy_and_numpy_linear_algebra_still_compiles_afterwards():
    """The set-up imports no scipy.linalg and leaves no blocked import behind: the
    controller's warm-up loads its kernels, then SciPy imports and a jitted
    np.dot / np.linalg.solve / np.convolve give NumPy's results."""
    out = _run("""
        import json, sys
        import numpy as np
        from jacobian_ik import bundled
        from jacobian_ik.controller import Controller
        from jacobian_ik.numba_target import load_cpu_target
        from jacobian_ik.robot import Robot
        first = load_cpu_target()
        again = load_cpu_target()
        blocked_left = "scipy.linalg" in sys.modules
        robot = Robot.from_urdf(bundled.urdf_path("panda"), *bundled.robot_links("panda"))
        Controller(robot).warm_up()
        scipy_linalg_after_warm_up = "scipy.linalg" in sys.modules

        from numba import njit

        @njit(cache=False)
        def linear_algebra(a, b):
            return np.dot(a, b), np.linalg.solve(a, b), np.convolve(b, b)

        a = np.array([[4.0, 1.0], [2.0, 3.0]])
        b = np.array([1.0, 2.0])
        dot, solved, conv = linear_algebra(a, b)
        import scipy.linalg
        print(json.dumps({
            "first": first, "again": again, "blocked_left": blocked_left,
            "scipy_linalg_after_warm_up": scipy_linalg_after_warm_up,
            "dot": bool(np.allclose(dot, a @ b)),
            "solve": bool(np.allclose(solved, np.linalg.solve(a, b))),
            "convolve": bool(np.allclose(conv, np.convolve(b, b))),
            "scipy_linalg_usable": callable(scipy.linalg.solve)}))
    """)
    assert out == {"first": True, "again": False, "blocked_left": False,
                   "scipy_linalg_after_warm_up": False, "dot": True, "solve": True,
                   "convolve": True, "scipy_linalg_usable": True}


@pytest.mark.slow
def test_a_target_set_up_before_is_left_as_it_is():
    """Once a kernel has run, numba's target is set up: the call changes nothing."""
    out = _run("""
        import json, sys
        import numpy as np
        from jacobian_ik.kernels import kinematics
        from jacobian_ik.numba_target import load_cpu_target
        kinematics.damping_nakamura(0.01, 0.05, 0.04)
        modules = set(sys.modules)
        print(json.dumps({"set_up": load_cpu_target(),
                          "new_modules": sorted(set(sys.modules) - modules)}))
    """)
    assert out == {"set_up": False, "new_modules": []}
