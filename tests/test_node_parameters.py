"""Properties of jacobian_ik.node.parameters: ROS parameters ↔ ControllerParams.

In-process rclpy nodes with parameter overrides (no discovery involved); the
start-up and live-change behaviour of the real node process is tested in
test_node_startup.py and test_node_closed_loop.py.
"""

from __future__ import annotations

import math

import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from jacobian_ik import bundled  # noqa: E402
from jacobian_ik.controller import Controller  # noqa: E402
from jacobian_ik.errors import ConfigurationError  # noqa: E402
from jacobian_ik.node.parameters import (  # noqa: E402
    NODE_PARAMETERS,
    PROCESS_PARAMETERS,
    ParameterGate,
    ProcessSettings,
    declare_controller_parameters,
    declare_node_parameters,
    declare_process_parameters,
)
from jacobian_ik.params import PARAMETER_SPECS, ControllerParams  # noqa: E402
from jacobian_ik.robot import Robot  # noqa: E402

LINKS = bundled.robot_links("panda")
ROBOT_OVERRIDES = {"urdf_path": str(bundled.urdf_path("panda")), "base_link": LINKS[0],
                   "tip_link": LINKS[1]}


@pytest.fixture
def context(ros_domain_id):
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=ros_domain_id)
    yield ctx
    rclpy.try_shutdown(context=ctx)


def make_node(context, **overrides):
    params = [Parameter(name, value=value) for name, value in overrides.items()]
    return Node("ik_controller", context=context, parameter_overrides=params)


def test_every_controller_field_is_declared_with_its_spec(context):
    """Description with unit, read-only unless tunable, range = the spec's bounds."""
    node = make_node(context)
    declare_controller_parameters(node)
    for name, spec in PARAMETER_SPECS.items():
        d = node.describe_parameter(name)
        assert spec.description in d.description
        assert d.read_only == (not spec.tunable), name
        if spec.kind == "float":
            assert len(d.floating_point_range) == 1, name
            assert d.floating_point_range[0].from_value == spec.minimum
            assert d.floating_point_range[0].to_value == spec.maximum
        if spec.choices:
            assert all(c in d.additional_constraints for c in spec.choices)
    node.destroy_node()


def test_no_overrides_give_the_default_controller_params(context):
    node = make_node(context)
    assert declare_controller_parameters(node) == ControllerParams()
    node.destroy_node()


def test_overrides_of_every_kind_reach_controller_params(context):
    node = make_node(context, position_gain=5.0, task="position",
                     max_joint_velocity=[1.0] * 7)
    params = declare_controller_parameters(node)
    assert params.position_gain == 5.0
    assert params.task == "position"
    assert params.max_joint_velocity == (1.0,) * 7
    node.destroy_node()


@pytest.mark.parametrize("overrides, words", [
    ({"position_gain": 5}, ["position_gain", "floating-point"]),
    ({"position_gain": -1.0}, ["position_gain", "range", "0.0", "100.0"]),
    ({"stale_timeout": math.nan}, ["stale_timeout"]),
    ({"task": "joint"}, ["task", "pose", "position"]),
    ({"sigma_resume": 0.5}, ["sigma_resume", "sigma_warn"]),
])
def test_bad_controller_values_raise_configuration_error_naming_them(context, overrides, words):
    node = make_node(context, **overrides)
    with pytest.raises(ConfigurationError) as info:
        declare_controller_parameters(node)
    for word in words:
        assert word in str(info.value)
    node.destroy_node()


def test_node_parameters_are_read_only_and_checked(context):
    node = make_node(context, **ROBOT_OVERRIDES, output="trajectory")
    settings = declare_node_parameters(node)
    assert settings.output == "trajectory"
    assert settings.output_topic == "/joint_trajectory_controller/joint_trajectory"
    assert settings.urdf_source == ROBOT_OVERRIDES["urdf_path"]
    for name in NODE_PARAMETERS:
        assert node.describe_parameter(name).read_only, name
    node.destroy_node()


@pytest.mark.parametrize("overrides, words", [
    ({}, ["robot_description", "urdf_path"]),
    ({**ROBOT_OVERRIDES, "output": "torque"}, ["output", "velocity", "position", "trajectory"]),
    ({**ROBOT_OVERRIDES, "tip_link": ""}, ["tip_link"]),
    ({**ROBOT_OVERRIDES, "metrics_rate": -1.0}, ["metrics_rate"]),
])
def test_bad_node_parameters_raise_configuration_error(context, overrides, words):
    node = make_node(context, **overrides)
    with pytest.raises(ConfigurationError) as info:
        declare_node_parameters(node)
    for word in words:
        assert word in str(info.value)
    node.destroy_node()


@pytest.mark.parametrize("control_rate, metrics_rate, every", [
    (1000.0, 100.0, 10), (500.0, 100.0, 5), (1000.0, 300.0, 3), (500.0, 0.0, 1),
    (500.0, 500.0, 1), (500.0, 2000.0, 1)])
def test_metrics_rate_becomes_a_whole_number_of_cycles(context, control_rate, metrics_rate,
                                                       every):
    """metrics_rate [Hz] → publish every round(control_rate / metrics_rate) cycles;
    0 or a rate at or above the control rate = every cycle."""
    node = make_node(context, **ROBOT_OVERRIDES, metrics_rate=metrics_rate)
    assert declare_node_parameters(node).metrics_decimation(control_rate) == every
    node.destroy_node()


def test_process_parameters_default_to_events_executor_and_no_realtime_options(context):
    node = make_node(context)
    assert declare_process_parameters(node) == ProcessSettings(
        executor="events", cpu_affinity=(), realtime_priority=0, lock_memory=False)
    for name in PROCESS_PARAMETERS:
        assert node.describe_parameter(name).read_only, name
    node.destroy_node()


def test_process_parameters_take_overrides(context):
    node = make_node(context, executor="single", cpu_affinity=[1, 0], realtime_priority=80,
                     lock_memory=True)
    assert declare_process_parameters(node) == ProcessSettings(
        executor="single", cpu_affinity=(1, 0), realtime_priority=80, lock_memory=True)
    node.destroy_node()


@pytest.mark.parametrize("overrides, words", [
    ({"executor": "multi"}, ["executor", "events", "single"]),
    ({"cpu_affinity": [-1]}, ["cpu_affinity", ">= 0"]),
    ({"cpu_affinity": [0.5]}, ["cpu_affinity", "integers"]),
    ({"realtime_priority": 100}, ["realtime_priority", "1..99"]),
    ({"realtime_priority": -5}, ["realtime_priority", "0 (off)"]),
])
def test_bad_process_parameters_raise_configuration_error(context, overrides, words):
    node = make_node(context, **overrides)
    with pytest.raises(ConfigurationError) as info:
        declare_process_parameters(node)
    for word in words:
        assert word in str(info.value)
    node.destroy_node()


@pytest.fixture
def gated(context):
    """A node with its parameters declared and the gate in front of a real Controller."""
    node = make_node(context)
    params = declare_controller_parameters(node)
    robot = Robot.from_urdf(bundled.urdf_path("panda"), *LINKS)
    controller = Controller(robot, params)
    node.add_on_set_parameters_callback(
        ParameterGate(lambda: controller.params, controller.update_params))
    yield node, controller
    node.destroy_node()


def test_live_change_of_a_tunable_parameter_reaches_the_controller(gated):
    node, controller = gated
    result = node.set_parameters([Parameter("max_linear_speed", value=0.1)])[0]
    assert result.successful
    assert controller.params.max_linear_speed == 0.1
    assert node.get_parameter("max_linear_speed").value == 0.1


@pytest.mark.parametrize("name, value", [
    ("max_linear_speed", -0.1),        # out of range
    ("position_gain", math.inf),       # not finite
    ("position_gain", 2),              # wrong type
    ("sigma_stop", 0.01),              # not tunable (read-only)
])
def test_live_invalid_change_is_refused_and_the_running_value_kept(gated, name, value):
    node, controller = gated
    before = getattr(controller.params, name)
    result = node.set_parameters([Parameter(name, value=value)])[0]
    assert not result.successful
    assert result.reason
    assert getattr(controller.params, name) == before
    assert node.get_parameter(name).value == before


def test_gate_refuses_a_non_tunable_change_with_the_controllers_reason(gated):
    """Even past rclpy's read-only check, the controller refuses a structural change."""
    _, controller = gated
    gate = ParameterGate(lambda: controller.params, controller.update_params)
    refused = gate([Parameter("task", value="position")])
    assert not refused.successful and "task" in refused.reason
    assert controller.params.task == "pose"


def test_gate_refuses_a_combination_controller_params_rejects(gated):
    """A value valid alone but invalid with the others is refused with the rule."""
    _, controller = gated
    gate = ParameterGate(lambda: controller.params, controller.update_params)
    refused = gate([Parameter("sigma_resume", value=0.5)])
    assert not refused.successful and "sigma_warn" in refused.reason
    assert controller.params.sigma_resume == ControllerParams().sigma_resume
