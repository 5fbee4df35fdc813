"""The collision model: conservative capsules around every link's collision geometry,
in the chain frame the link moves with, checked against pinocchio's own reading of the
URDF (GeometryModel, coal's mesh loader) and pinocchio's full-model kinematics."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import pytest

from jacobian_ik import bundled
from jacobian_ik.collision.fit import fit_capsule, segment_distances
from jacobian_ik.collision.model import CollisionModel, default_model
from jacobian_ik.errors import ConfigurationError, UrdfError
from jacobian_ik.robot import Robot

pin = pytest.importorskip("pinocchio")

ERD_ARMS = {
    "erd-panda": ("panda_description/urdf/panda.urdf", "panda_link0", "panda_hand_tcp"),
    "erd-ur5": ("ur_description/urdf/ur5_robot.urdf", "base_link", "tool0"),
}
ARMS = ("panda", "ur5", *ERD_ARMS)
#: The two fingers of example-robot-data's Panda, half open.
FINGERS = {"panda_finger_joint1": 0.02}


@pytest.fixture(autouse=True, scope="module")
def _private_cache(tmp_path_factory):
    """Sampled matrices go to a cache folder of this module, not the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory) -> Path:
    """A folder holding ``jacobian_ik`` (the share directory) and ``example-robot-data``,
    so that pinocchio resolves both packages' ``package://`` URIs."""
    folder = tmp_path_factory.mktemp("packages")
    os.symlink(bundled.share_dir(), folder / "jacobian_ik")
    erd = bundled.example_robot_data_dir()
    if erd is not None:
        os.symlink(erd.parent, folder / "example-robot-data")
    return folder


def _arm(name: str) -> tuple[Path, Robot]:
    if name in ERD_ARMS:
        robots = bundled.example_robot_data_dir()
        if robots is None:
            pytest.skip("example-robot-data is not installed")
        path, base, tip = ERD_ARMS[name]
        return robots / path, Robot.from_urdf(robots / path, base, tip)
    return bundled.urdf_path(name), Robot.from_urdf(bundled.urdf_path(name),
                                                    *bundled.robot_links(name))


@pytest.fixture(scope="module", params=ARMS)
def arm(request):
    """(URDF path, robot, collision model without self pairs), fingers half open."""
    urdf, robot = _arm(request.param)
    passive = FINGERS if request.param == "erd-panda" else None
    model = CollisionModel.from_urdf(urdf, robot, passive_positions=passive,
                                     self_collision=False)
    return urdf, robot, model


def _reference(urdf: Path, package_dir: Path):
    model = pin.buildModelFromUrdf(str(urdf))
    geometry = pin.buildGeomFromUrdf(model, str(urdf), pin.COLLISION,
                                     package_dirs=[str(package_dir)])
    return model, geometry


def _local_points(geometry) -> np.ndarray:
    """Points of a coal geometry in its own frame whose hull is the geometry (meshes,
    boxes), or dense samples of its surface (cylinders, spheres). Shape (N, 3)."""
    import coal

    if isinstance(geometry, coal.Box):
        h = np.asarray(geometry.halfSide)
        return np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * h
    if isinstance(geometry, coal.Cylinder):
        angles = np.linspace(0.0, 2.0 * math.pi, 2000, endpoint=False)
        ring = np.column_stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)])
        ring *= geometry.radius
        h = geometry.halfLength
        return np.concatenate([ring + (0, 0, -h), ring + (0, 0, h)])
    if isinstance(geometry, coal.Sphere):
        rng = np.random.default_rng(0)
        v = rng.normal(size=(4000, 3))
        return geometry.radius * v / np.linalg.norm(v, axis=1, keepdims=True)
    return np.asarray(geometry.vertices(), dtype=np.float64).reshape(-1, 3)


def _link_points(model, geometry, link: str) -> np.ndarray:
    """Every collision point of ``link`` in the link frame, from pinocchio. Shape (N, 3)."""
    frame = model.frames[model.getFrameId(link, pin.BODY)]
    out = []
    for obj in geometry.geometryObjects:
        if model.frames[obj.parentFrame].name != link:
            continue
        T = (frame.placement.inverse() * obj.placement).homogeneous
        out.append(_local_points(obj.geometry) @ T[:3, :3].T + T[:3, 3])
    return np.concatenate(out)


def _posed(cap: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return T[:3, :3] @ cap[1:4] + T[:3, 3], T[:3, :3] @ cap[4:7] + T[:3, 3]


# ---------------------------------------------------------------------- the fit
def test_every_collision_point_of_a_link_lies_inside_its_capsule(arm, package_dir):
    urdf, _robot, model = arm
    ref_model, geometry = _reference(urdf, package_dir)
    for k, link in enumerate(model.names):
        points = _link_points(ref_model, geometry, link)
        T = model.T_frame_link[k]
        in_frame = points @ T[:3, :3].T + T[:3, 3]
        cap = model.caps[k]
        d = segment_distances(in_frame, cap[1:4], cap[4:7])
        assert d.max() <= cap[7] + 1e-9, f"{link}: {d.max() - cap[7]:.3g} m outside"


def test_a_capsule_is_at_most_four_times_the_bounding_box_of_its_geometry(arm, package_dir):
    """Fair for links shaped like rods or knuckles: a cube's best capsule is 2.7 times
    its volume, the flat UR5 base plate's 3.6 times."""
    urdf, _robot, model = arm
    ref_model, geometry = _reference(urdf, package_dir)
    for k, link in enumerate(model.names):
        points = _link_points(ref_model, geometry, link)
        box = float(np.prod(points.max(axis=0) - points.min(axis=0)))
        cap = model.caps[k]
        length = float(np.linalg.norm(cap[4:7] - cap[1:4]))
        volume = math.pi * cap[7] ** 2 * length + 4.0 / 3.0 * math.pi * cap[7] ** 3
        assert volume <= 4.0 * box, f"{link}: capsule {volume:.3g} m³, box {box:.3g} m³"


def test_primitives_are_enclosed_whole_not_only_at_sampled_points():
    """A cylinder's rims, a sphere's surface and a box's corners, all on one link with
    their own origins, are inside the link's capsule."""
    urdf = """<robot name="r">
      <link name="base"/>
      <link name="l1">
        <collision><origin xyz="0 0 0.2" rpy="0.3 0 0"/>
          <geometry><cylinder radius="0.05" length="0.3"/></geometry></collision>
        <collision><origin xyz="0.1 0 0.4"/><geometry><sphere radius="0.06"/></geometry>
        </collision>
        <collision><origin xyz="0 0.05 0" rpy="0 0 0.7"/>
          <geometry><box size="0.1 0.04 0.02"/></geometry></collision>
      </link>
      <joint name="j1" type="revolute"><parent link="base"/><child link="l1"/>
        <axis xyz="0 0 1"/><limit lower="-1" upper="1" velocity="1" effort="1"/></joint>
    </robot>"""
    robot = Robot.from_urdf(urdf, "base", "l1")
    model = CollisionModel.from_urdf(urdf, robot, self_collision=False)
    pm = pin.buildModelFromXML(urdf)
    geometry = pin.buildGeomFromUrdfString(pm, urdf, pin.COLLISION)
    points = _link_points(pm, geometry, "l1")
    cap = model.geometry_of("l1")
    assert segment_distances(points, cap[1:4], cap[4:7]).max() <= cap[7] + 1e-9


def test_a_lone_sphere_gets_a_capsule_of_zero_length_and_its_radius():
    capsule = fit_capsule(np.array([[0.1, 0.2, 0.3]]), np.array([0.05]))
    np.testing.assert_allclose(capsule.a, (0.1, 0.2, 0.3), atol=1e-12)
    np.testing.assert_allclose(capsule.b, capsule.a, atol=1e-12)
    assert capsule.r == pytest.approx(0.05, abs=1e-9)


# ---------------------------------------------------------------------- frames
def test_capsules_follow_pinocchio_link_poses_at_random_configurations(arm, package_dir):
    """At random joint positions the link pose we carry (chain frame × T_frame_link)
    equals pinocchio's full-model pose of the link relative to the base, and every
    collision point pinocchio places (updateGeometryPlacements) is inside our capsule."""
    urdf, robot, model = arm
    ref_model, geometry = _reference(urdf, package_dir)
    data, gdata = ref_model.createData(), geometry.createData()
    base = ref_model.getFrameId(robot.base_link, pin.BODY)
    rng = np.random.default_rng(3)
    for q in robot.random_configurations(10, rng):
        qp = pin.neutral(ref_model)
        for value, name in zip(q, robot.joint_names):
            joint = ref_model.joints[ref_model.getJointId(name)]
            qp[joint.idx_q] = value
        for name, value in model.passive_positions.items():
            qp[ref_model.joints[ref_model.getJointId(name)].idx_q] = value
        pin.framesForwardKinematics(ref_model, data, qp)
        pin.updateGeometryPlacements(ref_model, data, geometry, gdata)
        T_world_base = data.oMf[base]
        frames = robot.frames(q)
        for k, link in enumerate(model.names):
            f = int(model.caps[k, 0])
            T_base_frame = np.eye(4) if f < 0 else frames[f]
            ours = T_base_frame @ model.T_frame_link[k]
            theirs = (T_world_base.inverse()
                      * data.oMf[ref_model.getFrameId(link, pin.BODY)]).homogeneous
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9, err_msg=link)
            a, b = _posed(model.caps[k], T_base_frame)
            for g, obj in enumerate(geometry.geometryObjects):
                if ref_model.frames[obj.parentFrame].name != link:
                    continue
                T = (T_world_base.inverse() * gdata.oMg[g]).homogeneous
                points = _local_points(obj.geometry) @ T[:3, :3].T + T[:3, 3]
                assert segment_distances(points, a, b).max() <= model.caps[k, 7] + 1e-9


def test_caps_rows_name_the_chain_frame_each_link_moves_with():
    urdf, robot = _arm("panda")
    model = CollisionModel.from_urdf(urdf, robot, self_collision=False)
    frames = dict(zip(model.names, model.frames.tolist()))
    assert frames == {"panda_link0": -1, "panda_link1": 0, "panda_link2": 1,
                      "panda_link3": 2, "panda_link4": 3, "panda_link5": 4,
                      "panda_link6": 5, "panda_link7": 6, "panda_hand": 6}
    assert model.caps.shape == (9, 8) and model.caps.dtype == np.float64
    assert not model.caps.flags.writeable


@pytest.mark.parametrize("name, erd_file", [
    ("panda", "panda_description/urdf/panda.urdf"),
    ("ur5", "ur_description/urdf/ur5_robot.urdf"),
])
def test_bundled_link_frames_are_those_the_meshes_were_made_for(name, erd_file,
                                                                erd_robots_dir):
    """Every link with a mesh has, at random joint positions, the pose it has in
    example-robot-data's URDF of the same arm (where the meshes come from)."""
    urdf, robot = _arm(name)
    model = CollisionModel.from_urdf(urdf, robot, self_collision=False)
    ours, ref = pin.buildModelFromUrdf(str(urdf)), pin.buildModelFromUrdf(
        str(erd_robots_dir / erd_file))
    d_ours, d_ref = ours.createData(), ref.createData()
    rng = np.random.default_rng(11)
    for q in robot.random_configurations(10, rng):
        q_ref = pin.neutral(ref)
        for value, joint in zip(q, robot.joint_names):
            q_ref[ref.joints[ref.getJointId(joint)].idx_q] = value
        pin.framesForwardKinematics(ours, d_ours, q)
        pin.framesForwardKinematics(ref, d_ref, q_ref)
        for link in model.names:
            a = d_ours.oMf[ours.getFrameId(link, pin.BODY)].homogeneous
            b = d_ref.oMf[ref.getFrameId(link, pin.BODY)].homogeneous
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-9, err_msg=link)


def test_the_bundled_hand_capsule_holds_the_fingers_anywhere_in_their_travel(package_dir):
    """example-robot-data's finger collision boxes, at several openings, expressed in the
    hand frame, are inside the bundled Panda's hand capsule (the bundled URDF has no
    finger links)."""
    urdf, robot = _arm("panda")
    model = CollisionModel.from_urdf(urdf, robot, self_collision=False)
    k = model.index("panda_hand")
    T_frame_hand = model.T_frame_link[k]
    erd_urdf, _erd_robot = _arm("erd-panda")
    ref_model, geometry = _reference(erd_urdf, package_dir)
    data, gdata = ref_model.createData(), geometry.createData()
    hand = ref_model.getFrameId("panda_hand", pin.BODY)
    for opening in (0.0, 0.013, 0.027, 0.04):
        q = pin.neutral(ref_model)
        q[-2:] = opening
        pin.framesForwardKinematics(ref_model, data, q)
        pin.updateGeometryPlacements(ref_model, data, geometry, gdata)
        for g, obj in enumerate(geometry.geometryObjects):
            if "finger" not in ref_model.frames[obj.parentFrame].name:
                continue
            T = T_frame_hand @ (data.oMf[hand].inverse() * gdata.oMg[g]).homogeneous
            points = _local_points(obj.geometry) @ T[:3, :3].T + T[:3, 3]
            cap = model.caps[k]
            assert segment_distances(points, cap[1:4], cap[4:7]).max() <= cap[7] + 1e-9


# ---------------------------------------------------------------------- passive joints
def test_fingers_move_with_their_passive_positions_and_the_mimic_follows():
    urdf, robot = _arm("erd-panda")
    closed = CollisionModel.from_urdf(urdf, robot, self_collision=False)
    assert closed.passive_joints == ("panda_finger_joint1", "panda_finger_joint2")
    assert closed.passive_positions == {"panda_finger_joint1": 0.0, "panda_finger_joint2": 0.0}
    opened = closed.with_passive_positions({"panda_finger_joint1": 0.03})
    assert opened.passive_positions == {"panda_finger_joint1": 0.03,
                                        "panda_finger_joint2": 0.03}
    hand = closed.T_frame_link[closed.index("panda_hand")]
    for link, side in (("panda_leftfinger", 1.0), ("panda_rightfinger", -1.0)):
        k = closed.index(link)
        shift = opened.caps[k, 1:7] - closed.caps[k, 1:7]
        expected = side * 0.03 * hand[:3, 1]           # along the hand's y axis
        np.testing.assert_allclose(shift, np.tile(expected, 2), atol=1e-12)
    unmoved = [closed.index(n) for n in closed.names if "finger" not in n]
    np.testing.assert_array_equal(opened.caps[unmoved], closed.caps[unmoved])
    rebuilt = CollisionModel.from_urdf(urdf, robot, self_collision=False,
                                       passive_positions={"panda_finger_joint1": 0.03})
    np.testing.assert_allclose(rebuilt.caps, opened.caps, rtol=0, atol=1e-15)


def test_passive_positions_are_clamped_into_the_joint_limits():
    urdf, robot = _arm("erd-panda")
    model = CollisionModel.from_urdf(urdf, robot, self_collision=False,
                                     passive_positions={"panda_finger_joint1": 0.5,
                                                        "panda_finger_joint2": -1.0})
    assert model.passive_positions == {"panda_finger_joint1": 0.04, "panda_finger_joint2": 0.0}


def test_a_position_for_a_joint_that_is_not_passive_is_refused_listing_the_passive_ones():
    urdf, robot = _arm("erd-panda")
    with pytest.raises(ConfigurationError) as info:
        CollisionModel.from_urdf(urdf, robot, self_collision=False,
                                 passive_positions={"panda_joint1": 0.1})
    assert str(info.value) == (
        "'panda_joint1' is not a passive joint of this collision model; passive joints "
        "are: panda_finger_joint1, panda_finger_joint2")
    assert info.value.choices == ("panda_finger_joint1", "panda_finger_joint2")


def test_a_non_finite_passive_position_is_refused():
    urdf, robot = _arm("erd-panda")
    with pytest.raises(ConfigurationError) as info:
        CollisionModel.from_urdf(urdf, robot, self_collision=False,
                                 passive_positions={"panda_finger_joint1": math.nan})
    assert str(info.value) == ("position of passive joint 'panda_finger_joint1' must be a "
                               "finite number, got nan")


# ---------------------------------------------------------------------- the tree
TREE = """<robot name="cell">
  <link name="world"/>
  <link name="table"><collision><geometry><box size="1 1 0.1"/></geometry></collision></link>
  <link name="base"><collision><geometry><sphere radius="0.1"/></geometry></collision></link>
  <link name="l1"><collision><geometry><sphere radius="0.05"/></geometry></collision></link>
  <link name="l2"><collision><geometry><sphere radius="0.05"/></geometry></collision></link>
  <link name="flag"><collision><geometry><sphere radius="0.02"/></geometry></collision></link>
  <link name="door"><collision><geometry><sphere radius="0.3"/></geometry></collision></link>
  <joint name="w_table" type="fixed"><parent link="world"/><child link="table"/>
    <origin xyz="0 0 -0.05"/></joint>
  <joint name="w_base" type="fixed"><parent link="world"/><child link="base"/>
    <origin xyz="0.5 0 0" rpy="0 0 1.0"/></joint>
  <joint name="j1" type="revolute"><parent link="base"/><child link="l1"/>
    <origin xyz="0 0 0.2"/><axis xyz="0 0 1"/>
    <limit lower="-3" upper="3" velocity="1" effort="1"/></joint>
  <joint name="j2" type="continuous"><parent link="l1"/><child link="l2"/>
    <origin xyz="0 0 0.3"/><axis xyz="0 1 0"/></joint>
  <joint name="flag_joint" type="revolute"><parent link="l1"/><child link="flag"/>
    <origin xyz="0.1 0 0"/><axis xyz="1 0 0"/>
    <limit lower="-1" upper="1" velocity="1" effort="1"/></joint>
  <joint name="w_door" type="revolute"><parent link="world"/><child link="door"/>
    <origin xyz="2 0 0"/><axis xyz="0 0 1"/>
    <limit lower="-1" upper="1" velocity="1" effort="1"/></joint>
</robot>"""


def test_links_rigid_to_the_base_ride_on_it_and_loose_branches_are_skipped():
    """The table (fixed to the world, as the base is) rides on the base frame; the door
    (a joint outside the chain between it and the base) is skipped; the flag (a joint
    outside the chain below l1) hangs off frame 0 at its passive position."""
    robot = Robot.from_urdf(TREE, "base", "l2")
    model = CollisionModel.from_urdf(TREE, robot, self_collision=False,
                                     passive_positions={"flag_joint": 0.5})
    assert model.names == ("table", "base", "l1", "l2", "flag")
    assert model.frames.tolist() == [-1, -1, 0, 1, 0]
    assert model.passive_joints == ("flag_joint",)
    T_world_base = np.eye(4)
    T_world_base[:3, :3] = [[math.cos(1.0), -math.sin(1.0), 0], [math.sin(1.0),
                                                                math.cos(1.0), 0], [0, 0, 1]]
    T_world_base[:3, 3] = (0.5, 0.0, 0.0)
    expected = np.linalg.inv(T_world_base) @ np.array([0.0, 0.0, -0.05, 1.0])
    np.testing.assert_allclose(model.T_frame_link[model.index("table")][:, 3], expected,
                               atol=1e-12)


def test_pairs_in_one_chain_frame_are_never_checked():
    robot = Robot.from_urdf(TREE, "base", "l2")
    model = CollisionModel.from_urdf(TREE, robot, settings=None)
    frames = model.frames
    assert all(frames[i] != frames[j] for i, j in model.self_pairs.tolist())
    assert ("base", "table") in model.disabled


# ---------------------------------------------------------------------- errors
def test_index_of_a_link_without_geometry_lists_the_links_that_have_some():
    urdf, robot = _arm("ur5")
    model = CollisionModel.from_urdf(urdf, robot, self_collision=False)
    with pytest.raises(ConfigurationError) as info:
        model.index("tool0")
    assert str(info.value) == (
        "link 'tool0' has no collision geometry in this model; links with geometry are: "
        "base_link, shoulder_link, upper_arm_link, forearm_link, wrist_1_link, "
        "wrist_2_link, wrist_3_link")
    assert info.value.choices == model.names


def test_a_missing_mesh_names_the_link_the_file_and_where_it_looked(tmp_path):
    urdf = tmp_path / "arm.urdf"
    urdf.write_text(TREE.replace('<sphere radius="0.05"/></geometry></collision></link>\n'
                                 '  <link name="l2">',
                                 '<mesh filename="meshes/l1.stl"/></geometry></collision>'
                                 '</link>\n  <link name="l2">'))
    robot = Robot.from_urdf(urdf, "base", "l2")
    with pytest.raises(UrdfError) as info:
        CollisionModel.from_urdf(urdf, robot, self_collision=False)
    assert str(info.value) == (f"link 'l1': mesh 'meshes/l1.stl' not found; looked in: "
                               f"{tmp_path.resolve() / 'meshes' / 'l1.stl'}")
    assert info.value.link == "l1"


def test_an_unknown_package_lists_every_place_looked_at(tmp_path, monkeypatch):
    monkeypatch.setenv("ROS_PACKAGE_PATH", str(tmp_path / "ros"))
    xml = TREE.replace('<sphere radius="0.02"/>', '<mesh filename="package://nopkg/f.stl"/>')
    robot = Robot.from_urdf(xml, "base", "l2")
    with pytest.raises(UrdfError) as info:
        CollisionModel.from_urdf(xml, robot, self_collision=False,
                                 package_dirs=[tmp_path / "mine"])
    assert str(info.value) == (
        f"link 'flag': mesh 'package://nopkg/f.stl' not found; looked in: "
        f"{tmp_path / 'mine' / 'nopkg' / 'f.stl'}, {tmp_path / 'ros' / 'nopkg' / 'f.stl'}")


def test_an_unsupported_geometry_is_refused_listing_the_supported_ones():
    xml = TREE.replace('<sphere radius="0.02"/>', '<capsule radius="0.02" length="0.1"/>')
    robot = Robot.from_urdf(xml, "base", "l2")
    with pytest.raises(UrdfError) as info:
        CollisionModel.from_urdf(xml, robot, self_collision=False)
    assert str(info.value) == ("link 'flag': <collision> <geometry> holds <capsule>; "
                               "supported shapes are: box, cylinder, sphere, mesh")


def test_a_urdf_without_the_robots_chain_is_refused():
    robot = Robot.from_urdf(TREE, "base", "l2")
    other = TREE.replace('name="j2"', 'name="k2"')
    with pytest.raises(UrdfError) as info:
        CollisionModel.from_urdf(other, robot, self_collision=False)
    assert str(info.value) == "URDF string has no moving joint 'j2' of the robot's chain"


# ---------------------------------------------------------------------- defaults, speed
def test_default_model_is_none_without_collision_elements_and_the_shipped_one_otherwise():
    planar = Robot.from_urdf(bundled.urdf_path("planar2"), *bundled.robot_links("planar2"))
    assert default_model(planar) is None
    _urdf, panda = _arm("panda")
    model = default_model(panda)
    assert model is not None
    from jacobian_ik.collision.srdf import read_disabled

    shipped, _path = read_disabled(bundled.share_dir() / "urdf" / "panda.srdf")
    assert model.disabled == shipped
    assert len(model.self_pairs) == 9 * 8 // 2 - len(shipped)


@pytest.mark.parametrize("name", ["panda", "ur5"])
def test_a_bundled_arms_model_builds_in_under_a_second(name):
    """With the bundled SRDF (what the controller uses) and meshes read afresh."""
    from jacobian_ik.collision import meshes

    _urdf, robot = _arm(name)
    meshes._cached.cache_clear()
    start = time.perf_counter()
    model = default_model(robot)
    assert time.perf_counter() - start < 1.0
    assert model is not None and len(model.self_pairs) > 0
