"""Real-time options and executor choice of a node process.

``apply_realtime`` is tested in this process for what any user may do (a CPU
affinity) and in an unprivileged child process for what the OS refuses (a
core that does not exist, SCHED_FIFO, mlockall): one warning line per
refused option, no exception.  The node processes are started for real to
check that they spin on the chosen executor and run on after a refusal.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from node_support import bundled_robot, running  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from jacobian_ik.node import executors, realtime  # noqa: E402
from jacobian_ik.node.bringup import BringupConfig  # noqa: E402
from jacobian_ik.node.parameters import ProcessSettings  # noqa: E402

#: Capabilities that would let a root process have SCHED_FIFO and mlockall.
PRIVILEGES = ("sys_nice", "ipc_lock")


def test_affinity_to_one_available_core_is_applied_without_warning():
    original = os.sched_getaffinity(0)
    core = min(original)
    warnings = []
    try:
        summary = realtime.apply_realtime(ProcessSettings(cpu_affinity=(core,)),
                                          warnings.append)
        assert os.sched_getaffinity(0) == {core}
    finally:
        os.sched_setaffinity(0, original)
    assert warnings == []
    assert summary == f"cores [{core}]"


def test_affinity_to_a_missing_core_is_one_warning_and_leaves_the_affinity():
    original = os.sched_getaffinity(0)
    warnings = []
    summary = realtime.apply_realtime(ProcessSettings(cpu_affinity=(4095,)), warnings.append)
    assert os.sched_getaffinity(0) == original
    assert summary == "none"
    assert len(warnings) == 1 and "cpu_affinity [4095] refused" in warnings[0]
    assert "\n" not in warnings[0]


def test_no_options_change_nothing():
    warnings = []
    assert realtime.apply_realtime(ProcessSettings(), warnings.append) == "none"
    assert warnings == []


def _unprivileged(command: list[str]) -> list[str]:
    """``command`` without CAP_SYS_NICE and CAP_IPC_LOCK (root keeps them otherwise)."""
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and util-linux setpriv is missing: cannot drop privileges")
    return [setpriv, "--bounding-set", ",".join(f"-{cap}" for cap in PRIVILEGES), "--",
            *command]


def test_refused_priority_and_memory_lock_are_warnings_in_an_unprivileged_process():
    """Without privileges SCHED_FIFO and mlockall are refused: one line each, the
    process carries on to its end and exits 0."""
    code = textwrap.dedent("""
        import resource
        from jacobian_ik.node import realtime
        from jacobian_ik.node.parameters import ProcessSettings
        resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
        soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        if soft == resource.RLIM_INFINITY:
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (64 * 1024, hard))
        lines = []
        summary = realtime.apply_realtime(
            ProcessSettings(realtime_priority=50, lock_memory=True), lines.append)
        for line in lines:
            print("WARNING", line)
        print("SUMMARY", summary)
    """)
    result = subprocess.run(_unprivileged([sys.executable, "-c", code]), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stdout.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 2, result.stdout
    assert "realtime_priority 50 refused" in warnings[0]
    assert "lock_memory" in warnings[1]
    assert "SUMMARY none" in result.stdout


def test_events_executor_is_made_when_asked_for():
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        executor, name = executors.make_executor("events", context)
        assert name == "events"
        assert not isinstance(executor, SingleThreadedExecutor)
        executor, name = executors.make_executor("single", context)
        assert name == "single" and isinstance(executor, SingleThreadedExecutor)
    finally:
        rclpy.try_shutdown(context=context)


def test_an_rclpy_without_events_executor_falls_back_with_one_warning(monkeypatch):
    """Jazzy and Kilted have it; an older or stripped rclpy must still run."""
    def unavailable(context):
        raise ImportError("No module named 'rclpy.experimental'")

    monkeypatch.setattr(executors, "_events_executor", unavailable)
    warnings = []

    class Logger:
        def warning(self, text):
            warnings.append(text)

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        executor, name = executors.make_executor("events", context, Logger())
    finally:
        rclpy.try_shutdown(context=context)
    assert name == "single" and isinstance(executor, SingleThreadedExecutor)
    assert len(warnings) == 1 and "SingleThreadedExecutor" in warnings[0]


@pytest.mark.ros
@pytest.mark.parametrize("executor", ["events", "single"])
def test_nodes_spin_on_the_chosen_executor_and_run_on_after_a_refused_option(
        domain_id_allocator, executor):
    """Both processes log the executor they spin on; an impossible CPU affinity
    is one warning and the controller still commands the arm toward a goal."""
    config = BringupConfig(robot="panda",
                           controller_parameters={"executor": executor,
                                                  "cpu_affinity": [4095]},
                           sim_parameters={"executor": executor})
    with running(config, domain_id_allocator(),
                 client_kwargs={"record_commands": True}) as (bringup, client, _lines):
        assert client.wait_for(lambda: client.q is not None, 30.0)
        robot = bundled_robot("panda")
        T = robot.fk(client.q)
        T[:3, 3] += [0.0, 0.05, 0.0]
        client.send_pose(T, robot.base_link)
        assert client.wait_for(
            lambda: client.command is not None and np.abs(client.command).max() > 1e-3, 20.0)
        assert bringup.failed() is None
    for name in ("ik_controller", "sim_arm"):
        assert any(f"spinning on the {executor} executor" in line
                   for line in bringup.lines[name]), bringup.lines[name][-10:]
    refusals = [line for line in bringup.lines["ik_controller"] if "cpu_affinity" in line]
    assert len(refusals) == 1, refusals
