"""Properties of the audit's settings: parameter files, thresholds, robot source."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jacobian_ik import bundled
from jacobian_ik.audit import settings as settings_mod
from jacobian_ik.audit.rosparams import node_parameters
from jacobian_ik.audit.settings import resolve_settings
from jacobian_ik.audit.source import load_target
from jacobian_ik.errors import ChainError, ConfigurationError, JacobianIkError, UrdfError


def _write(tmp_path, text, name="params.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_defaults_are_the_controller_parameter_defaults():
    """Without file or flags the thresholds and task are ControllerParams' defaults."""
    params = pytest.importorskip("jacobian_ik.params")
    default = params.ControllerParams()
    s = resolve_settings()
    assert (s.sigma_warn, s.sigma_stop, s.task) == (default.sigma_warn, default.sigma_stop,
                                                    default.task)
    assert "ControllerParams" in s.source


def test_fallback_is_used_when_params_module_is_missing(monkeypatch):
    """If jacobian_ik.params cannot be imported, FALLBACK applies."""
    monkeypatch.setattr(settings_mod, "_controller_params", lambda: None)
    s = resolve_settings()
    assert (s.sigma_warn, s.sigma_stop, s.task) == (
        settings_mod.FALLBACK["sigma_warn"], settings_mod.FALLBACK["sigma_stop"],
        settings_mod.FALLBACK["task"])
    assert s.source == "built-in fallback"


def test_file_values_override_defaults_and_flags_override_file(tmp_path):
    """A node block's sigma_* and task replace the defaults; flags replace both."""
    path = _write(tmp_path, """
        /**:
          ros__parameters: {base_link: a, tip_link: b}
        /**/ik_controller:
          ros__parameters: {sigma_warn: 0.06, sigma_stop: 0.03, sigma_resume: 0.04,
                            task: position, control_rate: 250.0}
        /**/sim_arm:
          ros__parameters: {sigma_warn: 9.0}
        """)
    params = node_parameters(path)
    assert params["base_link"] == "a" and params["sigma_warn"] == 0.06
    s = resolve_settings(params, str(path))
    assert (s.sigma_warn, s.sigma_stop, s.task) == (0.06, 0.03, "position")
    assert s.source == str(path)
    s = resolve_settings(params, str(path), sigma_stop=0.01, task="pose")
    assert (s.sigma_warn, s.sigma_stop, s.task) == (0.06, 0.01, "pose")
    assert "command line" in s.source
    assert node_parameters(path, node="sim_arm")["sigma_warn"] == 9.0


def test_invalid_file_value_is_rejected_naming_the_file(tmp_path):
    """A threshold the controller would refuse fails here too, naming file and value."""
    path = _write(tmp_path, """
        /**:
          ros__parameters: {sigma_warn: -1.0}
        """)
    with pytest.raises(ConfigurationError, match="sigma_warn") as info:
        resolve_settings(node_parameters(path), str(path))
    assert str(path) in str(info.value)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"sigma_warn": 0.01, "sigma_stop": 0.02}, "must be below sigma_warn"),
    ({"sigma_warn": 0.02, "sigma_stop": 0.02}, "must be below sigma_warn"),
    ({"sigma_stop": -0.01}, ">= 0"),
    ({"sigma_warn": float("inf")}, "finite"),
    ({"task": "orientation"}, "pose, position"),
])
def test_nonsense_thresholds_raise_configuration_error(kwargs, fragment):
    """Thresholds out of 0 ≤ sigma_stop < sigma_warn, non-finite, or an unknown task
    raise ConfigurationError saying what is valid."""
    with pytest.raises(ConfigurationError, match=fragment):
        resolve_settings(**kwargs)


@pytest.mark.parametrize("text, fragment", [
    ("just a string\n", "not a ROS 2 parameter file"),
    ("node: {x: 1}\n", "no 'ros__parameters' block"),
    ("a: [1, 2\n", "not valid YAML"),
    ("/a:\n  ros__parameters: {x: 1}\n/b:\n  ros__parameters: {x: 2}\n", "--node"),
])
def test_unusable_parameter_files_raise_configuration_error(tmp_path, text, fragment):
    """Non-YAML, non-ROS or ambiguous parameter files raise ConfigurationError."""
    with pytest.raises(ConfigurationError, match=fragment):
        node_parameters(_write(tmp_path, text))


def test_bundled_robot_takes_links_and_thresholds_from_its_parameter_file():
    """`panda` resolves to the bundled URDF, its YAML's chain and thresholds."""
    target = load_target("panda")
    assert (target.robot.base_link, target.robot.tip_link) == bundled.robot_links("panda")
    assert Path(target.config).resolve() == bundled.config_path("panda").resolve()
    assert target.robot.dof == 7


def test_urdf_file_needs_links_and_unknown_names_fail(tmp_path):
    """A URDF path without --base/--tip raises ChainError; an unknown robot name
    raises UrdfError listing the bundled robots."""
    urdf = str(bundled.urdf_path("planar2"))
    with pytest.raises(ChainError, match="--base and --tip"):
        load_target(urdf)
    assert load_target(urdf, base="base_link", tip="tool").robot.dof == 2
    with pytest.raises(UrdfError, match="panda, planar2, ur5"):
        load_target(str(tmp_path / "missing.urdf"))
    with pytest.raises(JacobianIkError, match="links are"):
        load_target("planar2", tip="no_such_link")
