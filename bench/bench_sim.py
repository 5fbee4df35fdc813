"""Simulator benchmark: real-time factor and tracking of the sim backends on the bundled arms.

Usage: ``python -m bench.bench_sim [--no-ros] [--seconds S]`` from the repository root.

Measured, for each bundled arm:

1. Real-time factor (RTF) = simulated seconds per second, stepping the backend
   the way the node does (one ``step`` per 2 ms tick, 500 Hz) under a velocity
   command; "cpu" counts this process's CPU time, "wall" the elapsed time.
2. Velocity tracking (MuJoCo, both actuators): a 0.3 rad/s command on every
   joint (alternating signs) from mid-range for 1 s — steady velocity error
   and position error against q0 + v·t; and the drift under a zero command
   (gravity sag of the velocity servo).
3. Tip tracking (MuJoCo, panda and ur5): a 2 s straight line commanded by a
   minimal closed loop q̇ = J⁺·(v + K·(x_d − x)) on the measured joints, K = 0
   (open loop), 1 and 5 1/s — the largest tip error over the last second.
4. Position step (MuJoCo, both actuators): 0.4 rad on every joint (alternating
   signs) — time to settle within 1 mrad, overshoot, final error.
5. With ROS (unless ``--no-ros``): the ``sim_arm`` node at 500 Hz (MuJoCo on
   each arm, kinematic on the panda) — received /joint_states rate, stamp
   interval jitter and the node's CPU load, over a few seconds.

The kinematic backend tracks exactly (errors 0 to rounding), so only its RTF
is reported.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.common import cpu_seconds
from jacobian_ik import Robot, bundled
from jacobian_ik.sim.backend import Backend
from jacobian_ik.sim.command import Command
from jacobian_ik.sim.config import SimConfig
from jacobian_ik.sim.kinematic import KinematicBackend

if TYPE_CHECKING:
    from jacobian_ik.sim.mujoco_backend import MujocoBackend

TICK = 0.002  # [s] node tick at the default 500 Hz
DEFAULTS = SimConfig(urdf_path="x", base_link="a", tip_link="b")


def load(name: str) -> Robot:
    return Robot.from_urdf(bundled.urdf_path(name), *bundled.robot_links(name))


def alternating(n: int) -> np.ndarray:
    return np.where(np.arange(n) % 2 == 0, 1.0, -1.0)


def mujoco_backend(robot: Robot, actuator: str = "velocity") -> MujocoBackend:
    from jacobian_ik.sim.mujoco_backend import MujocoBackend

    return MujocoBackend(robot, robot.q_mid, actuator=actuator, kp=DEFAULTS.mujoco_kp,
                         kv=DEFAULTS.mujoco_kv, timestep=DEFAULTS.mujoco_timestep)


def real_time_factor(backend: Backend, seconds: float) -> tuple[float, float]:
    """(RTF by CPU time, RTF by wall time) over ``seconds`` of simulated motion."""
    command = Command.velocity_command(0.2 * alternating(backend.dof))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(int(round(seconds / TICK))):
        backend.step(TICK, command)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return backend.sim_time / cpu, backend.sim_time / wall


def velocity_tracking(robot: Robot, actuator: str) -> dict[str, Any]:
    backend = mujoco_backend(robot, actuator)
    v = 0.3 * alternating(robot.dof)
    for _ in range(int(1.0 / TICK)):
        backend.step(TICK, Command.velocity_command(v))
    velocity_error = np.abs(backend.velocity - v).max()
    position_error = np.abs(backend.position - (robot.q_mid + v * backend.sim_time)).max()
    hold = mujoco_backend(robot, actuator)
    for _ in range(int(1.0 / TICK)):
        hold.step(TICK, Command.velocity_command(np.zeros(robot.dof)))
    moved = np.abs(hold.position - robot.q_mid).max()
    return dict(velocity_error=velocity_error, position_error=position_error, moved=moved)


#: Start configurations of the tip tracking runs: away from singularities (the
#: ur5's mid-range, all zeros, is stretched out and singular).
TRACKING_START = {"panda": None, "ur5": np.array([0.0, -1.2, 1.5, -1.5, -1.5708, 0.0])}


def tip_tracking(robot: Robot, actuator: str, gain: float,
                 start: np.ndarray | None = None) -> float:
    """Largest tip position error [m] over the last second of a 2 s straight line at
    (5, 5, −5) cm/s, commanded by a minimal closed loop: q̇ = J⁺·(v + gain·(x_d − x))
    from the measured joints each tick (gain [1/s]; 0 = open loop)."""
    backend = mujoco_backend(robot, actuator)
    if start is not None:
        backend.displace(start)
    x0 = robot.fk(backend.position)[:3, 3]
    velocity = np.array([0.05, 0.05, -0.05])
    worst = 0.0
    for k in range(int(2.0 / TICK)):
        q = backend.position
        desired = x0 + velocity * k * TICK
        J = robot.jacobian(q)[:3]
        dq = np.linalg.pinv(J) @ (velocity + gain * (desired - robot.fk(q)[:3, 3]))
        backend.step(TICK, Command.velocity_command(dq))
        if k * TICK >= 1.0:
            error = desired + velocity * TICK - robot.fk(backend.position)[:3, 3]
            worst = max(worst, float(np.linalg.norm(error)))
    return worst


def position_step(robot: Robot, actuator: str) -> dict[str, Any]:
    backend = mujoco_backend(robot, actuator)
    signs = alternating(robot.dof)
    target = robot.q_mid + 0.4 * signs
    overshoot, settle = 0.0, None
    for _ in range(int(1.5 / TICK)):
        backend.step(TICK, Command.position_command(target))
        overshoot = max(overshoot, float(np.max((backend.position - target) * signs)))
        error = np.abs(backend.position - target).max()
        if error < 1e-3 and settle is None:
            settle = backend.sim_time
        elif error >= 1e-3:
            settle = None
    return dict(settle=settle, overshoot=overshoot,
                final_error=np.abs(backend.position - target).max())


def node_measurement(arm: str, backend: str, seconds: float) -> dict | None:
    """Rate, stamp jitter and CPU load of a sim_arm process at 500 Hz."""
    try:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions
        from sensor_msgs.msg import JointState
    except ImportError:
        return None
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.setdefault("ROS_DOMAIN_ID", str(random.randint(201, 230)))
    base, tip = bundled.robot_links(arm)
    command = [sys.executable, "-m", "jacobian_ik.node.sim_arm", "--ros-args",
               "-p", f"urdf_path:={bundled.urdf_path(arm)}", "-p", f"base_link:={base}",
               "-p", f"tip_link:={tip}", "-p", f"backend:={backend}",
               "-p", "publish_rate:=500.0"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    context = Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]),
               signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("bench_sim_probe", context=context)
    stamps = []
    node.create_subscription(
        JointState, "/joint_states",
        lambda m: stamps.append(m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec), 1000)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + 30.0
        while not stamps and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        if not stamps:
            return None
        settle = time.monotonic() + 0.5  # let start-up settle
        while time.monotonic() < settle:
            executor.spin_once(timeout_sec=0.01)
        stamps.clear()
        cpu0, wall0 = cpu_seconds(process.pid), time.monotonic()
        while time.monotonic() - wall0 < seconds:
            executor.spin_once(timeout_sec=0.01)
        cpu, wall = cpu_seconds(process.pid) - cpu0, time.monotonic() - wall0
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(5.0)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    intervals = np.diff(np.array(stamps))
    return dict(received_rate=len(stamps) / wall, stamp_rate=len(intervals) / intervals.sum(),
                p99_interval=float(np.percentile(intervals, 99)), max_interval=intervals.max(),
                cpu_load=cpu / wall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="simulated seconds per real-time-factor measurement")
    parser.add_argument("--no-ros", action="store_true", help="skip the ROS node measurement")
    args = parser.parse_args(argv)
    try:
        import mujoco  # noqa: F401
    except ImportError:
        print("mujoco is not installed: only the kinematic backend is measured")
        has_mujoco = False
    else:
        has_mujoco = True
    print(f"MuJoCo defaults: actuator {DEFAULTS.mujoco_actuator}, kv {DEFAULTS.mujoco_kv:g} "
          f"N·m·s/rad, kp {DEFAULTS.mujoco_kp:g} N·m/rad, timestep "
          f"{DEFAULTS.mujoco_timestep * 1e3:g} ms; ticks of {TICK * 1e3:g} ms")
    print("\nReal-time factor (simulated s per s):")
    print(f"{'arm':8s} {'kinematic cpu':>14s} {'mujoco cpu':>11s} {'mujoco wall':>12s}")
    for arm in bundled.BUNDLED_ROBOTS:
        robot = load(arm)
        kinematic, _ = real_time_factor(KinematicBackend(robot, robot.q_mid), args.seconds)
        cpu = wall = float("nan")
        if has_mujoco:
            cpu, wall = real_time_factor(mujoco_backend(robot), args.seconds)
        print(f"{arm:8s} {kinematic:14.0f} {cpu:11.1f} {wall:12.1f}")
    if not has_mujoco:
        return 0
    print("\nMuJoCo velocity tracking, 0.3 rad/s for 1 s; motion in 1 s of a zero command:")
    print(f"{'arm':8s} {'actuator':9s} {'|dq err| rad/s':>15s} {'|q err| rad':>12s} "
          f"{'zero cmd rad':>13s}")
    for arm in bundled.BUNDLED_ROBOTS:
        for actuator in ("velocity", "position"):
            r = velocity_tracking(load(arm), actuator)
            print(f"{arm:8s} {actuator:9s} {r['velocity_error']:15.2e} "
                  f"{r['position_error']:12.2e} {r['moved']:13.2e}")
    print("\nMuJoCo tip tracking of a 2 s line at 8.7 cm/s, max error over the last second [mm]:")
    print(f"{'arm':8s} {'actuator':9s} {'open loop':>10s} {'K = 1/s':>8s} {'K = 5/s':>8s}")
    for arm in ("panda", "ur5"):
        for actuator in ("velocity", "position"):
            errors = [tip_tracking(load(arm), actuator, gain, TRACKING_START[arm]) * 1e3
                      for gain in (0.0, 1.0, 5.0)]
            print(f"{arm:8s} {actuator:9s} {errors[0]:10.2f} {errors[1]:8.2f} {errors[2]:8.2f}")
    print("\nMuJoCo position step of 0.4 rad on every joint:")
    print(f"{'arm':8s} {'actuator':9s} {'settle(1 mrad) s':>17s} {'overshoot mrad':>15s} "
          f"{'final err rad':>14s}")
    for arm in bundled.BUNDLED_ROBOTS:
        for actuator in ("velocity", "position"):
            r = position_step(load(arm), actuator)
            settle = f"{r['settle']:.3f}" if r["settle"] is not None else "not settled"
            print(f"{arm:8s} {actuator:9s} {settle:>17s} {r['overshoot'] * 1e3:15.2f} "
                  f"{r['final_error']:14.2e}")
    if not args.no_ros:
        print("\nsim_arm node, publish_rate 500 Hz:")
        print(f"{'arm':8s} {'backend':9s} {'received Hz':>12s} {'stamp Hz':>9s} "
              f"{'p99 dt ms':>10s} {'max dt ms':>10s} {'CPU load':>9s}")
        runs = [(arm, "mujoco") for arm in bundled.BUNDLED_ROBOTS] + [("panda", "kinematic")]
        for arm, backend in runs:
            m = node_measurement(arm, backend, args.seconds)
            if m is None:
                print(f"{arm:8s} {backend:9s} (ROS not available or node did not start)")
                continue
            print(f"{arm:8s} {backend:9s} {m['received_rate']:12.1f} {m['stamp_rate']:9.1f} "
                  f"{m['p99_interval'] * 1e3:10.2f} {m['max_interval'] * 1e3:10.2f} "
                  f"{m['cpu_load'] * 100:8.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
