"""``make demo``: the simulated Panda driven through goal poses by the controller node.

Brings up the simulator and the ``ik_controller`` node (``jacobian_ik.node.bringup``),
then sends goal poses in the base frame, one after another:

1. a 10 cm move                                      expected: reached
2. a move with a 30° turn of the hand                expected: reached
3. a goal 1.5 m from the base, beyond the arm's reach:
   the arm stretches toward it, approaches the elbow's
   straight-arm singularity and stops before it       expected: SAFE_STOP
4. back to the start pose, away from the singularity  expected: reached

and prints, per goal: outcome, time to reach it (goal tolerances 1 mm and
10 mrad) or to stop, position / orientation error 0.3 s after that, lowest
σ_min and the states visited.  Exits 0 when every goal behaved as
expected.  Options: ``--sim mujoco``, ``--output position|trajectory``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

from jacobian_ik import bundled
from jacobian_ik.node.bringup import Bringup, BringupConfig, ros_environment
from jacobian_ik.node.interface import OUTPUT_MODES
from jacobian_ik.robot import Robot

if TYPE_CHECKING:
    from jacobian_ik.node.client import ControllerClient

ROBOT = "panda"
#: A stopped arm: every joint slower than this [rad/s] ...
REST_SPEED = 1e-3
#: ... for this long [s].
REST_TIME = 0.3
#: The errors of a reached goal are read this long after it was reached [s].
SETTLE_TIME = 0.3


@dataclass
class Goal:
    label: str
    expected: str            # "reached" | "SAFE_STOP"
    # (T_base_tip at the start, T_base_tip at home) -> T_base_target
    make_target: Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Outcome:
    label: str
    expected: str
    outcome: str
    position_error: float
    orientation_error: float
    duration: float
    sigma_min: float
    states: list[str]

    @property
    def ok(self) -> bool:
        return self.outcome == self.expected


def _rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _shifted(T: np.ndarray, offset: Sequence[float]) -> np.ndarray:
    T = T.copy()
    T[:3, 3] += offset
    return T


def _turned(T: np.ndarray, offset: Sequence[float], angle: float) -> np.ndarray:
    T = _shifted(T, offset)
    T[:3, :3] = T[:3, :3] @ _rot_z(angle)
    return T


def _beyond_reach(T: np.ndarray, distance: float) -> np.ndarray:
    """The current orientation, at ``distance`` [m] from the base along the tip's
    horizontal direction, at the tip's height."""
    T = T.copy()
    horizontal = T[:2, 3] / np.linalg.norm(T[:2, 3])
    T[:2, 3] = horizontal * distance
    return T


GOALS = (
    Goal("move 10 cm", "reached", lambda T, home: _shifted(T, [0.10, 0.0, -0.05])),
    Goal("move and turn the hand 30 deg", "reached",
         lambda T, home: _turned(T, [-0.05, 0.10, 0.05], math.radians(30.0))),
    Goal("reach 1.5 m away (beyond reach)", "SAFE_STOP",
         lambda T, home: _beyond_reach(T, 1.5)),
    Goal("back to the start pose", "reached", lambda T, home: home.copy()),
)


def _measured(client: ControllerClient) -> np.ndarray:
    """The client's latest joint positions; a connected client always has them."""
    return cast(np.ndarray, client.q)


def _at_rest(client: ControllerClient) -> bool:
    records, _, _ = client.recorded()
    if len(records) < 2:
        return False
    now = records[-1][0]
    window = [(t, q) for t, q in records if t >= now - REST_TIME]
    if len(window) < 2 or window[-1][0] - window[0][0] < REST_TIME * 0.8:
        return False
    span = np.max(np.abs(np.array([q for _, q in window]) - window[0][1]), axis=0)
    return bool(np.all(span <= REST_SPEED * REST_TIME))


def run_goal(client: ControllerClient, robot: Robot, goal: Goal, home: np.ndarray,
             timeout: float) -> Outcome:
    T_start = robot.fk(_measured(client))
    target = goal.make_target(T_start, home)
    client.clear_records()
    t0 = time.monotonic()
    client.send_pose(target, robot.base_link)
    outcome = "timeout"

    def finished() -> bool:
        nonlocal outcome
        m = client.metrics
        state = client.state
        if state is not None and state.time >= t0 and state.name == "SAFE_STOP" \
                and _at_rest(client):
            outcome = "SAFE_STOP"
            return True
        if m.get("state") == 0.0 and client.state is not None and \
                client.state.reason == "goal reached" and client.state.time >= t0:
            outcome = "reached"
            return True
        return False

    client.wait_for(finished, timeout, poll=0.02)
    duration = time.monotonic() - t0
    if outcome == "reached":
        time.sleep(SETTLE_TIME)   # the arm keeps converging inside the tolerance
    _, _, metrics = client.recorded()
    sigma = [row[0] for t, row in metrics if t >= t0]
    states: list[str] = []
    for sample in client.states_since(t0):
        if not states or states[-1] != sample.name:
            states.append(sample.name)
    m = client.metrics
    return Outcome(goal.label, goal.expected, outcome, m.get("position_error", math.nan),
                   m.get("orientation_error", math.nan), duration,
                   min(sigma) if sigma else math.nan, states)


def print_table(outcomes: Sequence[Outcome]) -> None:
    header = ("goal", "expected", "outcome", "pos err [mm]", "rot err [mrad]", "time [s]",
              "min sigma", "states visited")
    rows = [(o.label, o.expected, o.outcome + ("" if o.ok else "  <-- unexpected"),
             f"{o.position_error * 1e3:.2f}", f"{o.orientation_error * 1e3:.2f}",
             f"{o.duration:.2f}", f"{o.sigma_min:.4f}", " > ".join(o.states))
            for o in outcomes]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths)] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jacobian_ik.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sim", choices=("kinematic", "mujoco"), default="kinematic")
    parser.add_argument("--output", choices=OUTPUT_MODES, default="velocity")
    parser.add_argument("--goal-timeout", type=float, default=10.0,
                        help="seconds allowed per goal (default %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="show the nodes' output")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Imported here so that --help works without a ROS environment.
    from jacobian_ik.node.client import ControllerClient

    started = time.monotonic()
    env = ros_environment(announce=None)
    print(f"jacobian_ik demo: {ROBOT}, sim {args.sim}, output {args.output}, "
          f"ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}", flush=True)
    robot = Robot.from_urdf(bundled.urdf_path(ROBOT), *bundled.robot_links(ROBOT))
    log: list[str] = []
    sink = (lambda line: print(line, flush=True)) if args.verbose else log.append
    runner = Bringup(BringupConfig(robot=ROBOT, sim=args.sim, output=args.output),
                     env=env, sink=sink)
    client = None
    outcomes = []
    failed = None
    try:
        print("starting the simulator and the controller (the first run also compiles "
              "the numba kernels, about 20 s) ...", flush=True)
        runner.start()
        if not runner.wait_ready(120.0):
            print("the controller did not start; its output:", file=sys.stderr)
            print("\n".join(log[-30:]), file=sys.stderr)
            return 1
        client = ControllerClient(robot.joint_names, domain_id=runner.domain_id,
                                  output=args.output, record_joint_states=True,
                                  record_metrics=True, node_name="jacobian_ik_demo")
        if not client.wait_until_connected(30.0):
            print("no joint states or metrics from the nodes; their output:", file=sys.stderr)
            print("\n".join(log[-30:]), file=sys.stderr)
            return 1
        print(f"nodes up in {time.monotonic() - started:.1f} s; sending "
              f"{len(GOALS)} goals\n", flush=True)
        home = robot.fk(_measured(client))
        for goal in GOALS:
            outcome = run_goal(client, robot, goal, home, args.goal_timeout)
            outcomes.append(outcome)
            print(f"  {goal.label}: {outcome.outcome} in {outcome.duration:.2f} s", flush=True)
        print()
        print_table(outcomes)
        failed = runner.failed()
    finally:
        if client is not None:
            client.close()
        codes = runner.stop()
    ok = all(o.ok for o in outcomes) and failed is None
    print(f"\n{'all goals behaved as expected' if ok else 'UNEXPECTED RESULT'} "
          f"({time.monotonic() - started:.1f} s); node exit codes: {codes}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
