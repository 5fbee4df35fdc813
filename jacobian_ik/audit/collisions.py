"""``jacobian-ik audit --collisions``: how much of the sampled joint space the
controller's collision checks rule out.

For the configurations the audit samples (all of them, as the σ_min statistics
see them) it computes the distance of every pair the controller checks: the self
pairs of the robot's collision model (``collision.model.default_model``, the
model the controller builds for the robot) and, with ``--scene FILE``, every
capsule that moves with a joint against every obstacle of the scene
(``Controller.set_scene``'s pairs, in its order).  Distances are the
controller's own kernels (``kernels.distance.pair_distances`` on the capsules
placed by ``capsules_to_base``), batched over the samples in parallel
(``kernels.batch_distance.batch_pair_distances``).

Reported shares of the samples:

``self_collision_fraction``  some self pair at distance ≤ 0 (capsules touch or
                             overlap);
``collision_fraction``       some checked pair (self or scene) at distance ≤ 0;
``within_stop_fraction``     some checked pair closer than the controller's
                             ``collision_stop_distance`` [m] (the parameter
                             file's, else the default 0.01 m): where the
                             controller would refuse to be;

and the pairs most often closer than the stop distance, with their shares.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from jacobian_ik.errors import ConfigurationError, SceneError

if TYPE_CHECKING:
    from jacobian_ik.audit.source import AuditTarget
    from jacobian_ik.collision.model import CollisionModel
    from jacobian_ik.collision.scene import Scene
    from jacobian_ik.robot import Robot

#: Pairs listed in the report (those most often within the stop distance).
TOP_PAIRS = 5

#: Configurations whose pair distances are held at once (bounds the memory to
#: SUB_BLOCK × pairs × 8 bytes).
SUB_BLOCK = 8192

#: Samples per parallel task of the distance kernel.
CHUNK = 512


@dataclass(frozen=True)
class CollisionGeometry:
    """What is checked: capsules, obstacles and pairs in the ``kernels.distance``
    layouts (writable float64 / int64 copies), and the stop distance.

    ``pairs`` Shape (P, 2): the ``self_pairs`` self pairs first, then the scene
    pairs; ``pair_names`` the two names of each (link, link or obstacle).
    """

    caps: np.ndarray            # Shape (G, 8)
    obstacles: np.ndarray       # Shape (O, 16)
    pairs: np.ndarray           # Shape (P, 2) int64
    self_pairs: int
    pair_names: tuple[tuple[str, str], ...]
    obstacle_names: tuple[str, ...]
    scene: str | None           # the scene file as given, None without --scene
    stop_distance: float        # [m]
    stop_source: str            # where stop_distance came from


def checked_pairs(model: CollisionModel, obstacles: int) -> np.ndarray:
    """The controller's pairs (``Controller.set_scene``): every self pair of
    ``model``, then every capsule that moves with a joint against each of
    ``obstacles`` obstacles (j = −1 − obstacle index). Shape (P, 2) int64."""
    self_pairs = np.asarray(model.self_pairs, dtype=np.int64).reshape(-1, 2)
    moving = [i for i in range(len(model.caps)) if model.caps[i, 0] >= 0.0]
    scene_pairs = np.array([(i, -1 - o) for i in moving for o in range(obstacles)],
                           dtype=np.int64).reshape(-1, 2)
    return np.ascontiguousarray(np.concatenate([self_pairs, scene_pairs]))


def pair_names(model: CollisionModel, obstacle_names: Sequence[str],
               pairs: np.ndarray) -> tuple[tuple[str, str], ...]:
    """(name, name) of each pair: capsule i's link, then capsule j's link or the
    obstacle −1 − j."""
    names = model.names
    return tuple((names[i], names[j] if j >= 0 else obstacle_names[-1 - j])
                 for i, j in pairs.tolist())


def load_scene(path: str, base_link: str) -> Scene:
    """The scene file ``path``; SceneError when it cannot be read or used, or when
    its ``frame`` is not the chain's ``base_link`` (the node's rule)."""
    from jacobian_ik.collision.scene import Scene

    scene = Scene.from_yaml(path)
    frame = Scene.frame_of(path)
    if frame is not None and frame != base_link:
        raise SceneError(f"scene file '{path}' is written in frame '{frame}'; it must be "
                         f"the chain's base frame '{base_link}'")
    return scene


def controller_stop_distance(config: str | None, node: str | None) -> tuple[float, str]:
    """(collision_stop_distance [m], its source): the parameter file's value,
    validated as the controller validates it, else ``ControllerParams``'
    default (0.01 m)."""
    from jacobian_ik.audit.rosparams import node_parameters
    from jacobian_ik.params import ControllerParams

    default = ControllerParams().collision_stop_distance, "ControllerParams defaults"
    if config is None:
        return default
    parameters = node_parameters(config, node)
    if "collision_stop_distance" not in parameters:
        return default
    fields = {f.name for f in dataclasses.fields(ControllerParams)}
    try:
        checked = ControllerParams.from_dict(
            {key: value for key, value in parameters.items() if key in fields})
    except ConfigurationError as exc:
        raise ConfigurationError(f"{config}: {exc}", parameter=exc.parameter,
                                 value=exc.value, valid_range=exc.valid_range) from None
    return checked.collision_stop_distance, config


def collision_geometry(target: AuditTarget, scene_path: str | None = None,
                       node: str | None = None) -> CollisionGeometry:
    """The pairs the controller checks for ``target``'s robot (with the obstacles of
    the scene file ``scene_path``) and its stop distance; ConfigurationError when
    the robot has no collision geometry, SceneError for an unusable scene file."""
    from jacobian_ik.collision.model import default_model

    robot = target.robot
    scene = None if scene_path is None else load_scene(scene_path, robot.base_link)
    model = default_model(robot)
    if model is None:
        raise ConfigurationError(
            f"--collisions: robot '{target.source}' has no collision geometry (no "
            f"<collision> element on the links of its chain {robot.base_link} -> "
            f"{robot.tip_link})")
    obstacles = np.zeros((0, 16)) if scene is None \
        else np.array(scene.array(), dtype=np.float64).reshape(-1, 16)
    obstacle_names = () if scene is None else tuple(scene.names)
    pairs = checked_pairs(model, len(obstacles))
    distance, source = controller_stop_distance(target.config, node)
    return CollisionGeometry(
        caps=np.array(model.caps, dtype=np.float64), obstacles=obstacles, pairs=pairs,
        self_pairs=len(model.self_pairs), pair_names=pair_names(model, obstacle_names, pairs),
        obstacle_names=obstacle_names, scene=scene_path, stop_distance=float(distance),
        stop_source=source)


class CollisionCounter:
    """Counts, block by block, the samples in collision or within the stop distance
    and how often each pair is (``add`` is ``sweep``'s ``on_block``)."""

    def __init__(self, robot: Robot, geometry: CollisionGeometry) -> None:
        self.robot = robot
        self.geometry = geometry
        pairs = len(geometry.pairs)
        self.samples = 0
        self.self_collisions = 0          # samples with a self pair at d <= 0
        self.collisions = 0               # samples with any pair at d <= 0
        self.within_stop = 0              # samples with any pair at d < stop distance
        self.pair_contact = np.zeros(pairs, dtype=np.int64)
        self.pair_within_stop = np.zeros(pairs, dtype=np.int64)
        self.seconds = 0.0
        self._dist = np.empty((SUB_BLOCK, pairs))
        self._distances(np.ascontiguousarray(robot.q_mid.reshape(1, -1)))  # compile first

    def _distances(self, q: np.ndarray) -> np.ndarray:
        """Pair distances [m] of configurations ``q`` Shape (c, n), c <= SUB_BLOCK:
        exact up to the stop distance, a lower bound above it. Shape (c, P)."""
        from jacobian_ik.kernels.batch_distance import batch_pair_distances

        g, robot = self.geometry, self.robot
        dist = self._dist[:len(q)]
        batch_pair_distances(robot.placements, robot.axes, robot.joint_types, q, g.caps,
                             g.obstacles, g.pairs, g.stop_distance, CHUNK, dist)
        return dist

    def add(self, q: np.ndarray) -> None:
        """Count the configurations ``q`` Shape (count, n) [rad | m]."""
        start = time.perf_counter()
        for first in range(0, len(q), SUB_BLOCK):
            self._count(self._distances(np.ascontiguousarray(q[first:first + SUB_BLOCK])))
        self.seconds += time.perf_counter() - start

    def _count(self, dist: np.ndarray) -> None:
        """Fold the distances [m] Shape (c, P) of c configurations into the counts."""
        contact = dist <= 0.0
        near = dist < self.geometry.stop_distance
        self.samples += len(dist)
        self.self_collisions += int(np.count_nonzero(
            contact[:, :self.geometry.self_pairs].any(axis=1)))
        self.collisions += int(np.count_nonzero(contact.any(axis=1)))
        self.within_stop += int(np.count_nonzero(near.any(axis=1)))
        self.pair_contact += contact.sum(axis=0)
        self.pair_within_stop += near.sum(axis=0)

    def top_pairs(self, count: int = TOP_PAIRS) -> list[dict]:
        """The ``count`` pairs most often within the stop distance (then most often in
        contact, then in pair order), of those ever within it or in contact."""
        total = max(self.samples, 1)
        order = sorted((p for p in range(len(self.pair_contact))
                        if self.pair_within_stop[p] or self.pair_contact[p]),
                       key=lambda p: (-self.pair_within_stop[p], -self.pair_contact[p], p))
        g = self.geometry
        return [{"pair": list(g.pair_names[p]),
                 "kind": "self" if p < g.self_pairs else "scene",
                 "within_stop_fraction": int(self.pair_within_stop[p]) / total,
                 "collision_fraction": int(self.pair_contact[p]) / total}
                for p in order[:count]]

    def report(self) -> dict:
        """The report's ``collisions`` block (docs/audit.md)."""
        from jacobian_ik.audit.source import display_path

        g = self.geometry
        total = max(self.samples, 1)
        return {
            "stop_distance": g.stop_distance,
            "stop_distance_source": g.stop_source,
            "scene": None if g.scene is None else display_path(g.scene),
            "obstacles": list(g.obstacle_names),
            "capsules": len(g.caps),
            "self_pairs": g.self_pairs,
            "scene_pairs": len(g.pairs) - g.self_pairs,
            "self_collision_fraction": self.self_collisions / total,
            "collision_fraction": self.collisions / total,
            "within_stop_fraction": self.within_stop / total,
            "top_pairs": self.top_pairs(),
            "seconds": self.seconds,
        }
