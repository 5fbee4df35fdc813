"""Scene: validated obstacles in the base frame, their kernel rows and scene files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jacobian_ik import bundled
from jacobian_ik.collision.scene import KINDS, Scene
from jacobian_ik.errors import JacobianIkError, SceneError
from jacobian_ik.kernels.distance import OBS_BOX, OBS_CYLINDER, OBS_HALFSPACE, OBS_SPHERE


def _at(x: float, y: float, z: float) -> np.ndarray:
    T = np.eye(4)
    T[:3, 3] = (x, y, z)
    return T


def test_each_kind_gives_its_kernel_row():
    """Box: half extents; sphere: radius; cylinder: radius and half length; plane: z
    along the normal through offset·n; the pose's rotation row-major, then its origin."""
    R = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    T = _at(0.1, 0.2, 0.3)
    T[:3, :3] = R
    scene = (Scene().add_box("b", (0.2, 0.4, 0.6), T).add_sphere("s", 0.05, (1.0, 2.0, 3.0))
             .add_cylinder("c", 0.1, 0.8, _at(0.0, 0.0, 0.4))
             .add_plane("p", (0.0, 0.0, 2.0), -0.5))
    rows = scene.array()
    assert rows.shape == (4, 16)
    assert rows[0, 0] == OBS_BOX and rows[1, 0] == OBS_SPHERE
    assert rows[2, 0] == OBS_CYLINDER and rows[3, 0] == OBS_HALFSPACE
    np.testing.assert_array_equal(rows[0, 1:10], R.ravel())
    np.testing.assert_array_equal(rows[0, 10:13], (0.1, 0.2, 0.3))
    np.testing.assert_allclose(rows[0, 13:16], (0.1, 0.2, 0.3))
    np.testing.assert_array_equal(rows[1, 10:16], (1.0, 2.0, 3.0, 0.05, 0.0, 0.0))
    np.testing.assert_allclose(rows[2, 13:15], (0.1, 0.4))
    plane_R = rows[3, 1:10].reshape(3, 3)
    np.testing.assert_allclose(plane_R[:, 2], (0.0, 0.0, 1.0), atol=1e-15)
    np.testing.assert_allclose(plane_R.T @ plane_R, np.eye(3), atol=1e-15)
    np.testing.assert_allclose(rows[3, 10:13], (0.0, 0.0, -0.5), atol=1e-15)
    assert scene.names == ("b", "s", "c", "p")


def test_adding_an_existing_name_replaces_it_and_every_change_bumps_the_version():
    scene = Scene()
    v0 = scene.version
    scene.add_sphere("ball", 0.1, (0.0, 0.0, 1.0))
    scene.add_sphere("ball", 0.2, (0.0, 0.0, 1.0))
    assert len(scene) == 1 and scene.get("ball").dims == (0.2,)
    scene.remove("ball")
    scene.clear()
    assert scene.version == v0 + 4
    assert "ball" not in scene


@pytest.mark.parametrize("call, message", [
    (lambda s: s.add_box("b", (0.1, -0.2, 0.3), np.eye(4)),
     "obstacle 'b': size [0.1, -0.2, 0.3] must be positive"),
    (lambda s: s.add_box("b", (0.1, 0.2), np.eye(4)),
     "obstacle 'b': size must have 3 values, got 2"),
    (lambda s: s.add_sphere("s", math.nan, (0.0, 0.0, 0.0)),
     "obstacle 's': radius [nan] is not finite"),
    (lambda s: s.add_sphere("s", 0.0, (0.0, 0.0, 0.0)),
     "obstacle 's': radius [0.0] must be positive"),
    (lambda s: s.add_cylinder("c", 0.1, 0.5, np.diag([1.0, 2.0, 1.0, 1.0])),
     "obstacle 'c': T_base_obj is not a rigid transform (orthonormality error 3, or a "
     "reflection, or its last row is not 0 0 0 1)"),
    (lambda s: s.add_cylinder("c", 0.1, 0.5, np.eye(3)),
     "obstacle 'c': T_base_obj must be a (4, 4) transform or a (3,) position, got shape "
     "(3, 3)"),
    (lambda s: s.add_plane("p", (0.0, 0.0, 0.0), 0.0),
     "obstacle 'p': normal [0.0, 0.0, 0.0] has no direction"),
    (lambda s: s.add_plane("p", (0.0, 0.0, 1.0), math.inf),
     "obstacle 'p': offset inf is not finite"),
    (lambda s: s.add_sphere("", 0.1, (0.0, 0.0, 0.0)),
     "an obstacle needs a non-empty name, got ''"),
    (lambda s: s.remove("x"), "no obstacle 'x' in the scene; obstacles are: keep"),
])
def test_an_invalid_obstacle_is_refused_and_the_scene_stays(call, message):
    scene = Scene().add_sphere("keep", 0.1, (0.0, 0.0, 1.0))
    before = scene.array().copy()
    with pytest.raises(SceneError) as info:
        call(scene)
    assert str(info.value) == message
    assert isinstance(info.value, JacobianIkError)
    np.testing.assert_array_equal(scene.array(), before)


@pytest.mark.parametrize("data, message", [
    ({"obstacles": [{"name": "x", "type": "cone"}]},
     "scene: obstacle 0: type 'cone' is unknown; types are: " + ", ".join(KINDS)),
    ({"obstacles": [{"name": "x", "type": "sphere", "radius": 0.1, "colour": "red"}]},
     "scene: obstacle 0 ('x'): unknown key(s) 'colour'; valid keys for a sphere are: "
     "name, type, radius, position, rpy, quaternion"),
    ({"obstacles": [{"name": "x", "type": "box"}]}, "scene: obstacle 0 ('x'): missing size"),
    ({"obstacles": [{"name": "x", "type": "sphere", "radius": 0.1,
                     "quaternion": [0, 0, 0, 2]}]},
     "scene: obstacle 0: obstacle 'x': quaternion [x, y, z, w] has norm 2, not 1"),
    ({"obstacle": []}, "scene: unknown key(s) 'obstacle'; valid keys are: frame, obstacles"),
])
def test_a_bad_scene_file_entry_names_the_obstacle_and_the_field(data, message):
    with pytest.raises(SceneError) as info:
        Scene.from_dict(data)
    assert str(info.value) == message


def test_a_scene_round_trips_through_its_dict():
    scene = (Scene().add_plane("table", (0.0, 0.0, 1.0), -0.01)
             .add_box("b", (0.1, 0.2, 0.3), _at(0.5, 0.0, 0.2))
             .add_cylinder("c", 0.05, 0.4, _at(0.0, 0.5, 0.2)))
    T = _at(0.3, -0.3, 0.5)
    T[:3, :3] = [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]
    scene.add_sphere("s", 0.05, T)
    again = Scene.from_dict(scene.to_dict())
    assert again.names == scene.names
    np.testing.assert_allclose(again.array(), scene.array(), atol=1e-15)


@pytest.mark.parametrize("robot", ["panda", "ur5"])
def test_the_shipped_cell_scenes_load_in_the_robots_base_frame(robot):
    path = bundled.share_dir() / "config" / "scenes" / f"{robot}_cell.yaml"
    scene = Scene.from_yaml(path)
    assert "table" in scene and len(scene) >= 3
    assert Scene.frame_of(path) == bundled.robot_links(robot)[0]


def test_rpy_is_roll_then_pitch_then_yaw_about_fixed_axes():
    scene = Scene.from_dict({"obstacles": [{"name": "b", "type": "box", "size": [1, 1, 1],
                                            "rpy": [0.0, 0.0, math.pi / 2]}]})
    R = scene.get("b").T_base_obj[:3, :3]
    np.testing.assert_allclose(R @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-15)


def _many(count: int, seed: int = 0):
    """count random boxes, spheres and cylinders as add_many takes them (unit
    quaternions x y z w after the positions)."""
    rng = np.random.default_rng(seed)
    kinds = [("box", "sphere", "cylinder")[k] for k in rng.integers(0, 3, count)]
    dims = rng.uniform(0.01, 0.5, (count, 3))
    q = rng.normal(size=(count, 4))
    poses = np.concatenate([rng.uniform(-1, 1, (count, 3)),
                            q / np.linalg.norm(q, axis=1)[:, None]], axis=1)
    return kinds, dims, poses


def _one_by_one(scene: Scene, names, kinds, dims, poses) -> Scene:
    """The single calls add_many stands for (the pose as a scene file's quaternion)."""
    from jacobian_ik.rotations import quaternion_to_matrix

    for name, kind, d, pose in zip(names, kinds, dims, poses):
        x, y, z, w = pose[3:7]
        norm = math.sqrt(x * x + y * y + z * z + w * w)
        T = np.eye(4)
        quaternion_to_matrix(x / norm, y / norm, z / norm, w / norm, T)
        T[:3, 3] = pose[:3]
        if kind == "box":
            scene.add_box(name, d, T)
        elif kind == "sphere":
            scene.add_sphere(name, d[0], T)
        else:
            scene.add_cylinder(name, d[0], d[1], T)
    return scene


def test_add_many_gives_what_the_single_calls_give():
    """Rows, names (a repeated name replaced in place, the last one winning), the
    obstacles' kinds, sizes and poses, and one version step."""
    kinds, dims, poses = _many(60)
    names = [f"o/{i % 50}" for i in range(60)]     # ten names come twice
    poses[7, 3:] *= 1.0005                          # normalised, as a scene file's
    base = Scene().add_plane("table", (0, 0, 1), 0.0).add_sphere("o/3", 0.2, _at(0, 0, 1))
    expected = _one_by_one(base.copy(), names, kinds, dims, poses)
    many = base.copy()
    version = many.version
    assert many.add_many(names, kinds, dims, poses) is many
    assert many.version == version + 1
    assert many.names == expected.names
    np.testing.assert_allclose(many.array(), expected.array(), rtol=0.0, atol=1e-15)
    for a, b in zip(many, expected):
        assert (a.name, a.kind, a.dims) == (b.name, b.kind, b.dims)
        np.testing.assert_allclose(a.T_base_obj, b.T_base_obj, rtol=0.0, atol=1e-15)
        assert not a.T_base_obj.flags.writeable
    assert many.get("o/7").dims == expected.get("o/7").dims
    assert many.to_dict().keys() == expected.to_dict().keys()
    poses[:] = 0.0                                  # the scene keeps its own rows
    np.testing.assert_allclose(many.array(), expected.array(), rtol=0.0, atol=1e-15)
    assert many.add_many([], [], np.zeros((0, 3)), np.zeros((0, 7))).version \
        == version + 1


def _set(array: np.ndarray, index, value) -> None:
    array[index] = value


@pytest.mark.parametrize("index, change, message", [
    (3, lambda k, d, p: _set(d, (3, 1), math.nan), "obstacle 'o/3': length [nan] is not finite"),
    (5, lambda k, d, p: _set(d, (5, 0), -0.1), "obstacle 'o/5': radius [-0.1] must be positive"),
    (2, lambda k, d, p: _set(d, (2, 2), 0.0), None),
    (4, lambda k, d, p: _set(p, (4, 1), math.inf), "obstacle 'o/4': position [{x}, inf, {z}] "
                                                    "is not finite"),
    (1, lambda k, d, p: _set(p, (1, slice(3, 7)), (0.0, 0.0, 0.0, 2.0)),
     "obstacle 'o/1': quaternion [x, y, z, w] has norm 2, not 1"),
    (6, lambda k, d, p: _set(p, (6, 6), math.nan),
     "obstacle 'o/6': quaternion [x, y, z, w] has norm nan, not 1"),
    (0, lambda k, d, p: k.__setitem__(0, "plane"),
     "add_many: kind 'plane' is not one of box, sphere, cylinder"),
])
def test_add_many_refuses_like_the_single_call_and_changes_nothing(index, change, message):
    """The first invalid obstacle raises its single call's SceneError (sizes, the
    position) or a scene file's (the quaternion); the scene stays as it was."""
    kinds, dims, poses = _many(8, seed=1)
    kinds[2] = "box"
    kinds[3] = "cylinder"               # its length is dims[:, 1]
    kinds[5] = "sphere"
    names = [f"o/{i}" for i in range(8)]
    change(kinds, dims, poses)
    if message is None:
        with pytest.raises(SceneError) as single:
            _one_by_one(Scene(), names[index:index + 1], kinds[index:index + 1],
                        dims[index:index + 1], poses[index:index + 1])
        message = str(single.value)
    message = message.format(x=poses[index, 0], z=poses[index, 2])
    scene = Scene().add_sphere("keep", 0.1, (0.0, 0.0, 1.0))
    before, version = scene.array().copy(), scene.version
    with pytest.raises(SceneError) as info:
        scene.add_many(names, kinds, dims, poses)
    assert str(info.value) == message
    assert scene.version == version and scene.names == ("keep",)
    np.testing.assert_array_equal(scene.array(), before)


def test_a_copy_shares_nothing_that_changes():
    kinds, dims, poses = _many(5)
    scene = Scene().add_many([f"o/{i}" for i in range(5)], kinds, dims, poses)
    rows = scene.array()
    copy = scene.copy()
    copy.remove("o/1")
    copy.add_sphere("o/2", 0.3, (0.0, 0.0, 0.0))
    assert len(scene) == 5 and scene.array() is rows
    assert scene.get("o/2").kind == kinds[2]
    assert copy.names == ("o/0", "o/2", "o/3", "o/4")
    assert copy.array()[1, 0] == OBS_SPHERE
