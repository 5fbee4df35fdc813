"""Collision-aware closed loop against pink, same run, same goals, same geometry.

Arms: the bundled Panda and UR5 (``urdf/<arm>.urdf`` with its collision meshes), each
in its own cell: a table plane under the base and four boxes in the workspace
(``SCENES``, declared here once; base frame).  Our controller runs with the default
``ControllerParams()`` (self_collision on, collision_stop_distance 1 cm,
collision_influence_distance 10 cm, collision_gain 5/s) and the collision model it
builds from the URDF (``Controller.collision_model``: a capsule per link); the peer
is pink with its collision barrier on the same capsules, the same obstacles and
the same pairs (bench/peer_pink_collisions.py, whose docstring gives every setting).

Goals (the same for both): ``fk(q)`` of joint positions q drawn uniformly within
the limits and kept when q is clear of everything by GOAL_CLEARANCE (2 cm) on the
collision meshes (coal, every checked pair) and σ_min(q) ≥ sigma_warn.  From a fixed
start (bench_peer's), each controller drives the perfect kinematic plant of
bench/peer_loop.py (500 Hz, one-cycle measurement delay, same joint velocity
limits, same Cartesian speed caps) for up to 10 s per goal, ours and pink
interleaved goal by goal.

Every position the plant passes is checked here, independently of both controllers
(``MeshCheck``): pinocchio + coal distances of every checked pair (the controller's
self pairs, which leave out the pairs its collision model skips, then every link
that moves × every obstacle) on the capsules, and on the original collision meshes
of the URDF (the same STL files as example-robot-data's) wherever a pair's capsule
distance is below MESH_CHECK_DISTANCE.  The capsules contain their link's mesh (the
bench checks every vertex at set-up), so a mesh distance is never below its
capsule distance and the mesh counts are exact: cycles with a mesh distance below
collision_stop_distance, cycles with a penetration (mesh distance ≤ 0 or coal
``collide``), and the lowest mesh distance whenever it is below
MESH_CHECK_DISTANCE.  Also per cycle: σ_min of the 6×n Jacobian (lowest outside the
cycles whose command came from JOINT_MOVE), joint position / velocity /
acceleration limits (acceleration claimed by ours only), and for ours whether the
``min_distance`` it reports equals coal's capsule distance at the position it saw.

Per-cycle cost: the controller call alone (ours: ``Controller.step``; pink:
``Configuration.update``, which computes its pair distances, plus ``solve_ik``).
Then, on the Panda in its 5-obstacle cell with self-collision on, the cost of
``Controller.step`` along bench_controller's moving target (recorded once, replayed
through fresh controllers: with the scene, and without collision geometry for
reference, interleaved in blocks) and of the distance kernel alone
(``kernels.distance.pair_distances`` on the controller's pairs) on the same positions.

Usage (repository root)::

    python -m bench.bench_collisions              # 30 goals per arm (≈ 4 min on 2 idle cores)
    python -m bench.bench_collisions --goals 10 --arm panda --out ""

Prints markdown tables and writes ``bench/results/collisions.json`` (a run over both
arms with both controllers; ``--out NAME`` otherwise, ``--out ""`` for none).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import markdown_table, percentiles, write_results  # noqa: E402
from bench.peer_goals import ARMS as PEER_ARMS  # noqa: E402
from bench.peer_loop import (  # noqa: E402
    DT,
    GOAL_TIME,
    LIMIT_SLACK,
    POSITION_SLACK,
    RATE,
    plant_cycle,
    probe_position,
)
from bench.peer_pink_collisions import capsule_geometry, obstacle_pose, obstacle_shape  # noqa: E402
from jacobian_ik import bundled  # noqa: E402
from jacobian_ik.collision.scene import Scene  # noqa: E402
from jacobian_ik.controller import Controller  # noqa: E402
from jacobian_ik.params import ControllerParams  # noqa: E402
from jacobian_ik.robot import Robot  # noqa: E402

GOALS = 30                  # goals per arm, default run
GOAL_SEED = 11
GOAL_CLEARANCE = 0.02       # [m] goal configurations clear of every checked pair (meshes)
MESH_CHECK_DISTANCE = 0.02  # [m] pairs whose capsule distance is below this get coal on meshes
CONTAINMENT_TOL = 1e-6      # [m] a mesh vertex may lie this far outside its capsule
REPORT_TOL = 1e-5           # [m] |reported min_distance − coal's| counted as a mismatch
MAX_GOAL_DRAWS = 200000     # rejection sampling budget per arm
ARM_NAMES = ("panda", "ur5")
CONTROLLERS = ("ours", "pink")
COST_CYCLES = 10000         # cycles of the per-cycle cost replay (Panda)
COST_BLOCK = 500
KERNEL_REPEAT = 5           # distance kernel calls per replayed position

#: Targets of the issue ("Collision-aware motion").
TARGET_STEP_P50_US = 12.0
TARGET_KERNEL_P50_US = 4.0
TARGET_RATIO = 5.0

#: Start configurations: bench_peer's (peer_goals.ARMS).
STARTS = {name: np.array(PEER_ARMS[name][1], dtype=np.float64) for name in ARM_NAMES}


def _at(x: float, y: float, z: float) -> np.ndarray:
    T = np.eye(4)
    T[:3, 3] = (x, y, z)
    return T


#: Height of the UR5's table top below its base [m] (see SCENES).
UR5_TABLE_Z = -0.03

#: Links of the mesh URDF that are not links of the arm's URDF but move rigidly with
#: one of them once the joints outside the chain are locked at their neutral position
#: (the Panda's fingers, closed): their meshes count as that link's.
FOLDED_LINKS = {"panda": {"panda_leftfinger": "panda_hand", "panda_rightfinger": "panda_hand"},
                "ur5": {}}

#: The cell of each arm (base frame): the table top is z = 0, the base stands on it.
#: (name, kind, arguments of Scene.add_<kind> after the name).
SCENES: dict[str, list[tuple[str, str, tuple]]] = {
    "panda": [
        ("table", "plane", ((0.0, 0.0, 1.0), 0.0)),
        ("crate", "box", ((0.20, 0.20, 0.20), _at(0.55, -0.30, 0.10))),
        ("tower", "box", ((0.15, 0.25, 0.50), _at(0.10, 0.55, 0.25))),
        ("shelf", "box", ((0.30, 0.30, 0.03), _at(0.45, 0.35, 0.60))),
        ("wall", "box", ((0.05, 1.00, 0.90), _at(-0.50, 0.0, 0.45))),
    ],
    "ur5": [
        # 3 cm below the base's foot (a mounting plate): at z = 0 the shoulder_link
        # capsule (radius 8.4 cm about the shoulder joint, 8.9 cm up) is 1.2 mm from the
        # table at every configuration, inside collision_stop_distance, and no
        # controller on these capsules could move (setup_arm notes the z = 0 figure)
        ("table", "plane", ((0.0, 0.0, 1.0), UR5_TABLE_Z)),
        ("crate", "box", ((0.20, 0.20, 0.20), _at(0.50, 0.30, 0.10))),
        ("tower", "box", ((0.25, 0.15, 0.50), _at(-0.55, 0.15, 0.25))),
        ("shelf", "box", ((0.30, 0.30, 0.03), _at(0.35, -0.45, 0.55))),
        ("wall", "box", ((1.00, 0.05, 0.90), _at(0.0, 0.60, 0.45))),
    ],
}


def make_scene(arm: str) -> Scene:
    scene = Scene()
    for name, kind, args in SCENES[arm]:
        getattr(scene, f"add_{kind}")(name, *args)
    return scene


# ---------------------------------------------------------------------- geometry check
def checked_pairs(model: Any, n_obstacles: int) -> np.ndarray:
    """The pairs the controller checks (``Controller.set_scene``): the collision model's
    self pairs, then every capsule that moves with a joint × every obstacle; rows (i, j),
    j < 0 for obstacle −1 − j."""
    caps = np.asarray(model.caps, dtype=np.float64).reshape(-1, 8)
    self_pairs = np.asarray(model.self_pairs, dtype=np.int64).reshape(-1, 2)
    moving = [i for i in range(len(caps)) if caps[i, 0] >= 0.0]
    scene = np.array([(i, -1 - o) for i in moving for o in range(n_obstacles)],
                     dtype=np.int64).reshape(-1, 2)
    return np.concatenate([self_pairs, scene])


def package_dirs() -> list[str]:
    """Folders in which ``package://<name>/...`` of the URDFs resolve: a temporary folder
    with ``jacobian_ik`` → the package's share directory, and example-robot-data's."""
    tmp = tempfile.mkdtemp(prefix="bench_collisions_")
    os.symlink(bundled.share_dir(), os.path.join(tmp, "jacobian_ik"))
    dirs = [tmp]
    erd = bundled.example_robot_data_dir()
    if erd is not None:
        dirs += [str(Path(erd).parent), str(Path(erd).parent.parent)]
    return dirs


#: Points on each rim of a cylinder for the containment check (the distance from a
#: segment is convex, so its largest value over a cylinder lies on a rim).
RIM_POINTS = 256


def shape_points(shape: Any) -> tuple[np.ndarray, float]:
    """(points (k, 3) in the shape's frame, radius): the shape lies in the union of the
    balls of that radius about the convex hull of the points (meshes: their vertices;
    a cylinder's rims are sampled, RIM_POINTS each)."""
    kind = type(shape).__name__
    if hasattr(shape, "vertices"):
        return np.asarray(shape.vertices(), dtype=np.float64).reshape(-1, 3), 0.0
    if kind == "Box":
        h = np.asarray(shape.halfSide, dtype=np.float64)
        corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        return corners * h, 0.0
    if kind == "Sphere":
        return np.zeros((1, 3)), float(shape.radius)
    if kind == "Capsule":
        return np.array([[0.0, 0.0, -shape.halfLength], [0.0, 0.0, shape.halfLength]]), \
            float(shape.radius)
    if kind == "Cylinder":
        a = np.linspace(0.0, 2.0 * math.pi, RIM_POINTS, endpoint=False)
        rim = np.column_stack([shape.radius * np.cos(a), shape.radius * np.sin(a)])
        half = float(shape.halfLength)
        return np.vstack([np.column_stack([rim, np.full(len(a), z)]) for z in (-half, half)]), 0.0
    raise ValueError(f"no containment check for a {kind}")


@dataclass
class CycleCheck:
    """One position's distances: capsules on every pair, meshes where they are near."""

    capsule_min: float
    capsule_pair: int
    capsule_below_stop: bool
    mesh_min: float             # exact when < MESH_CHECK_DISTANCE, else inf
    mesh_pair: int
    mesh_below_stop: list[int]  # pairs with a mesh distance below the stop distance
    penetrating: list[int]      # pairs whose meshes touch or overlap


def reduced_model(pin: Any, urdf_path: str, robot: Robot, geometry: bool) -> tuple[Any, Any]:
    """(pinocchio model of the URDF with every joint outside the chain locked at its
    neutral position, its collision GeometryModel or None)."""
    full = pin.buildModelFromUrdf(urdf_path)
    locked = [j for j in range(1, full.njoints) if full.names[j] not in robot.joint_names]
    if geometry:
        geom = pin.buildGeomFromUrdf(full, urdf_path, pin.COLLISION, package_dirs=package_dirs())
        model, geom = pin.buildReducedModel(full, geom, locked, pin.neutral(full))
    else:
        model, geom = pin.buildReducedModel(full, locked, pin.neutral(full)), None
    if tuple(model.names[1:]) != robot.joint_names:
        raise RuntimeError(f"{urdf_path}: pinocchio joints {tuple(model.names[1:])} differ "
                           f"from the chain's {robot.joint_names}")
    base = model.frames[model.getFrameId(robot.base_link)]
    if base.parentJoint != 0:
        raise RuntimeError(f"{urdf_path}: {robot.base_link} is not fixed to the world")
    return model, geom


class MeshCheck:
    """pinocchio + coal distances of the checked pairs at joint positions q, on the
    controller's capsules and on the original collision meshes (independent of the
    controller's distance code).

    ``urdf_path``: the arm's URDF (the capsules sit on its pinocchio joints);
    ``mesh_urdf``: the URDF whose collision elements are the truth (example-robot-data's:
    its links are placed by its own kinematics, which must equal the arm's);
    ``folded``: {link of mesh_urdf: link of the arm} whose elements count as the latter's
    (links the arm's URDF does not have, rigid with one of its links)."""

    def __init__(self, robot: Robot, urdf_path: str, mesh_urdf: str, controller: Controller,
                 scene: Scene, stop: float, folded: dict[str, str] | None = None) -> None:
        import coal
        import pinocchio as pin
        self.pin, self.coal = pin, coal
        self.robot = robot
        self.stop = stop
        self.mesh_urdf = mesh_urdf
        model, _ = reduced_model(pin, urdf_path, robot, geometry=False)
        self.model, self.data = model, model.createData()
        T_world_base = model.frames[model.getFrameId(robot.base_link)].placement.homogeneous
        self.T_world_base = T_world_base.copy()
        cm = controller.collision_model
        if cm is None:
            raise RuntimeError("the controller has no collision model (URDF without "
                               "<collision> elements?)")
        self.cap_names = tuple(cm.names)
        self.caps = np.asarray(cm.caps, dtype=np.float64).reshape(-1, 8)
        self.obstacles = np.asarray(scene.array(), dtype=np.float64).reshape(-1, 16)
        self.obstacle_names = tuple(scene.names)
        self.pairs = checked_pairs(cm, len(self.obstacles))
        self.pair_names = tuple(
            (self.cap_names[i], self.cap_names[j] if j >= 0 else self.obstacle_names[-1 - j])
            for i, j in self.pairs.tolist())
        # the capsule model, with the controller's pairs in its order
        self.capsules = capsule_geometry(model, robot, self.caps, self.cap_names,
                                         self.obstacles, self.obstacle_names, self.pairs,
                                         T_world_base)
        self.capsule_data = pin.GeometryData(self.capsules)
        # the mesh model: the collision elements of the links the controller models
        # (others are listed in unmodelled_links), then the obstacles
        mesh_model, mesh = reduced_model(pin, mesh_urdf, robot, geometry=True)
        self.mesh_model, self.mesh_kin = mesh_model, mesh_model.createData()
        T_world_base_mesh = mesh_model.frames[
            mesh_model.getFrameId(robot.base_link)].placement.homogeneous
        self.T_world_base_mesh = T_world_base_mesh.copy()
        folded = folded or {}
        link_of = [mesh_model.frames[g.parentFrame].name for g in mesh.geometryObjects]
        self.folded = {name: folded[name] for name in link_of if name in folded}
        link_of = [folded.get(name, name) for name in link_of]
        self.mesh_links = sorted(set(link_of))
        self.unmodelled_links = [name for name in self.mesh_links if name not in self.cap_names]
        self.links_without_mesh = [name for name in self.cap_names if name not in link_of]
        n_mesh = len(mesh.geometryObjects)
        for name, row in zip(self.obstacle_names, self.obstacles):
            mesh.addGeometryObject(pin.GeometryObject(
                f"obstacle:{name}", 0, pin.SE3(T_world_base_mesh @ obstacle_pose(row)),
                obstacle_shape(row)))
        self.mesh_pairs: list[list[int]] = []    # per checked pair: its mesh pair indices
        for i, j in self.pairs.tolist():
            side_a = [g for g in range(n_mesh) if link_of[g] == self.cap_names[i]]
            side_b = ([g for g in range(n_mesh) if link_of[g] == self.cap_names[j]] if j >= 0
                      else [n_mesh + (-1 - j)])
            ids = []
            for ga in side_a:
                for gb in side_b:
                    ids.append(len(mesh.collisionPairs))
                    mesh.addCollisionPair(pin.CollisionPair(ga, gb))
            self.mesh_pairs.append(ids)
        self.mesh = mesh
        self.mesh_data = pin.GeometryData(mesh)
        self.link_of = link_of
        self.n_mesh = n_mesh

    def update_meshes(self, q: np.ndarray) -> None:
        """Mesh placements at q."""
        pin = self.pin
        pin.forwardKinematics(self.mesh_model, self.mesh_kin, q)
        pin.updateGeometryPlacements(self.mesh_model, self.mesh_kin, self.mesh, self.mesh_data)

    def kinematics_error(self, qs: Sequence[np.ndarray]) -> tuple[float, float]:
        """(largest difference of the mesh URDF's base → tip transform from Robot.fk,
        largest difference [m] of a mesh link's base-frame pose from the same link's in
        the arm's URDF) over ``qs``."""
        pin = self.pin
        mm, md = self.mesh_model, self.mesh_kin
        tip = mm.getFrameId(self.robot.tip_link)
        err_tip = err_link = 0.0
        links = [name for name in self.mesh_links if self.model.existFrame(name)
                 and name in self.cap_names]
        for q in qs:
            pin.framesForwardKinematics(mm, md, q)
            pin.framesForwardKinematics(self.model, self.data, q)
            T_tip = np.linalg.solve(self.T_world_base_mesh, md.oMf[tip].homogeneous)
            err_tip = max(err_tip, float(np.abs(T_tip - self.robot.fk(q)).max()))
            for name in links:
                a = np.linalg.solve(self.T_world_base_mesh,
                                    md.oMf[mm.getFrameId(name)].homogeneous)
                b = np.linalg.solve(self.T_world_base,
                                    self.data.oMf[self.model.getFrameId(name)].homogeneous)
                err_link = max(err_link, float(np.abs(a - b).max()))
        return err_tip, err_link

    # -------------------------------------------------------------- set-up checks
    def containment(self, qs: Sequence[np.ndarray]) -> dict[str, float]:
        """Largest distance [m] by which a mesh vertex of each modelled link lies outside
        its capsule over the positions ``qs`` (≤ 0: inside)."""
        worst: dict[str, float] = {}
        for q in qs:
            frames = self.robot.frames(q)
            self.update_meshes(q)
            for g in range(self.n_mesh):
                link = self.link_of[g]
                if link not in self.cap_names:
                    continue
                row = self.caps[self.cap_names.index(link)]
                f = int(row[0])
                T = self.T_world_base_mesh @ (np.eye(4) if f < 0 else frames[f])
                a = T[:3, :3] @ row[1:4] + T[:3, 3]
                b = T[:3, :3] @ row[4:7] + T[:3, 3]
                M = self.mesh_data.oMg[g]
                v, radius = shape_points(self.mesh.geometryObjects[g].geometry)
                v = v @ M.rotation.T + M.translation
                ab = b - a
                t = np.clip((v - a) @ ab / max(float(ab @ ab), 1e-300), 0.0, 1.0)
                d = np.linalg.norm(v - (a + t[:, None] * ab), axis=1) + radius - row[7]
                worst[link] = max(worst.get(link, -np.inf), float(d.max()))
        return worst

    def capsule_frames_error(self, qs: Sequence[np.ndarray]) -> float:
        """Largest distance [m] between the capsule end points of the pinocchio model and
        those from ``Robot.frames`` (the chain frames the controller uses)."""
        pin = self.pin
        err = 0.0
        for q in qs:
            frames = self.robot.frames(q)
            pin.forwardKinematics(self.model, self.data, q)
            pin.updateGeometryPlacements(self.model, self.data, self.capsules,
                                         self.capsule_data)
            for g, row in enumerate(self.caps):
                f = int(row[0])
                T = self.T_world_base @ (np.eye(4) if f < 0 else frames[f])
                a = T[:3, :3] @ row[1:4] + T[:3, 3]
                b = T[:3, :3] @ row[4:7] + T[:3, 3]
                M = self.capsule_data.oMg[g]
                shape = self.capsules.geometryObjects[g].geometry
                h = getattr(shape, "halfLength", 0.0)
                e0 = M.translation - h * M.rotation[:, 2]
                e1 = M.translation + h * M.rotation[:, 2]
                err = max(err, float(min(np.linalg.norm(e0 - a) + np.linalg.norm(e1 - b),
                                         np.linalg.norm(e0 - b) + np.linalg.norm(e1 - a))))
        return err

    # -------------------------------------------------------------- per position
    def capsule_distances(self, q: np.ndarray) -> np.ndarray:
        """coal distance [m] of every checked pair on the capsules at q."""
        self.pin.computeDistances(self.model, self.data, self.capsules, self.capsule_data, q)
        return np.fromiter((r.min_distance for r in self.capsule_data.distanceResults),
                           dtype=np.float64, count=len(self.pairs))

    def mesh_distance(self, p: int) -> tuple[float, bool]:
        """(smallest coal distance over the mesh pairs of checked pair p, any of them in
        collision) at the placements of the last ``check``."""
        pin = self.pin
        best = np.inf
        hit = False
        for k in self.mesh_pairs[p]:
            d = float(pin.computeDistance(self.mesh, self.mesh_data, k).min_distance)
            best = min(best, d)
            if d <= 0.0 or pin.computeCollision(self.mesh, self.mesh_data, k):
                hit = True
        return best, hit

    def check(self, q: np.ndarray, near: float = MESH_CHECK_DISTANCE) -> CycleCheck:
        d = self.capsule_distances(q)
        p = int(np.argmin(d)) if d.size else -1
        out = CycleCheck(float(d[p]) if p >= 0 else np.inf, p,
                         bool(p >= 0 and d[p] < self.stop), np.inf, -1, [], [])
        close = np.flatnonzero(d < near)
        if close.size:
            self.update_meshes(q)
            for pair in close.tolist():
                dm, hit = self.mesh_distance(pair)
                if dm < out.mesh_min:
                    out.mesh_min, out.mesh_pair = dm, pair
                if dm < self.stop:
                    out.mesh_below_stop.append(pair)
                if hit:
                    out.penetrating.append(pair)
        return out

    def name(self, p: int) -> str:
        return " – ".join(self.pair_names[p]) if p >= 0 else ""


# ---------------------------------------------------------------------- arms and goals
@dataclass
class ArmSetup:
    name: str
    robot: Robot
    urdf_path: str
    scene: Scene
    params: ControllerParams
    q_start: np.ndarray
    check: MeshCheck
    limits: Any
    peer: Any = None
    goals: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def mesh_urdf(name: str) -> str:
    """example-robot-data's URDF of arm ``name`` (the original collision meshes)."""
    erd = bundled.example_robot_data_dir()
    if erd is None:
        raise RuntimeError("example-robot-data is not installed (pip install -e '.[bench]')")
    return str(Path(erd) / PEER_ARMS[name][0])


def bundled_meshes_gap(check: MeshCheck, urdf: str, qs: Sequence[np.ndarray]) -> str:
    """How the bundled URDF's collision meshes compare with the mesh URDF's: the largest
    difference [m] of their base-frame vertices, per modelled link in order (the other
    collision elements, primitives, are listed)."""
    pin = check.pin
    model, geom = reduced_model(pin, urdf, check.robot, geometry=True)
    data, gdata = model.createData(), pin.GeometryData(geom)
    links = [model.frames[g.parentFrame].name for g in geom.geometryObjects]

    def is_mesh(g: Any) -> bool:
        return hasattr(g.geometry, "vertices")

    def base_points(M: Any, v: np.ndarray, T_world_base: np.ndarray) -> np.ndarray:
        world = v @ M.rotation.T + M.translation
        return (world - T_world_base[:3, 3]) @ T_world_base[:3, :3]

    worst = 0.0
    others: Counter = Counter()
    for g, link in zip(geom.geometryObjects, links):
        if not is_mesh(g):
            others[f"{type(g.geometry).__name__} on {link} (bundled)"] += 1
    for g, link in zip(check.mesh.geometryObjects[:check.n_mesh], check.link_of):
        if not is_mesh(g):
            others[f"{type(g.geometry).__name__} on {link} ({Path(check.mesh_urdf).name})"] += 1
    for q in qs:
        pin.forwardKinematics(model, data, q)
        pin.updateGeometryPlacements(model, data, geom, gdata)
        check.update_meshes(q)
        for link in check.cap_names:
            mine = [k for k, name in enumerate(links)
                    if name == link and is_mesh(geom.geometryObjects[k])]
            theirs = [k for k, name in enumerate(check.link_of)
                      if name == link and is_mesh(check.mesh.geometryObjects[k])]
            if len(mine) != len(theirs):
                return (f"{link}: {len(mine)} meshes in the bundled URDF, "
                        f"{len(theirs)} in {Path(check.mesh_urdf).name}")
            for a, b in zip(mine, theirs):
                va, _ = shape_points(geom.geometryObjects[a].geometry)
                vb, _ = shape_points(check.mesh.geometryObjects[b].geometry)
                if va.shape != vb.shape:
                    return f"{link}: meshes of {len(va)} and {len(vb)} vertices"
                pa = base_points(gdata.oMg[a], va, check.T_world_base)
                pb = base_points(check.mesh_data.oMg[b], vb, check.T_world_base_mesh)
                worst = max(worst, float(np.abs(pa - pb).max()))
    return (f"same meshes, vertices at most {worst:.2g} m apart; other elements: "
            + (", ".join(f"{v} {k}" for k, v in others.items()) or "none"))


def sigma_min(robot: Robot, q: np.ndarray) -> float:
    return float(robot.singular_values(q)[-1])


def setup_arm(name: str, params: ControllerParams, with_peer: bool,
              safe_displacement_gain: float | None = None) -> ArmSetup:
    urdf = str(bundled.urdf_path(name))
    robot = Robot.from_urdf(urdf, *bundled.robot_links(name))
    scene = make_scene(name)
    ctl = Controller(robot, params, scene=scene)
    ctl.warm_up()
    check = MeshCheck(robot, urdf, mesh_urdf(name), ctl, scene, params.collision_stop_distance,
                      FOLDED_LINKS[name])
    arm = ArmSetup(name, robot, urdf, scene, params, STARTS[name].copy(), check,
                   ctl.joint_limits)
    # the bench's pairs are the controller's (its documented rule, checked by name)
    ours = tuple(tuple(text.split(" – ")) for text in ctl.pair_names)
    if ours != check.pair_names:
        raise RuntimeError(f"{name}: the controller's pairs {ours} differ from the bench's "
                           f"{check.pair_names}")
    rng = np.random.default_rng(0)
    qs = [arm.q_start, *robot.random_configurations(10, rng)]
    err = check.capsule_frames_error(qs)
    if err > 1e-9:
        raise RuntimeError(f"{name}: capsules on pinocchio's joints differ from the chain "
                           f"frames by {err:.3g} m")
    err_tip, err_link = check.kinematics_error(qs)
    if err_tip > 1e-9 or err_link > 1e-9:
        raise RuntimeError(f"{name}: example-robot-data's kinematics differ from the bundled "
                           f"URDF's (tip {err_tip:.3g}, link frames {err_link:.3g})")
    gap = bundled_meshes_gap(check, urdf, qs[:3])
    arm.notes.append(f"bundled URDF's collision elements vs example-robot-data's: {gap}")
    outside = check.containment(qs)
    arm.notes += [f"mesh vertex outside its capsule: {link} by {1e3 * d:.2f} mm"
                  for link, d in outside.items() if d > CONTAINMENT_TOL]
    if check.unmodelled_links:
        arm.notes.append("links with collision meshes but no capsule (not checked): "
                         + ", ".join(check.unmodelled_links))
    start = check.check(arm.q_start, near=np.inf)
    if start.mesh_min < GOAL_CLEARANCE or start.capsule_min < params.collision_influence_distance:
        arm.notes.append(f"start: capsule clearance {start.capsule_min:.3f} m "
                         f"({check.name(start.capsule_pair)}), mesh {start.mesh_min:.3f} m")
    if start.capsule_min < params.collision_stop_distance:
        raise RuntimeError(f"{name}: the start configuration is within the stop distance "
                           f"({check.name(start.capsule_pair)} {start.capsule_min:.4f} m)")
    if sigma_min(robot, arm.q_start) < params.sigma_warn:
        raise RuntimeError(f"{name}: the start configuration is near a singularity")
    if with_peer:
        from bench.peer_pink_collisions import SAFE_DISPLACEMENT_GAIN, PinkCollisionPeer
        from jacobian_ik.controller import MAX_COLLISION_ROWS
        arm.peer = PinkCollisionPeer(
            robot, urdf, params, ctl.joint_limits, check.caps, check.cap_names,
            check.obstacles, check.obstacle_names, check.pairs, MAX_COLLISION_ROWS,
            SAFE_DISPLACEMENT_GAIN if safe_displacement_gain is None
            else safe_displacement_gain)
        err = arm.peer.check_frames(arm.q_start)
        if err > 1e-9:
            raise RuntimeError(f"{name}: pink's tip pose differs from Robot.fk by {err}")
        # pink's distances are the bench's capsule distances (same GeometryModel recipe)
        for q in qs[:3]:
            diff = float(np.abs(arm.peer.pair_distances(q) - check.capsule_distances(q)).max())
            if diff > 1e-9:
                raise RuntimeError(f"{name}: pink's pair distances differ from the bench's "
                                   f"by {diff} m")
    return arm


def draw_goals(arm: ArmSetup, count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` goals: q uniform in the limits, clear of every checked pair by
    GOAL_CLEARANCE on the meshes, σ_min ≥ sigma_warn; returns q, T_base_goal and
    their clearances."""
    robot, check = arm.robot, arm.check
    rng = np.random.default_rng((seed, sum(arm.name.encode())))
    goals: list[dict[str, Any]] = []
    draws = 0
    rejected: Counter = Counter()
    while len(goals) < count:
        draws += 1
        if draws > MAX_GOAL_DRAWS:
            raise RuntimeError(f"{arm.name}: only {len(goals)} goals in {MAX_GOAL_DRAWS} draws")
        q = robot.random_configurations(1, rng)[0]
        s = sigma_min(robot, q)
        if s < arm.params.sigma_warn:
            rejected["sigma_min < sigma_warn"] += 1
            continue
        c = check.check(q, near=GOAL_CLEARANCE)
        if c.mesh_min < GOAL_CLEARANCE:
            rejected[f"mesh clearance < {GOAL_CLEARANCE:g} m"] += 1
            continue
        goals.append({"q": q, "T": robot.fk(q), "sigma_min": s,
                      "capsule_clearance": c.capsule_min,
                      "capsule_pair": check.name(c.capsule_pair)})
    arm.notes.append(f"goals: {count} of {draws} draws kept (rejected: "
                     + ", ".join(f"{k} {v}" for k, v in rejected.items()) + ")")
    return goals


# ---------------------------------------------------------------------- closed loop
def closed_loop(arm: ArmSetup, step: Callable[[np.ndarray], tuple[np.ndarray, Any]],
                goal: np.ndarray, *, claims_acceleration: bool, delay: int = 1,
                seconds: float = GOAL_TIME) -> dict[str, Any]:
    """One run of ``step(q_measured) -> (dq, StepResult | None)`` on the plant of
    peer_loop (its ``plant_cycle``) from the arm's start toward ``goal``, every
    position checked by ``arm.check``."""
    robot, check, p = arm.robot, arm.check, arm.params
    n = robot.dof
    kin = (robot.placements, robot.axes, robot.joint_types)
    v_max = np.asarray(arm.limits.max_joint_velocity, dtype=np.float64)
    a_max = np.asarray(arm.limits.max_joint_acceleration, dtype=np.float64)
    goal = np.ascontiguousarray(goal, dtype=np.float64)
    frames = np.zeros((n + 1, 4, 4))
    J = np.zeros((6, n))
    out = np.zeros(9)
    q = arm.q_start.copy()
    probe_position(*kin, q, goal, frames, J, out)
    first = check.check(q)
    capsule_seen = [first.capsule_min]      # capsule min distance of p_0, p_1, ...
    measured = q.copy()
    dq_prev = np.zeros(n)
    cycles = int(round(seconds * RATE))
    times = np.empty(cycles)
    s: dict[str, Any] = {
        "capsule_min": first.capsule_min, "capsule_min_pair": check.name(first.capsule_pair),
        "mesh_min": first.mesh_min, "mesh_min_pair": check.name(first.mesh_pair),
        "capsule_below_stop_cycles": 0, "mesh_below_stop_cycles": 0, "penetrating_cycles": 0,
        "joint_move_cycles": 0, "sigma_min_low": out[3] if out[3] == out[3] else np.inf,
        "cycles_below_sigma_stop": 0, "velocity_violations": 0, "acceleration_violations": 0,
        "position_violations": 0, "nonfinite_commands": 0, "report_mismatches": 0,
        "report_worst_difference": 0.0, "states": Counter(),
        "below_stop_by_state": Counter()}
    below_pairs: Counter = Counter()
    penetrating_pairs: Counter = Counter()
    reached_at = None
    last = None
    perf = time.perf_counter_ns
    k = 0
    for k in range(cycles):
        t0 = perf()
        dq, res = step(measured)
        times[k] = perf() - t0
        state = "" if res is None else res.state.name
        if res is not None:
            last = res
            s["states"][state] += 1
            seen = capsule_seen[max(k - delay, 0)] if delay else capsule_seen[k]
            if res.min_distance < p.collision_influence_distance or \
                    seen < p.collision_influence_distance:
                gap = abs(res.min_distance - seen)
                s["report_worst_difference"] = max(s["report_worst_difference"], gap)
                s["report_mismatches"] += gap > REPORT_TOL
        dq = np.array(dq, dtype=np.float64)
        q_before = q.copy()
        plant_cycle(*kin, robot.lower, robot.upper, v_max, a_max, DT, goal, q, dq, dq_prev,
                    frames, J, out)
        s["nonfinite_commands"] += out[6] > 0.0
        s["velocity_violations"] += out[0] > 1.0 + LIMIT_SLACK
        s["acceleration_violations"] += out[1] > 1.0 + LIMIT_SLACK
        s["position_violations"] += out[2] > POSITION_SLACK
        joint_move = state == "JOINT_MOVE"
        s["joint_move_cycles"] += joint_move
        if not joint_move:
            s["sigma_min_low"] = min(s["sigma_min_low"], out[3])
            s["cycles_below_sigma_stop"] += out[3] < p.sigma_stop
        c = check.check(q)
        capsule_seen.append(c.capsule_min)
        if c.capsule_min < s["capsule_min"]:
            s["capsule_min"], s["capsule_min_pair"] = c.capsule_min, check.name(c.capsule_pair)
        if c.mesh_min < s["mesh_min"]:
            s["mesh_min"], s["mesh_min_pair"] = c.mesh_min, check.name(c.mesh_pair)
        s["capsule_below_stop_cycles"] += c.capsule_below_stop
        if c.mesh_below_stop:
            s["mesh_below_stop_cycles"] += 1
            s["below_stop_by_state"][state or "-"] += 1
            below_pairs.update(check.name(x) for x in c.mesh_below_stop)
        if c.penetrating:
            s["penetrating_cycles"] += 1
            penetrating_pairs.update(check.name(x) for x in c.penetrating)
        measured = q_before if delay == 1 else q.copy()
        if out[4] <= p.goal_position_tolerance and out[5] <= p.goal_orientation_tolerance:
            reached_at = (k + 1) * DT
            break
    s.update({"reached": reached_at is not None, "time": reached_at, "cycles": k + 1,
              "step_ns": times[:k + 1], "final_position_error": float(out[4]),
              "final_orientation_error": float(out[5]),
              "mesh_below_stop_pairs": dict(below_pairs),
              "penetrating_pairs": dict(penetrating_pairs),
              "at_rest": bool(np.all(dq_prev == 0.0))})
    if not claims_acceleration:
        s["acceleration_violations"] = None
    if last is not None:
        s["final_state"] = last.state.name
        s["final_reason"] = last.reason
        s["final_closest_pair"] = " – ".join(last.closest_pair)
    return s


def run_ours(arm: ArmSetup, goal: np.ndarray) -> dict[str, Any]:
    ctl = Controller(arm.robot, arm.params, scene=arm.scene)
    ctl.warm_up()       # as a user does before the first cycle (compiled already)

    def step(q_measured: np.ndarray) -> tuple[np.ndarray, Any]:
        res = ctl.step(q_measured, goal, DT)
        return res.dq_command, res

    return closed_loop(arm, step, goal, claims_acceleration=True)


def run_pink(arm: ArmSetup, goal: np.ndarray) -> dict[str, Any]:
    solve, failures = arm.peer.start(goal, arm.q_start)

    def step(q_measured: np.ndarray) -> tuple[np.ndarray, None]:
        return solve(q_measured), None

    s = closed_loop(arm, step, goal, claims_acceleration=False)
    s["qp_failures"] = failures[0]
    return s


def summarize(runs: list[dict[str, Any]], controller: str, params: ControllerParams
              ) -> dict[str, Any]:
    steps = np.concatenate([r["step_ns"] for r in runs]) * 1e-3     # [µs]
    times = [r["time"] for r in runs if r["reached"]]
    misses = [r for r in runs if not r["reached"]]

    def total(key: str) -> int | None:
        values = [r[key] for r in runs]
        return None if any(v is None for v in values) else int(sum(values))

    def merged(key: str) -> dict[str, int]:
        out: Counter = Counter()
        for r in runs:
            out.update(r[key])
        return dict(out.most_common())

    low_capsule = min(runs, key=lambda r: r["capsule_min"])
    low_mesh = min(runs, key=lambda r: r["mesh_min"])
    out = {
        "runs": len(runs), "reached": len(times),
        "reach_percent": 100.0 * len(times) / len(runs),
        "time_to_goal_median_s": float(np.median(times)) if times else None,
        "capsule_below_stop_cycles": total("capsule_below_stop_cycles"),
        "capsule_below_stop_runs": sum(r["capsule_below_stop_cycles"] > 0 for r in runs),
        "capsule_min_m": low_capsule["capsule_min"],
        "capsule_min_pair": low_capsule["capsule_min_pair"],
        "mesh_below_stop_cycles": total("mesh_below_stop_cycles"),
        "mesh_below_stop_runs": sum(r["mesh_below_stop_cycles"] > 0 for r in runs),
        "mesh_below_stop_pairs": merged("mesh_below_stop_pairs"),
        "mesh_below_stop_by_state": merged("below_stop_by_state"),
        "penetrating_cycles": total("penetrating_cycles"),
        "penetrating_runs": sum(r["penetrating_cycles"] > 0 for r in runs),
        "penetrating_pairs": merged("penetrating_pairs"),
        "mesh_min_m": low_mesh["mesh_min"] if math.isfinite(low_mesh["mesh_min"]) else None,
        "mesh_min_pair": low_mesh["mesh_min_pair"],
        "mesh_min_note": f"exact below {MESH_CHECK_DISTANCE:g} m; null: never below it",
        "sigma_min_lowest_outside_joint_move": min(r["sigma_min_low"] for r in runs),
        "cycles_below_sigma_stop_outside_joint_move": total("cycles_below_sigma_stop"),
        "joint_move_cycles": total("joint_move_cycles"),
        "position_violation_cycles": total("position_violations"),
        "velocity_violation_cycles": total("velocity_violations"),
        "acceleration_violation_cycles": total("acceleration_violations"),
        "nonfinite_commands": total("nonfinite_commands"),
        "cycles": int(steps.size),
        "step_us": percentiles(steps),
    }
    if controller == "ours":
        out["min_distance_report_mismatch_cycles"] = total("report_mismatches")
        out["min_distance_report_worst_difference_m"] = max(r["report_worst_difference"]
                                                            for r in runs)
        out["misses_by_final_state"] = dict(Counter(r["final_state"] for r in misses))
        out["states"] = merged("states")
    else:
        out["qp_failures"] = total("qp_failures")
    out["misses_at_rest"] = sum(r["at_rest"] for r in misses)
    return out


# ---------------------------------------------------------------------- per-cycle cost
def measure_cost(arm: ArmSetup, cycles: int) -> dict[str, Any]:
    """Controller.step (scene + self-collision) and pair_distances alone along
    bench_controller's moving target on ``arm``; and Controller.step without collision
    geometry on the same positions for reference."""
    from bench.bench_controller import ARMS as CONTROLLER_ARMS
    from bench.bench_controller import trajectory
    from jacobian_ik.kernels import distance as D
    from jacobian_ik.kernels import fk_frames
    from jacobian_ik.kernels.layout import python_geo_views
    robot, params = arm.robot, arm.params
    q0 = CONTROLLER_ARMS[arm.name][0]
    targets = [trajectory(robot, q0, k) for k in range(cycles)]
    record = Controller(robot, params, scene=arm.scene)
    record.warm_up()
    qs = np.empty((cycles, robot.dof))
    dq_ref = np.empty((cycles, robot.dof))
    states: Counter = Counter()
    rows_active = 0
    q = q0.copy()
    low = np.inf
    for k in range(cycles):
        qs[k] = q
        res = record.step(q, targets[k], DT)
        dq_ref[k] = res.dq_command
        states[res.state.name] += 1
        rows_active += "collision" in res.limited
        low = min(low, res.min_distance)
        q = q + res.dq_command * DT
    ours = Controller(robot, params, scene=arm.scene)
    bare = Controller(robot, params, collision=False)
    ours.warm_up()
    bare.warm_up()
    geo, pairs = ours._geometry
    views = python_geo_views(geo, robot.dof)
    # copies: the timed kernel calls must not write into the controller's buffer
    caps, world, obstacles, dist = (np.array(views[key])
                                    for key in ("caps", "world", "obstacles", "dist"))
    cutoff = params.collision_influence_distance
    frames = np.zeros((robot.dof + 1, 4, 4))
    kin = (robot.placements, robot.axes, robot.joint_types)
    keys = ("step", "bare", "kernel", "kernel_exact", "kernel_with_transform")
    times = {key: np.empty(cycles) for key in keys}
    diff = 0.0
    perf = time.perf_counter_ns
    pair_distances, to_base = D.pair_distances, D.capsules_to_base
    fk_frames(*kin, qs[0], frames)
    to_base(frames, caps, world)
    pair_distances(world, obstacles, pairs, cutoff, dist)   # compiled by warm_up already
    for start in range(0, cycles, COST_BLOCK):
        span = range(start, min(start + COST_BLOCK, cycles))
        for k in span:
            t0 = perf()
            res = ours.step(qs[k], targets[k], DT)
            times["step"][k] = perf() - t0
            diff = max(diff, float(np.abs(res.dq_command - dq_ref[k]).max()))
        for k in span:
            t0 = perf()
            bare.step(qs[k], targets[k], DT)
            times["bare"][k] = perf() - t0
        for k in span:
            fk_frames(*kin, qs[k], frames)
            t0 = perf()
            to_base(frames, caps, world)
            pair_distances(world, obstacles, pairs, cutoff, dist)
            t1 = perf()
            pair_distances(world, obstacles, pairs, cutoff, dist)
            t2 = perf()
            pair_distances(world, obstacles, pairs, math.inf, dist)
            t3 = perf()
            times["kernel_with_transform"][k] = t1 - t0
            times["kernel"][k] = t2 - t1
            times["kernel_exact"][k] = t3 - t2
    us = {key: percentiles(t * 1e-3) for key, t in times.items()}
    return {"arm": arm.name, "cycles": cycles, "obstacles": len(arm.check.obstacles),
            "pairs": int(len(pairs)), "self_pairs": int(np.sum(pairs[:, 1] >= 0)),
            "states": dict(states), "cycles_with_collision_rows_active": rows_active,
            "min_distance_along_path_m": low,
            "controller_step_us": us["step"], "controller_step_no_collision_us": us["bare"],
            "collision_overhead_p50_us": us["step"]["p50"] - us["bare"]["p50"],
            "pair_distances_us": us["kernel"],
            "pair_distances_cutoff_m": cutoff,
            "pair_distances_all_exact_us": us["kernel_exact"],
            "capsules_to_base_and_pair_distances_us": us["kernel_with_transform"],
            "max_dq_difference": diff}


# ---------------------------------------------------------------------- report
def fmt(x: float | None, spec: str = ".4f") -> str:
    return "–" if x is None else format(x, spec)


def print_tables(summary: dict[str, dict[str, dict[str, Any]]], both: dict[str, Any],
                 cost: dict[str, Any] | None, params: ControllerParams) -> str:
    stop = params.collision_stop_distance
    header = ["arm", "controller",
              f"reached (of goals whose q has capsule clearance ≥ {stop:g} m)",
              "median time to goal [s] (both reached)",
              f"cycles (runs) capsule d < {stop:g} m", "lowest capsule d [m] (pair)",
              f"cycles (runs) mesh d < {stop:g} m", "penetrating cycles (runs)",
              "lowest mesh d [m]",
              f"lowest σ_min outside JOINT_MOVE (cycles < {params.sigma_stop:g})",
              "position / velocity / acceleration violations", "per cycle mean / p50 / p99 [µs]"]
    rows = []
    for arm, per in summary.items():
        for c, s in per.items():
            b = both.get(arm, {})
            t_both = b.get(f"{c}_median_s")
            acc = "n/a" if s["acceleration_violation_cycles"] is None \
                else str(s["acceleration_violation_cycles"])
            us = s["step_us"]
            rows.append([
                arm, c, f"{s['reach_percent']:.0f} % ({s['reached']}/{s['runs']}; "
                f"{s.get('reached_of_capsule_feasible', '–')}/"
                f"{s.get('capsule_feasible_goals', '–')})",
                f"{fmt(s['time_to_goal_median_s'], '.2f')} ({fmt(t_both, '.2f')})",
                f"{s['capsule_below_stop_cycles']} ({s['capsule_below_stop_runs']})",
                f"{s['capsule_min_m']:.4f} ({s['capsule_min_pair']})",
                f"{s['mesh_below_stop_cycles']} ({s['mesh_below_stop_runs']})",
                f"{s['penetrating_cycles']} ({s['penetrating_runs']})",
                f"≥ {MESH_CHECK_DISTANCE:g}" if s["mesh_min_m"] is None
                else f"{s['mesh_min_m']:.4f} ({s['mesh_min_pair']})",
                f"{s['sigma_min_lowest_outside_joint_move']:.4f} "
                f"({s['cycles_below_sigma_stop_outside_joint_move']})",
                f"{s['position_violation_cycles']} / {s['velocity_violation_cycles']} / {acc}",
                f"{us['mean']:.1f} / {us['p50']:.1f} / {us['p99']:.1f}"])
    lines = [markdown_table(header, rows), ""]
    for arm, b in both.items():
        if "ratio_mean" in b:
            lines.append(f"{arm}: pink / ours per-cycle time mean {b['ratio_mean']:.1f}×, p50 "
                         f"{b['ratio_p50']:.1f}× (target ≥ {TARGET_RATIO:g}×); time to goal on "
                         f"the {b['goals']} goals both reach: ours / pink median "
                         f"{fmt(b.get('time_ratio'), '.2f')}")
    if cost is not None:
        o, z, k = cost["controller_step_us"], cost["controller_step_no_collision_us"], \
            cost["pair_distances_us"]
        lines += ["", markdown_table(
            ["arm (scene)", "pairs", "Controller.step p50 / p99 [µs]",
             "without collision geometry p50 / p99 [µs]", "pair_distances p50 / p99 [µs]",
             "cycles with collision rows active", "max |Δdq| vs recorded"],
            [[f"{cost['arm']} ({cost['obstacles']} obstacles + self)", str(cost["pairs"]),
              f"{o['p50']:.1f} / {o['p99']:.1f} (target p50 ≤ {TARGET_STEP_P50_US:g})",
              f"{z['p50']:.1f} / {z['p99']:.1f}",
              f"{k['p50']:.2f} / {k['p99']:.2f} (target p50 ≤ {TARGET_KERNEL_P50_US:g})",
              f"{cost['cycles_with_collision_rows_active']} of {cost['cycles']}",
              f"{cost['max_dq_difference']:.1e}"]])]
    text = "\n".join(lines)
    print()
    print(text)
    return text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goals", type=int, default=GOALS, help=f"goals per arm ({GOALS})")
    parser.add_argument("--seed", type=int, default=GOAL_SEED)
    parser.add_argument("--arm", dest="arms", action="append", choices=ARM_NAMES)
    parser.add_argument("--only", choices=CONTROLLERS, default=None)
    parser.add_argument("--cost-cycles", type=int, default=COST_CYCLES,
                        help="cycles of the per-cycle cost replay (0: skip)")
    parser.add_argument("--misses", action="store_true", help="list each miss")
    parser.add_argument("--pink-safe-displacement-gain", type=float, default=None,
                        help="pink's SelfCollisionBarrier safe_displacement_gain "
                             "(default 0, see bench/peer_pink_collisions.py; pink's own: 1)")
    parser.add_argument("--out", default=None,
                        help="name of the results file under bench/results/ (default: "
                             "collisions, or none for a partial run)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    arms = args.arms or list(ARM_NAMES)
    controllers = [args.only] if args.only else list(CONTROLLERS)
    params = ControllerParams()
    if params.control_rate != RATE:
        raise ValueError(f"control_rate must be {RATE:g} Hz")
    t_start = time.perf_counter()
    setups: dict[str, ArmSetup] = {}
    for name in arms:
        arm = setups[name] = setup_arm(name, params, "pink" in controllers,
                                       args.pink_safe_displacement_gain)
        arm.goals = draw_goals(arm, args.goals, args.seed)
        clear = sum(g["capsule_clearance"] >= params.collision_stop_distance for g in arm.goals)
        arm.notes.append(f"goals whose configuration's capsule clearance is ≥ the stop "
                         f"distance: {clear} of {len(arm.goals)}")
        n_self = int(np.sum(arm.check.pairs[:, 1] >= 0))
        print(f"{name}: {arm.robot!r}, {len(arm.check.caps)} capsules, "
              f"{len(arm.check.pairs)} checked pairs ({n_self} self), scene "
              f"{', '.join(arm.check.obstacle_names)}", flush=True)
        for note in arm.notes:
            print(f"  {note}", flush=True)
    settings = {name: arm.peer.settings() for name, arm in setups.items() if arm.peer}
    if settings:
        first = next(iter(settings.values()))
        print("pink:", first["pink"], first["qp_solver"], "barrier", first["barrier"],
              flush=True)

    summary: dict[str, dict[str, dict[str, Any]]] = {}
    both: dict[str, Any] = {}
    misses: dict[str, Any] = {}
    for name, arm in setups.items():
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in controllers}
        for k, g in enumerate(arm.goals):
            if "ours" in controllers:
                runs["ours"].append(run_ours(arm, g["T"]))
            if "pink" in controllers:
                runs["pink"].append(run_pink(arm, g["T"]))
            if (k + 1) % 10 == 0:
                print(f"  {name}: {k + 1} of {len(arm.goals)} goals "
                      f"({time.perf_counter() - t_start:.0f} s)", flush=True)
        summary[name] = {c: summarize(runs[c], c, params) for c in controllers}
        feasible = [k for k, g in enumerate(arm.goals)
                    if g["capsule_clearance"] >= params.collision_stop_distance]
        for c in controllers:
            summary[name][c]["capsule_feasible_goals"] = len(feasible)
            summary[name][c]["reached_of_capsule_feasible"] = sum(
                runs[c][k]["reached"] for k in feasible)
            summary[name][c]["reached_of_capsule_infeasible"] = sum(
                r["reached"] for k, r in enumerate(runs[c]) if k not in feasible)
        misses[name] = {c: [{"goal": k, "capsule_clearance_of_goal_q":
                             arm.goals[k]["capsule_clearance"],
                             **{key: r.get(key) for key in
                                ("final_state", "final_reason", "final_closest_pair",
                                 "final_position_error", "final_orientation_error", "at_rest",
                                 "qp_failures")}}
                            for k, r in enumerate(runs[c]) if not r["reached"]]
                        for c in controllers}
        if args.misses:
            for c in controllers:
                for m in misses[name][c]:
                    print(f"  {name} {c} goal {m['goal']}: {m}")
        if len(controllers) == 2:
            ours, pink = summary[name]["ours"], summary[name]["pink"]
            common = [k for k in range(len(arm.goals))
                      if runs["ours"][k]["reached"] and runs["pink"][k]["reached"]]
            t_o = [runs["ours"][k]["time"] for k in common]
            t_p = [runs["pink"][k]["time"] for k in common]
            both[name] = {
                "goals": len(common),
                "ours_median_s": float(np.median(t_o)) if common else None,
                "pink_median_s": float(np.median(t_p)) if common else None,
                "time_ratio": float(np.median(t_o) / np.median(t_p)) if common else None,
                "ratio_mean": pink["step_us"]["mean"] / ours["step_us"]["mean"],
                "ratio_p50": pink["step_us"]["p50"] / ours["step_us"]["p50"],
                "ratio_p99": pink["step_us"]["p99"] / ours["step_us"]["p99"]}
        print(f"{name}: " + ", ".join(f"{c} {summary[name][c]['reach_percent']:.0f} %"
                                      for c in controllers)
              + f" ({time.perf_counter() - t_start:.0f} s)", flush=True)

    cost = None
    if args.cost_cycles and "panda" in setups and "ours" in controllers:
        cost = measure_cost(setups["panda"], args.cost_cycles)
    print_tables(summary, both, cost, params)
    elapsed = time.perf_counter() - t_start
    print(f"\n{elapsed:.0f} s, {args.goals} goals per arm")

    out = args.out
    if out is None and not args.arms and not args.only:
        out = "collisions"
    if out:
        result = {
            "benchmark": "bench_collisions", "rate_hz": RATE, "goal_time_s": GOAL_TIME,
            "measurement_delay_cycles": 1, "goals_per_arm": args.goals, "seed": args.seed,
            "goal_clearance_m": GOAL_CLEARANCE, "mesh_check_distance_m": MESH_CHECK_DISTANCE,
            "params": params.to_dict(),
            "arms": {name: {
                "urdf": str(Path(arm.urdf_path).relative_to(bundled.share_dir()))
                if Path(arm.urdf_path).is_relative_to(bundled.share_dir()) else arm.urdf_path,
                "start": arm.q_start.tolist(),
                "scene": {nm: row.tolist() for nm, row in
                          zip(arm.check.obstacle_names, arm.check.obstacles)},
                "capsules": {nm: row.tolist() for nm, row in
                             zip(arm.check.cap_names, arm.check.caps)},
                "pairs": [" – ".join(pn) for pn in arm.check.pair_names],
                "self_pairs": int(len(arm.check.pairs) - sum(1 for i, j in arm.check.pairs
                                                             if j < 0)),
                "mesh_links": arm.check.mesh_links, "notes": arm.notes,
                "goal_capsule_clearance_m": [g["capsule_clearance"] for g in arm.goals]}
                for name, arm in setups.items()},
            "peer": {"name": "pink", "geometry": "the controller's capsules and the scene's "
                     "primitives (not the meshes)", "settings": settings},
            "targets": {"penetrating_cycles_ours": 0, "capsule_below_stop_cycles_ours": 0,
                        "sigma_min_outside_joint_move_ours": f">= sigma_stop {params.sigma_stop}",
                        "joint_limit_violations": 0, "cost_ratio": f">= {TARGET_RATIO}",
                        "controller_step_p50_us": TARGET_STEP_P50_US,
                        "pair_distances_p50_us": TARGET_KERNEL_P50_US},
            "summary": summary, "both_reached": both, "misses": misses, "cost": cost,
            "elapsed_s": elapsed}
        path = write_results(out, result)
        print(f"written {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
