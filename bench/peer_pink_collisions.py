"""The peer of the collision benchmark: pink with its collision barrier, on our capsules.

pink (pin-pink) has one barrier for distances between geometries,
``pink.barriers.SelfCollisionBarrier``: one control-barrier row
``ḋ_k ≥ −γ (d_k − d_min)`` for each of the ``n_collision_pairs`` nearest collision
pairs of the pinocchio ``GeometryModel`` given to ``pink.Configuration``, the
distances and closest points from ``pinocchio.computeDistances`` (coal), recomputed
by ``Configuration.update`` every cycle.  It has no separate obstacle barrier, so
the obstacles are geometry objects attached to the universe joint and the pairs
robot capsule × obstacle sit in the same GeometryModel; the barrier's Jacobian row
of an obstacle side is then zero (the universe joint does not move), which is
exactly a static obstacle.

Geometry (``capsule_geometry``): the controller's own collision model
(``Controller.collision_model``: one capsule per link, in its chain frame) as
``coal.Capsule`` objects on the pinocchio joints of the same chain frames, the
scene's obstacles as coal primitives (Sphere, Box, Cylinder, Halfspace) at their
base-frame poses, and the same pairs the controller checks (its self pairs, then
every capsule that moves with a joint × every obstacle), in the same order.  pink's
barrier docs warn that non-smooth geometry (meshes) gives undefined behaviour, so
the smooth capsules are what it is meant for, and it measures the same distances as
ours.

Everything else is ``bench.peer_pink.PinkPeer`` (bench_peer's peer): FrameTask cost
1 with gain 3/s scaled to the same Cartesian speed caps, PostureTask 1e-3,
ConfigurationLimit (pink's default gain 0.5) + VelocityLimit with our velocity
limits, daqp.  Barrier settings: d_min = collision_stop_distance and gain =
collision_gain (the same safety distance and the same approach rate, the two
parameters with the meaning of ours), ``n_collision_pairs`` = the controller's
MAX_COLLISION_ROWS (16, the most collision rows ours puts in one QP; fewer rows than
pairs make pink's Python Jacobian loop cheaper, so this favours pink's time per
cycle), and ``safe_displacement_gain`` 0 (the base Barrier's default; pink's
SelfCollisionBarrier defaults to 1.0).  That term adds ``(gain/‖J_h‖²)·‖Δq‖²`` to the
QP's cost in units of the per-cycle displacement Δq, so its weight against the
tasks grows with the control rate: at 500 Hz pink's 1.0 holds the arm back so much
that it reached none of the first goals of the Panda set in 10 s (with 0, most of
them).  ``bench_collisions --pink-safe-displacement-gain 1`` runs pink's default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from bench.peer_loop import DT
from bench.peer_pink import QP_SOLVER, PinkPeer, capped_gain
from jacobian_ik.params import ControllerParams, JointLimits
from jacobian_ik.robot import Robot

#: ``safe_displacement_gain`` of the barrier (pink's SelfCollisionBarrier default: 1.0;
#: see the module docstring).
SAFE_DISPLACEMENT_GAIN = 0.0

#: Scene row types (``Scene.array()``): sphere, box, cylinder, half-space.
SPHERE, BOX, CYLINDER, HALFSPACE = 0, 1, 2, 3


def _segment_placement(pin: Any, a: np.ndarray, b: np.ndarray) -> tuple[Any, float]:
    """(SE3 whose z axis runs along a → b, centred between them; segment length [m])."""
    axis = b - a
    length = float(np.linalg.norm(axis))
    z = axis / length if length > 1e-12 else np.array([0.0, 0.0, 1.0])
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    R = np.column_stack([x, np.cross(z, x), z])
    return pin.SE3(R, 0.5 * (a + b)), length


def obstacle_shape(row: np.ndarray) -> Any:
    """The coal shape of one ``Scene.array()`` row (in the row's own frame R, p)."""
    import coal
    kind = int(row[0])
    dims = row[13:16]
    if kind == SPHERE:
        return coal.Sphere(float(dims[0]))
    if kind == BOX:
        return coal.Box(*(2.0 * dims))                         # half extents → full
    if kind == CYLINDER:
        return coal.Cylinder(float(dims[0]), 2.0 * float(dims[1]))  # half length → full
    if kind == HALFSPACE:
        return coal.Halfspace(np.array([0.0, 0.0, 1.0]), 0.0)  # z ≤ 0 in its frame
    raise ValueError(f"unknown obstacle type {kind}")


def obstacle_pose(row: np.ndarray) -> np.ndarray:
    """T_base_obstacle (4, 4) of one ``Scene.array()`` row."""
    T = np.eye(4)
    T[:3, :3] = row[1:10].reshape(3, 3)
    T[:3, 3] = row[10:13]
    return T


class ChainFrames:
    """Where the chain frames of ``Robot`` sit in a pinocchio model of the same URDF:
    frame i < n is joint i's frame, frame n the tip link, frame −1 the base link."""

    def __init__(self, pin: Any, model: Any, robot: Robot) -> None:
        self.joints = [model.getJointId(name) for name in robot.joint_names]
        base = model.frames[model.getFrameId(robot.base_link)]
        tip = model.frames[model.getFrameId(robot.tip_link)]
        if tip.parentJoint != self.joints[-1]:
            raise RuntimeError(f"{robot.tip_link} does not move with the last chain joint")
        self.base_joint = int(base.parentJoint)
        self.base_placement = base.placement.homogeneous.copy()   # in base_joint's frame
        self.tip_placement = tip.placement.homogeneous.copy()     # in the last joint's frame
        self.n = robot.dof

    def attach(self, frame: int) -> tuple[int, np.ndarray]:
        """(pinocchio joint, placement of chain frame ``frame`` in that joint's frame)."""
        if frame < 0:
            return self.base_joint, self.base_placement
        if frame < self.n:
            return self.joints[frame], np.eye(4)
        return self.joints[-1], self.tip_placement


def capsule_geometry(model: Any, robot: Robot, caps: np.ndarray, names: Sequence[str],
                     obstacles: np.ndarray, obstacle_names: Sequence[str],
                     pairs: np.ndarray, T_world_base: np.ndarray) -> Any:
    """A pinocchio GeometryModel of the capsules ``caps`` (rows [frame, a, b, r] in
    chain frames), the obstacles (``Scene.array()`` rows, base frame) on the universe
    joint, and one collision pair per row of ``pairs`` ((i, j): capsules i, j for
    j ≥ 0, capsule i and obstacle −1 − j for j < 0), in that order."""
    import coal
    import pinocchio as pin
    frames = ChainFrames(pin, model, robot)
    geom = pin.GeometryModel()
    for name, row in zip(names, caps):
        joint, T_joint_frame = frames.attach(int(row[0]))
        local, length = _segment_placement(pin, row[1:4], row[4:7])
        shape = coal.Capsule(float(row[7]), length) if length > 1e-12 \
            else coal.Sphere(float(row[7]))
        geom.addGeometryObject(pin.GeometryObject(
            f"capsule:{name}", joint, pin.SE3(T_joint_frame) * local, shape))
    for name, row in zip(obstacle_names, obstacles):
        placement = pin.SE3(T_world_base @ obstacle_pose(row))
        geom.addGeometryObject(pin.GeometryObject(f"obstacle:{name}", 0, placement,
                                                  obstacle_shape(row)))
    G = len(caps)
    for i, j in np.asarray(pairs, dtype=np.int64).reshape(-1, 2).tolist():
        geom.addCollisionPair(pin.CollisionPair(i, j if j >= 0 else G + (-1 - j)))
    return geom


class PinkCollisionPeer(PinkPeer):
    """bench_peer's pink set-up plus SelfCollisionBarrier over the controller's capsules
    and the scene; ``start(goal, start)`` returns the per-cycle step function."""

    def __init__(self, robot: Robot, urdf_path: str, params: ControllerParams,
                 joint_limits: JointLimits, caps: np.ndarray, names: Sequence[str],
                 obstacles: np.ndarray, obstacle_names: Sequence[str], pairs: np.ndarray,
                 barrier_rows: int, safe_displacement_gain: float = SAFE_DISPLACEMENT_GAIN
                 ) -> None:
        super().__init__(robot, urdf_path, params, joint_limits)
        from pink.barriers import SelfCollisionBarrier
        pin = self._pin
        q0 = np.array(robot.q_mid)
        pin.framesForwardKinematics(self.model, self.data, q0)
        T_world_base = self._T_world_base(q0)
        self.geometry = capsule_geometry(self.model, robot, caps, names, obstacles,
                                         obstacle_names, pairs, T_world_base)
        self.pairs = int(len(self.geometry.collisionPairs))
        self.barrier_rows = min(barrier_rows, self.pairs)
        self.barrier = SelfCollisionBarrier(
            n_collision_pairs=self.barrier_rows, gain=params.collision_gain,
            safe_displacement_gain=safe_displacement_gain,
            d_min=params.collision_stop_distance)

    def settings(self) -> dict:
        out = super().settings()
        out["barrier"] = {
            "class": "pink.barriers.SelfCollisionBarrier", "pairs_in_model": self.pairs,
            "n_collision_pairs": self.barrier_rows, "gain_1_per_s": self.barrier.gain[0],
            "d_min_m": self.barrier.d_min,
            "safe_displacement_gain": self.barrier.safe_displacement_gain,
            "geometry": "the controller's capsules (coal.Capsule) and the scene's "
                        "primitives (coal Sphere/Box/Cylinder/Halfspace) on the universe "
                        "joint, the controller's pairs"}
        return out

    def pair_distances(self, q: ArrayLike) -> np.ndarray:
        """coal distance [m] of every pair of the peer's GeometryModel at q."""
        pin = self._pin
        data = self.model.createData()
        gdata = pin.GeometryData(self.geometry)
        pin.computeDistances(self.model, data, self.geometry, gdata,
                             np.asarray(q, dtype=np.float64))
        return np.array([r.min_distance for r in gdata.distanceResults])

    def start(self, goal: np.ndarray, start: ArrayLike
              ) -> tuple[Callable[[np.ndarray], np.ndarray], list[int]]:
        """(step(q_measured) -> dq, [QP failures so far]) for one run toward ``goal``
        (T_base_goal) from ``start``."""
        pin, pink = self._pin, self._pink
        p = self.params
        start = np.array(start, dtype=np.float64)
        T_world_goal = self._T_world_base(start) @ goal
        self.frame_task.set_target(pin.SE3(T_world_goal[:3, :3].copy(),
                                           T_world_goal[:3, 3].copy()))
        self.posture_task.set_target(start)
        configuration = pink.Configuration(self.model, self.data, start,
                                           collision_model=self.geometry,
                                           collision_data=pin.GeometryData(self.geometry))
        tasks = [self.frame_task, self.posture_task]
        barriers = [self.barrier]
        frame_task, limits, no_solution = self.frame_task, self.limits, self._no_solution
        gain, rate = self.gain, 1.0 / DT
        v_lin, v_ang = p.max_linear_speed, p.max_angular_speed
        failures = [0]
        zero = np.zeros(self.robot.dof)

        def step(q_measured: np.ndarray) -> np.ndarray:
            configuration.update(q_measured)
            frame_task.gain = capped_gain(frame_task.compute_error(configuration), gain, rate,
                                          v_lin, v_ang)
            try:
                return pink.solve_ik(configuration, tasks, DT, solver=QP_SOLVER, limits=limits,
                                     barriers=barriers, safety_break=False)
            except no_solution:
                failures[0] += 1
                return zero

        return step, failures
