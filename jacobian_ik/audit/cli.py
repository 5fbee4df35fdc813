"""The ``jacobian-ik`` command: ``audit`` (joint space), ``audit-path`` (a recording),
``precompile`` (fill numba's cache at install time, see jacobian_ik.precompile) and
``collision-matrix`` (an SRDF of the self-collision pairs not to check, see
jacobian_ik.collision.matrix).

Exit status: 0 when every gate passes and nothing regressed against the
baseline, 1 when a gate fails or a metric regressed (the reasons on stderr,
one per line), 2 on bad input (unreadable URDF or file, unknown link, invalid
threshold, gate or option, unusable ``--scene`` file, ``--collisions`` for a robot
without collision geometry: one line on stderr).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from jacobian_ik.audit import baseline as baseline_mod
from jacobian_ik.audit import gates as gates_mod
from jacobian_ik.audit.progress import ProgressBar
from jacobian_ik.audit.schema import to_json
from jacobian_ik.audit.settings import TASKS
from jacobian_ik.audit.trajectory import DEFAULT_TOPIC
from jacobian_ik.errors import ConfigurationError, JacobianIkError

if TYPE_CHECKING:
    from jacobian_ik.audit.collisions import CollisionCounter
    from jacobian_ik.audit.gates import Gate
    from jacobian_ik.audit.source import AuditTarget

PROG = "jacobian-ik"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``prog: error: message``) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("robot", help="URDF file, or a bundled robot: panda, ur5, planar2")
    p.add_argument("--base", metavar="LINK", help="base link of the chain (default: from the "
                   "parameter file)")
    p.add_argument("--tip", metavar="LINK", help="tip link of the chain (default: from the "
                   "parameter file)")
    p.add_argument("--config", metavar="YAML", help="ROS 2 parameter file: base_link, tip_link, "
                   "task and thresholds (default: a bundled robot's own file)")
    p.add_argument("--node", metavar="NAME", help="node block of the parameter file to read "
                   "(default: the only one, or ik_controller)")
    p.add_argument("--task", choices=TASKS, help="task rows: pose (6) or position (3)")
    p.add_argument("--sigma-warn", type=_finite, metavar="X", help="warning threshold of sigma_min")
    p.add_argument("--sigma-stop", type=_finite, metavar="Y", help="safe-stop threshold of "
                   "sigma_min (below sigma_warn)")
    p.add_argument("--json", action="store_true", help="print the report as JSON, not a table")
    p.add_argument("--output", metavar="FILE", help="also write the JSON report to FILE")
    p.add_argument("--plot", metavar="PNG", help="draw the report's picture to PNG")
    p.add_argument("--fail-if", action="append", default=[], metavar="EXPR",
                   help="exit 1 when EXPR holds, e.g. 'stop_fraction>0.02', "
                        "'sigma_min.p5<0.03' or (audit --collisions) "
                        "'collisions.self_collision_fraction>0.3' (repeatable)")
    p.add_argument("--baseline", metavar="JSON", help="exit 1 when a metric regressed against "
                   "this saved report")
    p.add_argument("--tolerance", type=_finite, default=0.1, metavar="T",
                   help="relative tolerance of --baseline (default 0.1)")
    p.add_argument("--threads", type=_positive_int, metavar="N",
                   help="numba threads (default: all cores)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Jacobian audit of a robot arm: where the "
                     "task Jacobian becomes ill-conditioned.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    audit = sub.add_parser("audit", help="sample joint space and report sigma_min, condition, "
                           "manipulability", description="Sample configurations within the "
                           "joint limits and report the conditioning of the task Jacobian.")
    _common(audit)
    audit.add_argument("--samples", type=_positive_int, default=100_000, metavar="N",
                       help="configurations to sample (default 100000)")
    audit.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    audit.add_argument("--sobol", action="store_const", const="sobol", default="uniform",
                       dest="method", help="scrambled Sobol' sampling instead of uniform")
    audit.add_argument("--worst", type=_positive_int, default=10, metavar="K",
                       help="worst configurations to report (default 10)")
    audit.add_argument("--voxel", type=_finite, metavar="M",
                       help="workspace voxel edge [m] (default: extent / 24)")
    audit.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress bar on stderr (default: when stderr is a terminal)")
    audit.add_argument("--collisions", action="store_true",
                       help="also report the share of samples in self-collision and within "
                            "collision_stop_distance, and the pairs most often responsible")
    audit.add_argument("--scene", metavar="YAML",
                       help="obstacles of the cell (a scene file) that --collisions checks "
                            "as well (implies --collisions)")
    path = sub.add_parser("audit-path", help="sigma_min along a recorded path (CSV or rosbag2)",
                          description="Exact singular values along a recorded path and the "
                          "first sample below each threshold.")
    _common(path)
    path.add_argument("path", help="CSV with a header of joint names, or a rosbag2 folder/file "
                                   "(a flight-recorder file adds sigma_min and the state "
                                   "timeline around its event)")
    path.add_argument("--topic", default=DEFAULT_TOPIC,
                      help=f"JointState topic of a rosbag2 (default {DEFAULT_TOPIC}; "
                           "the recorded joint states in a flight-recorder file)")
    pre = sub.add_parser("precompile", help="compile every kernel into numba's cache (the "
                         "install step)", description="Compile every numba kernel into "
                         "numba's cache, so that the controller starts in about a second.")
    from jacobian_ik.precompile import PARTS
    pre.add_argument("--only", action="append", choices=tuple(PARTS), metavar="PART",
                     help=f"compile only these kernels ({', '.join(PARTS)}; repeatable; "
                          "default all; the node needs 'controller')")
    from jacobian_ik.collision.matrix import DEFAULT_SAMPLES, NEVER_DISTANCE
    matrix = sub.add_parser("collision-matrix", help="write an SRDF of the self-collision "
                            "pairs not to check", description="Sample joint space and write "
                            "an SRDF whose <disable_collisions> entries are the link pairs "
                            "never to check for self-collision (adjacent, in contact at the "
                            "default configuration, always in contact, never near).")
    matrix.add_argument("urdf", metavar="URDF", help="URDF file, or a bundled robot: panda, "
                        "ur5, planar2")
    matrix.add_argument("--base-link", metavar="LINK", help="base link of the chain "
                        "(default for a bundled robot: from its parameter file)")
    matrix.add_argument("--tip-link", metavar="LINK", help="tip link of the chain "
                        "(default for a bundled robot: from its parameter file)")
    matrix.add_argument("--out", metavar="FILE", help="write the SRDF to FILE (default: "
                        "stdout)")
    matrix.add_argument("--samples", type=_positive_int, default=DEFAULT_SAMPLES,
                        metavar="N", help=f"configurations to sample (default "
                                          f"{DEFAULT_SAMPLES})")
    matrix.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    matrix.add_argument("--never-distance", type=_finite, default=NEVER_DISTANCE,
                        metavar="M", help="pairs never closer than this [m] in any sample "
                                          f"are not checked (default {NEVER_DISTANCE})")
    return parser


def _check_writable(path: str | None, what: str) -> None:
    if path is not None and not Path(path).resolve().parent.is_dir():
        raise ConfigurationError(f"cannot write {what} '{path}': its folder does not exist")


def _prepare(args: argparse.Namespace, kind: str) -> tuple[list[Gate], dict | None]:
    """Checks that need no computation, so that bad input fails before a long run."""
    if args.threads is not None:
        import numba

        threads = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
        if args.threads > threads:
            raise ConfigurationError(
                f"--threads {args.threads}: at most {threads} "
                "threads on this machine")
        numba.set_num_threads(args.threads)
    gates = [gates_mod.parse_gate(text, kind) for text in args.fail_if]
    base = None
    if args.baseline is not None:
        baseline_mod.check_tolerance(args.tolerance)
        base = baseline_mod.load_report(args.baseline)
        if base.get("kind") != kind:
            raise ConfigurationError(
                f"baseline '{args.baseline}' is a report of kind {base.get('kind')!r}; "
                f"this command makes kind {kind!r}")
    _check_writable(args.output, "the JSON report")
    _check_writable(args.plot, "the picture")
    return gates, base


def _load_target(args: argparse.Namespace) -> AuditTarget:
    from jacobian_ik.audit.source import load_target

    return load_target(args.robot, base=args.base, tip=args.tip, config=args.config,
                       node=args.node, task=args.task, sigma_warn=args.sigma_warn,
                       sigma_stop=args.sigma_stop)


def _finish(args: argparse.Namespace, report: dict, gates: list[Gate], base: dict | None,
            render: Callable[[dict], str], out: TextIO, err: TextIO) -> int:
    report["gates"] = gates_mod.evaluate(gates, report)
    if base is not None:
        report["baseline"] = baseline_mod.compare(report, base, args.tolerance, args.baseline)
    text = to_json(report)
    if args.output is not None:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(
                f"cannot write the JSON report '{args.output}': {exc.strerror}") from None
    out.write(text if args.json else render(report))
    problems = gates_mod.failure_lines(report["gates"])
    if report["baseline"] is not None:
        problems += baseline_mod.regression_lines(report["baseline"])
    for line in problems:
        err.write(f"{PROG} {args.command}: {line}\n")
    return EXIT_FAILED if problems else EXIT_OK


def _check_collision_gates(gates: Sequence[Gate], collisions: bool) -> None:
    """A gate on the ``collisions`` block needs ``--collisions`` (or ``--scene``)."""
    from jacobian_ik.audit.schema import COLLISION_SCALARS

    for gate in gates:
        if gate.name in COLLISION_SCALARS and not collisions:
            raise ConfigurationError(
                f"gate {gate.text!r}: metric {gate.name!r} needs --collisions (or --scene)",
                parameter="gate", value=gate.text)


def _collision_counter(args: argparse.Namespace, target: AuditTarget,
                       ) -> CollisionCounter | None:
    """The counter of ``--collisions`` / ``--scene`` (None without them)."""
    if not (args.collisions or args.scene is not None):
        return None
    from jacobian_ik.audit.collisions import CollisionCounter, collision_geometry

    geometry = collision_geometry(target, args.scene, args.node)
    return CollisionCounter(target.robot, geometry)


def _audit(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from jacobian_ik.audit.plot import plot_audit
    from jacobian_ik.audit.report import run_audit
    from jacobian_ik.audit.table import render_audit

    gates, base = _prepare(args, "audit")
    _check_collision_gates(gates, args.collisions or args.scene is not None)
    target = _load_target(args)
    collisions = _collision_counter(args, target)
    progress = ProgressBar("sampling", ProgressBar.wanted(args.progress, err), err)
    report, result = run_audit(target, samples=args.samples, seed=args.seed,
                               method=args.method, worst=args.worst, voxel=args.voxel,
                               progress=progress, collisions=collisions)
    if args.plot is not None:
        plot_audit(report, result, args.plot)
    return _finish(args, report, gates, base, render_audit, out, err)


def _audit_path(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from jacobian_ik.audit.flight import (
        FLIGHT_JOINT_TOPIC,
        flight_block,
        is_flight_record,
        load_flight_record,
        render_flight,
    )
    from jacobian_ik.audit.path import run_path_audit
    from jacobian_ik.audit.plot import plot_flight, plot_path
    from jacobian_ik.audit.table import render_path
    from jacobian_ik.audit.trajectory import is_bag, load_trajectory

    gates, base = _prepare(args, "path")
    target = _load_target(args)
    record, topic = None, args.topic
    if is_bag(args.path) and Path(args.path).exists() and is_flight_record(args.path):
        record = load_flight_record(args.path)
        if topic == DEFAULT_TOPIC:
            topic = FLIGHT_JOINT_TOPIC
    trajectory = load_trajectory(args.path, target.robot.joint_names, topic)
    report, exact_result = run_path_audit(target, trajectory)
    report["flight_recorder"] = None if record is None else flight_block(record)
    render: Callable[[dict], str] = render_path
    if args.plot is not None:
        if record is None:
            plot_path(report, trajectory, exact_result, args.plot)
        else:
            plot_flight(report, trajectory, exact_result, record, args.plot)
    if record is not None:
        def render_with_flight(r: dict) -> str:
            return render_path(r) + render_flight(r["flight_recorder"])

        render = render_with_flight
    return _finish(args, report, gates, base, render, out, err)


def _collision_matrix(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from jacobian_ik.collision.command import collision_matrix_srdf
    from jacobian_ik.collision.matrix import MatrixSettings

    _check_writable(args.out, "the SRDF")
    settings = MatrixSettings(samples=args.samples, seed=args.seed,
                              never_distance=args.never_distance)
    text, model = collision_matrix_srdf(args.urdf, base_link=args.base_link,
                                        tip_link=args.tip_link, settings=settings)
    if args.out is None:
        out.write(text)
        return EXIT_OK
    try:
        Path(args.out).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot write the SRDF '{args.out}': {exc.strerror}") from None
    out.write(f"{args.out}: {len(model.disabled)} pairs disabled, {len(model.self_pairs)} "
              f"checked, of {len(model.names)} capsules\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """Run the command line ``argv`` (default sys.argv[1:]); returns the exit status."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command == "precompile":
        from jacobian_ik.precompile import PARTS, precompile

        return precompile(out, tuple(args.only or PARTS))
    command = {"audit": _audit, "audit-path": _audit_path,
               "collision-matrix": _collision_matrix}[args.command]
    try:
        return command(args, out, err)
    except JacobianIkError as exc:
        err.write(f"{PROG} {args.command}: error: {' '.join(str(exc).split())}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.write(f"{PROG} {args.command}: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
