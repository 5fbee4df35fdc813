"""Start-up of the ik_controller process: invalid configuration ⇒ clear error, non-zero exit.

All cases start at once (one process each) and are judged as they finish, so
the module costs about one start-up time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("rclpy")

from node_support import ros_env_for

from jacobian_ik import bundled

pytestmark = [pytest.mark.ros]

PANDA_CONFIG = str(bundled.config_path("panda"))
PANDA_URDF = str(bundled.urdf_path("panda"))

#: name → (extra parameter-file text or None, extra -p arguments, words the error must contain)
CASES = {
    "out_of_range": ("/**:\n  ros__parameters:\n    position_gain: -2.0\n", [],
                     ["position_gain", "range"]),
    "integer_for_float": ("/**:\n  ros__parameters:\n    max_linear_speed: 1\n", [],
                          ["max_linear_speed", "floating-point"]),
    "unknown_task": ("/**:\n  ros__parameters:\n    task: joints\n", [],
                     ["task", "pose", "position"]),
    "thresholds_out_of_order": ("/**:\n  ros__parameters:\n    sigma_stop: 0.035\n", [],
                                ["sigma_resume", "sigma_stop"]),
    "unknown_output": (None, ["-p", "output:=effort"], ["output", "velocity", "trajectory"]),
    "unknown_tip_link": (None, ["-p", "tip_link:=no_such_link"], ["no_such_link", "panda_hand"]),
    "missing_urdf": (None, ["-p", "urdf_path:=/nonexistent/robot.urdf"],
                     ["/nonexistent/robot.urdf"]),
    "per_joint_length": ("/**:\n  ros__parameters:\n    max_joint_velocity: [1.0, 1.0]\n", [],
                         ["max_joint_velocity", "7"]),
    "unknown_executor": (None, ["-p", "executor:=multi"], ["executor", "events", "single"]),
    "realtime_priority_out_of_range": (None, ["-p", "realtime_priority:=120"],
                                       ["realtime_priority", "99"]),
    "malformed_yaml": ("/**:\n  ros__parameters:\n    position_gain: [1.0,\n", [],
                       ["parameter"]),
}
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, domain_id_allocator):
    """Exit code and output of one controller process per case."""
    folder = tmp_path_factory.mktemp("startup")
    env = ros_env_for(domain_id_allocator())
    processes = {}
    for name, (text, extra, _) in CASES.items():
        command = [sys.executable, "-m", "jacobian_ik.node.ik_controller", "--ros-args",
                   "--params-file", PANDA_CONFIG, "-p", f"urdf_path:={PANDA_URDF}"]
        if text is not None:
            path = folder / f"{name}.yaml"
            path.write_text(text)
            command += ["--params-file", str(path)]
        command += extra
        processes[name] = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, text=True,
                                           start_new_session=True)
    results = {}
    deadline = time.monotonic() + TIMEOUT
    try:
        for name, process in processes.items():
            try:
                output, _ = process.communicate(timeout=max(deadline - time.monotonic(), 1.0))
                results[name] = (process.returncode, output)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                output, _ = process.communicate()
                results[name] = (None, f"still running after the timeout; output:\n{output}")
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return results


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_configuration_exits_non_zero_with_a_clear_error(outcomes, case):
    """The process stops by itself, with a non-zero code and a message naming the
    problem (no Python traceback)."""
    code, output = outcomes[case]
    assert code is not None, output
    assert code != 0, output
    for word in CASES[case][2]:
        assert word in output, output
    assert "Traceback" not in output, output
