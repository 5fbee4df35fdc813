"""Which chain frame each link moves with, and its pose in that frame.

The chain of a ``Robot`` (base_link → tip_link, moving joints 0..n−1) has the frames
of ``kernels.fk_frames``: the base frame (index −1 here) and ``frames[i]``, the frame
of moving joint i after its motion, which is the URDF frame of that joint's child
link.  A link with collision geometry is attached to:

* frame i when, walking up the URDF tree from the link, the first link met that is
  the child of a chain joint is that of joint i (the chain's links, links fixed to
  them such as a hand, and links hanging off them through joints outside the chain
  such as gripper fingers);
* the base frame (−1) when the walk meets ``base_link`` first (links fixed to the
  base or hanging off it), or when the link is on another branch of the tree whose
  joints, from the branch point down to the link and down to ``base_link``, are all
  fixed (a world or a table link rigidly joined to the base's ancestors);
* nothing otherwise (a branch that moves relative to the base through joints
  outside the chain above the base): such links are skipped.

Moving joints outside the chain met on the way down from the attachment frame to a
link are *passive*: their positions [rad | m] are given (``resolve_positions``:
default 0 clamped into the joint's limits; a mimic joint follows its leader), and
the link's pose is computed at them.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np

from jacobian_ik.collision.urdf_geometry import origin_matrix, parse_numbers
from jacobian_ik.errors import ConfigurationError, UrdfError

#: Joint types that move; positions are accepted for the first three.
POSITIONED_TYPES = ("revolute", "continuous", "prismatic")
MOVING_TYPES = POSITIONED_TYPES + ("floating", "planar")

BASE_FRAME = -1


@dataclass(frozen=True)
class JointSpec:
    """A URDF joint: ``T_parent_joint`` Shape (4, 4) (its ``<origin>``), unit ``axis``
    Shape (3,) in the joint frame, limits [rad | m] (±inf when unbounded), and the
    mimic (leader joint, multiplier, offset) or None."""

    name: str
    type: str
    parent: str
    child: str
    T_parent_joint: np.ndarray
    axis: np.ndarray
    lower: float
    upper: float
    mimic: tuple[str, float, float] | None

    @property
    def moving(self) -> bool:
        return self.type in MOVING_TYPES

    def motion(self, q: float) -> np.ndarray:
        """``T_joint_child`` at position q [rad | m]. Shape (4, 4); identity for fixed,
        floating and planar joints (the latter two at their neutral pose)."""
        M = np.eye(4)
        if self.type in ("revolute", "continuous"):
            K = np.array([[0.0, -self.axis[2], self.axis[1]],
                          [self.axis[2], 0.0, -self.axis[0]],
                          [-self.axis[1], self.axis[0], 0.0]])
            M[:3, :3] += math.sin(q) * K + (1.0 - math.cos(q)) * (K @ K)
        elif self.type == "prismatic":
            M[:3, 3] = q * self.axis
        return M


@dataclass(frozen=True)
class Attachment:
    """Where a link's geometry is carried: ``frame`` (−1 base, i chain joint i) and
    either the joints from the frame's link down to the link (``path``, top first),
    or, for a link beside the base, its constant pose ``T_fixed`` Shape (4, 4)."""

    link: str
    frame: int
    path: tuple[JointSpec, ...] = ()
    T_fixed: np.ndarray | None = None

    @property
    def passive(self) -> tuple[str, ...]:
        """The moving joints outside the chain on the path (top first)."""
        return tuple(j.name for j in self.path if j.moving)

    def T_frame_link(self, positions: Mapping[str, float]) -> np.ndarray:
        """The link's pose in its attachment frame at passive joint ``positions``
        [rad | m] (every passive joint of the path must be in it). Shape (4, 4)."""
        if self.T_fixed is not None:
            return self.T_fixed.copy()
        T = np.eye(4)
        for joint in self.path:
            T = T @ joint.T_parent_joint
            if joint.moving:
                T = T @ joint.motion(positions[joint.name])
        return T


def urdf_joints(root: ET.Element) -> dict[str, JointSpec]:
    """Every joint of the parsed URDF, by child link name."""
    out = {}
    for el in root.findall("joint"):
        name = el.get("name", "")
        parent, child = el.find("parent"), el.find("child")
        if parent is None or child is None:
            raise UrdfError(f"joint '{name}' has no <parent> or <child>", joint=name)
        kind = el.get("type", "")
        what = f"joint '{name}'"
        axis_el = el.find("axis")
        axis = parse_numbers(axis_el.get("xyz", "1 0 0") if axis_el is not None else "1 0 0",
                             f"{what} <axis xyz>")
        norm = float(np.linalg.norm(axis)) if len(axis) == 3 else 0.0
        if kind in POSITIONED_TYPES and norm == 0.0:
            raise UrdfError(f"{what} needs a non-zero <axis xyz> of three numbers", joint=name)
        limit = el.find("limit")
        lower, upper = -math.inf, math.inf
        if kind in ("revolute", "prismatic") and limit is not None:
            lower = float(parse_numbers(limit.get("lower", "0"), f"{what} <limit lower>")[0])
            upper = float(parse_numbers(limit.get("upper", "0"), f"{what} <limit upper>")[0])
        mimic_el = el.find("mimic")
        mimic = None
        if mimic_el is not None and kind in POSITIONED_TYPES:
            mimic = (mimic_el.get("joint", ""),
                     float(parse_numbers(mimic_el.get("multiplier", "1"), f"{what} <mimic>")[0]),
                     float(parse_numbers(mimic_el.get("offset", "0"), f"{what} <mimic>")[0]))
        out[child.get("link", "")] = JointSpec(
            name, kind, parent.get("link", ""), child.get("link", ""),
            origin_matrix(el.find("origin"), f"{what} <origin>"),
            axis / norm if norm > 0.0 else np.array([1.0, 0.0, 0.0]), lower, upper, mimic)
    return out


def attach_links(joints: Mapping[str, JointSpec], links: Collection[str], base_link: str,
                 chain_joints: tuple[str, ...]) -> tuple[dict[str, Attachment], list[str]]:
    """Attachments of ``links`` (module docstring), and the links skipped."""
    by_name = {j.name: j for j in joints.values()}
    anchor_of_link = {by_name[name].child: i for i, name in enumerate(chain_joints)}
    attached: dict[str, Attachment] = {}
    skipped = []
    for link in links:
        path: list[JointSpec] = []
        current = link
        frame: int | None = None
        while True:
            if current in anchor_of_link:
                frame = anchor_of_link[current]
                break
            if current == base_link:
                frame = BASE_FRAME
                break
            joint = joints.get(current)
            if joint is None:
                break
            path.append(joint)
            current = joint.parent
        if frame is not None:
            attached[link] = Attachment(link, frame, tuple(reversed(path)))
            continue
        T_fixed = _beside_base(joints, link, base_link)
        if T_fixed is None:
            skipped.append(link)
        else:
            attached[link] = Attachment(link, BASE_FRAME, (), T_fixed)
    return attached, skipped


def _root_path(joints: Mapping[str, JointSpec], link: str) -> list[JointSpec]:
    """Joints from the tree's root down to ``link`` (top first)."""
    path = []
    while link in joints:
        path.append(joints[link])
        link = joints[link].parent
    return path[::-1]


def _beside_base(joints: Mapping[str, JointSpec], link: str,
                 base_link: str) -> np.ndarray | None:
    """``T_base_link`` when the link and the base hang off a common ancestor through
    fixed joints only, else None."""
    to_link, to_base = _root_path(joints, link), _root_path(joints, base_link)
    common = 0
    while (common < min(len(to_link), len(to_base))
           and to_link[common].name == to_base[common].name):
        common += 1
    if any(j.type != "fixed" for j in to_link[common:] + to_base[common:]):
        return None
    root_of_link = to_link[0].parent if to_link else link
    root_of_base = to_base[0].parent if to_base else base_link
    if root_of_link != root_of_base:
        return None

    def chain(path: list[JointSpec]) -> np.ndarray:
        T = np.eye(4)
        for j in path:
            T = T @ j.T_parent_joint
        return T

    return np.linalg.inv(chain(to_base[common:])) @ chain(to_link[common:])


def resolve_positions(joints: Mapping[str, JointSpec], passive: tuple[str, ...],
                      given: Mapping[str, float]) -> dict[str, float]:
    """Position [rad | m] of every passive joint: the given one, else a mimic joint's
    ``multiplier · leader + offset``, else 0; clamped into the joint's limits.

    ConfigurationError for a name that is not a passive joint (listing them), a
    non-finite value, or a position given for a floating or planar joint.
    """
    by_name = {j.name: j for j in joints.values()}
    for name, value in given.items():
        if name not in passive:
            raise ConfigurationError(
                f"'{name}' is not a passive joint of this collision model; passive joints "
                f"are: {', '.join(passive) if passive else '(none)'}",
                parameter="passive_positions", value=name, choices=passive)
        if by_name[name].type not in POSITIONED_TYPES:
            raise ConfigurationError(
                f"passive joint '{name}' is {by_name[name].type}: positions are accepted "
                f"for {', '.join(POSITIONED_TYPES)} joints only",
                parameter="passive_positions", value=name)
        if not _finite(value):
            raise ConfigurationError(
                f"position of passive joint '{name}' must be a finite number, got {value!r}",
                parameter=f"passive_positions[{name}]", value=value)

    def position(name: str, depth: int = 0) -> float:
        joint = by_name.get(name)
        if joint is None:
            return 0.0
        if name in given:
            q = float(given[name])
        elif joint.mimic is not None and depth < len(by_name):
            leader, multiplier, offset = joint.mimic
            q = multiplier * position(leader, depth + 1) + offset
        else:
            q = 0.0
        return min(max(q, joint.lower), joint.upper)

    return {name: position(name) for name in passive}


def _finite(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
