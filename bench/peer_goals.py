"""The arms, start configurations and goal sets of the closed-loop peer benchmark.

Arms: the example-robot-data Panda and UR5 URDFs, cut at the base and tip links
of the bundled configuration of the same arm (``config/<name>.yaml``).  Each
starts from one fixed, non-singular configuration.

Goal sets (``T_base_goal``, Shape (4, 4)), the same for every controller:

* ``<arm>_random``: ``fk(q)`` with q uniform within the joint limits;
* ``<arm>_nearby``: the start pose moved by 5–20 cm in a uniformly random
  direction and turned by up to 30° about a uniformly random axis (base frame),
  kept only if ``solve_ik`` finds joint positions within the limits for it.

Goal k of a set depends only on the seed, the set name and k (goals are drawn one
at a time from a generator seeded by both), so a run over the first N goals
measures a prefix of the full set.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from jacobian_ik import bundled
from jacobian_ik.ik import solve_ik
from jacobian_ik.robot import Robot
from jacobian_ik.rotations import axis_rotation

#: Arm name → (example-robot-data URDF below robots/, start configuration [rad]).
ARMS = {
    "panda": ("panda_description/urdf/panda.urdf",
              (0.0, -math.pi / 4, 0.0, -3 * math.pi / 4, 0.0, math.pi / 2, math.pi / 4)),
    "ur5": ("ur_description/urdf/ur5_robot.urdf",
            (0.0, -math.pi / 2, math.pi / 2, -math.pi / 2, -math.pi / 2, 0.0)),
}

#: Goal set kinds, in report order.
KINDS = ("random", "nearby")

NEARBY_DISTANCE = (0.05, 0.20)      # [m] range of the tip displacement
NEARBY_ANGLE = math.radians(30.0)   # [rad] largest tip rotation
NEARBY_IK_TIMEOUT = 0.05            # [s] solve_ik budget of the reachability check
NEARBY_IK_TOL = 1e-5                # [m | rad]

#: Every set name, e.g. "panda_random".
SET_NAMES = tuple(f"{arm}_{kind}" for arm in ARMS for kind in KINDS)


@dataclass(frozen=True)
class Arm:
    """One benchmarked arm: the chain, its URDF file and its start configuration."""

    name: str
    robot: Robot
    urdf_path: str
    q_start: np.ndarray   # Shape (n,) [rad]


def load_arm(name: str) -> Arm:
    """The example-robot-data arm ``name`` (a key of ARMS); raises if the package is missing."""
    erd = bundled.example_robot_data_dir()
    if erd is None:
        raise RuntimeError("example-robot-data is not installed (pip install -e '.[bench]')")
    rel_path, q_start = ARMS[name]
    path = erd / rel_path
    robot = Robot.from_urdf(path, *bundled.robot_links(name))
    return Arm(name=name, robot=robot, urdf_path=str(path),
               q_start=np.array(q_start, dtype=np.float64))


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def _nearby_goal(arm: Arm, rng: np.random.Generator) -> np.ndarray:
    """A reachable pose 5–20 cm and at most 30° from the start pose (rejection sampling)."""
    T0 = arm.robot.fk(arm.q_start)
    while True:
        T = T0.copy()
        T[:3, 3] += rng.uniform(*NEARBY_DISTANCE) * _unit(rng)
        T[:3, :3] = axis_rotation(_unit(rng), rng.uniform(0.0, NEARBY_ANGLE)) @ T0[:3, :3]
        ik_seed = int(rng.integers(1 << 30))
        res = solve_ik(arm.robot, T, q0=arm.q_start, tol=NEARBY_IK_TOL,
                       timeout=NEARBY_IK_TIMEOUT, seed=ik_seed)
        if res.success:
            return T


def goal(arm: Arm, kind: str, k: int, seed: int) -> np.ndarray:
    """Goal ``k`` (``T_base_goal``, Shape (4, 4)) of set ``<arm>_<kind>``."""
    if kind not in KINDS:
        raise ValueError(f"goal set kind '{kind}' is unknown; kinds are: {', '.join(KINDS)}")
    rng = np.random.default_rng((seed, zlib.crc32(f"{arm.name}_{kind}".encode()), k))
    if kind == "random":
        return arm.robot.fk(arm.robot.random_configurations(1, rng)[0])
    return _nearby_goal(arm, rng)


def goal_set(arm: Arm, kind: str, count: int, seed: int) -> list[np.ndarray]:
    """The first ``count`` goals of set ``<arm>_<kind>``."""
    return [goal(arm, kind, k, seed) for k in range(count)]
