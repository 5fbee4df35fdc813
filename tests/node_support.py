"""Shared helpers of the controller-node tests (tests/test_node_*.py, test_bringup*.py).

Processes are real: ``Bringup`` starts ``python -m jacobian_ik.node.sim_arm`` and
``python -m jacobian_ik.node.ik_controller`` in their own process groups and
stops them (SIGINT, SIGTERM, SIGKILL to the group) on teardown.  A module that
shares one set of processes between its tests gets its own domain id from the
``domain_id_allocator`` fixture.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from contextlib import contextmanager

import numpy as np

from jacobian_ik import bundled
from jacobian_ik.node.bringup import Bringup, BringupConfig
from jacobian_ik.robot import Robot

#: Seconds allowed for the processes to start (imports, numba cache load)
#: on a loaded 2-core machine.
STARTUP_TIMEOUT = 90.0


def bundled_robot(name: str = "panda") -> Robot:
    return Robot.from_urdf(bundled.urdf_path(name), *bundled.robot_links(name))


def ros_env_for(domain_id: int) -> dict:
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_DOMAIN_ID"] = str(domain_id)
    return env


@contextmanager
def running(config: BringupConfig, domain_id: int, *, client_kwargs=None, robot=None):
    """Start the processes of ``config`` and a connected ``ControllerClient``;
    yields (bringup, client, log lines).  Everything is stopped on exit."""
    from jacobian_ik.node.client import ControllerClient

    robot = robot or bundled_robot(config.robot)
    lines: list[str] = []
    bringup = Bringup(config, env=ros_env_for(domain_id), sink=lines.append)
    client = None
    try:
        bringup.start()
        if not bringup.wait_ready(STARTUP_TIMEOUT):
            raise RuntimeError("controller not ready:\n" + "\n".join(lines[-40:]))
        client = ControllerClient(robot.joint_names, domain_id=domain_id,
                                  output=config.output, **(client_kwargs or {}))
        if config.sim != "none" and not client.wait_until_connected(STARTUP_TIMEOUT):
            raise RuntimeError("no joint states / metrics:\n" + "\n".join(lines[-40:]))
        yield bringup, client, lines
    finally:
        if client is not None:
            client.close()
        bringup.stop()


def rotation_angle(R) -> float:
    """Angle [rad] of a rotation matrix."""
    return math.acos(max(-1.0, min(1.0, (np.trace(R) - 1.0) / 2.0)))


def pose_errors(robot: Robot, q, T_target) -> tuple[float, float]:
    """(position error [m], orientation error [rad]) of the tip at q to T_target."""
    T = robot.fk(q)
    return (float(np.linalg.norm(T[:3, 3] - T_target[:3, 3])),
            rotation_angle(T[:3, :3].T @ T_target[:3, :3]))


def at_rest(client, duration: float = 0.3, tolerance: float = 1e-3) -> bool:
    """The recorded joint states moved less than tolerance·duration [rad] over the
    last ``duration`` seconds."""
    records, _, _ = client.recorded()
    if len(records) < 2:
        return False
    t_end = records[-1][0]
    window = np.array([q for t, q in records if t >= t_end - duration])
    times = [t for t, _ in records if t >= t_end - duration]
    if len(window) < 2 or times[-1] - times[0] < 0.8 * duration:
        return False
    return bool(np.all(np.ptp(window, axis=0) <= tolerance * duration))


def velocity_violations(records, v_max, window: float = 0.1, slack: float = 1.10):
    """Finite-difference joint speeds over ``window`` [s] that exceed slack·v_max.

    ``records``: [(t, q)] from /joint_states, t the publisher's stamp.  The window
    and the slack absorb stamp jitter (the simulator stamps when it publishes,
    which a loaded machine delays by a few ms).  Returns a list of (t, joint, speed).
    """
    out = []
    times = np.array([t for t, _ in records])
    qs = np.array([q for _, q in records])
    j = 0
    for i in range(len(records)):
        while j < len(records) and times[j] - times[i] < window:
            j += 1
        if j >= len(records):
            break
        speed = np.abs(qs[j] - qs[i]) / (times[j] - times[i])
        for k in np.nonzero(speed > slack * v_max)[0]:
            out.append((times[i], int(k), float(speed[k])))
    return out


def acceleration_violations(commands, a_max, period: float, slack: float = 1e-6):
    """Changes between consecutive velocity commands larger than the controller can
    ever command: a_max times its longest step, MAX_DT_PERIODS control periods.

    This bound holds whatever the timing of the processes (receipt times are
    not used).  ``commands``: [(t, dq)] with no message lost (record with a
    deep queue).  Returns a list of (t, joint, change, allowed).
    """
    from jacobian_ik.controller import MAX_DT_PERIODS

    allowed = np.asarray(a_max) * MAX_DT_PERIODS * period * (1.0 + slack) + 1e-12
    out = []
    for (t0, dq0), (_, dq1) in itertools.pairwise(commands):
        change = np.abs(dq1 - dq0)
        for k in np.nonzero(change > allowed)[0]:
            out.append((t0, int(k), float(change[k]), float(allowed[k])))
    return out


def controller_params_for(robot_name: str, overrides=None):
    """The ControllerParams the node runs with: config/<robot>.yaml's controller
    section, then ``overrides``."""
    import yaml

    from jacobian_ik.params import PARAMETER_SPECS, ControllerParams

    with open(bundled.config_path(robot_name), encoding="utf-8") as stream:
        document = yaml.safe_load(stream)
    values = {}
    for key in ("/**", "/**/ik_controller"):
        section = (document.get(key) or {}).get("ros__parameters", {})
        values.update({k: v for k, v in section.items() if k in PARAMETER_SPECS})
    values.update(overrides or {})
    return ControllerParams.from_dict(values)


class TrajectoryRecorder:
    """Records every one-point ``JointTrajectory`` command the controller publishes,
    with the publisher's sequence number and id: [(receipt time [s], sequence number
    or None, concat(positions, velocities), publisher id or None)].  A gap in the
    sequence numbers is a message this process did not get (the controller's
    publisher keeps only the latest)."""

    def __init__(self, client, topic: str):
        from trajectory_msgs.msg import JointTrajectory

        self.records: list = []
        self._lock = threading.Lock()
        client.node.create_subscription(JointTrajectory, topic, self._on_message, 1000)

    def _on_message(self, msg, info) -> None:
        if not msg.points:
            return
        point = msg.points[0]
        values = np.concatenate([np.array(point.positions), np.array(point.velocities)])
        gid = info.get("publisher_gid")
        source = bytes(gid["data"]) if isinstance(gid, dict) and "data" in gid else None
        with self._lock:
            self.records.append((time.monotonic(), info.get("publication_sequence_number"),
                                 values, source))

    def clear(self) -> None:
        with self._lock:
            self.records.clear()

    def recorded(self) -> list:
        """[(t, sequence number, values)] of the publisher heard most (another test
        run that happens to share the ROS domain id is left out)."""
        with self._lock:
            records = list(self.records)
        sources = [r[3] for r in records]
        main = max(set(sources), key=sources.count) if records else None
        return [r[:3] for r in records if r[3] == main]


def command_profile(commands, n: int, period: float):
    """Per published trajectory command (positions, velocities) after the first: the
    time step h [s] the controller integrated with, inferred from
    ``q_k − q_{k−1} = dq_k·h`` (the position command integrates the velocity), the
    velocity change |dq_k − dq_{k−1}| / h [rad/s²] and the position step |q_k − q_{k−1}|.

    ``commands``: ``TrajectoryRecorder.recorded()``; a pair across a gap in the
    sequence numbers (a message this process missed) is left out.  h is inferred
    from the fastest joint; while the command is at rest (|dq| < 1e-6) it is
    unknown and taken as the largest step the controller uses, MAX_DT_PERIODS
    periods.  Returns (list of dicts (t, h, at_rest, consistent, rest_before, speed,
    acceleration, step) with per-joint arrays, number of gaps); ``consistent`` is
    False where the position step is not dq·h (a re-anchor on the measurement).
    """
    from jacobian_ik.controller import MAX_DT_PERIODS

    h_max = MAX_DT_PERIODS * period
    out = []
    gaps = 0
    for (_, seq0, prev), (t, seq1, cur) in itertools.pairwise(commands):
        if seq0 is not None and seq1 is not None and seq1 != seq0 + 1:
            gaps += 1
            continue
        q0, dq0 = prev[:n], prev[n:]
        q1, dq1 = cur[:n], cur[n:]
        step = np.abs(q1 - q0)
        j = int(np.argmax(np.abs(dq1)))
        at_rest = abs(dq1[j]) < 1e-6
        if at_rest:
            h = h_max
            consistent = bool(np.all(step <= np.abs(dq1) * h_max + 1e-12))
        else:
            h = float((q1[j] - q0[j]) / dq1[j])
            consistent = (0.0 < h <= h_max * (1.0 + 1e-6)
                          and bool(np.allclose(q1 - q0, dq1 * h, rtol=0.0, atol=1e-9)))
        out.append({"t": t, "h": h, "at_rest": at_rest, "consistent": consistent,
                    "rest_before": not np.any(np.abs(dq0) >= 1e-6),
                    "speed": float(np.abs(dq1).max()),
                    "acceleration": np.abs(dq1 - dq0) / h, "step": step})
    return out, gaps


def stop_violations(profile, v_max, a_max, slack: float = 1e-6):
    """Commands of ``command_profile`` that break a stop guarantee: a velocity change
    beyond a_max·h, a position step beyond v_max·h, or a position step not explained
    by the velocity (a re-anchor) unless the command was at rest before (a motion
    start may anchor on the measurement, by at most v_max·h).  Returns (t, what)."""
    out = []
    for p in profile:
        h = p["h"]
        if np.any(p["acceleration"] > np.asarray(a_max) * (1.0 + slack) + 1e-9 / h):
            out.append((p["t"], f"acceleration {p['acceleration'].max():.4g} (h {h:.4g})"))
        if np.any(p["step"] > np.asarray(v_max) * h * (1.0 + slack) + 1e-12):
            out.append((p["t"], f"position step {p['step'].max():.4g} (h {h:.4g})"))
        if not p["consistent"] and not p["rest_before"]:
            out.append((p["t"], f"position step {p['step'].max():.4g} is not dq·h"))
    return out


def stop_figures(profile, a_max, v_max):
    """(peak |Δdq|/h [rad/s²], its ratio to a_max, peak position step [rad], its ratio
    to v_max·h) over ``profile``."""
    if not profile:
        return 0.0, 0.0, 0.0, 0.0
    acc = max(float(p["acceleration"].max()) for p in profile)
    acc_ratio = max(float((p["acceleration"] / a_max).max()) for p in profile)
    step = max(float(p["step"].max()) for p in profile)
    step_ratio = max(float((p["step"] / (np.asarray(v_max) * p["h"])).max()) for p in profile)
    return acc, acc_ratio, step, step_ratio
