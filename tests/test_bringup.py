"""Properties of the bring-up runner (jacobian_ik.node.bringup) and of the launch file
that reads the same table of arguments (launch/ik_controller.launch.py, checked by its
syntax tree since ``launch`` may not be installed)."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from jacobian_ik import bundled
from jacobian_ik.errors import ConfigurationError
from jacobian_ik.node.bringup import (
    BringupConfig,
    argument_parser,
    config_from_args,
    generated_parameters,
    parameter_files,
    ros_environment,
)
from jacobian_ik.node.interface import (
    ARGUMENTS,
    CONTROLLER_NODE,
    EXPORTER_NODE,
    FAULT_PARAMETERS,
    LAUNCH_ARGUMENTS,
    NODES,
    SIM_NODE,
)

LAUNCH_FILE = Path(__file__).resolve().parent.parent / "launch" / "ik_controller.launch.py"


# ---------------------------------------------------------------- parameters
def test_generated_parameters_give_both_nodes_the_urdf_and_each_its_own_values():
    config = BringupConfig(robot="ur5", sim="mujoco", output="trajectory",
                           faults={"noise_std": 0.01, "seed": 3},
                           controller_parameters={"position_gain": 2.0})
    document = generated_parameters(config)
    controller = document[f"/**/{CONTROLLER_NODE[0]}"]["ros__parameters"]
    sim = document[f"/**/{SIM_NODE[0]}"]["ros__parameters"]
    urdf = bundled.urdf_path("ur5").read_text()
    assert controller["robot_description"] == urdf == sim["robot_description"]
    assert controller["output"] == "trajectory" and controller["position_gain"] == 2.0
    assert sim["backend"] == "mujoco"
    assert sim["noise_std"] == 0.01 and isinstance(sim["noise_std"], float)
    assert sim["seed"] == 3 and isinstance(sim["seed"], int)
    assert "urdf_path" not in sim   # the simulator takes exactly one robot source
    # The YAML text keeps floats as floats (a ROS double parameter refuses an integer).
    reloaded = yaml.safe_load(yaml.safe_dump(document))
    assert isinstance(reloaded[f"/**/{SIM_NODE[0]}"]["ros__parameters"]["noise_std"], float)


def test_parameter_files_are_robot_config_then_user_files_then_generated(tmp_path):
    user = tmp_path / "mine.yaml"
    user.write_text("/**:\n  ros__parameters: {}\n")
    generated = tmp_path / "generated.yaml"
    files = parameter_files(BringupConfig(robot="panda", params_files=[str(user)]), generated)
    assert files == [str(bundled.config_path("panda")), str(user), str(generated)]


@pytest.mark.parametrize("changes, word", [
    ({"robot": "kuka"}, "panda"),
    ({"sim": "gazebo"}, "kinematic"),
    ({"output": "effort"}, "trajectory"),
    ({"faults": {"explode_after": 1.0}}, "noise_std"),
    ({"params_files": ["/no/such/file.yaml"]}, "/no/such/file.yaml"),
])
def test_bad_configuration_is_refused_listing_valid_choices(changes, word):
    with pytest.raises(ConfigurationError) as info:
        BringupConfig(**changes).check()
    assert word in str(info.value)


def test_ros_environment_defaults_to_localhost_and_picks_a_domain_id():
    announced = []
    env = ros_environment({"PATH": "/bin"}, announce=announced.append)
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert 0 <= int(env["ROS_DOMAIN_ID"]) <= 101
    assert env["ROS_DOMAIN_ID"] in announced[0]
    kept = ros_environment({"ROS_DOMAIN_ID": "42", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"},
                           announce=None)
    assert kept["ROS_DOMAIN_ID"] == "42" and kept["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SUBNET"


# ---------------------------------------------------------------- the launch file
def test_launch_file_declares_nothing_of_its_own_but_reads_the_shared_table():
    """The launch file imports its arguments, faults and nodes from
    jacobian_ik.node.interface and declares no argument name or fault by hand."""
    tree = ast.parse(LAUNCH_FILE.read_text())
    imported = {alias.name for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module == "jacobian_ik.node.interface"
                for alias in node.names}
    assert {"ARGUMENTS", "FAULT_PARAMETERS", "CONTROLLER_NODE", "SIM_NODE"} <= imported
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "DeclareLaunchArgument":
            assert not isinstance(call.args[0], ast.Constant)
    literals = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)}
    assert not literals & set(FAULT_PARAMETERS)


def test_runner_nodes_are_the_console_scripts_the_launch_file_starts():
    """Each node's module is the console script of the node's name (setup.py)."""
    setup = (LAUNCH_FILE.parent.parent / "setup.py").read_text()
    for name, module in NODES + (EXPORTER_NODE,):
        assert f"{name} = {module}:main" in setup


def test_runner_command_line_takes_every_argument_of_the_table():
    """jacobian-ik-bringup's defaults are the table's, and each fault is an option
    converted to its parameter type."""
    parser = argument_parser()
    args = parser.parse_args([])
    for name in ("robot", "sim", "output"):
        assert getattr(args, name) == LAUNCH_ARGUMENTS[name]
    argv, given = [], {}
    for argument in ARGUMENTS:
        if argument.fault_type is not None:
            text = argument.choices[-1] if argument.choices else "1"
            argv += ["--" + argument.name.replace("_", "-"), text]
            given[argument.name] = argument.fault_type(text)
    config = config_from_args(parser.parse_args(argv))
    assert config.faults == given
    assert set(given) == set(FAULT_PARAMETERS)
    assert all(type(value) is FAULT_PARAMETERS[name] for name, value in config.faults.items())


def test_runner_rejects_a_fault_value_outside_its_choices():
    """A fault with choices (freeze_mode) takes only those on the command line."""
    with pytest.raises(SystemExit):
        argument_parser().parse_args(["--freeze-mode", "late"])


def test_launch_file_builds_a_launch_description_when_launch_is_installed():
    pytest.importorskip("launch_ros")
    launch = pytest.importorskip("launch")
    if not hasattr(launch, "LaunchDescription"):  # the repository's launch/ folder
        pytest.skip("the ROS 2 launch package is not installed")
    import importlib.util

    spec = importlib.util.spec_from_file_location("ik_controller_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = {a.name for a in description.entities if hasattr(a, "default_value")}
    assert names == set(LAUNCH_ARGUMENTS)


# ---------------------------------------------------------------- the runner process
def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stream:
                    fields = stream.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _terminate(process, children=()) -> None:
    """Teardown: let the runner stop its nodes (SIGINT); if it does not, kill the
    runner's and every node's process group (the nodes run in their own)."""
    if process.poll() is None:
        children = list(children) or _children(process.pid)
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            for pid in [process.pid, *children]:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            process.wait()


def _runner(args, env):
    return subprocess.Popen([sys.executable, "-m", "jacobian_ik.node.bringup", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _read_until(process, text, timeout):
    """Lines of the process output up to one containing ``text`` (or its end)."""
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines, True
    return lines, False


@pytest.mark.ros
def test_runner_exits_non_zero_when_a_node_fails_at_start_up(ros_env):
    """A bad controller parameter: the runner reports which node died and exits non-zero."""
    process = _runner(["--sim", "none", "-p", "position_gain:=-1.0"], ros_env)
    try:
        output, _ = process.communicate(timeout=120)
    finally:
        _terminate(process)
    assert process.returncode != 0
    assert "ik_controller exited with code" in output
    assert "position_gain" in output


@pytest.mark.ros
def test_runner_stops_every_node_on_sigint_and_exits_zero(ros_env):
    process = _runner(["--robot", "planar2"], ros_env)
    try:
        lines, ready = _read_until(process, "all nodes running", 120)
        assert ready, "".join(lines)
        children = _children(process.pid)
        assert len(children) == 2 and all(_alive(pid) for pid in children)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        _terminate(process)
    assert process.returncode == 0, "".join(lines) + rest
    assert not any(_alive(pid) for pid in children)


@pytest.mark.ros
def test_runner_stops_the_others_and_exits_non_zero_when_a_node_dies(ros_env):
    process = _runner(["--robot", "planar2"], ros_env)
    try:
        lines, ready = _read_until(process, "all nodes running", 120)
        assert ready, "".join(lines)
        children = _children(process.pid)
        sim = [pid for pid in children if "sim_arm" in Path(f"/proc/{pid}/cmdline").read_text()]
        assert len(sim) == 1
        os.kill(sim[0], signal.SIGKILL)
        rest, _ = process.communicate(timeout=60)
    finally:
        _terminate(process)
    assert process.returncode != 0
    assert "sim_arm exited" in rest
    assert not any(_alive(pid) for pid in children)


@pytest.mark.ros
def test_nodes_stop_when_the_runner_is_killed(ros_env):
    """SIGKILL to the runner (no chance to clean up): its nodes still stop."""
    process = _runner(["--robot", "planar2", "--sim", "kinematic"], ros_env)
    children = []
    try:
        lines, ready = _read_until(process, "all nodes running", 120)
        assert ready, "".join(lines)
        children = _children(process.pid)
        assert len(children) == 2, children
        process.kill()
        process.wait(timeout=10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(pid) for pid in children):
            time.sleep(0.2)
        alive = [Path(f"/proc/{pid}/cmdline").read_text() for pid in children if _alive(pid)]
        assert not alive, alive
    finally:
        _terminate(process, children)
        for pid in children:
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)
