"""Build a MuJoCo model of a chain from the robot's own URDF.

``build_mujoco_model(robot, timestep)`` edits the URDF in
memory and compiles it with MuJoCo:

* only ``base_link`` and the links below it are kept, with ``base_link`` as the
  root; MuJoCo welds the root to the world, so the chain's base is fixed;
* every joint below ``base_link`` that is not a moving joint of the chain is
  made ``fixed`` at its zero position (locked), so the only degrees of freedom
  are the chain's joints;
* links keep only their ``<inertial>``: visuals, collisions and meshes are
  dropped (the model has no contacts), links without ``<inertial>`` get
  MuJoCo's lower bounds on mass and inertia, and an inertia tensor that is
  not positive definite has its eigenvalues raised to ``BOUND_INERTIA``;
* fixed joints are not fused, so every link, the tip link included, stays a
  MuJoCo body of the same name (its pose is the link frame);
* one torque motor per chain joint (``add_joint_motors``) with the URDF
  effort limit as force range (the servo laws are in ``mujoco_backend``),
  gravity −9.81 m/s² along the base's −z, the ``implicitfast`` integrator.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np

from jacobian_ik.errors import ConfigurationError, UrdfError
from jacobian_ik.robot import Robot

#: Lower bounds MuJoCo applies to links without <inertial> (massless frames).
BOUND_MASS = 1e-6           # [kg]
BOUND_INERTIA = 1e-9        # [kg·m²]

#: Standard gravity along the base's −z [m/s²].
GRAVITY = (0.0, 0.0, -9.81)

#: Joint elements kept when copying a URDF joint.
_JOINT_CHILDREN = ("parent", "child", "origin", "axis", "limit", "dynamics")


def import_mujoco() -> Any:
    try:
        import mujoco
    except ImportError:
        raise ConfigurationError(
            "backend 'mujoco' needs the mujoco Python package: pip install 'jacobian_ik[sim]' "
            "(or pip install mujoco); the kinematic backend needs nothing") from None
    return mujoco


def chain_urdf(robot: Robot) -> str:
    """The robot's URDF reduced to what MuJoCo simulates (see the module docstring).

    Returns an XML string whose root link is ``robot.base_link`` and whose only
    moving joints are ``robot.joint_names``.
    """
    try:
        root = ET.fromstring(robot.urdf_xml)
    except ET.ParseError as exc:  # Robot has parsed it already; kept for safety
        raise UrdfError(f"URDF is not well-formed XML: {exc}") from None
    links = {el.get("name"): el for el in root.findall("link")}
    joints = root.findall("joint")
    children: dict[str, list[ET.Element]] = {}
    for joint in joints:
        children.setdefault(_child_link(joint, "parent"), []).append(joint)

    out = ET.Element("robot", {"name": root.get("name", "robot")})
    mujoco_el = ET.SubElement(out, "mujoco")
    ET.SubElement(mujoco_el, "compiler", {
        "fusestatic": "false", "discardvisual": "true", "balanceinertia": "true",
        "boundmass": repr(BOUND_MASS), "boundinertia": repr(BOUND_INERTIA),
        "angle": "radian"})
    moving = set(robot.joint_names)
    stack = [robot.base_link]
    while stack:
        name = stack.pop()
        out.append(_link_inertial_only(links.get(name), name))
        for joint in children.get(name, []):
            out.append(_joint_copy(joint, locked=joint.get("name") not in moving))
            stack.append(_child_link(joint, "child"))
    return ET.tostring(out, encoding="unicode")


def _child_link(joint: ET.Element, tag: str) -> str:
    """The link named by ``<parent link=..>`` / ``<child link=..>`` of a URDF joint
    (Robot has checked that both exist)."""
    el = joint.find(tag)
    return "" if el is None else el.get("link", "")


def _link_inertial_only(link: ET.Element | None, name: str) -> ET.Element:
    new = ET.Element("link", {"name": name})
    found = link.find("inertial") if link is not None else None
    if found is not None:
        inertial = copy.deepcopy(found)
        _check_inertial(inertial, name)
        _repair_inertia(inertial)
        new.append(inertial)
    return new


_INERTIA_KEYS = ("ixx", "ixy", "ixz", "iyy", "iyz", "izz")


def _number(el: ET.Element | None, attr: str, what: str) -> float:
    text = "0" if el is None else el.get(attr, "0")
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value):
        raise UrdfError(f"{what} {attr}='{text}' is not a finite number")
    return value


def _check_inertial(inertial: ET.Element, link: str) -> None:
    """UrdfError unless mass and inertia are finite numbers and the mass is ≥ 0."""
    what = f"link '{link}' <inertial>"
    mass = _number(inertial.find("mass"), "value", f"{what} <mass>")
    if mass < 0.0:
        raise UrdfError(f"{what} has a negative mass {mass}")
    for key in _INERTIA_KEYS:
        _number(inertial.find("inertia"), key, f"{what} <inertia>")


def _repair_inertia(inertial: ET.Element) -> None:
    """Make an <inertia> tensor that is not positive definite usable by MuJoCo.

    Eigenvalues below BOUND_INERTIA are raised to it (same principal axes);
    mass and centre of mass are kept.  Valid tensors are left untouched.
    """
    el = inertial.find("inertia")
    if el is None:
        return
    xx, xy, xz, yy, yz, zz = (float(el.get(k, "0")) for k in _INERTIA_KEYS)
    tensor = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    values, vectors = np.linalg.eigh(tensor)
    if values.min() > BOUND_INERTIA:
        return
    fixed = vectors @ np.diag(np.maximum(values, BOUND_INERTIA)) @ vectors.T
    for key, value in zip(_INERTIA_KEYS, fixed[np.triu_indices(3)]):
        el.set(key, repr(float(value)))


def _joint_copy(joint: ET.Element, *, locked: bool) -> ET.Element:
    attrs = {"name": joint.get("name", ""), "type": "fixed" if locked else joint.get("type", "")}
    new = ET.Element("joint", attrs)
    for tag in _JOINT_CHILDREN:
        el = joint.find(tag)
        if el is not None and not (locked and tag in ("axis", "limit", "dynamics")):
            new.append(copy.deepcopy(el))
    return new


def add_joint_motors(spec: Any, robot: Robot, effort: dict[str, float]) -> None:
    """Add one torque (force) motor named after each chain joint to a MuJoCo spec.

    ctrl is the joint torque [N·m] (force [N] for a prismatic joint), clipped by
    MuJoCo to ±effort from the URDF <limit effort> when it is > 0.
    """
    mujoco = import_mujoco()
    for name in robot.joint_names:
        act = spec.add_actuator()
        act.name = name
        act.target = name
        act.trntype = mujoco.mjtTrn.mjTRN_JOINT
        act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        act.biastype = mujoco.mjtBias.mjBIAS_NONE
        gain = np.zeros(len(act.gainprm))
        gain[0] = 1.0
        act.gainprm = gain
        act.biasprm = np.zeros(len(act.biasprm))
        limit = effort.get(name, 0.0)
        if limit > 0.0:
            act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
            act.forcerange = np.array([-limit, limit])


def joint_efforts(robot: Robot) -> dict[str, float]:
    """URDF <limit effort> of each chain joint [N·m | N]; absent → not in the dict."""
    root = ET.fromstring(robot.urdf_xml)
    efforts = {}
    for joint in root.findall("joint"):
        name = joint.get("name")
        limit = joint.find("limit")
        effort = limit.get("effort") if limit is not None else None
        if name in robot.joint_names and name is not None and effort is not None:
            efforts[name] = float(effort)
    return efforts


def build_mujoco_model(robot: Robot, timestep: float) -> Any:
    """Compile the MuJoCo model of ``robot``'s chain. Returns ``mujoco.MjModel``."""
    mujoco = import_mujoco()
    xml = chain_urdf(robot)
    try:
        spec = mujoco.MjSpec.from_string(xml)
        spec.option.timestep = timestep
        spec.option.gravity = np.array(GRAVITY)
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
        add_joint_motors(spec, robot, joint_efforts(robot))
        model = spec.compile()
    except Exception as exc:  # mujoco raises ValueError with its compiler message
        raise UrdfError(f"MuJoCo cannot build a model of chain '{robot.base_link}' -> "
                        f"'{robot.tip_link}': {exc}") from None
    for name in robot.joint_names:
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name) < 0:
            raise UrdfError(f"MuJoCo model has no joint '{name}'")
    if model.nv != robot.dof:
        raise UrdfError(f"MuJoCo model has {model.nv} degrees of freedom; the chain has "
                        f"{robot.dof} ({', '.join(robot.joint_names)})")
    return model
