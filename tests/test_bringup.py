"""Properties of the bring-up runner (jacobian_ik.node.bringup) and of the launch file
that mirrors it (launch/ik_controller.launch.py, checked by its syntax tree since
``launch`` may not be installed)."""

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
from jacobian_ik.node.bringup import (CONTROLLER_NODE, EXPORTER_NODE, FAULT_PARAMETERS,
                                      LAUNCH_ARGUMENTS, NODES, SIM_NODE, BringupConfig, generated_parameters,
                                      parameter_files, ros_environment)

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
def _calls(tree, name):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if called == name:
                yield node


def _constants(tree) -> dict:
    """Module-level NAME = <literal> assignments of the launch file."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def _keyword(call, name, constants=None):
    for keyword in call.keywords:
        if keyword.arg == name:
            if isinstance(keyword.value, ast.Name) and constants is not None:
                return constants[keyword.value.id]
            return ast.literal_eval(keyword.value)
    return None


def test_launch_file_declares_the_runners_arguments_with_the_same_defaults():
    tree = ast.parse(LAUNCH_FILE.read_text())
    declared = {ast.literal_eval(call.args[0]): _keyword(call, "default_value")
                for call in _calls(tree, "DeclareLaunchArgument")}
    assert declared == LAUNCH_ARGUMENTS


def test_launch_file_starts_the_runners_nodes():
    tree = ast.parse(LAUNCH_FILE.read_text())
    constants = _constants(tree)
    nodes = {tuple(_keyword(call, key, constants) for key in ("name", "executable", "package"))
             for call in _calls(tree, "Node")}
    expected = {(name, name, bundled.PACKAGE_NAME) for name, _ in NODES + (EXPORTER_NODE,)}
    assert nodes == expected
    # The runner's modules are the console scripts the launch file names (setup.py).
    setup = (LAUNCH_FILE.parent.parent / "setup.py").read_text()
    for name, module in NODES + (EXPORTER_NODE,):
        assert f"{name} = {module}:main" in setup


def test_launch_file_forwards_the_same_faults_with_the_same_types():
    tree = ast.parse(LAUNCH_FILE.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "FAULTS":
            faults = {ast.literal_eval(k): v.id for k, v in zip(node.value.keys,
                                                                 node.value.values)}
            break
    else:
        pytest.fail("launch file has no FAULTS table")
    assert faults == {name: kind.__name__ for name, kind in FAULT_PARAMETERS.items()}


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
