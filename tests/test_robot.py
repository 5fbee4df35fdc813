"""Robot: chain extraction from URDFs, limits, and rejection of bad descriptions."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from pinocchio_reference import PinocchioChain

from jacobian_ik import ChainError, ConfigurationError, JacobianIkError, Robot, UrdfError, bundled

#: Serial arms of example-robot-data checked against pinocchio: (URDF, base, tip).
#: Covers 2..8 joints, continuous joints (Kinova, PR2, double pendulum), prismatic
#: joints (PR2 torso, TIAGo torso), fixed joints inside the chain, bases that are
#: not the URDF root (Baxter torso, arms on legged robots) and arms with < 6 joints.
ERD_ARMS = [
    ("panda_description/urdf/panda.urdf", "panda_link0", "panda_hand"),
    ("ur_description/urdf/ur3_robot.urdf", "base_link", "tool0"),
    ("ur_description/urdf/ur5_robot.urdf", "base_link", "tool0"),
    ("ur_description/urdf/ur10_robot.urdf", "world", "ee_link"),
    ("kinova_description/robots/kinova.urdf", "base", "j2s6s200_end_effector"),
    ("xarm_description/urdf/xarm7.urdf", "link_base", "link_eef"),
    ("z1_description/urdf/z1.urdf", "link00", "link06"),
    ("baxter_description/urdf/baxter.urdf", "base", "left_gripper"),
    ("baxter_description/urdf/baxter.urdf", "torso", "right_hand_link"),
    ("pr2_description/urdf/pr2.urdf", "torso_lift_link", "r_gripper_tool_frame"),
    ("pr2_description/urdf/pr2.urdf", "base_footprint", "l_gripper_tool_frame"),
    ("tiago_description/robots/tiago_no_hand.urdf", "base_footprint", "arm_7_link"),
    ("so_arm_description/urdf/so100.urdf", "base", "gripper"),
    ("so_arm_description/urdf/so101.urdf", "base_link", "gripper_frame_link"),
    ("talos_data/robots/talos_left_arm.urdf", "arm_left_1_link", "wrist_left_ft_tool_link"),
    ("anymal_b_simple_description/robots/anymal-kinova.urdf", "base", "j2s6s200_link_6"),
    ("b1_description/urdf/b1-z1.urdf", "link00", "link06"),
    ("double_pendulum_description/urdf/double_pendulum_continuous.urdf", "base_link", "link2"),
    ("finger_edu_description/robots/finger_edu.urdf", "base_link", "finger_tip_link"),
]

BUNDLED = [(name, *bundled.robot_links(name)) for name in bundled.BUNDLED_ROBOTS]


def _check_against_pinocchio(urdf, base, tip, samples=100, seed=0):
    robot = Robot.from_urdf(urdf, base, tip)
    ref = PinocchioChain(urdf, base, tip, robot.joint_names)
    rng = np.random.default_rng(seed)
    for q in robot.random_configurations(samples, rng):
        np.testing.assert_allclose(robot.fk(q), ref.fk(q), rtol=0, atol=1e-10)
        np.testing.assert_allclose(robot.jacobian(q), ref.jacobian(q), rtol=0, atol=1e-10)
        np.testing.assert_allclose(robot.jacobian(q, "tip"), ref.jacobian(q, "tip"),
                                   rtol=0, atol=1e-10)
    return robot


@pytest.mark.parametrize("name,base,tip", BUNDLED, ids=[b[0] for b in BUNDLED])
def test_bundled_fk_and_jacobian_equal_pinocchio(name, base, tip):
    """FK and both Jacobians of each bundled arm equal pinocchio's to 1e-10 at 100
    random configurations."""
    _check_against_pinocchio(str(bundled.urdf_path(name)), base, tip)


@pytest.mark.parametrize("path,base,tip", ERD_ARMS,
                         ids=[f"{a[0].split('/')[-1]}:{a[2]}" for a in ERD_ARMS])
def test_example_robot_data_arm_equals_pinocchio(erd_robots_dir, path, base, tip):
    """FK and Jacobians of real arms from example-robot-data equal pinocchio's to
    1e-10 at 100 random configurations."""
    _check_against_pinocchio(str(erd_robots_dir / path), base, tip)


@pytest.mark.slow
def test_every_root_to_leaf_chain_of_example_robot_data_is_exact_or_rejected(erd_robots_dir):
    """For every URDF in example-robot-data and every root→leaf chain in it, the
    extractor either builds a chain whose FK/Jacobian equal pinocchio's, or raises
    a JacobianIkError (never another exception)."""
    accepted = rejected = 0
    for urdf in sorted(erd_robots_dir.rglob("*.urdf")):
        try:
            root = ET.parse(urdf).getroot()
        except ET.ParseError:
            with pytest.raises(UrdfError):
                Robot.from_urdf(urdf, "a", "b")
            rejected += 1
            continue
        links = [el.get("name") for el in root.findall("link")]
        children = {j.find("child").get("link") for j in root.findall("joint")}
        parents = {j.find("parent").get("link") for j in root.findall("joint")}
        roots = [link for link in links if link not in children]
        leaves = [link for link in links if link not in parents]
        if len(roots) != 1:
            continue
        for leaf in leaves:
            try:
                robot = Robot.from_urdf(urdf, roots[0], leaf)
            except JacobianIkError:
                rejected += 1
                continue
            ref = PinocchioChain(urdf, roots[0], leaf, robot.joint_names)
            for q in robot.random_configurations(3, np.random.default_rng(1)):
                np.testing.assert_allclose(robot.fk(q), ref.fk(q), atol=1e-10)
                np.testing.assert_allclose(robot.jacobian(q), ref.jacobian(q), atol=1e-10)
            accepted += 1
    assert accepted > 100 and rejected > 0


def test_limits_come_from_the_urdf_and_continuous_joints_are_unbounded(erd_robots_dir):
    """Position and velocity limits are the URDF's; continuous joints get ±inf."""
    robot = Robot.from_urdf(erd_robots_dir / "kinova_description/robots/kinova.urdf", "base",
                            "j2s6s200_end_effector")
    assert robot.continuous.tolist() == [True, False, False, True, False, True]
    assert np.all(np.isinf(robot.lower[robot.continuous]))
    assert np.all(np.isinf(robot.upper[robot.continuous]))
    panda = Robot.from_urdf(bundled.urdf_path("panda"), *bundled.robot_links("panda"))
    assert panda.dof == 7
    np.testing.assert_allclose(panda.lower[3], -3.0718)
    np.testing.assert_allclose(panda.upper[3], -0.0698)
    np.testing.assert_allclose(panda.velocity_limits[:4], 2.175)
    assert np.all(panda.q_mid > panda.lower) and np.all(panda.q_mid < panda.upper)


def test_urdf_string_and_path_give_the_same_chain():
    """A URDF given as an XML string builds the same chain as its file."""
    path = bundled.urdf_path("ur5")
    base, tip = bundled.robot_links("ur5")
    a = Robot.from_urdf(path, base, tip)
    b = Robot.from_urdf(path.read_text(), base, tip)
    assert a.joint_names == b.joint_names
    np.testing.assert_array_equal(a.placements, b.placements)


def test_joints_outside_the_chain_are_ignored(erd_robots_dir):
    """Baxter's left-arm chain holds exactly the 7 left-arm joints, none of the
    head, right arm or gripper joints."""
    robot = Robot.from_urdf(erd_robots_dir / "baxter_description/urdf/baxter.urdf", "base",
                            "left_gripper")
    assert robot.joint_names == ("left_s0", "left_s1", "left_e0", "left_e1", "left_w0",
                                 "left_w1", "left_w2")


# ---------------------------------------------------------------------------- rejections

def _urdf(joints: str, links=("base", "l1", "l2", "tip")) -> str:
    link_xml = "".join(f'<link name="{name}"/>' for name in links)
    return f'<robot name="r">{link_xml}{joints}</robot>'


def _joint(name, jtype, parent, child, extra=""):
    limit = '<limit lower="-1" upper="1" velocity="1" effort="1"/>' if jtype in (
        "revolute", "prismatic") else ""
    return (f'<joint name="{name}" type="{jtype}"><parent link="{parent}"/><child link="{child}"/>'
            f'<origin xyz="0 0 0.1" rpy="0 0 0"/><axis xyz="0 0 1"/>{limit}{extra}</joint>')


GOOD = _urdf(_joint("j1", "revolute", "base", "l1") + _joint("j2", "revolute", "l1", "l2")
             + _joint("j3", "fixed", "l2", "tip"))


def test_three_joint_types_build():
    """revolute, continuous, prismatic and fixed joints build a chain; fixed ones fold away."""
    xml = _urdf(_joint("j1", "continuous", "base", "l1") + _joint("j2", "prismatic", "l1", "l2")
                + _joint("j3", "fixed", "l2", "tip"))
    robot = Robot.from_urdf(xml, "base", "tip")
    assert robot.joint_names == ("j1", "j2")
    assert robot.continuous.tolist() == [True, False]
    np.testing.assert_allclose(robot.fk([0.3, 0.2])[:3, 3], [0, 0, 0.5])


@pytest.mark.parametrize("source,base,tip,error,message", [
    ("/nonexistent/robot.urdf", "a", "b", UrdfError,
     "URDF file '/nonexistent/robot.urdf' does not exist"),
    ("<robot><link name='a'>", "a", "b", UrdfError,
     "URDF string is not well-formed XML: no element found: line 1, column 22"),
    ("<model/>", "a", "b", UrdfError,
     "URDF string has root element <model>; a URDF's root is <robot>"),
    (GOOD, "nope", "tip", ChainError,
     "base_link 'nope' not in URDF; links are: base, l1, l2, tip"),
    (GOOD, "base", "nope", ChainError,
     "tip_link 'nope' not in URDF; links are: base, l1, l2, tip"),
    (GOOD, "l2", "l1", ChainError,
     "tip_link 'l1' is not below base_link 'l2'; links below 'l2' are: tip"),
    (GOOD, "l2", "tip", ChainError,
     "chain 'l2' -> 'tip' has no moving joint; its joints are all fixed: j3"),
    (GOOD, "tip", "tip", ChainError,
     "chain 'tip' -> 'tip' has no moving joint (base_link and tip_link are the same link)"),
    (_urdf(_joint("j1", "floating", "base", "l1") + _joint("j2", "revolute", "l1", "tip"),
           ("base", "l1", "tip")), "base", "tip", ChainError,
     "joint 'j1' in the chain has type 'floating'; supported types are: revolute, continuous, "
     "prismatic, fixed"),
    (_urdf(_joint("j1", "planar", "base", "l1") + _joint("j2", "revolute", "l1", "tip"),
           ("base", "l1", "tip")), "base", "tip", ChainError,
     "joint 'j1' in the chain has type 'planar'; supported types are: revolute, continuous, "
     "prismatic, fixed"),
    (_urdf(_joint("j1", "revolute", "base", "l1")
           + _joint("j2", "revolute", "l1", "tip", '<mimic joint="j1"/>'),
           ("base", "l1", "tip")), "base", "tip", ChainError,
     "joint 'j2' in the chain is a mimic joint; mimic joints are not supported in the "
     "controlled chain"),
    (GOOD.replace('xyz="0 0 1"', 'xyz="0 nan 1"', 1), "base", "tip", UrdfError,
     "joint 'j1' <axis xyz> has a non-finite number: '0 nan 1'"),
    (GOOD.replace('upper="1"', 'upper="inf"', 1), "base", "tip", UrdfError,
     "joint 'j1' <limit upper> has a non-finite number: 'inf'"),
    (GOOD.replace('xyz="0 0 0.1"', 'xyz="0 zero 0.1"', 1), "base", "tip", UrdfError,
     "joint 'j1' <origin xyz> is not a list of numbers: '0 zero 0.1'"),
    (GOOD.replace('<limit lower="-1" upper="1" velocity="1" effort="1"/>', "", 1), "base", "tip",
     UrdfError, "joint 'j1' of type revolute needs <limit lower=.. upper=..>"),
    (GOOD.replace('lower="-1" upper="1"', 'lower="1" upper="-1"', 1), "base", "tip", UrdfError,
     "joint 'j1' has lower limit 1.0 > upper limit -1.0"),
])
def test_bad_descriptions_raise_typed_errors_with_exact_messages(source, base, tip, error, message):
    """Each kind of bad description raises its typed error with a message that
    says what is wrong and, where there is a choice, lists the valid choices."""
    with pytest.raises(error) as info:
        Robot.from_urdf(source, base, tip)
    assert str(info.value) == message
    assert isinstance(info.value, JacobianIkError)


def test_wrong_joint_vector_length_is_a_configuration_error():
    """fk/jacobian refuse a joint vector of the wrong length, naming the joints."""
    robot = Robot.from_urdf(GOOD, "base", "tip")
    with pytest.raises(ConfigurationError, match=re.escape(
            "joint vector must have shape (2,) for joints j1, j2; got shape (3,)")):
        robot.fk([0.0, 0.0, 0.0])


def test_unknown_task_and_frame_list_the_choices():
    """Unknown task names and Jacobian frames are rejected with the valid choices."""
    robot = Robot.from_urdf(GOOD, "base", "tip")
    with pytest.raises(ConfigurationError, match="task 'orientation' is unknown; tasks are: "
                                                 "pose, position"):
        robot.singular_values([0, 0], "orientation")
    with pytest.raises(ConfigurationError, match="frame 'world' is unknown; frames are: base, tip"):
        robot.jacobian([0, 0], "world")
    with pytest.raises(ConfigurationError, match=re.escape(
            "task rows must be distinct indices in 0..5; got [0, 0]")):
        robot.task_rows([0, 0])


def test_random_configurations_lie_within_limits():
    """Sampled configurations respect the limits; continuous joints span [-π, π]."""
    xml = _urdf(_joint("j1", "continuous", "base", "l1") + _joint("j2", "revolute", "l1", "tip"),
                ("base", "l1", "tip"))
    robot = Robot.from_urdf(xml, "base", "tip")
    qs = robot.random_configurations(2000, np.random.default_rng(3))
    assert qs[:, 1].min() >= -1 and qs[:, 1].max() <= 1
    assert qs[:, 0].min() < -3.0 and qs[:, 0].max() > 3.0
    assert np.all(np.abs(qs[:, 0]) <= math.pi)


@pytest.mark.slow
def test_importing_the_core_does_not_import_ros():
    """jacobian_ik, its robot model and kernels import without pulling in rclpy or
    any ROS message package."""
    code = ("import sys, jacobian_ik, jacobian_ik.robot, jacobian_ik.kernels, jacobian_ik.bundled;"
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('rclpy', 'sensor_msgs', 'geometry_msgs', 'std_msgs', 'trajectory_msgs')];"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
