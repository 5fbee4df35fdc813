"""Which pairs of a collision model are not checked, found by sampling (no SRDF given).

For every pair of geometries, in this order:

``Adjacent``  the two links are joined by one joint of the URDF tree, counting
              through links without geometry (a link without geometry joins all
              its neighbours to one another, as MoveIt's setup assistant does);
``Default``   their capsules are in contact, or closer than ``default_margin``
              (0.01 m, the controller's default collision_stop_distance), at the
              default configuration (the chain's mid-range configuration
              ``Robot.q_mid``, unless another is given): a checked pair there would
              stop the arm where it starts;
``Always``    in contact in at least ``always_fraction`` (95 %) of the samples;
``Never``     their distance stays above ``never_distance`` in every sample and
              at the default configuration.

Two geometries in the same chain frame never move relative to each other: they are
``Always`` (in contact), ``Never`` (further apart than ``never_distance``) or
``Rigid`` (in between) from their one distance, without sampling.

Two geometries one or two revolute joints apart (frames i and i + 1 or i + 2, e.g.
a forearm and the wrist links after it) move relative to each other with those
joints alone: they are swept on a grid over the joints' ranges (``sweep``)
instead of sampled, and are ``Always`` as above, or ``Never`` when the grid
proves they never touch (smallest grid distance minus the Lipschitz slack above
zero).  Such pairs are often close everywhere (wrist housings a centimetre apart
through the whole turn): checking them would keep the controller within its
collision influence distance, or below its stop distance, wherever the arm is.

Everything else is checked.  ``never_distance`` defaults to 0.1 m: samples are
sparse in a 6- or 7-dimensional joint space, so the smallest sampled distance
overestimates the true minimum; 0.1 m is ten times the controller's default
collision_stop_distance (0.01 m) and equal to its default
collision_influence_distance, so a pair skipped as ``Never`` was never seen within
the range where the controller would act on it, with margin for what the samples
missed.

Samples are uniform within the joint limits ([−π, π] for continuous joints) from a
fixed seed: the matrix is deterministic.  Distances are coal's on the fitted
capsules.  A computed matrix is cached (``cache``) under a hash of the URDF text,
the chain, the geometry and the settings.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from jacobian_ik.collision import cache
from jacobian_ik.collision.attach import JointSpec
from jacobian_ik.collision.srdf import Pair, pair, read_disabled, write_srdf
from jacobian_ik.collision.sweep import STEPS_1D, STEPS_2D, sweep_pair, sweepable
from jacobian_ik.errors import ConfigurationError, SrdfError
from jacobian_ik.robot import Robot

#: Version of the sampling procedure, part of the cache key.
MATRIX_VERSION = 1

DEFAULT_SAMPLES = 10_000
DEFAULT_SEED = 0
#: [m], see the module docstring.
NEVER_DISTANCE = 0.1
DEFAULT_MARGIN = 0.01
ALWAYS_FRACTION = 0.95


@dataclass(frozen=True)
class MatrixSettings:
    """How the matrix is sampled: ``samples`` configurations from ``seed``; pairs
    further apart than ``never_distance`` [m] in every sample are ``Never``, pairs in
    contact in at least ``always_fraction`` of them ``Always``, pairs closer than
    ``default_margin`` [m] at the default configuration ``Default``."""

    samples: int = DEFAULT_SAMPLES
    seed: int = DEFAULT_SEED
    never_distance: float = NEVER_DISTANCE
    always_fraction: float = ALWAYS_FRACTION
    default_margin: float = DEFAULT_MARGIN

    def __post_init__(self) -> None:
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) \
                or self.samples < 1:
            raise ConfigurationError(
                f"samples must be an integer of at least 1, got {self.samples!r}",
                parameter="samples", value=self.samples, valid_range=(1, None))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigurationError(f"seed must be an integer, got {self.seed!r}",
                                     parameter="seed", value=self.seed)
        if not (math.isfinite(self.never_distance) and self.never_distance >= 0.0):
            raise ConfigurationError(
                f"never_distance must be a finite distance >= 0 [m], got "
                f"{self.never_distance!r}", parameter="never_distance",
                value=self.never_distance, valid_range=(0.0, None))
        if not (math.isfinite(self.default_margin) and self.default_margin >= 0.0):
            raise ConfigurationError(
                f"default_margin must be a finite distance >= 0 [m], got "
                f"{self.default_margin!r}", parameter="default_margin",
                value=self.default_margin, valid_range=(0.0, None))
        if not 0.0 < self.always_fraction <= 1.0:
            raise ConfigurationError(
                f"always_fraction must be in (0, 1], got {self.always_fraction!r}",
                parameter="always_fraction", value=self.always_fraction,
                valid_range=(0.0, 1.0))


def adjacent_pairs(joints: Mapping[str, JointSpec], links: Sequence[str],
                   with_geometry: Collection[str]) -> set[Pair]:
    """Pairs of links with geometry joined by one joint, counting through links
    without geometry (each of which joins all its neighbours to one another)."""
    neighbours: dict[str, set[str]] = {link: set() for link in links}
    for joint in joints.values():
        neighbours.setdefault(joint.parent, set()).add(joint.child)
        neighbours.setdefault(joint.child, set()).add(joint.parent)
    keep = set(with_geometry)
    for link in list(neighbours):
        if link in keep:
            continue
        around = neighbours.pop(link)
        for other in around:
            neighbours[other].discard(link)
            neighbours[other].update(around - {other})
    return {pair(a, b) for a, near in neighbours.items() for b in near if a != b}


def capsule_transforms(caps: np.ndarray) -> np.ndarray:
    """``T_frame_capsule`` of each capsule row (z along a→b, origin at the midpoint),
    the pose of coal's centred z-axis capsule. Shape (G, 4, 4)."""
    out = np.tile(np.eye(4), (len(caps), 1, 1))
    for k, row in enumerate(caps):
        a, b = row[1:4], row[4:7]
        axis = b - a
        length = float(np.linalg.norm(axis))
        z = axis / length if length > 0.0 else np.array([0.0, 0.0, 1.0])
        x = np.cross(z, (1.0, 0.0, 0.0) if abs(z[0]) < 0.9 else (0.0, 1.0, 0.0))
        x /= np.linalg.norm(x)
        out[k, :3, :3] = np.column_stack([x, np.cross(z, x), z])
        out[k, :3, 3] = 0.5 * (a + b)
    return out


def pair_distances(robot: Robot, caps: np.ndarray, pairs: np.ndarray,
                   Q: np.ndarray) -> np.ndarray:
    """coal's distance [m] (negative: penetration) of each capsule pair (Shape (P, 2)
    indices into ``caps``) at each configuration of ``Q`` Shape (S, n). Shape (S, P)."""
    import coal

    # coal.Capsule(radius, lz): lz is the full length of the segment (halfLength = lz / 2)
    shapes = [coal.Capsule(float(row[7]), float(np.linalg.norm(row[4:7] - row[1:4])))
              for row in caps]
    local = capsule_transforms(caps)
    frames = caps[:, 0].astype(np.int64)
    request, result = coal.DistanceRequest(), coal.DistanceResult()
    out = np.empty((len(Q), len(pairs)))
    used = sorted({int(k) for k in pairs.ravel()})
    for s, q in enumerate(Q):
        F = robot.frames(q)
        tf = {}
        for k in used:
            T = local[k] if frames[k] < 0 else F[frames[k]] @ local[k]
            tf[k] = coal.Transform3s(T[:3, :3], T[:3, 3])
        for p, (i, j) in enumerate(pairs):
            result.clear()
            out[s, p] = coal.distance(shapes[i], tf[i], shapes[j], tf[j], request, result)
    return out


def sample_matrix(robot: Robot, names: Sequence[str], caps: np.ndarray,
                  adjacent: Collection[Pair], settings: MatrixSettings,
                  default_q: np.ndarray) -> dict[Pair, str]:
    """The disabled pairs with their reasons (module docstring), by sampling."""
    G = len(names)
    disabled: dict[Pair, str] = {}
    candidates = []
    for i in range(G):
        for j in range(i + 1, G):
            key = pair(names[i], names[j])
            if key in adjacent:
                disabled[key] = "Adjacent"
            else:
                candidates.append((i, j) if caps[i, 0] <= caps[j, 0] else (j, i))
    if not candidates:
        return disabled
    idx = np.array(candidates, dtype=np.int64).reshape(-1, 2)
    at_default = pair_distances(robot, caps, idx, default_q.reshape(1, -1))[0]
    apart = caps[idx[:, 1], 0] - caps[idx[:, 0], 0]   # >= 0: pairs are ordered by frame
    sampled_pairs = []
    for p, (i, j) in enumerate(candidates):
        key = pair(names[i], names[j])
        d0 = float(at_default[p])
        if apart[p] == 0:
            disabled[key] = ("Always" if d0 <= 0.0 else
                             "Never" if d0 > settings.never_distance else "Rigid")
        elif d0 <= settings.default_margin:
            disabled[key] = "Default"
        elif sweepable(robot, int(caps[i, 0]), int(caps[j, 0])):
            d, slack = sweep_pair(robot, caps[i], caps[j])
            if np.mean(d <= 0.0) >= settings.always_fraction:
                disabled[key] = "Always"
            elif float(d.min()) - slack > 0.0:
                disabled[key] = "Never"
        else:
            sampled_pairs.append(p)
    if not sampled_pairs:
        return disabled
    rng = np.random.default_rng(settings.seed)
    Q = robot.random_configurations(settings.samples, rng)
    sampled = pair_distances(robot, caps, idx[sampled_pairs], Q)
    for column, p in enumerate(sampled_pairs):
        i, j = candidates[p]
        d = sampled[:, column]
        if np.mean(d <= 0.0) >= settings.always_fraction:
            disabled[pair(names[i], names[j])] = "Always"
        elif min(float(d.min()), float(at_default[p])) > settings.never_distance:
            disabled[pair(names[i], names[j])] = "Never"
    return disabled


def cache_key(robot: Robot, names: Sequence[str], caps: np.ndarray,
              settings: MatrixSettings, default_q: np.ndarray) -> str:
    """Hash of everything the sampled matrix depends on."""
    h = hashlib.sha256()
    version = f"v{MATRIX_VERSION} sweep {STEPS_1D} {STEPS_2D}"
    for part in (version, robot.urdf_xml, robot.base_link, robot.tip_link,
                 "\n".join(robot.joint_names), "\n".join(names), repr(settings)):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    for array in (robot.lower, robot.upper, np.ascontiguousarray(caps, dtype=np.float64),
                  np.ascontiguousarray(default_q, dtype=np.float64)):
        h.update(array.tobytes())
    return h.hexdigest()[:32]


def collision_matrix(robot: Robot, names: Sequence[str], caps: np.ndarray,
                     adjacent: Collection[Pair], settings: MatrixSettings | None = None,
                     default_q: np.ndarray | None = None,
                     use_cache: bool = True) -> dict[Pair, str]:
    """The disabled pairs of a collision model: from the cache when it has them, else
    sampled (``sample_matrix``) and stored in the cache."""
    settings = MatrixSettings() if settings is None else settings
    q0 = robot.q_mid if default_q is None else robot.joint_vector(default_q)
    key = cache_key(robot, names, caps, settings, q0)
    if use_cache:
        text = cache.load(key)
        if text is not None:
            try:
                found, _path = read_disabled(text)
            except SrdfError:
                found = None
            if found is not None and all(a in names and b in names for a, b in found):
                return found
    disabled = sample_matrix(robot, names, caps, adjacent, settings, q0)
    if use_cache:
        cache.store(key, write_srdf(disabled, _robot_name(robot),
                                    f"jacobian_ik collision matrix cache {key}: {settings}"))
    return disabled


def _robot_name(robot: Robot) -> str:
    import xml.etree.ElementTree as ET

    try:
        return ET.fromstring(robot.urdf_xml).get("name", "robot")
    except ET.ParseError:
        return "robot"
