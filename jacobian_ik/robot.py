"""The robot model: a URDF chain base_link → tip_link as flat arrays for the kernels.

``Robot.from_urdf`` reads a URDF (path or XML string), checks it, builds it with
pinocchio, and keeps only the serial chain from ``base_link`` to ``tip_link``:
fixed joints are folded into the placements, joints outside the chain are
ignored.  The result holds the three arrays the kernels take (``placements``,
``axes``, ``joint_types``, see ``jacobian_ik.kernels.kinematics``) and the joint
limits from the URDF.

Joint positions are one number per joint, continuous joints included (an angle
[rad], not pinocchio's (cos, sin) pair).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike

from jacobian_ik import kernels
from jacobian_ik.errors import ChainError, ConfigurationError, UrdfError

#: Task row selections of a twist / Jacobian (linear rows first).
TASK_ROWS = {
    "pose": np.arange(6, dtype=np.int64),
    "position": np.arange(3, dtype=np.int64),
}

SUPPORTED_JOINT_TYPES = ("revolute", "continuous", "prismatic", "fixed")

_NUMERIC_ATTRIBUTES = (
    ("origin", "xyz"),
    ("origin", "rpy"),
    ("axis", "xyz"),
    ("limit", "lower"),
    ("limit", "upper"),
    ("limit", "velocity"),
    ("limit", "effort"),
)


def _read_source(source: str | bytes | Path) -> tuple[str, str]:
    """Return (xml text, description for messages) from a path or an XML string."""
    if isinstance(source, bytes):
        source = source.decode("utf-8", errors="replace")
    if isinstance(source, str) and source.lstrip().startswith("<"):
        return source, "URDF string"
    if not isinstance(source, (str, Path)):
        raise UrdfError(
            f"URDF source must be a path or an XML string, got {type(source).__name__}")
    path = Path(source)
    if not path.is_file():
        raise UrdfError(f"URDF file '{path}' does not exist", path=str(path))
    try:
        return path.read_text(encoding="utf-8"), f"URDF file '{path}'"
    except (OSError, UnicodeDecodeError) as exc:
        raise UrdfError(f"cannot read URDF file '{path}': {exc}", path=str(path)) from None


def _parse_numbers(text: str, what: str, joint: str | None = None) -> list[float]:
    try:
        values = [float(tok) for tok in text.split()]
    except ValueError:
        raise UrdfError(f"{what} is not a list of numbers: '{text}'", joint=joint) from None
    for v in values:
        if not math.isfinite(v):
            raise UrdfError(f"{what} has a non-finite number: '{text}'", joint=joint)
    return values


@dataclass(frozen=True)
class _UrdfJoint:
    name: str
    type: str
    parent: str
    child: str
    element: ET.Element = field(repr=False)


def _parse_urdf_tree(xml: str, what: str) -> tuple[list[str], list[_UrdfJoint]]:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise UrdfError(f"{what} is not well-formed XML: {exc}") from None
    if root.tag != "robot":
        raise UrdfError(f"{what} has root element <{root.tag}>; a URDF's root is <robot>")
    links = cast(list[str], [el.get("name") for el in root.findall("link")])
    if not links:
        raise UrdfError(f"{what} has no <link>")
    joints = []
    for el in root.findall("joint"):
        parent = el.find("parent")
        child = el.find("child")
        name = el.get("name")
        if name is None or parent is None or child is None:
            raise UrdfError(f"{what} has a <joint> without name, <parent> or <child>")
        joints.append(_UrdfJoint(name, el.get("type", ""), parent.get("link", ""),
                                 child.get("link", ""), el))
    return links, joints


def _chain_joints(links: list[str], joints: list[_UrdfJoint], base_link: str,
                  tip_link: str) -> list[_UrdfJoint]:
    """Joints from base_link down to tip_link, base first (fixed ones included)."""
    valid = ", ".join(sorted(links))
    for role, link in (("base_link", base_link), ("tip_link", tip_link)):
        if link not in links:
            raise ChainError(f"{role} '{link}' not in URDF; links are: {valid}",
                             link=link, choices=tuple(sorted(links)))
    parent_joint = {j.child: j for j in joints}
    chain = []
    link = tip_link
    while link != base_link:
        joint = parent_joint.get(link)
        if joint is None:
            below = sorted(_descendants(joints, base_link))
            raise ChainError(
                f"tip_link '{tip_link}' is not below base_link '{base_link}'; links below "
                f"'{base_link}' are: {', '.join(below) if below else '(none)'}",
                link=tip_link, choices=tuple(below))
        chain.append(joint)
        link = joint.parent
    chain.reverse()
    return chain


def _descendants(joints: list[_UrdfJoint], link: str) -> list[str]:
    children: dict[str, list[str]] = {}
    for j in joints:
        children.setdefault(j.parent, []).append(j.child)
    out, stack = [], [link]
    while stack:
        for c in children.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


def _check_chain_joint(joint: _UrdfJoint) -> None:
    if joint.type not in SUPPORTED_JOINT_TYPES:
        raise ChainError(
            f"joint '{joint.name}' in the chain has type '{joint.type}'; supported types are: "
            f"{', '.join(SUPPORTED_JOINT_TYPES)}",
            joint=joint.name, choices=tuple(SUPPORTED_JOINT_TYPES))
    if joint.type != "fixed" and joint.element.find("mimic") is not None:
        raise ChainError(
            f"joint '{joint.name}' in the chain is a mimic joint; mimic joints are not supported "
            "in the controlled chain", joint=joint.name)
    for tag, attr in _NUMERIC_ATTRIBUTES:
        el = joint.element.find(tag)
        text = None if el is None else el.get(attr)
        if text is not None:
            _parse_numbers(text, f"joint '{joint.name}' <{tag} {attr}>", joint.name)
    if joint.type in ("revolute", "prismatic"):
        limit = joint.element.find("limit")
        if limit is None or limit.get("lower") is None or limit.get("upper") is None:
            raise UrdfError(
                f"joint '{joint.name}' of type {joint.type} needs <limit lower=.. upper=..>",
                joint=joint.name)


def _joint_limits(joint: _UrdfJoint) -> tuple[float, float, float]:
    """(lower, upper, velocity) from <limit>; continuous joints are unbounded."""
    limit = joint.element.find("limit")

    def number(attr: str, default: float) -> float:
        text = None if limit is None else limit.get(attr)
        if text is None:
            return default
        return _parse_numbers(text, f"joint '{joint.name}' <limit {attr}>", joint.name)[0]

    velocity = number("velocity", math.inf)
    if joint.type == "continuous":
        return -math.inf, math.inf, velocity
    lower, upper = number("lower", 0.0), number("upper", 0.0)
    if lower > upper:
        raise UrdfError(f"joint '{joint.name}' has lower limit {lower} > upper limit {upper}",
                        joint=joint.name)
    return lower, upper, velocity


def _pinocchio_model(xml: str, what: str) -> Any:
    import pinocchio as pin

    try:
        return pin.buildModelFromXML(xml)
    except Exception as exc:  # pinocchio raises plain RuntimeError/ValueError
        raise UrdfError(f"pinocchio cannot build a model from {what}: {exc}") from None


def _joint_axis_and_type(model: Any, joint_id: int) -> tuple[np.ndarray, int]:
    """Unit axis in the joint frame and kernel joint type, from the motion subspace."""
    import pinocchio as pin

    jm = model.joints[joint_id]
    jd = jm.createData()
    jm.calc(jd, pin.neutral(model))
    S = np.asarray(jd.S).reshape(6, -1)[:, 0]
    lin, ang = S[:3], S[3:]
    if np.linalg.norm(ang) > 0.5:
        return ang / np.linalg.norm(ang), kernels.REVOLUTE
    return lin / np.linalg.norm(lin), kernels.PRISMATIC


class Robot:
    """A serial chain base_link → tip_link, ready for the kernels.

    Attributes (n = ``dof``):
        joint_names      tuple of n names, base to tip.
        lower, upper     Shape (n,): position limits [rad | m]; ±inf for continuous joints.
        velocity_limits  Shape (n,): [rad/s | m/s] from URDF <limit velocity>; inf if absent.
        continuous       Shape (n,) bool: joint is continuous (unbounded, wraps).
        placements       Shape (n+1, 4, 4), axes Shape (n, 3), joint_types Shape (n,) int64:
                         the chain for ``jacobian_ik.kernels``.
        base_link, tip_link, links (all link names of the URDF), urdf_xml.
    """

    def __init__(self, *, joint_names: Sequence[str], lower: ArrayLike, upper: ArrayLike,
                 velocity_limits: ArrayLike, continuous: ArrayLike, placements: ArrayLike,
                 axes: ArrayLike, joint_types: ArrayLike, base_link: str, tip_link: str,
                 links: Sequence[str], urdf_xml: str) -> None:
        self.joint_names = tuple(joint_names)
        self.dof = len(self.joint_names)
        self.lower = np.ascontiguousarray(lower, dtype=np.float64)
        self.upper = np.ascontiguousarray(upper, dtype=np.float64)
        self.velocity_limits = np.ascontiguousarray(velocity_limits, dtype=np.float64)
        self.continuous = np.ascontiguousarray(continuous, dtype=np.bool_)
        self.placements = np.ascontiguousarray(placements, dtype=np.float64)
        self.axes = np.ascontiguousarray(axes, dtype=np.float64)
        self.joint_types = np.ascontiguousarray(joint_types, dtype=np.int64)
        self.base_link = base_link
        self.tip_link = tip_link
        self.links = tuple(links)
        self.urdf_xml = urdf_xml
        for arr in (self.lower, self.upper, self.velocity_limits, self.continuous,
                    self.placements, self.axes, self.joint_types):
            arr.setflags(write=False)
        self._ws = Workspace(self)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_urdf(cls, source: str | bytes | Path, base_link: str, tip_link: str) -> Robot:
        """Build the chain base_link → tip_link of a URDF given as a path or an XML string.

        Raises ``UrdfError`` (unreadable/malformed description, non-finite numbers,
        missing limits) or ``ChainError`` (unknown link, tip not below base, no
        moving joint, unsupported or mimic joint in the chain).
        """
        xml, what = _read_source(source)
        links, joints = _parse_urdf_tree(xml, what)
        chain = _chain_joints(links, joints, base_link, tip_link)
        for joint in chain:
            _check_chain_joint(joint)
        moving = [j for j in chain if j.type != "fixed"]
        if not moving:
            raise ChainError(
                f"chain '{base_link}' -> '{tip_link}' has no moving joint"
                + (f"; its joints are all fixed: {', '.join(j.name for j in chain)}"
                   if chain else " (base_link and tip_link are the same link)"),
                link=tip_link)

        import pinocchio as pin

        model = _pinocchio_model(xml, what)
        f_base = model.frames[model.getFrameId(base_link, pin.BODY)]
        f_tip = model.frames[model.getFrameId(tip_link, pin.BODY)]
        ids = [model.getJointId(j.name) for j in moving]
        prev = f_base.parentJoint
        for jid, joint in zip(ids, moving):
            if jid >= model.njoints or model.parents[jid] != prev:
                raise UrdfError(
                    f"pinocchio's tree disagrees with the URDF at joint '{joint.name}'",
                    joint=joint.name)
            prev = jid
        if f_tip.parentJoint != prev:
            raise UrdfError(f"pinocchio's tree disagrees with the URDF at link '{tip_link}'",
                            link=tip_link)

        n = len(moving)
        placements = np.empty((n + 1, 4, 4))
        placements[0] = (f_base.placement.inverse() * model.jointPlacements[ids[0]]).homogeneous
        for i in range(1, n):
            placements[i] = model.jointPlacements[ids[i]].homogeneous
        placements[n] = f_tip.placement.homogeneous
        axes = np.empty((n, 3))
        joint_types = np.empty(n, dtype=np.int64)
        for i, jid in enumerate(ids):
            axes[i], joint_types[i] = _joint_axis_and_type(model, jid)
        limits = np.array([_joint_limits(j) for j in moving], dtype=np.float64).reshape(n, 3)
        return cls(
            joint_names=[j.name for j in moving], lower=limits[:, 0], upper=limits[:, 1],
            velocity_limits=limits[:, 2], continuous=[j.type == "continuous" for j in moving],
            placements=placements, axes=axes, joint_types=joint_types, base_link=base_link,
            tip_link=tip_link, links=links, urdf_xml=xml)

    # ------------------------------------------------------------------ helpers
    def joint_vector(self, q: ArrayLike) -> np.ndarray:
        """``q`` as a C-contiguous float64 array Shape (n,) [rad | m]; ConfigurationError
        for another shape."""
        q = np.asarray(q, dtype=np.float64)
        if q.shape != (self.dof,):
            raise ConfigurationError(
                f"joint vector must have shape ({self.dof},) for joints "
                f"{', '.join(self.joint_names)}; got shape {q.shape}",
                parameter="q", value=q.shape)
        return np.ascontiguousarray(q)

    def task_rows(self, task: str | ArrayLike) -> np.ndarray:
        """Row indices of a task: 'pose' (6 rows), 'position' (3 rows) or an index array."""
        if isinstance(task, str):
            if task not in TASK_ROWS:
                raise ConfigurationError(
                    f"task '{task}' is unknown; tasks are: {', '.join(sorted(TASK_ROWS))}",
                    parameter="task", value=task, choices=tuple(sorted(TASK_ROWS)))
            return TASK_ROWS[task]
        rows = np.asarray(task, dtype=np.int64)
        if rows.ndim != 1 or rows.size == 0 or rows.min() < 0 or rows.max() > 5 \
                or len(set(rows.tolist())) != rows.size:
            raise ConfigurationError(
                f"task rows must be distinct indices in 0..5; got {np.asarray(task).tolist()}",
                parameter="task", value=np.asarray(task).tolist(), valid_range=(0, 5))
        return np.ascontiguousarray(rows)

    @property
    def q_mid(self) -> np.ndarray:
        """Mid-range ("nominal") configuration; 0 for continuous joints. Shape (n,)."""
        bounded = ~self.continuous
        mid = np.zeros(self.dof)
        mid[bounded] = 0.5 * (self.lower[bounded] + self.upper[bounded])
        return mid

    def random_configurations(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform samples within the limits ([-π, π] for continuous). Shape (count, n)."""
        lo = np.where(self.continuous, -math.pi, self.lower)
        hi = np.where(self.continuous, math.pi, self.upper)
        return rng.uniform(lo, hi, size=(count, self.dof))

    # ------------------------------------------------------------------ kinematics
    def fk(self, q: ArrayLike) -> np.ndarray:
        """``T_base_tip`` at joint positions q. Shape (4, 4)."""
        ws = self._ws
        kernels.fk_frames(self.placements, self.axes, self.joint_types, self.joint_vector(q),
                          ws.frames)
        return ws.frames[self.dof].copy()

    def frames(self, q: ArrayLike) -> np.ndarray:
        """``T_base_joint(i)`` of every joint after its motion (i < n) and ``T_base_tip``
        (i = n) at joint positions q. Shape (n+1, 4, 4) (``kernels.fk_frames``)."""
        ws = self._ws
        kernels.fk_frames(self.placements, self.axes, self.joint_types, self.joint_vector(q),
                          ws.frames)
        return ws.frames.copy()

    def jacobian(self, q: ArrayLike, frame: str = "base") -> np.ndarray:
        """Geometric Jacobian of the tip, linear rows on top. Shape (6, n).

        ``frame='base'``: twist of the tip origin expressed in the base frame;
        ``frame='tip'``: the same twist expressed in the tip frame.
        """
        if frame not in ("base", "tip"):
            raise ConfigurationError(f"frame '{frame}' is unknown; frames are: base, tip",
                                     parameter="frame", value=frame, choices=("base", "tip"))
        ws = self._ws
        kernels.fk_jacobian(self.placements, self.axes, self.joint_types, self.joint_vector(q),
                            ws.frames, ws.J)
        if frame == "base":
            return ws.J.copy()
        kernels.rotate_jacobian_to_tip(ws.frames[self.dof], ws.J, ws.J_tip)
        return ws.J_tip.copy()

    def singular_values(self, q: ArrayLike, task: str | ArrayLike = "pose") -> np.ndarray:
        """Singular values of the task Jacobian, descending. Shape (min(k, n),)."""
        ws = self._ws
        rows = self.task_rows(task)
        kernels.fk_jacobian(self.placements, self.axes, self.joint_types, self.joint_vector(q),
                            ws.frames, ws.J)
        m = kernels.singular_values(ws.J, rows, ws.work, ws.V, ws.sv)
        return ws.sv[:m].copy()

    def workspace(self) -> Workspace:
        """A fresh set of preallocated arrays for the kernels (one per control loop)."""
        return Workspace(self)

    def __repr__(self) -> str:
        return (f"Robot({self.base_link!r} -> {self.tip_link!r}, dof={self.dof}, "
                f"joints={list(self.joint_names)})")


class Workspace:
    """Preallocated kernel arrays for one robot, so a control cycle never allocates.

    frames (n+1, 4, 4), J and J_tip (6, n), work and V (s, s) with s = max(6, n),
    sv (12,: σ and scratch), dq (n,), u_min (6,), v_min (n,), err (6,), and
    ``scratch`` (5, s, s) with its named views G, L, M (s, s), X_min, X_max, Y (s, 2),
    tmp (s,) (see ``kernels.scratch_views``).
    """

    def __init__(self, robot: Robot):
        n = robot.dof
        s = max(6, n)
        self.frames = np.zeros((n + 1, 4, 4))
        self.J = np.zeros((6, n))
        self.J_tip = np.zeros((6, n))
        self.work = np.zeros((s, s))
        self.V = np.zeros((s, s))
        self.sv = np.zeros(12)
        self.dq = np.zeros(n)
        self.u_min = np.zeros(6)
        self.v_min = np.zeros(n)
        self.err = np.zeros(6)
        self.scratch = np.zeros((5, s, s))
        (self.G, self.L, self.M, self.X_min, self.X_max, self.Y,
         self.tmp) = kernels.scratch_views.py_func(self.scratch)
