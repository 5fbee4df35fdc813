"""``jacobian-ik audit --collisions [--scene FILE]``: collision shares of the sampled
configurations, checked against pinocchio + coal on the same capsules, and the
report's conventions (text and JSON, gates, exit status 2 for bad input)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from jacobian_ik import bundled
from jacobian_ik.audit import collisions as collisions_mod
from jacobian_ik.audit.cli import main
from jacobian_ik.audit.sampling import Sampler
from jacobian_ik.audit.schema import key_paths
from jacobian_ik.audit.source import load_target
from jacobian_ik.collision.model import default_model
from jacobian_ik.collision.scene import Scene
from jacobian_ik.robot import Robot

DOC = Path(__file__).resolve().parent.parent / "docs" / "audit.md"
SCENES = Path(__file__).resolve().parent.parent / "config" / "scenes"
#: Samples of the reference comparison (pinocchio: about 30 µs per sample).
REFERENCE_SAMPLES = 400
STOP = 0.01


def _main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _report(argv: list[str]) -> dict:
    code, out, err = _main(["audit", *argv, "--json", "--no-progress"])
    assert code == 0, err
    return json.loads(out)


def _robot(name: str) -> Robot:
    return Robot.from_urdf(bundled.urdf_path(name), *bundled.robot_links(name))


def _capsule_pose(cap: np.ndarray) -> np.ndarray:
    """Pose of coal's z-axis capsule (centred) for a ``caps`` row, in its chain frame."""
    a, b = cap[1:4], cap[4:7]
    axis = b - a
    length = float(np.linalg.norm(axis))
    z = axis / length if length > 0.0 else np.array([0.0, 0.0, 1.0])
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(z, helper)
    x /= np.linalg.norm(x)
    T = np.eye(4)
    T[:3, :3] = np.column_stack([x, np.cross(z, x), z])
    T[:3, 3] = 0.5 * (a + b)
    return T


def _reference_distances(name: str, Q: np.ndarray) -> tuple[np.ndarray, list]:
    """pinocchio + coal distances [m] of the collision model's self pairs at ``Q``
    Shape (S, n): the capsules hang on pinocchio's own link frames of the URDF
    (``buildModelFromUrdf``), posed by pinocchio's kinematics. Shape (S, P)."""
    pin = pytest.importorskip("pinocchio")
    coal = pytest.importorskip("coal")
    robot = _robot(name)
    model = default_model(robot)
    pm = pin.buildModelFromUrdf(str(bundled.urdf_path(name)))
    assert tuple(pm.names[1:]) == robot.joint_names  # q maps one to one
    geometry = pin.GeometryModel()
    for k, link in enumerate(model.names):
        frame_id = pm.getFrameId(link, pin.BODY)
        frame = pm.frames[frame_id]
        T_link_capsule = np.linalg.inv(model.T_frame_link[k]) @ _capsule_pose(model.caps[k])
        placement = pin.SE3(frame.placement.homogeneous @ T_link_capsule)
        cap = model.caps[k]
        shape = coal.Capsule(float(cap[7]), float(np.linalg.norm(cap[4:7] - cap[1:4])))
        geometry.addGeometryObject(
            pin.GeometryObject(link, frame.parentJoint, frame_id, placement, shape))
    for i, j in model.self_pairs.tolist():
        geometry.addCollisionPair(pin.CollisionPair(i, j))
    data, gdata = pm.createData(), pin.GeometryData(geometry)
    out = np.empty((len(Q), len(model.self_pairs)))
    for s, q in enumerate(Q):
        pin.computeDistances(pm, data, geometry, gdata, q)
        out[s] = [r.min_distance for r in gdata.distanceResults]
    names = [(model.names[i], model.names[j]) for i, j in model.self_pairs.tolist()]
    return out, names


@pytest.mark.parametrize("name", ["panda", "ur5"])
def test_self_collision_and_stop_fractions_equal_a_pinocchio_coal_reference(name):
    """On a small uniform sample the shares of samples in self-collision and within
    the stop distance, and each reported pair's shares, equal those of pinocchio +
    coal distances on the same capsules at the same configurations."""
    seed = 5
    report = _report([name, "--collisions", "--samples", str(REFERENCE_SAMPLES),
                      "--seed", str(seed)])
    block = report["collisions"]
    Q = Sampler(_robot(name), seed).block(REFERENCE_SAMPLES)   # the audit's one block
    for record in report["worst"]:   # the same configurations: the worst are among them
        q = np.array([record["q"][j] for j in report["robot"]["joint_names"]])
        assert np.abs(Q - q).max(axis=1).min() < 1e-12
    d, names = _reference_distances(name, Q)
    assert block["self_pairs"] == len(names)
    assert block["self_collision_fraction"] == np.mean((d <= 0.0).any(axis=1))
    assert block["within_stop_fraction"] == np.mean((d < STOP).any(axis=1))
    assert 0.0 < block["self_collision_fraction"] < 1.0
    for entry in block["top_pairs"]:
        p = names.index(tuple(entry["pair"]))
        assert entry["within_stop_fraction"] == np.mean(d[:, p] < STOP)
        assert entry["collision_fraction"] == np.mean(d[:, p] <= 0.0)


def test_the_audit_checks_exactly_the_controllers_pairs():
    """Self pairs, then every moving capsule against every obstacle, in the order of
    ``Controller.pair_names``."""
    from jacobian_ik.controller import Controller

    target = load_target("panda")
    path = str(SCENES / "panda_cell.yaml")
    geometry = collisions_mod.collision_geometry(target, path)
    controller = Controller(target.robot, scene=Scene.from_yaml(path))
    assert tuple(" – ".join(p) for p in geometry.pair_names) == controller.pair_names
    assert geometry.self_pairs == len(controller.collision_model.self_pairs)
    assert geometry.stop_distance == STOP


def test_a_box_around_the_base_puts_every_sample_within_the_stop_distance(tmp_path):
    """panda_link1 turns inside a box around the base in every configuration: the
    within-stop and collision shares are 1, the self-collision share is unchanged,
    and the box is the top pair."""
    scene = tmp_path / "box.yaml"
    scene.write_text("frame: panda_link0\nobstacles:\n"
                     "  - {name: box, type: box, size: [0.5, 0.5, 0.8], "
                     "position: [0, 0, 0.2]}\n")
    argv = ["panda", "--samples", "3000", "--seed", "1"]
    with_box = _report([*argv, "--scene", str(scene)])["collisions"]
    alone = _report([*argv, "--collisions"])["collisions"]
    assert with_box["within_stop_fraction"] == 1.0
    assert with_box["collision_fraction"] == 1.0
    assert with_box["self_collision_fraction"] == alone["self_collision_fraction"]
    assert alone["within_stop_fraction"] < 1.0
    assert with_box["obstacles"] == ["box"] and with_box["scene_pairs"] == 8
    top = with_box["top_pairs"][0]
    assert top["kind"] == "scene" and top["pair"][1] == "box"
    assert top["within_stop_fraction"] == 1.0


@pytest.mark.parametrize("text, message", [
    ("obstacles:\n  - {name: cone1, type: cone, radius: 0.1}\n",
     "{path}: obstacle 0: type 'cone' is unknown; types are: box, sphere, cylinder, plane"),
    ("obstacles:\n  - {name: ball, type: sphere, radius: -0.1, position: [0, 0, 1]}\n",
     None),
    ("frame: world\nobstacles: []\n",
     "scene file '{path}' is written in frame 'world'; it must be the chain's base "
     "frame 'panda_link0'"),
    ("obstacles: [\n", None),
])
def test_an_unusable_scene_file_exits_2_with_one_line(tmp_path, text, message):
    """A scene file with an unknown type, a bad size, another frame or broken YAML
    exits 2 before sampling, with one line on stderr and nothing on stdout."""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, out, err = _main(["audit", "panda", "--samples", "10", "--scene", str(path)])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("jacobian-ik audit: error: ")
    if message is not None:
        assert err == f"jacobian-ik audit: error: {message.format(path=path)}\n"
    else:
        assert str(path) in err


def test_a_missing_scene_file_exits_2_naming_it(tmp_path):
    path = tmp_path / "nowhere.yaml"
    code, out, err = _main(["audit", "panda", "--samples", "10", "--scene", str(path)])
    assert (code, out) == (2, "")
    assert err == (f"jacobian-ik audit: error: cannot read scene file '{path}': "
                   "No such file or directory\n")


def test_collisions_for_a_robot_without_collision_geometry_exits_2():
    code, out, err = _main(["audit", "planar2", "--samples", "10", "--collisions"])
    assert (code, out) == (2, "")
    assert err == ("jacobian-ik audit: error: --collisions: robot 'planar2' has no collision "
                   "geometry (no <collision> element on the links of its chain base_link -> "
                   "tool)\n")


def _documented_collision_keys() -> set[str]:
    text = DOC.read_text(encoding="utf-8")
    body = re.search(r"<!-- keys: collisions -->\n(.*?)<!-- /keys -->", text, re.S)
    assert body is not None, "docs/audit.md has no collisions key table"
    return set(re.findall(r"^\| `([^`]+)` \|", body.group(1), re.M))


def test_json_collisions_block_has_exactly_the_documented_keys():
    """With a scene whose pairs come near: every key of docs/audit.md's collisions
    table, and no other; without --collisions the block is null."""
    report = _report(["panda", "--samples", "2000", "--scene",
                      str(SCENES / "panda_cell.yaml")])
    block = report["collisions"]
    assert block["top_pairs"] and block["obstacles"]
    keys = {k for k in key_paths(report) if k.startswith("collisions.")}
    assert keys == _documented_collision_keys()
    assert block["scene"].endswith("panda_cell.yaml")
    assert block["stop_distance"] == STOP and block["stop_distance_source"].endswith(
        "panda.yaml")
    assert _report(["panda", "--samples", "200"])["collisions"] is None


def test_text_report_carries_the_json_figures():
    """The table shows the same shares as the JSON report of the same run."""
    argv = ["audit", "panda", "--samples", "2000", "--no-progress", "--scene",
            str(SCENES / "panda_cell.yaml")]
    code, text, err = _main(argv)
    assert code == 0, err
    block = _report(argv[1:])["collisions"]
    for key in ("self_collision_fraction", "collision_fraction", "within_stop_fraction"):
        assert f"{100.0 * block[key]:.2f} % of samples" in text
    for entry in block["top_pairs"]:
        assert " – ".join(entry["pair"]) in text
    assert "stop distance 0.01 m (from config/panda.yaml)" in text


def test_stop_distance_comes_from_the_parameter_file(tmp_path):
    """collision_stop_distance of --config is the stop distance; a larger one puts at
    least as many samples within it, and the self-collision share does not move."""
    config = tmp_path / "panda.yaml"
    config.write_text("/**:\n  ros__parameters:\n    base_link: panda_link0\n"
                      "    tip_link: panda_hand_tcp\n    collision_stop_distance: 0.05\n"
                      "    collision_influence_distance: 0.2\n")
    argv = ["panda", "--samples", "2000", "--collisions"]
    wide = _report([*argv, "--config", str(config)])["collisions"]
    narrow = _report(argv)["collisions"]
    assert wide["stop_distance"] == 0.05 and wide["stop_distance_source"] == str(config)
    assert wide["within_stop_fraction"] > narrow["within_stop_fraction"]
    assert wide["self_collision_fraction"] == narrow["self_collision_fraction"]


def test_counts_do_not_depend_on_how_the_samples_are_split(monkeypatch):
    """Sub-blocks of 97 configurations give the same counts as the default split."""
    target = load_target("ur5")
    geometry = collisions_mod.collision_geometry(target)
    Q = Sampler(target.robot, 2).block(1000)
    whole = collisions_mod.CollisionCounter(target.robot, geometry)
    whole.add(Q)
    monkeypatch.setattr(collisions_mod, "SUB_BLOCK", 97)
    split = collisions_mod.CollisionCounter(target.robot, geometry)
    split.add(Q[:500])
    split.add(Q[500:])
    assert (split.samples, split.self_collisions, split.within_stop) == \
        (whole.samples, whole.self_collisions, whole.within_stop)
    np.testing.assert_array_equal(split.pair_within_stop, whole.pair_within_stop)
    np.testing.assert_array_equal(split.pair_contact, whole.pair_contact)


def test_a_self_collision_gate_fails_with_status_1_and_needs_collisions():
    """`collisions.self_collision_fraction>X` fails (status 1, reason on stderr) when
    the share is above X, passes below it, and without --collisions exits 2."""
    argv = ["audit", "panda", "--samples", "1000", "--no-progress", "--collisions"]
    code, _, err = _main([*argv, "--fail-if", "collisions.self_collision_fraction>0.01"])
    assert code == 1
    assert err.startswith("jacobian-ik audit: gate failed: "
                          "collisions.self_collision_fraction>0.01 "
                          "(collisions.self_collision_fraction = ")
    code, _, err = _main([*argv, "--fail-if", "collisions.within_stop_fraction>0.9"])
    assert (code, err) == (0, "")
    code, out, err = _main(["audit", "panda", "--samples", "10",
                            "--fail-if", "collisions.self_collision_fraction>0.1"])
    assert (code, out) == (2, "")
    assert err == ("jacobian-ik audit: error: gate 'collisions.self_collision_fraction>0.1': "
                   "metric 'collisions.self_collision_fraction' needs --collisions "
                   "(or --scene)\n")
