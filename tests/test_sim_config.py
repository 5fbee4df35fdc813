"""SimConfig: validation at construction, messages with the valid choices, ROS-style input."""

from __future__ import annotations

import dataclasses
import math

import pytest

from jacobian_ik import ConfigurationError, bundled
from jacobian_ik.sim.config import SimConfig

URDF = str(bundled.urdf_path("planar2"))
ROBOT = dict(urdf_path=URDF, base_link="base_link", tip_link="tool")


def test_defaults_match_the_documented_interface():
    """Defaults: kinematic backend, 500 Hz, no lag, no faults, velocity actuator."""
    config = SimConfig(**ROBOT)
    assert config.backend == "kinematic"
    assert config.publish_rate == 500.0 and config.period == pytest.approx(0.002)
    assert config.velocity_lag == 0.0
    assert (config.noise_std, config.latency, config.drop_probability) == (0.0, 0.0, 0.0)
    assert (config.freeze_after, config.jump_after, config.seed) == (0.0, 0.0, 0)
    assert config.initial_positions == ()
    assert config.mujoco_actuator == "velocity"


def test_config_is_frozen():
    """A SimConfig cannot be changed after construction."""
    config = SimConfig(**ROBOT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.backend = "mujoco"


@pytest.mark.parametrize("options, words", [
    (dict(backend="gazebo"), "backend 'gazebo' is unknown; backends are: kinematic, mujoco"),
    (dict(mujoco_actuator="torque"), "actuators are: velocity, position"),
    (dict(publish_rate=0.0), "publish_rate = 0.0 is out of range; valid: (0, 10000] Hz"),
    (dict(publish_rate=math.inf), "publish_rate"),
    (dict(velocity_lag=-0.1), "velocity_lag"),
    (dict(noise_std=-1.0), "noise_std"),
    (dict(latency=math.nan), "latency"),
    (dict(drop_probability=1.5), "drop_probability = 1.5 is out of range; valid: [0, 1]"),
    (dict(freeze_after=math.inf), "freeze_after must be a finite number"),
    (dict(freeze_mode="late"), "freeze_mode 'late' is unknown; choices are: silent, repeat, "
                               "stuck"),
    (dict(jump_offset=math.nan), "jump_offset"),
    (dict(seed=-1), "seed must be an integer >= 0"),
    (dict(seed=1.5), "seed must be an integer"),
    (dict(mujoco_kv=0.0), "mujoco_kv"),
    (dict(mujoco_kp=-1.0), "mujoco_kp"),
    (dict(mujoco_timestep=0.1), "mujoco_timestep"),
    (dict(mujoco_kp=1e7, mujoco_kv=1e3), "position loop would oscillate"),
    (dict(initial_positions=(0.0, math.nan)), "initial_positions must be finite"),
    (dict(publish_rate="fast"), "publish_rate must be a number"),
])
def test_bad_values_raise_configuration_error_naming_the_parameter(options, words):
    """Each out-of-range or unknown value raises ConfigurationError saying what is valid."""
    with pytest.raises(ConfigurationError) as info:
        SimConfig(**{**ROBOT, **options})
    assert words in str(info.value)


def test_a_robot_source_and_both_chain_links_are_required():
    """Without URDF, base_link or tip_link the error names what to set."""
    with pytest.raises(ConfigurationError, match=r"robot_description .* or urdf_path"):
        SimConfig(base_link="a", tip_link="b")
    with pytest.raises(ConfigurationError, match="base_link is empty"):
        SimConfig(urdf_path=URDF, tip_link="tool")
    with pytest.raises(ConfigurationError, match="tip_link is empty"):
        SimConfig(urdf_path=URDF, base_link="base_link")


def test_robot_description_takes_precedence_over_urdf_path():
    """With both set, robot_source is the XML string (as in the controller node)."""
    config = SimConfig(robot_description="<robot/>", urdf_path=URDF, base_link="a",
                       tip_link="b")
    assert config.robot_source == "<robot/>"
    assert SimConfig(**ROBOT).robot_source == URDF


def test_from_mapping_accepts_integers_for_floats_and_skips_unset_values():
    """ROS parameters given as integers are floats; None keeps the default."""
    config = SimConfig.from_mapping({**ROBOT, "publish_rate": 100, "latency": None,
                                     "initial_positions": [0, 1], "seed": 4})
    assert config.publish_rate == 100.0 and isinstance(config.publish_rate, float)
    assert config.latency == 0.0
    assert config.initial_positions == (0.0, 1.0)
    assert config.seed == 4


@pytest.mark.parametrize("values, words", [
    ({"publish_rate": True}, "publish_rate must be a number"),
    ({"seed": 2.0}, "seed must be an integer"),
    ({"backend": 3}, "backend must be a string"),
    ({"initial_positions": "0 1"}, "initial_positions must be an array of numbers"),
    ({"initial_positions": [0.0, "x"]}, "initial_positions must be an array of numbers"),
    ({"rate": 10.0}, "unknown simulator parameter(s) rate"),
])
def test_from_mapping_rejects_wrong_types_and_unknown_names(values, words):
    """Type errors and unknown names raise ConfigurationError naming the parameter."""
    with pytest.raises(ConfigurationError) as info:
        SimConfig.from_mapping({**ROBOT, **values})
    assert words in str(info.value)
