"""``make demo``: the simulated Panda driven through goal poses by the controller node.

Brings up the simulator and the ``ik_controller`` node (``jacobian_ik.node.bringup``),
then sends goal poses in the base frame, one after another:

1. a 10 cm move                                      expected: reached
2. a move with a 30° turn of the hand                expected: reached
3. a goal 1.5 m from the base, beyond the arm's reach:
   the arm stretches toward it, approaches the elbow's
   straight-arm singularity and stops before it       expected: SAFE_STOP
4. a goal 5 cm below the table top: the hand slides
   down along the collision barrier and stops above
   the table, naming the pair that blocks it          expected: SAFE_STOP (table)
5. back to the start pose, away from the singularity  expected: reached

The controller runs with the cell of ``config/scenes/panda_cell.yaml`` (a table under
the base and three obstacles at the edges of the workspace) as its ``scene_file``.

and prints, per goal: outcome, time to reach it (goal tolerances 1 mm and
10 mrad) or to stop, position / orientation error 0.3 s after that, lowest
σ_min and the states visited.  Exits 0 when every goal behaved as
expected.  Options: ``--sim mujoco``, ``--output position|trajectory``.

Telemetry: the Prometheus exporter runs too (``--metrics-port``, default 9650,
loopback); the demo prints its URL and a few live values before and after the
goals, and lists the flight-recorder file the beyond-reach goal's safe stop
wrote (with the ``jacobian-ik audit-path`` command that plots it).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jacobian_ik import bundled
from jacobian_ik.node.bringup import Bringup, BringupConfig, ros_environment
from jacobian_ik.node.interface import EXPORTER_NODE, OUTPUT_MODES
from jacobian_ik.robot import Robot
from jacobian_ik.telemetry import names as metric_names
from jacobian_ik.telemetry.recorder import default_folder

if TYPE_CHECKING:
    from jacobian_ik.node.client import ControllerClient

ROBOT = "panda"
#: A stopped arm: every joint slower than this [rad/s] ...
REST_SPEED = 1e-3
#: ... for this long [s].
REST_TIME = 0.3
#: The errors of a reached goal are read this long after it was reached [s].
SETTLE_TIME = 0.3


#: The demo's cell: the scene_file the controller runs with.
SCENE = "panda_cell"


def scene_path() -> Path:
    """The demo cell's scene file (``SCENE`` among the package's scenes)."""
    return bundled.share_dir() / "config" / "scenes" / f"{SCENE}.yaml"


@dataclass
class Goal:
    label: str
    expected: str            # "reached" | "SAFE_STOP"
    # (T_base_tip at the start, T_base_tip at home) -> T_base_target
    make_target: Callable[[np.ndarray, np.ndarray], np.ndarray]
    reason: str = ""         # a SAFE_STOP's reason must contain this


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
    reason: str = ""
    expected_reason: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == self.expected and self.expected_reason in self.reason


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


def _below_table(T: np.ndarray, depth: float) -> np.ndarray:
    """``T``'s orientation, ``depth`` [m] below the demo cell's table top."""
    from jacobian_ik.collision.scene import Scene

    table = Scene.from_yaml(scene_path())
    normal_and_offset = table.get("table").dims
    T = T.copy()
    T[2, 3] = normal_and_offset[3] - depth
    return T


GOALS = (
    Goal("move 10 cm", "reached", lambda T, home: _shifted(T, [0.10, 0.0, -0.05])),
    Goal("move and turn the hand 30 deg", "reached",
         lambda T, home: _turned(T, [-0.05, 0.10, 0.05], math.radians(30.0))),
    Goal("reach 1.5 m away (beyond reach)", "SAFE_STOP",
         lambda T, home: _beyond_reach(T, 1.5)),
    Goal("5 cm below the table top", "SAFE_STOP",
         lambda T, home: _below_table(home, 0.05), reason="table"),
    Goal("back to the start pose", "reached", lambda T, home: home.copy()),
)


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
    T_start = robot.fk(client.latest_q())
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
    reason = client.state.reason if client.state is not None else ""
    return Outcome(goal.label, goal.expected, outcome, m.get("position_error", math.nan),
                   m.get("orientation_error", math.nan), duration,
                   min(sigma) if sigma else math.nan, states, reason, goal.reason)


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


#: Live values the demo prints: (label, metric, labels).
LIVE_VALUES: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("sigma_min", metric_names.SIGMA_MIN.name, {}),
    ("loop rate [Hz]", metric_names.LOOP_RATE.name, {}),
    ("control cycles", metric_names.CYCLES.name, {}),
    ("goals reached", metric_names.GOALS.name, {}),
    ("flight-recorder files", metric_names.RECORDER_FILES.name, {}),
)


def print_live_values(url: str, when: str) -> None:
    from jacobian_ik.telemetry.scrape import sample_values, scrape, value

    try:
        samples = sample_values(scrape(url))
    except OSError as exc:
        print(f"  telemetry ({when}): cannot scrape {url}: {exc}")
        return
    parts = []
    for label, name, labels in LIVE_VALUES:
        found = value(samples, name, **labels)
        if found is not None:
            parts.append(f"{label} {found:.4g}")
    stops = [value(samples, metric_names.TRANSITIONS.name, state="SAFE_STOP", reason_class=c)
             for c in metric_names.TRANSITION_CLASSES["SAFE_STOP"]]
    counted = [v for v in stops if v is not None]
    if len(counted) == len(stops):
        parts.append(f"safe stops {sum(counted):.4g}")
    print(f"  telemetry ({when}): " + (", ".join(parts) if parts else "no data yet"))


def new_files(folder: Path, before: set[str]) -> list[Path]:
    return sorted(p for p in folder.glob("flight_*") if p.name not in before
                  and not p.name.endswith(".partial"))


def wait_for_new_file(folder: Path, before: set[str], timeout: float) -> list[Path]:
    """The flight-recorder files written since ``before``, once one of a safe stop
    is among them (or after ``timeout`` [s]: whatever is there)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = new_files(folder, before)
        if any("safe_stop" in p.name for p in files):
            return files
        time.sleep(0.2)
    return new_files(folder, before)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jacobian_ik.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sim", choices=("kinematic", "mujoco"), default="kinematic")
    parser.add_argument("--output", choices=OUTPUT_MODES, default="velocity")
    parser.add_argument("--goal-timeout", type=float, default=10.0,
                        help="seconds allowed per goal (default %(default)s)")
    parser.add_argument("--metrics-port", type=int, default=metric_names.DEFAULT_METRICS_PORT,
                        help="port of the Prometheus exporter (default %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="show the nodes' output")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
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
    recorder_folder = Path(default_folder())
    runner = Bringup(BringupConfig(robot=ROBOT, sim=args.sim, output=args.output,
                                   metrics_port=args.metrics_port,
                                   controller_parameters={
                                       "flight_recorder_folder": str(recorder_folder),
                                       "scene_file": str(scene_path())}),
                     env=env, sink=sink)
    url = f"http://{metric_names.DEFAULT_METRICS_ADDRESS}:{args.metrics_port}/metrics"
    existing = {p.name for p in recorder_folder.glob("flight_*")} \
        if recorder_folder.is_dir() else set()
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
        print(f"nodes up in {time.monotonic() - started:.1f} s", flush=True)
        exporter_lost = runner.optional_exited().get(EXPORTER_NODE[0])
        if exporter_lost is None:
            print(f"Prometheus metrics: {url}", flush=True)
            time.sleep(1.5)      # the exporter's first diagnostics (loop rate, info)
            print_live_values(url, "before the goals")
        else:
            lines = runner.lines.get(EXPORTER_NODE[0], [])
            print(f"the telemetry exporter did not start (code {exporter_lost}): "
                  f"{lines[-1] if lines else ''}", flush=True)
        print(f"sending {len(GOALS)} goals\n", flush=True)
        home = robot.fk(client.latest_q())
        for goal in GOALS:
            outcome = run_goal(client, robot, goal, home, args.goal_timeout)
            outcomes.append(outcome)
            print(f"  {goal.label}: {outcome.outcome} in {outcome.duration:.2f} s", flush=True)
        print()
        print_table(outcomes)
        for o in outcomes:
            if o.expected == "SAFE_STOP":
                print(f"  {o.label}: {o.reason}")
        print()
        files = wait_for_new_file(recorder_folder, existing, 30.0)
        if not runner.optional_exited():
            time.sleep(1.5)
            print_live_values(url, "after the goals")
        if files:
            print("flight-recorder files written during the demo:")
            for path in files:
                print(f"  {path}")
            stops = [p for p in files if "safe_stop" in p.name] or files
            print(f"plot the safe stop:  jacobian-ik audit-path {ROBOT} {stops[0]} "
                  f"--plot safe_stop.png")
        else:
            print(f"no flight-recorder file appeared in {recorder_folder}")
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
