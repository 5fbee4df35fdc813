"""Which self-collision pairs are checked: read from an SRDF, or sampled (adjacent,
default, always, never), cached, and written by ``jacobian-ik collision-matrix``."""

from __future__ import annotations

import io

import coal
import numpy as np
import pytest

from jacobian_ik import bundled
from jacobian_ik.audit.cli import main
from jacobian_ik.collision import matrix
from jacobian_ik.collision.matrix import MatrixSettings, capsule_transforms
from jacobian_ik.collision.model import CollisionModel
from jacobian_ik.collision.srdf import read_disabled, write_srdf
from jacobian_ik.collision.sweep import segment_segment, sweep_pair, sweepable
from jacobian_ik.errors import ConfigurationError, SrdfError
from jacobian_ik.robot import Robot

#: Few samples: the properties hold for any sample count.
QUICK = MatrixSettings(samples=400, seed=1)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Each test has a cache folder of its own (cold), never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _bundled(name: str) -> tuple[object, Robot]:
    path = bundled.urdf_path(name)
    return path, Robot.from_urdf(path, *bundled.robot_links(name))


def _coal_distances(robot: Robot, caps: np.ndarray, pairs: list[tuple[int, int]],
                    Q: np.ndarray) -> np.ndarray:
    """coal's capsule distances, computed here independently. Shape (S, P)."""
    local = capsule_transforms(caps)
    shapes = [coal.Capsule(row[7], np.linalg.norm(row[4:7] - row[1:4])) for row in caps]
    out = np.empty((len(Q), len(pairs)))
    for s, q in enumerate(Q):
        frames = robot.frames(q)
        tf = []
        for k, row in enumerate(caps):
            T = local[k] if row[0] < 0 else frames[int(row[0])] @ local[k]
            tf.append(coal.Transform3s(T[:3, :3], T[:3, 3]))
        for p, (i, j) in enumerate(pairs):
            out[s, p] = coal.distance(shapes[i], tf[i], shapes[j], tf[j],
                                      coal.DistanceRequest(), coal.DistanceResult())
    return out


# ---------------------------------------------------------------------- SRDF
SRDF = """<?xml version="1.0"?>
<robot name="panda">
  <group name="arm"><joint name="panda_joint1"/></group>
  <disable_collisions link1="panda_link1" link2="panda_link0" reason="Adjacent"/>
  <disable_collisions link1="panda_link2" link2="panda_link0"/>
  <disable_collisions link1="panda_link8" link2="panda_link0" reason="Never"/>
</robot>"""


def test_srdf_entries_are_read_with_their_reasons_names_in_alphabetical_order():
    found, path = read_disabled(SRDF)
    assert path is None
    assert found == {("panda_link0", "panda_link1"): "Adjacent",
                     ("panda_link0", "panda_link2"): "User",
                     ("panda_link0", "panda_link8"): "Never"}


def test_an_srdf_disables_its_pairs_and_links_without_geometry_are_ignored():
    urdf, robot = _bundled("panda")
    model = CollisionModel.from_urdf(urdf, robot, srdf=SRDF)
    assert model.disabled == {("panda_link0", "panda_link1"): "Adjacent",
                              ("panda_link0", "panda_link2"): "User",
                              ("panda_hand", "panda_link7"): "Rigid"}
    checked = {(model.names[i], model.names[j]) for i, j in model.self_pairs.tolist()}
    assert len(checked) == 9 * 8 // 2 - 3
    assert ("panda_link0", "panda_link2") not in checked
    assert ("panda_link0", "panda_link3") in checked


def test_an_srdf_naming_an_unknown_link_is_refused_listing_the_links_with_geometry(tmp_path):
    urdf, robot = _bundled("ur5")
    srdf = tmp_path / "ur5.srdf"
    srdf.write_text('<robot name="ur5"><disable_collisions link1="base_link" '
                    'link2="gripper" reason="Adjacent"/></robot>')
    with pytest.raises(SrdfError) as info:
        CollisionModel.from_urdf(urdf, robot, srdf=srdf)
    assert str(info.value) == (
        "SRDF <disable_collisions> names link 'gripper', which the URDF does not have; "
        "links with collision geometry are: base_link, shoulder_link, upper_arm_link, "
        "forearm_link, wrist_1_link, wrist_2_link, wrist_3_link")
    assert (info.value.link, info.value.path) == ("gripper", str(srdf))
    assert info.value.choices[0] == "base_link"


@pytest.mark.parametrize("text, message", [
    ("<robot", "SRDF string is not well-formed XML: unclosed token: line 1, column 0"),
    ("<srdf/>", "SRDF string has root element <srdf>; an SRDF's root is <robot>"),
    ('<robot><disable_collisions link1="a"/></robot>',
     "SRDF string has a <disable_collisions> without link1 or link2"),
])
def test_a_malformed_srdf_is_refused(text, message):
    with pytest.raises(SrdfError) as info:
        read_disabled(text)
    assert str(info.value) == message


def test_a_missing_srdf_file_is_refused(tmp_path):
    with pytest.raises(SrdfError) as info:
        read_disabled(tmp_path / "none.srdf")
    assert str(info.value) == f"SRDF file '{tmp_path / 'none.srdf'}' does not exist"


def test_write_srdf_sorts_pairs_and_round_trips():
    text = write_srdf({("b", "a"): "Never", ("a", "c"): "Adjacent"}, 'r"1', comment="x -- y")
    assert text.splitlines()[-4:] == [
        '<robot name=\'r"1\'>',
        '  <disable_collisions link1="a" link2="b" reason="Never"/>',
        '  <disable_collisions link1="a" link2="c" reason="Adjacent"/>',
        "</robot>"]
    assert "x - - y" in text
    assert read_disabled(text)[0] == {("a", "b"): "Never", ("a", "c"): "Adjacent"}
    assert read_disabled(write_srdf([("b", "a")], "r"))[0] == {("a", "b"): "User"}


# ---------------------------------------------------------------------- sampled matrix
def test_adjacent_links_are_skipped_counting_through_links_without_geometry():
    """panda_link7 → panda_link8 (no geometry) → panda_hand: link7 and the hand are
    adjacent; every pair joined by one joint is, and no other pair."""
    urdf, robot = _bundled("panda")
    model = CollisionModel.from_urdf(urdf, robot, settings=QUICK)
    adjacent = {k for k, v in model.disabled.items() if v == "Adjacent"}
    assert adjacent == {("panda_link0", "panda_link1"), ("panda_link1", "panda_link2"),
                        ("panda_link2", "panda_link3"), ("panda_link3", "panda_link4"),
                        ("panda_link4", "panda_link5"), ("panda_link5", "panda_link6"),
                        ("panda_link6", "panda_link7"), ("panda_hand", "panda_link7")}


@pytest.mark.parametrize("name", ["panda", "ur5"])
def test_a_pair_in_contact_in_some_sample_is_never_skipped_as_never(name):
    """coal's distances at the sampler's own configurations (same seed): any pair that
    touches in one of them is checked or skipped for another reason."""
    urdf, robot = _bundled(name)
    model = CollisionModel.from_urdf(urdf, robot, settings=QUICK)
    Q = robot.random_configurations(QUICK.samples, np.random.default_rng(QUICK.seed))
    pairs = [(i, j) for i in range(len(model)) for j in range(i + 1, len(model))]
    d = _coal_distances(robot, model.caps, pairs, Q)
    for p, (i, j) in enumerate(pairs):
        key = tuple(sorted((model.names[i], model.names[j])))
        if d[:, p].min() <= QUICK.never_distance:
            assert model.disabled.get(key) != "Never" or sweepable(
                robot, *sorted((int(model.caps[i, 0]), int(model.caps[j, 0])))), key
        if d[:, p].min() <= 0.0:
            assert model.disabled.get(key) != "Never", key


def test_pairs_proven_apart_by_the_sweep_never_touch_at_random_positions():
    """The UR5's wrist_1 and wrist_3 (wrist_2 and wrist_3 joints between them) stay a few
    millimetres apart: skipped as Never by the sweep, and indeed never touching."""
    urdf, robot = _bundled("ur5")
    model = CollisionModel.from_urdf(urdf, robot, settings=QUICK)
    assert model.disabled[("wrist_1_link", "wrist_3_link")] == "Never"
    i, j = model.index("wrist_1_link"), model.index("wrist_3_link")
    Q = robot.random_configurations(3000, np.random.default_rng(5))
    d = _coal_distances(robot, model.caps, [(i, j)], Q)[:, 0]
    assert 0.0 < d.min() < QUICK.never_distance
    grid, slack = sweep_pair(robot, model.caps[i], model.caps[j])
    assert grid.min() - slack > 0.0 and d.min() >= grid.min() - slack


def test_sweep_distances_are_coals_capsule_distances():
    rng = np.random.default_rng(2)
    for _ in range(200):
        p = rng.normal(size=(4, 3)) * 0.2
        caps = np.array([[-1.0, *p[0], *p[1], 0.01], [-1.0, *p[2], *p[3], 0.02]])
        ours = segment_segment(p[0], p[1], p[2], p[3])[0] - 0.03
        theirs = _coal_distances(Robot.from_urdf(bundled.urdf_path("planar2"),
                                                 *bundled.robot_links("planar2")),
                                 caps, [(0, 1)], np.zeros((1, 2)))[0, 0]
        assert ours == pytest.approx(theirs, abs=1e-12)


def test_pairs_near_at_the_default_configuration_are_skipped_as_default():
    urdf, robot = _bundled("panda")
    model = CollisionModel.from_urdf(urdf, robot, settings=QUICK)
    defaults = [k for k, v in model.disabled.items() if v == "Default"]
    assert defaults
    pairs = [(model.index(a), model.index(b)) for a, b in defaults]
    d = _coal_distances(robot, model.caps, pairs, robot.q_mid.reshape(1, -1))[0]
    assert (d <= QUICK.default_margin).all()


def test_the_sampled_matrix_is_deterministic_and_cached(monkeypatch):
    urdf, robot = _bundled("panda")
    first = CollisionModel.from_urdf(urdf, robot, settings=QUICK)

    def no_sampling(*_args, **_kwargs):
        raise AssertionError("sampled although the matrix is cached")

    monkeypatch.setattr(matrix, "sample_matrix", no_sampling)
    again = CollisionModel.from_urdf(urdf, robot, settings=QUICK)
    assert again.disabled == first.disabled
    np.testing.assert_array_equal(again.self_pairs, first.self_pairs)
    with pytest.raises(AssertionError, match="sampled although"):  # another seed: a miss
        CollisionModel.from_urdf(urdf, robot, settings=MatrixSettings(samples=400, seed=2))


def test_an_unusable_cache_folder_only_means_no_cache(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    urdf, robot = _bundled("ur5")
    model = CollisionModel.from_urdf(urdf, robot, settings=QUICK)
    assert len(model.self_pairs) > 0


@pytest.mark.parametrize("field, value, message", [
    ("samples", 0, "samples must be an integer of at least 1, got 0"),
    ("never_distance", -0.1, "never_distance must be a finite distance >= 0 [m], got -0.1"),
    ("always_fraction", 1.5, "always_fraction must be in (0, 1], got 1.5"),
    ("default_margin", float("inf"),
     "default_margin must be a finite distance >= 0 [m], got inf"),
])
def test_invalid_matrix_settings_are_refused(field, value, message):
    with pytest.raises(ConfigurationError) as info:
        MatrixSettings(**{field: value})
    assert str(info.value) == message and info.value.parameter == field


@pytest.mark.parametrize("name", ["panda", "ur5"])
def test_the_shipped_srdf_is_what_the_command_computes(name):
    urdf, robot = _bundled(name)
    model = CollisionModel.from_urdf(urdf, robot)
    shipped, _path = read_disabled(bundled.share_dir() / "urdf" / f"{name}.srdf")
    assert model.disabled == shipped


# ---------------------------------------------------------------------- the command
def test_the_command_writes_an_srdf_that_round_trips(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    path = tmp_path / "ur5.srdf"
    assert main(["collision-matrix", "ur5", "--samples", "300", "--seed", "4",
                 "--out", str(path)], out, err) == 0
    assert err.getvalue() == ""
    urdf, robot = _bundled("ur5")
    model = CollisionModel.from_urdf(urdf, robot, settings=MatrixSettings(samples=300,
                                                                          seed=4))
    assert read_disabled(path)[0] == model.disabled
    assert out.getvalue() == (f"{path}: {len(model.disabled)} pairs disabled, "
                              f"{len(model.self_pairs)} checked, of 7 capsules\n")
    reread = CollisionModel.from_urdf(urdf, robot, srdf=path)
    np.testing.assert_array_equal(reread.self_pairs, model.self_pairs)
    stdout = io.StringIO()
    assert main(["collision-matrix", "ur5", "--samples", "300", "--seed", "4"], stdout,
                io.StringIO()) == 0
    assert stdout.getvalue() == path.read_text()


@pytest.mark.parametrize("args, message", [
    (["nothing-here"], "jacobian-ik collision-matrix: error: 'nothing-here' is neither a "
                       "URDF file nor a bundled robot; bundled robots are: panda, planar2, "
                       "ur5\n"),
    (["ur5", "--tip-link", "nope"], "jacobian-ik collision-matrix: error: tip_link 'nope' "
                                    "not in URDF; links are: base_link, ee_link, "
                                    "forearm_link, shoulder_link, tool0, upper_arm_link, "
                                    "wrist_1_link, wrist_2_link, wrist_3_link\n"),
    (["ur5", "--never-distance", "-1"], "jacobian-ik collision-matrix: error: "
                                        "never_distance must be a finite distance >= 0 [m], "
                                        "got -1.0\n"),
])
def test_command_errors_exit_2_with_one_line_on_stderr(args, message):
    out, err = io.StringIO(), io.StringIO()
    assert main(["collision-matrix", *args], out, err) == 2
    assert err.getvalue() == message and out.getvalue() == ""


def test_a_urdf_file_needs_both_chain_links(tmp_path):
    err = io.StringIO()
    path = bundled.urdf_path("ur5")
    assert main(["collision-matrix", str(path), "--base-link", "base_link"], io.StringIO(),
                err) == 2
    assert err.getvalue() == (f"jacobian-ik collision-matrix: error: the chain needs "
                              f"--tip-link for URDF '{path}'\n")
