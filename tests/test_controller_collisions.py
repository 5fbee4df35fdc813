"""The collision barrier of the controller: closed loops on the bundled Panda with its
collision model and a scene, distances checked independently with coal on the same
capsules."""

from __future__ import annotations

import coal
import numpy as np
import pytest
from controller_support import bundled_arm

from jacobian_ik.collision.scene import Scene
from jacobian_ik.controller import Controller, SafetyState
from jacobian_ik.params import ControllerParams

DT = 0.002


def _capsule_objects(ctl: Controller, q: np.ndarray) -> list:
    """coal (geometry, transform) of every capsule of the controller's model at q."""
    model = ctl.collision_model
    robot = ctl.robot
    frames = robot.frames(q)
    objects = []
    for row in model.caps:
        f = int(row[0])
        T = np.eye(4) if f < 0 else frames[f]
        a = T[:3, :3] @ row[1:4] + T[:3, 3]
        b = T[:3, :3] @ row[4:7] + T[:3, 3]
        objects.append(_capsule(a, b, float(row[7])))
    return objects


def _capsule(a: np.ndarray, b: np.ndarray, r: float):
    axis = b - a
    length = float(np.linalg.norm(axis))
    z = axis / length if length > 1e-12 else np.array([0.0, 0.0, 1.0])
    x = np.cross(z, [1.0, 0.0, 0.0])
    if np.linalg.norm(x) < 1e-6:
        x = np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    R = np.column_stack([x, np.cross(z, x), z])
    return coal.Capsule(r, length), coal.Transform3s(R, 0.5 * (a + b))


def _obstacle_objects(scene: Scene) -> list:
    out = []
    for row in scene.array():
        kind = int(row[0])
        R = row[1:10].reshape(3, 3)
        p = row[10:13]
        if kind == 0:
            out.append((coal.Sphere(row[13]), coal.Transform3s(R, p)))
        elif kind == 1:
            out.append((coal.Box(*(2.0 * row[13:16])), coal.Transform3s(R, p)))
        elif kind == 2:
            out.append((coal.Cylinder(row[13], 2.0 * row[14]), coal.Transform3s(R, p)))
        else:
            n = R[:, 2]
            out.append((coal.Halfspace(n, float(n @ p)), coal.Transform3s()))
    return out


def _coal_distance(o1, o2) -> float:
    req = coal.DistanceRequest()
    res = coal.DistanceResult()
    return float(coal.distance(o1[0], o1[1], o2[0], o2[1], req, res))


def _min_checked_distance(ctl: Controller, scene: Scene | None, q: np.ndarray) -> float:
    """Smallest coal distance over the pairs the controller checks."""
    caps = _capsule_objects(ctl, q)
    obstacles = _obstacle_objects(scene) if scene is not None else []
    _geo, pairs = ctl._geometry
    best = np.inf
    for i, j in pairs.tolist():
        other = caps[j] if j >= 0 else obstacles[-1 - j]
        best = min(best, _coal_distance(caps[i], other))
    return best


def _run(ctl: Controller, q: np.ndarray, target, cycles: int, scene: Scene | None,
         check_every: int = 10):
    """Closed loop with a perfect arm; returns (results, smallest coal distance)."""
    results = []
    low = np.inf
    for k in range(cycles):
        res = ctl.step(q, target, DT)
        q = res.q_command
        results.append(res)
        if k % check_every == 0:
            low = min(low, _min_checked_distance(ctl, scene, q))
    return results, low, q


@pytest.fixture(scope="module")
def panda():
    return bundled_arm("panda")


def test_without_collision_geometry_min_distance_is_inf_and_no_pair_is_named(panda):
    ctl = Controller(panda, ControllerParams(), collision=False)
    res = ctl.step(panda.q_mid, panda.fk(panda.q_mid), DT)
    assert res.min_distance == np.inf
    assert res.closest_pair == ("", "")
    assert ctl.pair_names == ()


def test_min_distance_is_the_smallest_checked_pair_distance_and_names_its_pair(panda):
    scene = Scene().add_sphere("ball", 0.05, _at(0.45, 0.0, 0.45))
    ctl = Controller(panda, ControllerParams(collision_influence_distance=2.0), scene=scene)
    q = panda.q_mid
    res = ctl.step(q, None, DT)
    assert res.min_distance == pytest.approx(_min_checked_distance(ctl, scene, q), abs=1e-9)
    assert res.closest_pair in {tuple(name.split(" – ")) for name in ctl.pair_names}


def _at(x: float, y: float, z: float) -> np.ndarray:
    T = np.eye(4)
    T[:3, 3] = (x, y, z)
    return T


def test_a_goal_below_the_table_stops_above_it_with_the_pair_named(panda):
    scene = Scene().add_plane("table", (0.0, 0.0, 1.0), 0.0)
    params = ControllerParams()
    ctl = Controller(panda, params, scene=scene)
    ctl.warm_up()
    q = panda.q_mid.copy()
    target = panda.fk(q)
    target[2, 3] = -0.1
    results, low, _q = _run(ctl, q, target, 2500, scene)
    assert low >= params.collision_stop_distance - 1e-4
    last = results[-1]
    assert last.state is SafetyState.SAFE_STOP
    assert "table" in last.reason and "blocked by" in last.reason
    assert any(r.state is SafetyState.APPROACHING_COLLISION for r in results)


def test_a_box_beside_the_path_is_slid_along_and_the_goal_reached(panda):
    q = panda.q_mid.copy()
    start = panda.fk(q)
    target = start.copy()
    target[1, 3] += 0.3
    # a box whose face is 3 cm from the straight line of the tip, on the far side
    mid = 0.5 * (start[:3, 3] + target[:3, 3])
    scene = Scene().add_box("box", (0.1, 0.1, 0.1), _at(mid[0] + 0.13 + 0.05, mid[1],
                                                        mid[2]))
    params = ControllerParams()
    ctl = Controller(panda, params, scene=scene)
    ctl.warm_up()
    results, low, _q = _run(ctl, q, target, 3000, scene)
    assert low >= params.collision_stop_distance - 1e-4
    assert results[-1].goal_reached
    assert min(r.sigma_min for r in results) >= params.sigma_stop


def test_self_collision_keeps_the_hand_off_the_base(panda):
    params = ControllerParams()
    ctl = Controller(panda, params)
    ctl.warm_up()
    q = panda.q_mid.copy()
    target = panda.fk(q)
    target[:3, 3] = (0.05, 0.0, 0.15)        # into the arm's own base
    results, low, _q = _run(ctl, q, target, 3000, None)
    assert low >= params.collision_stop_distance - 1e-4
    assert not results[-1].goal_reached


def test_set_scene_takes_effect_from_the_next_cycle(panda):
    ctl = Controller(panda, ControllerParams(collision_influence_distance=2.0))
    q = panda.q_mid
    before = ctl.step(q, None, DT)
    ctl.set_scene(Scene().add_sphere("ball", 0.05, _at(0.3, 0.3, 0.3)))
    after = ctl.step(q, None, DT)
    assert "ball" in after.closest_pair or after.min_distance <= before.min_distance
    assert any("ball" in name for name in ctl.pair_names)
    ctl.set_scene(None)
    assert not any("ball" in name for name in ctl.pair_names)


@pytest.mark.parametrize("seed", range(6))
def test_random_goals_in_a_cell_never_come_closer_than_the_stop_distance(panda, seed):
    from jacobian_ik import bundled

    scene = Scene.from_yaml(bundled.share_dir() / "config" / "scenes" / "panda_cell.yaml")
    params = ControllerParams()
    ctl = Controller(panda, params, scene=scene)
    ctl.warm_up()
    rng = np.random.default_rng(seed)
    q = panda.q_mid.copy()
    for _goal in range(3):
        qg = panda.random_configurations(1, rng)[0]
        results, low, q = _run(ctl, q, panda.fk(qg), 1500, scene, check_every=25)
        assert low >= params.collision_stop_distance - 1e-4
        for r in results:
            if r.state is not SafetyState.JOINT_MOVE:
                assert r.sigma_min >= params.sigma_stop


def test_passive_positions_move_the_fingers_the_distances_see():
    """example-robot-data's Panda with its fingers: set_passive_positions opens them,
    and the next cycle's distance to a sphere beside the hand is the opened finger's."""
    from jacobian_ik import bundled
    from jacobian_ik.collision.model import CollisionModel
    from jacobian_ik.robot import Robot

    robots = bundled.example_robot_data_dir()
    if robots is None:
        pytest.skip("example-robot-data is not installed")
    urdf = robots / "panda_description" / "urdf" / "panda.urdf"
    robot = Robot.from_urdf(urdf, "panda_link0", "panda_hand")
    model = CollisionModel.from_urdf(urdf, robot, self_collision=False)
    q = robot.q_mid
    T_hand = robot.fk(q)
    finger = model.index("panda_leftfinger")
    beside = T_hand[:3, 3] + 0.15 * T_hand[:3, 1] + 0.05 * T_hand[:3, 2]
    scene = Scene().add_sphere("ball", 0.02, beside)
    ctl = Controller(robot, ControllerParams(collision_influence_distance=2.0), scene=scene,
                     collision=model)
    pair = ctl.pair_names.index("panda_leftfinger – ball")
    ctl.step(q, None, DT)
    closed = ctl._geometry[0]
    d_closed = _dist_rows(ctl)[pair, 0]
    ctl.set_passive_positions({"panda_finger_joint1": 0.04, "not_a_joint": 1.0})
    ctl.step(q, None, DT)
    d_open = _dist_rows(ctl)[pair, 0]
    assert ctl.collision_model.passive_positions["panda_finger_joint1"] == 0.04
    assert d_open < d_closed - 0.03
    assert ctl._geometry[0] is not closed
    assert finger == ctl.collision_model.index("panda_leftfinger")


def _dist_rows(ctl: Controller) -> np.ndarray:
    """The controller's per-pair distance rows (kernels.layout geo ``dist``)."""
    from jacobian_ik.kernels import layout as L

    geo, _pairs = ctl._geometry
    return L.python_geo_views(geo, ctl.robot.dof)["dist"]


def test_a_scene_of_100_obstacles_compiles_nothing_and_the_next_cycle_checks_every_pair(
        panda):
    """set_scene with 100 more obstacles: every moving capsule is paired with every
    obstacle, capsule by capsule, named consistently; no kernel compiles anything
    (set_scene calls none, and the next cycles run the signatures warm_up made),
    and the next cycle's distances are those of the new pairs (coal)."""
    from jacobian_ik import bundled
    from jacobian_ik.precompile import kernel_dispatchers

    cell = Scene.from_yaml(bundled.share_dir() / "config" / "scenes" / "panda_cell.yaml")
    ctl = Controller(panda, ControllerParams(collision_influence_distance=2.0), scene=cell)
    ctl.warm_up()
    q = panda.q_mid.copy()
    ctl.step(q, None, DT)
    compiled = {name: len(d.signatures) for name, d in kernel_dispatchers().items()}
    scene = cell.copy()
    rng = np.random.default_rng(3)
    count = 100
    kinds = [("box", "sphere", "cylinder")[k] for k in rng.integers(0, 3, count)]
    q_obstacles = rng.normal(size=(count, 4))
    poses = np.concatenate([rng.uniform(-0.8, 0.8, (count, 3)) + (0.0, 0.0, 0.8),
                            q_obstacles / np.linalg.norm(q_obstacles, axis=1)[:, None]], axis=1)
    scene.add_many([f"bins/{i}" for i in range(count)], kinds,
                   rng.uniform(0.02, 0.1, (count, 3)), poses)
    ctl.set_scene(scene)
    model = ctl.collision_model
    moving = [i for i, row in enumerate(model.caps) if row[0] >= 0.0]
    self_pairs = len(model.self_pairs)
    assert len(ctl.pair_names) == self_pairs + len(moving) * len(scene)
    _geo, pairs = ctl._geometry
    for k in (self_pairs, self_pairs + 1, self_pairs + len(scene), len(pairs) - 1):
        i, j = pairs[k]
        assert ctl.pair_names[k] == f"{model.names[i]} – {scene.names[-1 - j]}"
    assert ctl.pair_names[self_pairs + len(scene)].startswith(model.names[moving[1]])
    res = ctl.step(q, None, DT)
    assert {name: len(d.signatures) for name, d in kernel_dispatchers().items()} == compiled
    caps = _capsule_objects(ctl, q)
    obstacles = _obstacle_objects(scene)
    exact = [_coal_distance(caps[i], obstacles[-1 - j]) for i, j in pairs[self_pairs:].tolist()]
    # every row exact (collision_influence_distance 2 m: no bounding-sphere bound);
    # coal's GJK on boxes and cylinders is good to about 1e-6 m; a penetration depth
    # is not compared (coal's convention differs), only its sign
    rows = _dist_rows(ctl)[self_pairs:, 0]
    apart = np.array(exact) > 0.0
    assert apart.sum() > 0.9 * len(exact)
    np.testing.assert_allclose(rows[apart], np.array(exact)[apart], atol=1e-5)
    assert np.all(rows[~apart] <= 0.0)
    assert res.min_distance == _dist_rows(ctl)[:, 0].min()
    assert res.closest_pair == ctl._pair_names[int(np.argmin(_dist_rows(ctl)[:, 0]))]
