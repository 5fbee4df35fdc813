"""ControllerParams: validation messages, conversions and the check against a robot."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from controller_support import bundled_arm

from jacobian_ik.errors import ConfigurationError
from jacobian_ik.params import (
    DEFAULT_ACCELERATION_TIME,
    PARAMETER_SPECS,
    ControllerParams,
    ParameterSpec,
)

FLOAT_FIELDS = [name for name, spec in PARAMETER_SPECS.items() if spec.kind == "float"]


def test_every_declared_parameter_is_described_and_its_default_is_valid():
    """Each spec has a description; a choice field's default is one of its choices;
    the defaults together make a valid ControllerParams."""
    for name, spec in PARAMETER_SPECS.items():
        assert isinstance(spec, ParameterSpec)
        assert spec.description and isinstance(spec.tunable, bool), name
        if spec.kind == "str":
            assert spec.default in spec.choices, name
    ControllerParams()


def test_params_are_frozen():
    """Assigning a field raises: changes go through replace()."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        ControllerParams().position_gain = 1.0


@pytest.mark.parametrize("name", FLOAT_FIELDS)
def test_each_float_field_rejects_values_outside_its_range_with_the_exact_message(name):
    """Below the minimum, above the maximum and NaN each raise a message naming the
    field, the value and the valid range with its unit."""
    spec = PARAMETER_SPECS[name]
    unit = f" {spec.unit}" if spec.unit and spec.unit != "1" else ""
    valid = f"[{float(spec.minimum)!r}, {float(spec.maximum)!r}]{unit}"
    for bad in (spec.minimum - 1.0, spec.maximum + 1.0, math.nan, math.inf):
        with pytest.raises(ConfigurationError) as info:
            ControllerParams(**{name: bad})
        assert str(info.value) == f"{name} = {float(bad)!r} is outside its valid range {valid}"


@pytest.mark.parametrize("bad", ["fast", True, None, [1.0]])
def test_non_numbers_are_rejected(bad):
    """A string, a bool, None or a list for a number field raises, naming the field."""
    with pytest.raises(ConfigurationError) as info:
        ControllerParams(position_gain=bad)
    assert str(info.value) == (f"position_gain = {bad!r} is not a number; valid range is "
                               f"[0.0, 100.0] 1/s")


def test_task_must_be_pose_or_position():
    """An unknown task names the valid choices."""
    with pytest.raises(ConfigurationError) as info:
        ControllerParams(task="orientation")
    assert str(info.value) == ("task = 'orientation' is not a valid choice; valid choices are: "
                               "pose, position")


def test_sigma_thresholds_must_be_ordered():
    """sigma_stop < sigma_resume <= sigma_warn, with messages naming both values."""
    with pytest.raises(ConfigurationError) as info:
        ControllerParams(sigma_stop=0.03, sigma_resume=0.03)
    assert str(info.value) == ("sigma_resume = 0.03 must be greater than sigma_stop = 0.03 "
                               "(hysteresis: sigma_stop < sigma_resume <= sigma_warn)")
    with pytest.raises(ConfigurationError) as info:
        ControllerParams(sigma_warn=0.025)
    assert str(info.value) == ("sigma_warn = 0.025 must be at least sigma_resume = 0.03 "
                               "(sigma_stop < sigma_resume <= sigma_warn)")


def test_per_joint_values_are_checked_element_by_element():
    """A bad element of a per-joint tuple is named with its index."""
    with pytest.raises(ConfigurationError) as info:
        ControllerParams(max_joint_velocity=(1.0, -2.0))
    assert str(info.value) == ("max_joint_velocity[1] = -2.0 is outside its valid range "
                               "[1e-06, 100.0] rad/s | m/s")
    with pytest.raises(ConfigurationError) as info:
        ControllerParams(max_joint_acceleration="fast")
    assert "max_joint_acceleration = 'fast' is not a list of numbers" in str(info.value)


def test_from_dict_rejects_unknown_keys_listing_the_valid_ones():
    """An unknown key raises and lists every valid key."""
    with pytest.raises(ConfigurationError) as info:
        ControllerParams.from_dict({"gain": 1.0})
    message = str(info.value)
    assert message.startswith("unknown controller parameter(s) 'gain'; valid parameters are: ")
    for name in PARAMETER_SPECS:
        assert name in message


def test_to_dict_from_dict_round_trip_and_lists_for_arrays():
    """from_dict(to_dict(p)) == p; per-joint fields come out as lists, go in as lists."""
    p = ControllerParams(task="position", max_joint_velocity=[1.0, 1.5],
                         max_joint_acceleration=(3.0, 4.0))
    d = p.to_dict()
    assert d["max_joint_velocity"] == [1.0, 1.5]
    assert ControllerParams.from_dict(d) == p
    assert p.max_joint_velocity == (1.0, 1.5)


def test_replace_returns_a_validated_copy():
    """replace() changes fields, keeps the original, and validates the copy."""
    p = ControllerParams()
    q = p.replace(position_gain=5.0)
    assert q.position_gain == 5.0 and p.position_gain == 3.0
    assert p.changed_fields(q) == ["position_gain"]
    with pytest.raises(ConfigurationError):
        p.replace(position_gain=-1.0)
    with pytest.raises(ConfigurationError, match="unknown controller parameter"):
        p.replace(gain=1.0)


def test_resolve_defaults_come_from_the_urdf():
    """Empty per-joint fields resolve to the URDF velocity limits and velocity / 0.25 s."""
    robot = bundled_arm("panda")
    limits = ControllerParams().resolve(robot)
    np.testing.assert_array_equal(limits.max_joint_velocity, robot.velocity_limits)
    np.testing.assert_allclose(limits.max_joint_acceleration,
                               robot.velocity_limits / DEFAULT_ACCELERATION_TIME)


def test_resolve_checks_lengths_and_urdf_limits():
    """A per-joint tuple of the wrong length, or a velocity above the URDF's, raises."""
    robot = bundled_arm("planar2")
    with pytest.raises(ConfigurationError) as info:
        ControllerParams(max_joint_velocity=(1.0, 1.0, 1.0)).resolve(robot)
    assert str(info.value) == ("max_joint_velocity has 3 values but the robot has 2 joints "
                               "(joint1, joint2); give 2 values or none")
    with pytest.raises(ConfigurationError) as info:
        ControllerParams(max_joint_velocity=(1.0, 2.5)).resolve(robot)
    assert str(info.value) == ("max_joint_velocity[1] = 2.5 for joint 'joint2' exceeds its URDF "
                               "velocity limit 2.0; valid range is (0, 2.0]")
    limits = ControllerParams(max_joint_velocity=(1.0, 1.5),
                              max_joint_acceleration=(2.0, 3.0)).resolve(robot)
    np.testing.assert_array_equal(limits.max_joint_velocity, [1.0, 1.5])
    np.testing.assert_array_equal(limits.max_joint_acceleration, [2.0, 3.0])
