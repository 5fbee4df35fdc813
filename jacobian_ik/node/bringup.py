"""Bring-up runner: start the simulated arm and the controller node together.

``jacobian-ik-bringup`` does what ``launch/ik_controller.launch.py`` does, for
installs without ``ros2 launch``: it starts ``python -m jacobian_ik.node.sim_arm``
and ``python -m jacobian_ik.node.ik_controller`` as subprocesses with the same
parameters (the robot's ``config/<robot>.yaml``, then any ``--params-file``,
then a generated file with ``robot_description`` and the command-line
overrides), prefixes and forwards their output, stops them all on Ctrl-C or
SIGTERM, and exits non-zero when one of them dies.

ROS isolation: ``ROS_AUTOMATIC_DISCOVERY_RANGE`` defaults to LOCALHOST and,
when ``ROS_DOMAIN_ID`` is unset, a domain id is picked and printed.

With ``--metrics-port PORT`` it also starts the ``telemetry_exporter`` node
(Prometheus metrics on http://127.0.0.1:PORT/metrics, or ``--metrics-address``).
The exporter is optional: if it exits (a port in use, killed), the runner says
so once and the controller keeps running.

``Bringup`` is the same runner as a library (used by ``jacobian_ik.demo`` and
the tests).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import yaml

from jacobian_ik import bundled
from jacobian_ik.errors import ConfigurationError, JacobianIkError
from jacobian_ik.node.interface import (
    ARGUMENTS,
    CONTROLLER_NODE,
    EXPORTER_NODE,
    FAULT_PARAMETERS,
    LAUNCH_ARGUMENTS,
    NODES,
    OPTIONAL_NODES,
    OUTPUT_MODES,
    READY_TEXT,
    SIM_CHOICES,
    SIM_NODE,
)
from jacobian_ik.telemetry.names import DEFAULT_METRICS_ADDRESS

#: Domain ids the runner picks from when ROS_DOMAIN_ID is unset.
AUTO_DOMAIN_IDS = range(1, 100)


@dataclass
class BringupConfig:
    """What to start.  ``sim = "none"`` starts the controller only.

    ``controller_parameters`` / ``sim_parameters`` override values of the
    parameter files (name → Python value; floats stay floats).
    """

    robot: str = bundled.DEFAULT_ROBOT
    sim: str = "kinematic"
    output: str = "velocity"
    params_files: list = field(default_factory=list)
    urdf: str = ""
    faults: dict = field(default_factory=dict)
    controller_parameters: dict = field(default_factory=dict)
    sim_parameters: dict = field(default_factory=dict)
    metrics_port: int | None = None
    metrics_address: str = DEFAULT_METRICS_ADDRESS
    exporter_parameters: dict = field(default_factory=dict)

    def check(self) -> None:
        """Raise ConfigurationError for an unknown robot, backend, output or fault."""
        if not self.urdf:
            bundled.urdf_path(self.robot)  # raises with the valid names
        if self.sim not in SIM_CHOICES:
            raise ConfigurationError(
                f"sim '{self.sim}' is unknown; choices: {', '.join(SIM_CHOICES)}",
                parameter="sim", value=self.sim, choices=SIM_CHOICES)
        if self.output not in OUTPUT_MODES:
            raise ConfigurationError(
                f"output '{self.output}' is unknown; choices: {', '.join(OUTPUT_MODES)}",
                parameter="output", value=self.output, choices=OUTPUT_MODES)
        unknown = sorted(set(self.faults) - set(FAULT_PARAMETERS))
        if unknown:
            raise ConfigurationError(
                f"unknown fault option(s) {', '.join(unknown)}; faults: "
                f"{', '.join(FAULT_PARAMETERS)}",
                parameter=unknown[0], choices=tuple(FAULT_PARAMETERS))
        for path in self.params_files:
            if not Path(path).is_file():
                raise ConfigurationError(f"parameter file '{path}' does not exist",
                                         parameter="params_file", value=path)
        if self.metrics_port is not None and not 0 < int(self.metrics_port) < 65536:
            raise ConfigurationError(f"metrics port {self.metrics_port} is not in 1..65535",
                                     parameter="metrics_port", value=self.metrics_port,
                                     valid_range=(1, 65535))


def ros_environment(base: dict[str, str] | None = None, *,
                    announce: Callable[[str], object] | None = print) -> dict[str, str]:
    """A copy of ``base`` (default os.environ) with LOCALHOST discovery and a domain id.

    A missing ``ROS_DOMAIN_ID`` is picked at random from ``AUTO_DOMAIN_IDS``
    and announced; ``PYTHONUNBUFFERED`` is set so the children's output
    arrives line by line.
    """
    env = dict(os.environ if base is None else base)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if not env.get("ROS_DOMAIN_ID"):
        env["ROS_DOMAIN_ID"] = str(random.choice(AUTO_DOMAIN_IDS))
        if announce is not None:
            announce(f"ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']} "
                     f"(ROS_AUTOMATIC_DISCOVERY_RANGE={env['ROS_AUTOMATIC_DISCOVERY_RANGE']})")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _urdf_file(config: BringupConfig) -> Path:
    return Path(config.urdf) if config.urdf else bundled.urdf_path(config.robot)


def generated_parameters(config: BringupConfig) -> dict:
    """The generated parameter file's content: robot_description for both nodes,
    the output mode and controller overrides, the backend and faults for the simulator."""
    urdf = _urdf_file(config)
    try:
        xml = urdf.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read URDF file '{urdf}': {exc}") from None
    controller = {"robot_description": xml, "output": config.output}
    controller.update(config.controller_parameters)
    sim = {"robot_description": xml}
    if config.sim != "none":
        sim["backend"] = config.sim
    for name, value in config.faults.items():
        sim[name] = FAULT_PARAMETERS[name](value)
    sim.update(config.sim_parameters)
    out: dict[str, dict[str, dict]] = {
        f"/**/{CONTROLLER_NODE[0]}": {"ros__parameters": controller},
           f"/**/{SIM_NODE[0]}": {"ros__parameters": sim}}
    if config.metrics_port is not None:
        exporter = {"metrics_port": int(config.metrics_port),
                    "metrics_address": config.metrics_address,
                    "controller": "/" + CONTROLLER_NODE[0]}
        exporter.update(config.exporter_parameters)
        out[f"/**/{EXPORTER_NODE[0]}"] = {"ros__parameters": exporter}
    return out


def parameter_files(config: BringupConfig, generated: Path) -> list[str]:
    """Parameter files of both nodes, in order (later files override earlier ones)."""
    files = []
    if not config.urdf or config.robot in bundled.BUNDLED_ROBOTS:
        files.append(str(bundled.config_path(config.robot)))
    files.extend(str(p) for p in config.params_files)
    files.append(str(generated))
    return files


def node_command(module: str, files: list[str], python: str = sys.executable) -> list[str]:
    """The command line of one node: ``python -m module --ros-args --params-file ...``."""
    command = [python, "-m", module, "--ros-args"]
    for path in files:
        command += ["--params-file", path]
    return command


class Bringup:
    """The simulator and controller processes of one ``BringupConfig``.

    ``start()`` launches them; ``wait_ready(timeout)`` waits for the
    controller's ready line; ``failed()`` names a process that exited;
    ``stop()`` ends them (SIGINT, then SIGTERM, then SIGKILL to each process
    group).  Output lines go to ``sink`` with a ``[node] `` prefix.
    Use as a context manager to stop on exit.
    """

    def __init__(self, config: BringupConfig, env: dict[str, str] | None = None,
                 sink: Callable[[str], object] | None = None,
                 python: str = sys.executable) -> None:
        config.check()
        self.config = config
        self.env = ros_environment(env, announce=None)
        self.python = python
        self._sink = sink if sink is not None else _print_line
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self.processes: dict[str, subprocess.Popen] = {}
        self._threads: list[threading.Thread] = []
        self._ready = threading.Event()
        self.lines: dict[str, list[str]] = {}

    @property
    def domain_id(self) -> int:
        return int(self.env["ROS_DOMAIN_ID"])

    def commands(self, generated: Path) -> dict[str, list[str]]:
        files = parameter_files(self.config, generated)
        nodes = [CONTROLLER_NODE] if self.config.sim == "none" else list(NODES)
        commands = {name: node_command(module, files, self.python) for name, module in nodes}
        if self.config.metrics_port is not None:
            commands[EXPORTER_NODE[0]] = node_command(EXPORTER_NODE[1], [str(generated)],
                                                      self.python)
        return commands

    def start(self) -> Bringup:
        tmpdir = self._tmpdir = tempfile.TemporaryDirectory(prefix="jacobian_ik_bringup_")
        generated = Path(tmpdir.name) / "bringup_parameters.yaml"
        generated.write_text(yaml.safe_dump(generated_parameters(self.config)),
                             encoding="utf-8")
        for name, command in self.commands(generated).items():
            process = subprocess.Popen(
                command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, text=True, bufsize=1, start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
            self.processes[name] = process
            self.lines[name] = []
            thread = threading.Thread(target=self._forward, args=(name, process), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _forward(self, name: str, process: subprocess.Popen) -> None:
        for line in process.stdout or ():  # a pipe: see start()
            line = line.rstrip("\n")
            self.lines[name].append(line)
            if name == CONTROLLER_NODE[0] and READY_TEXT in line:
                self._ready.set()
            self._sink(f"[{name}] {line}")

    def failed(self) -> tuple[str, int] | None:
        """(name, exit code) of a required process that has exited, or None
        (the optional exporter is reported by ``optional_exited``)."""
        for name, process in self.processes.items():
            if name in OPTIONAL_NODES:
                continue
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def optional_exited(self) -> dict[str, int]:
        """{name: exit code} of optional processes (the exporter) that have exited."""
        return {name: p.returncode for name, p in self.processes.items()
                if name in OPTIONAL_NODES and p.poll() is not None}

    def wait_ready(self, timeout: float) -> bool:
        """Wait for the controller's ready line; False on timeout or if a process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready.wait(0.1):
                return self.failed() is None
            if self.failed() is not None:
                return False
        return False

    def stop(self, timeout: float = 10.0) -> dict[str, int]:
        """Stop every process; returns their exit codes."""
        for sig, wait in ((signal.SIGINT, timeout * 0.6), (signal.SIGTERM, timeout * 0.3),
                          (signal.SIGKILL, timeout * 0.1)):
            alive = [p for p in self.processes.values() if p.poll() is None]
            if not alive:
                break
            for process in alive:
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            for process in alive:
                try:
                    process.wait(max(deadline - time.monotonic(), 0.01))
                except subprocess.TimeoutExpired:
                    pass
        for thread in self._threads:
            thread.join(timeout=2.0)
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None
        return {name: p.returncode for name, p in self.processes.items()}

    def __enter__(self) -> Bringup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the runner dies, even by SIGKILL
    (Linux prctl PR_SET_PDEATHSIG; elsewhere a no-op)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _print_line(line: str) -> None:
    print(line, flush=True)


def _key_value(text: str) -> tuple[str, object]:
    name, sep, value = text.partition(":=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:=VALUE, got '{text}'")
    return name, yaml.safe_load(value)


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jacobian-ik-bringup",
        description="Start the simulated arm and the jacobian_ik controller node "
                    "(the same processes and parameters as launch/ik_controller.launch.py).")
    parser.add_argument("--robot", default=LAUNCH_ARGUMENTS["robot"],
                        help=f"bundled robot: {', '.join(bundled.BUNDLED_ROBOTS)} "
                             "(default %(default)s)")
    parser.add_argument("--sim", default=LAUNCH_ARGUMENTS["sim"], choices=SIM_CHOICES,
                        help="simulator backend, or 'none' for the controller alone")
    parser.add_argument("--output", default=LAUNCH_ARGUMENTS["output"], choices=OUTPUT_MODES,
                        help="controller output (default %(default)s)")
    parser.add_argument("--params-file", action="append", default=[], metavar="FILE",
                        help="extra ROS parameter file, applied after config/<robot>.yaml "
                             "(repeatable)")
    parser.add_argument("--urdf", default="", help="URDF file instead of the bundled robot's")
    faults = parser.add_argument_group("simulator faults")
    for argument in ARGUMENTS:
        if argument.fault_type is not None:
            faults.add_argument("--" + argument.name.replace("_", "-"),
                                type=argument.fault_type, default=None,
                                choices=argument.choices or None,
                                help=f"sim_arm parameter {argument.name}: "
                                     f"{argument.description.removeprefix('simulator: ')}")
    parser.add_argument("-p", "--controller-param", action="append", default=[],
                        type=_key_value, metavar="NAME:=VALUE",
                        help="override a controller parameter (repeatable)")
    parser.add_argument("--sim-param", action="append", default=[], type=_key_value,
                        metavar="NAME:=VALUE", help="override a simulator parameter (repeatable)")
    parser.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                        help="also start the Prometheus exporter (telemetry_exporter) on "
                             "this port")
    parser.add_argument("--metrics-address", default=LAUNCH_ARGUMENTS["metrics_address"],
                        metavar="ADDRESS",
                        help="address the exporter binds (default %(default)s: this host "
                             "only)")
    parser.add_argument("--startup-timeout", type=float, default=60.0,
                        help="seconds to wait for the controller to be ready (default 60)")
    return parser


def config_from_args(args: argparse.Namespace) -> BringupConfig:
    faults = {name: getattr(args, name) for name in FAULT_PARAMETERS
              if getattr(args, name) is not None}
    return BringupConfig(robot=args.robot, sim=args.sim, output=args.output,
                         params_files=list(args.params_file), urdf=args.urdf, faults=faults,
                         controller_parameters=dict(args.controller_param),
                         sim_parameters=dict(args.sim_param), metrics_port=args.metrics_port,
                         metrics_address=args.metrics_address)


def main(argv: list[str] | None = None) -> int:
    args = argument_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        env = ros_environment()
        runner = Bringup(config, env=env)
    except JacobianIkError as exc:
        print(f"jacobian-ik-bringup: {exc}", file=sys.stderr)
        return 2
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    runner.start()
    print(f"jacobian-ik-bringup: robot {config.robot}, sim {config.sim}, output "
          f"{config.output}, ROS_DOMAIN_ID={runner.domain_id}", flush=True)
    code = 0
    started = time.monotonic()
    ready = False
    reported = set()
    while not stop_requested.wait(0.1):
        for name, exit_code in runner.optional_exited().items():
            if name not in reported:
                reported.add(name)
                print(f"jacobian-ik-bringup: {name} exited with code {exit_code}; the "
                      "controller keeps running without it", file=sys.stderr, flush=True)
        dead = runner.failed()
        if dead is not None:
            name, exit_code = dead
            phase = "during start-up" if not ready else "while running"
            print(f"jacobian-ik-bringup: {name} exited with code {exit_code} {phase}; "
                  "stopping the others", file=sys.stderr, flush=True)
            code = exit_code if exit_code not in (0, None) else 1
            break
        if not ready and runner._ready.is_set():
            ready = True
            print("jacobian-ik-bringup: all nodes running (Ctrl-C stops them)", flush=True)
        if not ready and time.monotonic() - started > args.startup_timeout:
            print(f"jacobian-ik-bringup: controller not ready after {args.startup_timeout} s; "
                  "stopping", file=sys.stderr, flush=True)
            code = 1
            break
    runner.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
