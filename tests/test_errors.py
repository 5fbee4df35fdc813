"""Typed errors carry what they are about as attributes, besides their message."""

from __future__ import annotations

import pickle

import pytest

from jacobian_ik import bundled
from jacobian_ik.audit.gates import parse_gate
from jacobian_ik.errors import ChainError, ConfigurationError, JacobianIkError, UrdfError
from jacobian_ik.node.bringup import BringupConfig
from jacobian_ik.params import PARAMETER_SPECS, ControllerParams
from jacobian_ik.robot import SUPPORTED_JOINT_TYPES, Robot
from jacobian_ik.sim.config import BACKENDS, SimConfig

URDF = """<robot name="r"><link name="base"/><link name="l1"/><link name="tip"/>
<joint name="j1" type="{type}"><parent link="base"/><child link="l1"/><axis xyz="0 0 1"/>
<limit lower="{lower}" upper="1" velocity="1" effort="1"/></joint>
<joint name="j2" type="revolute"><parent link="l1"/><child link="tip"/><axis xyz="0 0 1"/>
<limit lower="-1" upper="1" velocity="1" effort="1"/></joint></robot>"""
GOOD = URDF.format(type="revolute", lower="-1")


def test_every_error_is_a_jacobian_ik_error_whose_text_is_the_message():
    """One base class; str() is the message alone, whatever data the error carries."""
    for error in (UrdfError("m", path="p"), ChainError("m", link="l"),
                  ConfigurationError("m", parameter="p", value=1)):
        assert isinstance(error, JacobianIkError) and str(error) == "m"
        assert error.args == ("m",)


def test_errors_without_data_have_empty_attributes():
    """An attribute the raiser did not give is None (choices: an empty tuple)."""
    error = ConfigurationError("m")
    assert (error.parameter, error.value, error.choices, error.valid_range) == (None, None, (),
                                                                                  None)
    chain = ChainError("m")
    assert (chain.link, chain.joint, chain.choices) == (None, None, ())
    urdf = UrdfError("m")
    assert (urdf.path, urdf.joint, urdf.link) == (None, None, None)


def test_errors_keep_their_data_through_pickle():
    """An error crossing a process boundary keeps message and attributes."""
    error = ChainError("tip_link 'x' not in URDF", link="x", choices=("a", "b"))
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.link == "x" and copy.choices == ("a", "b")


@pytest.mark.parametrize("base, tip, link", [("nope", "tip", "nope"), ("base", "nope", "nope")])
def test_unknown_link_names_the_link_and_lists_the_valid_ones(base, tip, link):
    with pytest.raises(ChainError) as info:
        Robot.from_urdf(GOOD, base, tip)
    assert info.value.link == link
    assert info.value.choices == ("base", "l1", "tip")


def test_tip_not_below_base_names_the_tip_and_the_links_below_the_base():
    with pytest.raises(ChainError) as info:
        Robot.from_urdf(GOOD, "l1", "base")
    assert info.value.link == "base" and info.value.choices == ("tip",)


def test_unsupported_joint_names_the_joint_and_the_supported_types():
    with pytest.raises(ChainError) as info:
        Robot.from_urdf(URDF.format(type="floating", lower="-1"), "base", "tip")
    assert info.value.joint == "j1" and info.value.choices == SUPPORTED_JOINT_TYPES


def test_urdf_errors_name_the_file_or_the_joint(tmp_path):
    missing = tmp_path / "missing.urdf"
    with pytest.raises(UrdfError) as info:
        Robot.from_urdf(missing, "base", "tip")
    assert info.value.path == str(missing)
    with pytest.raises(UrdfError) as info:
        Robot.from_urdf(URDF.format(type="revolute", lower="2"), "base", "tip")
    assert info.value.joint == "j1" and info.value.path is None


def test_out_of_range_parameter_names_it_with_its_value_and_range():
    with pytest.raises(ConfigurationError) as info:
        ControllerParams(max_linear_speed=-1.0)
    spec = PARAMETER_SPECS["max_linear_speed"]
    assert info.value.parameter == "max_linear_speed" and info.value.value == -1.0
    assert info.value.valid_range == (spec.minimum, spec.maximum)


def test_per_joint_parameter_names_the_element():
    with pytest.raises(ConfigurationError) as info:
        ControllerParams(max_joint_velocity=(1.0, -2.0))
    assert info.value.parameter == "max_joint_velocity[1]" and info.value.value == -2.0


def test_bad_choice_lists_the_choices():
    with pytest.raises(ConfigurationError) as info:
        ControllerParams(task="orientation")
    assert info.value.parameter == "task" and info.value.value == "orientation"
    assert info.value.choices == PARAMETER_SPECS["task"].choices


def test_unknown_parameter_is_named_with_the_valid_names():
    with pytest.raises(ConfigurationError) as info:
        ControllerParams.from_dict({"gain": 1.0})
    assert info.value.parameter == "gain"
    assert info.value.choices == tuple(sorted(PARAMETER_SPECS))


def test_unknown_robot_task_backend_and_output_list_the_choices():
    with pytest.raises(ConfigurationError) as info:
        bundled.urdf_path("kuka")
    assert info.value.parameter == "robot" and info.value.choices == tuple(
        sorted(bundled.BUNDLED_ROBOTS))
    robot = Robot.from_urdf(GOOD, "base", "tip")
    with pytest.raises(ConfigurationError) as info:
        robot.task_rows("orientation")
    assert info.value.parameter == "task" and "pose" in info.value.choices
    with pytest.raises(ConfigurationError) as info:
        SimConfig(robot_description=GOOD, base_link="base", tip_link="tip", backend="gazebo")
    assert info.value.parameter == "backend" and info.value.choices == BACKENDS
    with pytest.raises(ConfigurationError) as info:
        BringupConfig(output="effort").check()
    assert info.value.parameter == "output" and "velocity" in info.value.choices


def test_unknown_gate_metric_lists_the_metrics():
    with pytest.raises(ConfigurationError) as info:
        parse_gate("nonsense>1", "audit")
    assert info.value.value == "nonsense" and "stop_fraction" in info.value.choices
