"""The collision model of an arm: one conservative capsule per link, in chain frames.

``CollisionModel.from_urdf(source, robot)`` builds one geometry for every link that
has ``<collision>`` elements and is carried by the chain of ``robot`` (the chain's
links, links fixed to them or to the base, links hanging off them through joints
outside the chain at given positions; see ``attach``).  Each link's collision
elements (meshes, boxes, cylinders, spheres) are enclosed by one capsule
(``fit``).  The self-collision pairs come from an SRDF when one is given, else from
a sampled collision matrix (``matrix``, cached).

The capsule array ``caps`` Shape (G, 8) has one row per geometry,
``[frame, ax, ay, az, bx, by, bz, r]``: ``frame`` is the chain frame the geometry
moves with, as a float (−1: the base frame; i: ``frames[i]`` of
``kernels.fk_frames``, the frame of moving joint i after its motion), ``a``/``b``
the segment ends in that frame [m], ``r`` the radius [m].  This is the layout of
``kernels.distance.capsules_to_base``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from jacobian_ik.collision.attach import (
    Attachment,
    JointSpec,
    attach_links,
    resolve_positions,
    urdf_joints,
)
from jacobian_ik.collision.fit import Capsule, fit_capsule
from jacobian_ik.collision.matrix import MatrixSettings, adjacent_pairs, collision_matrix
from jacobian_ik.collision.srdf import Pair, pair, read_disabled
from jacobian_ik.collision.urdf_geometry import links_with_collision, read_link_shapes
from jacobian_ik.errors import ConfigurationError, SrdfError, UrdfError
from jacobian_ik.robot import Robot

#: Columns of a ``caps`` row.
CAP_FRAME, CAP_A, CAP_B, CAP_R = 0, slice(1, 4), slice(4, 7), 7
CAP_COLUMNS = 8


@dataclass(frozen=True)
class _Placer:
    """What ``with_passive_positions`` needs: each geometry's attachment and capsule
    in its link frame, the URDF joints, and the positions given so far."""

    attachments: tuple[Attachment, ...]
    link_capsules: tuple[Capsule, ...]
    joints: Mapping[str, JointSpec]
    given: Mapping[str, float]


class CollisionModel:
    """Capsules of an arm's links and the pairs checked for self-collision.

    Attributes (G geometries, P checked pairs):
        names            tuple of G link names, one per geometry.
        caps             Shape (G, 8) float64, rows [frame, ax, ay, az, bx, by, bz, r]
                         (module docstring), read-only.
        self_pairs       Shape (P, 2) int64: geometry index pairs (i < j) checked for
                         self-collision; empty when built with self_collision=False.
        disabled         {(link1, link2): reason}: the pairs not checked (names in
                         alphabetical order), reasons as in an SRDF (``matrix``).
        passive_joints   joints outside the chain whose position moves a geometry.
        passive_positions  {joint: position [rad | m]} the geometry is placed at.
        T_frame_link     Shape (G, 4, 4): each link's pose in its chain frame.
    """

    def __init__(self, names: Sequence[str], caps: ArrayLike, self_pairs: ArrayLike,
                 disabled: Mapping[Pair, str] | None = None,
                 passive_positions: Mapping[str, float] | None = None,
                 T_frame_link: ArrayLike | None = None, *,
                 _placer: _Placer | None = None) -> None:
        self.names = tuple(names)
        G = len(self.names)
        self.caps = np.array(caps, dtype=np.float64).reshape(-1, CAP_COLUMNS) \
            if np.size(caps) else np.zeros((0, CAP_COLUMNS))
        if self.caps.shape != (G, CAP_COLUMNS):
            raise ConfigurationError(
                f"caps must have shape ({G}, {CAP_COLUMNS}) for {G} names, got "
                f"{np.shape(caps)}", parameter="caps", value=np.shape(caps))
        self.self_pairs = np.array(self_pairs, dtype=np.int64).reshape(-1, 2)
        if self.self_pairs.size and (self.self_pairs.min() < 0 or self.self_pairs.max() >= G
                                     or (self.self_pairs[:, 0] >= self.self_pairs[:, 1]).any()):
            raise ConfigurationError(
                f"self_pairs must be index pairs (i, j) with 0 <= i < j < {G}",
                parameter="self_pairs", valid_range=(0, G - 1))
        self.disabled = dict(disabled or {})
        self.passive_positions = dict(passive_positions or {})
        self.passive_joints = tuple(self.passive_positions)
        self.T_frame_link = np.tile(np.eye(4), (G, 1, 1)) if T_frame_link is None \
            else np.array(T_frame_link, dtype=np.float64).reshape(G, 4, 4)
        for array in (self.caps, self.self_pairs, self.T_frame_link):
            array.setflags(write=False)
        self._index = {name: k for k, name in enumerate(self.names)}
        self._placer = _placer

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_urdf(cls, source: str | bytes | Path | None, robot: Robot, *,
                  srdf: str | Path | None = None,
                  passive_positions: Mapping[str, float] | None = None,
                  package_dirs: Sequence[str | Path] = (), self_collision: bool = True,
                  settings: MatrixSettings | None = None,
                  default_q: ArrayLike | None = None) -> CollisionModel:
        """The collision model of ``robot``'s chain in the URDF ``source`` (a path or an
        XML string; None: ``robot.urdf_xml``, then relative mesh paths are relative to
        the current folder).

        ``srdf``: path or XML string whose ``<disable_collisions>`` give the pairs not
        checked (links of the URDF without geometry here are ignored); without it the
        matrix is sampled (``settings``, ``default_q``; see ``matrix``) or read from
        the cache.  ``passive_positions``: {joint: position [rad | m]} of joints
        outside the chain (gripper fingers), default 0 clamped into their limits.
        ``package_dirs``: folders searched first for ``package://`` meshes.
        ``self_collision=False``: no self pairs (nor sampling).

        Raises UrdfError (unreadable URDF, mesh not found, bad geometry, a URDF that
        lacks the robot's chain), SrdfError (unreadable SRDF, unknown link) or
        ConfigurationError (bad passive position or setting).
        """
        xml, what, urdf_dir = _read_urdf(source, robot)
        try:
            root = ET.fromstring(xml)
        except ET.ParseError as exc:
            raise UrdfError(f"{what} is not well-formed XML: {exc}") from None
        joints = urdf_joints(root)
        all_links = [el.get("name", "") for el in root.findall("link")]
        _check_chain(joints, all_links, robot, what)
        attached, _skipped = attach_links(joints, links_with_collision(root),
                                          robot.base_link, robot.joint_names)
        urdf_path = None if urdf_dir is None else str(source)
        shapes = read_link_shapes(root, attached, urdf_dir=urdf_dir,
                                  package_dirs=package_dirs, urdf_path=urdf_path)
        order = [link for link in links_with_collision(root) if link in shapes]
        placer = _Placer(tuple(attached[link] for link in order),
                         tuple(fit_capsule(shapes[link].points, shapes[link].radii)
                               for link in order),
                         joints, dict(passive_positions or {}))
        names, caps, T, positions = _place(placer)
        if srdf is not None:
            disabled = _srdf_pairs(srdf, names, caps, all_links)
        elif self_collision:
            adjacent = adjacent_pairs(joints, all_links, names)
            q0 = None if default_q is None else np.asarray(default_q, dtype=np.float64)
            disabled = collision_matrix(robot, names, caps, adjacent, settings, q0)
        else:
            disabled = {}
        pairs = _self_pairs(names, caps, disabled) if self_collision else []
        return cls(names, caps, pairs, disabled, positions, T, _placer=placer)

    def with_passive_positions(self, positions: Mapping[str, float]) -> CollisionModel:
        """The same model with passive joints moved to ``positions`` [rad | m] (the
        others keep theirs); the pairs are unchanged and no mesh is read again."""
        if self._placer is None:
            raise ConfigurationError(
                "this collision model was not built from a URDF: it has no passive "
                "joints to move", parameter="passive_positions")
        placer = _Placer(self._placer.attachments, self._placer.link_capsules,
                         self._placer.joints, {**self._placer.given, **positions})
        names, caps, T, resolved = _place(placer)
        return CollisionModel(names, caps, self.self_pairs, self.disabled, resolved, T,
                              _placer=placer)

    # ------------------------------------------------------------------ queries
    def index(self, link: str) -> int:
        """Geometry index of ``link``; ConfigurationError listing the links with
        geometry when it has none."""
        k = self._index.get(link)
        if k is None:
            raise ConfigurationError(
                f"link '{link}' has no collision geometry in this model; links with "
                f"geometry are: {', '.join(self.names) if self.names else '(none)'}",
                parameter="link", value=link, choices=self.names)
        return k

    def geometry_of(self, link: str) -> np.ndarray:
        """The ``caps`` row of ``link`` (a copy). Shape (8,)."""
        return self.caps[self.index(link)].copy()

    @property
    def frames(self) -> np.ndarray:
        """Chain frame index of each geometry (−1: base). Shape (G,) int64."""
        return self.caps[:, CAP_FRAME].astype(np.int64)

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return (f"CollisionModel({len(self.names)} capsules, {len(self.self_pairs)} self "
                f"pairs, passive joints {list(self.passive_joints)})")


def default_model(robot: Robot) -> CollisionModel | None:
    """The collision model of ``robot``'s own URDF text, or None when it has no
    ``<collision>`` element attached to the chain.  A bundled arm uses its shipped
    SRDF (``urdf/<name>.srdf``); any other URDF a sampled (cached) matrix."""
    try:
        root = ET.fromstring(robot.urdf_xml)
    except ET.ParseError:
        return None
    if not links_with_collision(root):
        return None
    model = CollisionModel.from_urdf(None, robot, srdf=_bundled_srdf(robot.urdf_xml))
    return model if len(model) else None


# ---------------------------------------------------------------------- helpers
def _read_urdf(source: str | bytes | Path | None,
               robot: Robot) -> tuple[str, str, Path | None]:
    """(XML text, description for messages, folder of the URDF file or None)."""
    if source is None:
        return robot.urdf_xml, "the robot's URDF", None
    if isinstance(source, bytes):
        source = source.decode("utf-8", errors="replace")
    if isinstance(source, str) and source.lstrip().startswith("<"):
        return source, "URDF string", None
    if not isinstance(source, (str, Path)):
        raise UrdfError(
            f"URDF source must be a path or an XML string, got {type(source).__name__}")
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8"), f"URDF file '{path}'", path.resolve().parent
    except FileNotFoundError:
        raise UrdfError(f"URDF file '{path}' does not exist", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UrdfError(f"cannot read URDF file '{path}': {exc}", path=str(path)) from None


def _check_chain(joints: Mapping[str, JointSpec], links: Sequence[str], robot: Robot,
                 what: str) -> None:
    by_name = {j.name: j for j in joints.values()}
    if robot.base_link not in links:
        raise UrdfError(f"{what} has no link '{robot.base_link}', the robot's base_link",
                        link=robot.base_link)
    for name in robot.joint_names:
        if name not in by_name or not by_name[name].moving:
            raise UrdfError(f"{what} has no moving joint '{name}' of the robot's chain",
                            joint=name)


def _place(placer: _Placer) -> tuple[tuple[str, ...], np.ndarray, np.ndarray,
                                     dict[str, float]]:
    """(names, caps, T_frame_link, resolved passive positions) of the geometries."""
    passive = tuple(dict.fromkeys(name for att in placer.attachments for name in att.passive))
    positions = resolve_positions(placer.joints, passive, placer.given)
    G = len(placer.attachments)
    caps = np.zeros((G, CAP_COLUMNS))
    T = np.zeros((G, 4, 4))
    for k, (att, capsule) in enumerate(zip(placer.attachments, placer.link_capsules)):
        T[k] = att.T_frame_link(positions)
        caps[k, CAP_FRAME] = att.frame
        caps[k, CAP_A] = T[k, :3, :3] @ capsule.a + T[k, :3, 3]
        caps[k, CAP_B] = T[k, :3, :3] @ capsule.b + T[k, :3, 3]
        caps[k, CAP_R] = capsule.r
    return tuple(att.link for att in placer.attachments), caps, T, positions


def _srdf_pairs(srdf: str | Path, names: Sequence[str], caps: np.ndarray,
                urdf_links: Sequence[str]) -> dict[Pair, str]:
    """The SRDF's disabled pairs between links with geometry, and ``Rigid`` for the
    other pairs in one chain frame; SrdfError for a link the URDF does not have."""
    found, path = read_disabled(srdf)
    known = set(urdf_links)
    geometry = set(names)
    out = {}
    for (a, b), reason in found.items():
        for link in (a, b):
            if link not in known:
                raise SrdfError(
                    f"SRDF <disable_collisions> names link '{link}', which the URDF does "
                    f"not have; links with collision geometry are: "
                    f"{', '.join(names) if names else '(none)'}",
                    path=path, link=link, choices=tuple(names))
        if a in geometry and b in geometry:
            out[(a, b)] = reason
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if caps[i, CAP_FRAME] == caps[j, CAP_FRAME]:
                out.setdefault(pair(names[i], names[j]), "Rigid")
    return out


def _self_pairs(names: Sequence[str], caps: np.ndarray,
                disabled: Mapping[Pair, str]) -> list[tuple[int, int]]:
    """Index pairs i < j checked: not disabled, not in the same chain frame."""
    return [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))
            if caps[i, CAP_FRAME] != caps[j, CAP_FRAME]
            and pair(names[i], names[j]) not in disabled]


def _bundled_srdf(urdf_xml: str) -> Path | None:
    """The shipped SRDF of the bundled robot whose URDF text this is, or None."""
    from jacobian_ik import bundled

    for name in bundled.BUNDLED_ROBOTS:
        try:
            urdf = bundled.urdf_path(name)
            srdf = urdf.with_suffix(".srdf")
            if srdf.is_file() and urdf.read_text(encoding="utf-8") == urdf_xml:
                return srdf
        except (OSError, ConfigurationError):
            continue
    return None
