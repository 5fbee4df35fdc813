"""Properties of jacobian_ik.node.telemetry_hooks: the controller node's recorder
parameters and the telemetry it keeps per cycle (in-process rclpy nodes)."""

from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from jacobian_ik import bundled  # noqa: E402
from jacobian_ik.collision.scene import Scene  # noqa: E402
from jacobian_ik.controller import Controller  # noqa: E402
from jacobian_ik.errors import ConfigurationError  # noqa: E402
from jacobian_ik.node.telemetry_hooks import (  # noqa: E402
    RECORDER_PARAMETERS,
    ControllerTelemetry,
    declare_recorder_parameters,
)
from jacobian_ik.params import ControllerParams  # noqa: E402
from jacobian_ik.robot import Robot  # noqa: E402
from jacobian_ik.telemetry.aggregate import (  # noqa: E402
    PAIR_KEYS,
    parse_block,
    parse_pair_counts,
    split_message,
)
from jacobian_ik.telemetry.bagfile import ring_columns  # noqa: E402


@pytest.fixture
def context(ros_domain_id):
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=ros_domain_id)
    yield ctx
    rclpy.try_shutdown(context=ctx)


def make_node(context, **overrides):
    params = [Parameter(name, value=value) for name, value in overrides.items()]
    return Node("ik_controller", context=context, parameter_overrides=params)


def test_recorder_parameters_are_read_only_with_their_defaults(context):
    node = make_node(context)
    settings = declare_recorder_parameters(node)
    assert settings.seconds == 5.0 and settings.max_files == 20
    for name in RECORDER_PARAMETERS:
        assert node.describe_parameter(name).read_only, name
    node.destroy_node()


@pytest.mark.parametrize("overrides, word", [
    ({"flight_recorder_seconds": -1.0}, "flight_recorder_seconds"),
    ({"flight_recorder_seconds": 5}, "flight_recorder_seconds"),
    ({"flight_recorder_max_files": 0}, "flight_recorder_max_files"),
])
def test_bad_recorder_parameters_raise_configuration_errors(context, overrides, word):
    node = make_node(context, **overrides)
    with pytest.raises(ConfigurationError) as info:
        declare_recorder_parameters(node)
    assert word in str(info.value)
    node.destroy_node()


def test_cycles_transitions_and_goals_are_counted_once_each(context, tmp_path):
    """A pose goal run to completion: every cycle counted, one entry into TRACKING,
    one goal reached, the ring holding the recent cycles."""
    robot = Robot.from_urdf(bundled.urdf_path("panda"), *bundled.robot_links("panda"))
    params = ControllerParams()
    node = make_node(context, flight_recorder_folder=str(tmp_path))
    controller = Controller(robot, params)
    telemetry = ControllerTelemetry(node, robot, params, str(bundled.urdf_path("panda")),
                                    controller.reason_pair)
    q = robot.q_mid.copy()
    target = robot.fk(q)
    target[:3, 3] += [0.0, 0.02, 0.0]
    period = 1.0 / params.control_rate
    try:
        for k in range(1500):
            result = controller.step(q, target, period)
            q = result.q_command
            telemetry.cycle(k * period, q, result, target, "pose", 1e-4, False, False, 0)
        assert result.goal_reached
        totals = split_message(parse_block(telemetry.aggregates.values))
        assert totals["scalars"]["cycles"] == 1500
        assert totals["scalars"]["goals_reached"] == 1
        assert totals["transitions"][("TRACKING", "tracking")] == 1
        assert sum(totals["transitions"].values()) == 1
        rows = telemetry.recorder.snapshot()
        assert len(rows) == 1500 < telemetry.recorder.capacity
        info = dict(telemetry.diagnostics_pairs())
        assert info["base_link"] == robot.base_link and len(info["urdf_sha256"]) == 64
        before = info["parameters_sha256"]
        telemetry.params_changed(params.replace(max_linear_speed=0.1))
        assert dict(telemetry.diagnostics_pairs())["parameters_sha256"] != before
        columns = ring_columns(robot.dof)
        np.testing.assert_array_equal(rows[-1][columns["q"]], q)
        # the last cycle's closest pair and distance, as the controller gave them
        assert rows[-1][columns["min_distance"].start] == result.min_distance
        pair = int(rows[-1][columns["pair"].start])
        names = telemetry.recorder.pair_names
        assert (names[pair] if pair >= 0 else "") == \
            (" – ".join(result.closest_pair) if result.closest_pair[0] else "")
    finally:
        telemetry.close()
        node.destroy_node()


def test_a_goal_below_the_table_counts_its_pair_and_a_collision_stop(context, tmp_path):
    """Driven down into a table plane, the arm slides to it and stops: the cycles in
    APPROACHING_COLLISION count for the pair the reason names, the stop is of class
    "collision" and counts for that pair, and every cycle lands in a distance bucket."""
    robot = Robot.from_urdf(bundled.urdf_path("panda"), *bundled.robot_links("panda"))
    params = ControllerParams()
    q = robot.q_mid.copy()
    tip = robot.fk(q)
    table = tip[2, 3] - 0.08               # 8 cm under the tip
    scene = Scene().add_plane("table", [0.0, 0.0, 1.0], table)
    controller = Controller(robot, params, scene=scene)
    node = make_node(context, flight_recorder_seconds=0.0)
    telemetry = ControllerTelemetry(node, robot, params, str(bundled.urdf_path("panda")),
                                    controller.reason_pair)
    target = tip.copy()
    target[2, 3] = table - 0.05
    period = 1.0 / params.control_rate
    states = []
    try:
        for k in range(3000):
            result = controller.step(q, target, period)
            q = result.q_command
            states.append(result.state.name)
            telemetry.cycle(k * period, q, result, target, "pose", 1e-4, False, False, 0)
            if result.state.name == "SAFE_STOP":
                break
        assert states[-1] == "SAFE_STOP", states[-1]
        pair = controller.reason_pair()
        assert pair.endswith("– table"), result.reason
        totals = split_message(parse_block(telemetry.aggregates.values))
        assert totals["transitions"][("SAFE_STOP", "collision")] == 1
        assert sum(c for _, c in totals["distance_buckets"]) == len(states)
        counts = parse_pair_counts({k: str(v) for k, v in telemetry.diagnostics_pairs()})
        stops, cycles = (counts[metric.name] for metric, _ in PAIR_KEYS)
        assert stops[pair] == 1
        approaching = states.count("APPROACHING_COLLISION")
        assert approaching > 0 and sum(cycles.values()) == approaching
    finally:
        telemetry.close()
        node.destroy_node()
