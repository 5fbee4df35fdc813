"""Running the loop benchmarks: the simulator, the controller or a bare rclpy loop,
a consumer process on the command topic, and goal poses changing every second.

Shared by ``bench_node`` (the loop next to the bare rclpy loop) and
``bench_soak`` (the controller over minutes).  Everything runs as separate
processes on this machine, in a ROS domain of its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import percentiles
from jacobian_ik import bundled
from jacobian_ik.node.bringup import (
    SIM_NODE,
    Bringup,
    BringupConfig,
    generated_parameters,
    node_command,
    parameter_files,
    ros_environment,
)
from jacobian_ik.node.outputs import DEFAULT_TOPICS
from jacobian_ik.robot import Robot

ROBOT = "panda"
COMMAND_TOPIC = DEFAULT_TOPICS["velocity"]
#: A gap between two commands longer than this many periods is late.
LATE_FACTOR = 1.5
#: Distance between the two goal poses [m].
GOAL_STEP = 0.16
REPO = Path(__file__).resolve().parent.parent


def robot() -> Robot:
    return Robot.from_urdf(bundled.urdf_path(ROBOT), *bundled.robot_links(ROBOT))


def start_pose() -> np.ndarray:
    """T_base_tip where the simulator starts (its initial_positions in config/panda.yaml)."""
    import yaml

    arm = robot()
    with open(bundled.config_path(ROBOT), encoding="utf-8") as stream:
        values = yaml.safe_load(stream)["/**"]["ros__parameters"]
    return arm.fk(np.asarray(values.get("initial_positions") or arm.q_mid, dtype=float))


def _stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def realtime_prefix(priority: int) -> list[str]:
    """Command prefix that runs a bench helper at SCHED_FIFO ``priority`` (0 = none)."""
    return ["chrt", "-f", str(priority)] if priority else []


@contextmanager
def simulator(env: dict[str, str], priority: int = 0) -> Iterator[subprocess.Popen]:
    """The kinematic simulator alone (for the bare loop runs)."""
    config = BringupConfig(robot=ROBOT, sim_parameters={"realtime_priority": priority})
    with tempfile.TemporaryDirectory(prefix="bench_sim_") as folder:
        generated = Path(folder) / "parameters.yaml"
        import yaml
        generated.write_text(yaml.safe_dump(generated_parameters(config)), encoding="utf-8")
        process = subprocess.Popen(node_command(SIM_NODE[1], parameter_files(config, generated)),
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield process
        finally:
            _stop(process)


@contextmanager
def controller(env: dict[str, str], parameters: dict[str, Any],
               priority: int = 0) -> Iterator[tuple[int, float, list[str]]]:
    """Simulator + controller; yields (controller pid, seconds from start to ready, log).
    ``priority``: SCHED_FIFO priority of both nodes (their realtime_priority)."""
    lines: list[str] = []
    config = BringupConfig(robot=ROBOT,
                           controller_parameters={**parameters, "realtime_priority": priority},
                           sim_parameters={"realtime_priority": priority})
    runner = Bringup(config, env=env, sink=lines.append)
    started = time.monotonic()
    with runner:
        if not runner.wait_ready(180.0):
            raise RuntimeError("controller not ready:\n" + "\n".join(lines[-30:]))
        ready = time.monotonic() - started
        yield runner.processes["ik_controller"].pid, ready, lines


@contextmanager
def bare_loop(env: dict[str, str], rate: float, executor: str,
              priority: int = 0) -> Iterator[int]:
    process = subprocess.Popen(
        realtime_prefix(priority) + [sys.executable, "-m", "bench.bare_loop", "--rate", str(rate),
                                     "--executor", executor],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield process.pid
    finally:
        _stop(process)


class GoalSender:
    """Publishes goal poses on ~/target_pose, alternating between two poses."""

    def __init__(self, env: dict[str, str], home: np.ndarray) -> None:
        import rclpy
        from geometry_msgs.msg import PoseStamped
        from rclpy.node import Node

        from jacobian_ik.node.client import pose_message

        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=int(env["ROS_DOMAIN_ID"]))
        self.node = Node("bench_goals", context=self.context)
        self._publisher = self.node.create_publisher(PoseStamped, "/ik_controller/target_pose",
                                                     10)
        away = home.copy()
        away[:3, 3] += [0.0, GOAL_STEP, 0.0]
        base = bundled.robot_links(ROBOT)[0]
        self._goals = (pose_message(away, base), pose_message(home, base))
        self.sent = 0

    def send(self) -> None:
        self._publisher.publish(self._goals[self.sent % 2])
        self.sent += 1

    def close(self) -> None:
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self.context)


def consume(env: dict, pid: int, seconds: float, goals: GoalSender | None,
            priority: int = 0) -> dict:
    """Run the consumer for ``seconds`` while sending a goal every second; returns
    {"times": receipt times [s], "window_s", "cpu_s", "rss": [(t, bytes)]}."""
    with tempfile.TemporaryDirectory(prefix="bench_consumer_") as folder:
        process = subprocess.Popen(
            realtime_prefix(priority) + [sys.executable, "-m", "bench.consumer",
                                         "--topic", COMMAND_TOPIC,
             "--seconds", str(seconds), "--out", folder, "--pid", str(pid)],
            cwd=REPO, env=env)
        while process.poll() is None:
            if goals is not None:
                goals.send()
            time.sleep(1.0)
        if process.returncode != 0:
            raise RuntimeError(f"consumer exited {process.returncode}")
        info = json.loads((Path(folder) / "process.json").read_text())
        info["times"] = np.load(Path(folder) / "times.npy")
    return info


def loop_figures(info: dict, rate: float) -> dict:
    """What a consumer sees: achieved rate, gaps, late share; CPU of the process."""
    times = info["times"]
    period = 1.0 / rate
    gaps = np.diff(times)
    late = gaps > LATE_FACTOR * period
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate(([0], late.astype(int), [0])))))
    return {
        "rate_target_hz": rate,
        "messages": int(times.size),
        "rate_achieved_hz": (times.size - 1) / (times[-1] - times[0]) if times.size > 1 else 0.0,
        "gap_ms": {k: v * 1e3 for k, v in percentiles(gaps).items()},
        "late_gaps": int(late.sum()),
        "late_share_percent": 100.0 * float(late.mean()),
        "longest_late_run": int(runs[::2].max()) if runs.size else 0,
        "cpu_percent_of_one_core": 100.0 * info["cpu_s"] / info["window_s"],
        "window_s": info["window_s"],
    }


def measurement_env() -> dict:
    env = ros_environment(announce=None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env
