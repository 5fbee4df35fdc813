"""Properties of the bundled robot descriptions and of jacobian_ik.bundled."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from jacobian_ik import bundled
from jacobian_ik.errors import ConfigurationError, JacobianIkError

pin = pytest.importorskip("pinocchio")

EXPECTED_DOF = {"panda": 7, "ur5": 6, "planar2": 2}
EXPECTED_LINKS = {
    "panda": ("panda_link0", "panda_hand_tcp"),
    "ur5": ("base_link", "tool0"),
    "planar2": ("base_link", "tool"),
}


def _frame_placement(model, q, frame):
    data = model.createData()
    pin.framesForwardKinematics(model, data, q)
    return data.oMf[model.getFrameId(frame)]


def test_bundled_robot_names_are_the_three_arms():
    """BUNDLED_ROBOTS names exactly panda, ur5, planar2, and the default is one of them."""
    assert set(bundled.BUNDLED_ROBOTS) == set(EXPECTED_DOF)
    assert bundled.DEFAULT_ROBOT == "panda"
    assert bundled.DEFAULT_ROBOT in bundled.BUNDLED_ROBOTS


def test_share_dir_holds_urdf_and_config_of_every_robot():
    """share_dir() has urdf/<name>.urdf and config/<name>.yaml for every bundled robot."""
    share = bundled.share_dir()
    for name in bundled.BUNDLED_ROBOTS:
        assert bundled.urdf_path(name) == share / "urdf" / f"{name}.urdf"
        assert bundled.config_path(name) == share / "config" / f"{name}.yaml"
        assert bundled.urdf_path(name).is_file()
        assert bundled.config_path(name).is_file()


@pytest.mark.parametrize("name", sorted(EXPECTED_DOF))
def test_bundled_urdf_loads_in_pinocchio_with_expected_joint_count(name):
    """Each bundled URDF builds a pinocchio model with 7 (panda), 6 (ur5), 2 (planar2) joints."""
    model = pin.buildModelFromUrdf(str(bundled.urdf_path(name)))
    assert model.nq == EXPECTED_DOF[name]
    assert model.nv == EXPECTED_DOF[name]
    # Every movable link has a positive mass and finite limits.
    assert np.all(np.isfinite(model.lowerPositionLimit))
    assert np.all(np.isfinite(model.upperPositionLimit))
    assert np.all(model.lowerPositionLimit < model.upperPositionLimit)
    assert np.all(model.velocityLimit > 0)
    for inertia in list(model.inertias)[1:]:
        assert inertia.mass > 0
        assert np.all(np.linalg.eigvalsh(inertia.inertia) > 0)


@pytest.mark.parametrize("name", sorted(EXPECTED_DOF))
def test_robot_links_returns_the_configured_links_present_in_the_urdf(name):
    """robot_links(name) returns the YAML's (base_link, tip_link), and both are URDF frames."""
    links = bundled.robot_links(name)
    assert links == EXPECTED_LINKS[name]
    model = pin.buildModelFromUrdf(str(bundled.urdf_path(name)))
    for link in links:
        assert model.existFrame(link), link


@pytest.mark.parametrize("func", [bundled.urdf_path, bundled.config_path, bundled.robot_links])
def test_unknown_robot_name_raises_configuration_error_listing_valid_names(func):
    """An unknown robot name raises ConfigurationError naming the valid robots, sorted."""
    with pytest.raises(ConfigurationError) as info:
        func("no_such_robot")
    assert isinstance(info.value, JacobianIkError)
    assert "panda, planar2, ur5" in str(info.value)
    assert "no_such_robot" in str(info.value)


def test_panda_tcp_at_zero_configuration_matches_published_geometry():
    """At q = 0 the panda TCP is at (0.088, 0, 0.8226) pointing straight down,
    and the flange at (0.088, 0, 0.926), to 1e-9."""
    model = pin.buildModelFromUrdf(str(bundled.urdf_path("panda")))
    q = np.zeros(model.nq)
    flange = _frame_placement(model, q, "panda_link8")
    tcp = _frame_placement(model, q, "panda_hand_tcp")
    np.testing.assert_allclose(flange.translation, [0.088, 0.0, 0.333 + 0.316 + 0.384 - 0.107],
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(tcp.translation, [0.088, 0.0, 0.926 - 0.1034], rtol=0, atol=1e-9)
    np.testing.assert_allclose(tcp.rotation[:, 2], [0.0, 0.0, -1.0], rtol=0, atol=1e-9)
    # At q = 0 the flange's x axis is the base x axis and its y axis the base
    # -y axis; the hand is turned -45 degrees about the flange z axis.
    np.testing.assert_allclose(flange.rotation[:, 0], [1.0, 0.0, 0.0], rtol=0, atol=1e-9)
    c = math.cos(math.pi / 4)
    np.testing.assert_allclose(tcp.rotation[:, 0], [c, c, 0.0], rtol=0, atol=1e-9)


def test_ur5_tool0_at_zero_configuration_matches_dh_parameters():
    """At q = 0 the ur5 tool0 is at (-(a2 + a3), d4 + d6, d1 - d5) in base_link."""
    model = pin.buildModelFromUrdf(str(bundled.urdf_path("ur5")))
    tool0 = _frame_placement(model, np.zeros(model.nq), "tool0")
    np.testing.assert_allclose(
        tool0.translation, [0.425 + 0.39225, 0.10915 + 0.0823, 0.089159 - 0.09465],
        rtol=0, atol=1e-9)


def test_planar2_tool_traces_the_two_link_geometry():
    """planar2's tool is at (0.5 cos q1 + 0.4 cos(q1+q2), 0.5 sin q1 + 0.4 sin(q1+q2), 0)."""
    model = pin.buildModelFromUrdf(str(bundled.urdf_path("planar2")))
    for q in ([0.0, 0.0], [0.3, -1.2], [-2.5, 2.9]):
        tool = _frame_placement(model, np.array(q), "tool")
        q1, q2 = q
        expected = [0.5 * math.cos(q1) + 0.4 * math.cos(q1 + q2),
                    0.5 * math.sin(q1) + 0.4 * math.sin(q1 + q2), 0.0]
        np.testing.assert_allclose(tool.translation, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", sorted(EXPECTED_DOF))
def test_bundled_urdf_loads_in_mujoco(name):
    """Each bundled URDF compiles in MuJoCo (positive-definite inertias) with the same DOF
    (without its collision meshes, which MuJoCo cannot find by package:// path; the
    simulator drops them too)."""
    mujoco = pytest.importorskip("mujoco")
    root = ET.fromstring(bundled.urdf_path(name).read_text())
    for link in root.iter("link"):
        for element in link.findall("collision"):
            link.remove(element)
    model = mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode"))
    assert model.nq == EXPECTED_DOF[name]


@pytest.mark.parametrize("name, erd_file, frames", [
    ("panda", "panda_description/urdf/panda.urdf", ["panda_link8", "panda_hand_tcp"]),
    ("ur5", "ur_description/urdf/ur5_robot.urdf", ["ee_link", "tool0"]),
])
def test_bundled_kinematics_match_example_robot_data(name, erd_file, frames, erd_robots_dir):
    """The bundled arm's frames coincide (to 1e-9) with those of the example-robot-data
    model of the same arm, at random joint positions."""
    ours = pin.buildModelFromUrdf(str(bundled.urdf_path(name)))
    ref = pin.buildModelFromUrdf(str(erd_robots_dir / erd_file))
    ref_joints = [ref.getJointId(ours.names[j]) for j in range(1, ours.njoints)]
    rng = np.random.default_rng(7)
    for _ in range(20):
        q = rng.uniform(ours.lowerPositionLimit, ours.upperPositionLimit)
        q_ref = pin.neutral(ref)
        for j, ref_joint in enumerate(ref_joints):
            q_ref[ref.joints[ref_joint].idx_q] = q[j]
        for frame in frames:
            a = _frame_placement(ours, q, frame)
            b = _frame_placement(ref, q_ref, frame)
            np.testing.assert_allclose(a.homogeneous, b.homogeneous, rtol=0, atol=1e-9,
                                       err_msg=f"{name} {frame} q={q}")
