"""Parameters of the controller: one frozen, validated dataclass, no ROS.

``ControllerParams`` holds every tuning value of ``jacobian_ik.controller.Controller``.
It is validated when it is made (``__post_init__``): a value outside its valid set
raises ``ConfigurationError`` naming the field, the value and the valid range.
``PARAMETER_SPECS`` describes each field (unit, range, default, whether it may
change while the controller runs) so that a ROS node can declare its parameters
from it without knowing them one by one.

Units of σ (the singular values of the task Jacobian): the Jacobian maps joint
velocities [rad/s] to the tip twist, linear rows in m/s and angular rows in rad/s,
so a singular value is in m/rad along a linear task direction and dimensionless
along an angular one.  σ_min = 0.02 means: some unit joint-velocity direction
(‖dq‖ = 1 rad/s) moves the tip by only 0.02 m/s (or 0.02 rad/s), and the joints
would need 1/0.02 = 50 rad/s per m/s of tip speed in that direction.
See docs/controller.md for the physical meaning of each threshold.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from jacobian_ik.errors import ConfigurationError

if TYPE_CHECKING:
    from jacobian_ik.robot import Robot

#: Task modes: which rows of the twist the controller tracks.
TASKS = ("pose", "position")

#: Velocity limit used for a joint whose URDF gives none (or a non-positive one) [rad/s | m/s].
FALLBACK_JOINT_VELOCITY = 1.0

#: Smallest accepted sigma_stop: below it the band around a singularity where σ_min <
#: sigma_stop is narrower than the look-ahead can resolve at full joint speed (a
#: joint at 3 rad/s moves 6 mrad a cycle at 500 Hz), and the guarantee that σ_min
#: stays above sigma_stop is no longer shown by the closed-loop property tests.
MIN_SIGMA_STOP = 0.002

#: Default acceleration limit = URDF velocity limit / this time [s]: a joint reaches
#: its full speed from rest in 0.25 s and stops from it in the same time.
DEFAULT_ACCELERATION_TIME = 0.25


@dataclass(frozen=True)
class ParameterSpec:
    """What a parameter is: enough for a node to declare and check it generically.

    ``kind`` is "float", "str", "bool" or "float_array" (one value per joint; empty = default).
    ``minimum`` / ``maximum`` are inclusive bounds (of every element for arrays),
    None when unbounded; ``choices`` lists the valid strings; ``tunable`` says
    whether ``Controller.update_params`` may change it while running.
    """

    description: str
    unit: str
    default: Any
    kind: str = "float"
    minimum: float | None = None
    maximum: float | None = None
    tunable: bool = False
    choices: tuple[str, ...] = ()


#: Key of a ControllerParams field's ``metadata`` that holds its ParameterSpec.
SPEC_KEY = "spec"


def _declare(spec: ParameterSpec) -> Any:
    """A dataclass field whose default and metadata come from ``spec``."""
    return field(default=spec.default, metadata={SPEC_KEY: spec})


def _number(default: float, unit: str, lo: float | None, hi: float | None, description: str,
            tunable: bool = False) -> Any:
    """A float field: default, unit, inclusive range [lo, hi], description."""
    return _declare(ParameterSpec(description=description, unit=unit, default=default,
                                  kind="float", minimum=lo, maximum=hi, tunable=tunable))


def _choice(default: str, choices: tuple[str, ...], description: str) -> Any:
    """A string field that must be one of ``choices``."""
    return _declare(ParameterSpec(description=description, unit="", default=default,
                                  kind="str", choices=choices))


def _flag(default: bool, description: str, tunable: bool = False) -> Any:
    """A boolean field."""
    return _declare(ParameterSpec(description=description, unit="", default=default,
                                  kind="bool", tunable=tunable))


def _per_joint(unit: str, lo: float, hi: float, description: str) -> Any:
    """A per-joint float tuple, empty by default (= derived from the URDF)."""
    return _declare(ParameterSpec(description=description, unit=unit, default=(),
                                  kind="float_array", minimum=lo, maximum=hi))


@dataclass(frozen=True)
class JointLimits:
    """Per-joint limits of one robot after resolving defaults. Shapes (n,)."""

    max_joint_velocity: np.ndarray      # [rad/s | m/s]
    max_joint_acceleration: np.ndarray  # [rad/s² | m/s²]


@dataclass(frozen=True)
class ControllerParams:
    """Tuning values of the controller; see ``PARAMETER_SPECS`` for units and ranges.

    Each field is declared once, with its ParameterSpec (default, unit, range,
    description, tunable) in the field's metadata; ``PARAMETER_SPECS`` is read
    from there.  Adding a parameter is adding one field here.
    Frozen and validated: make changed copies with ``replace``.
    """

    control_rate: float = _number(
        500.0, "Hz", 1.0, 10000.0,
        "rate of the control loop; the controller's nominal period is 1/rate")
    task: str = _choice(
        "pose", TASKS,
        "tracked task: 'pose' (6-D position and orientation) or 'position' "
        "(3-D tip position, orientation free)")
    position_gain: float = _number(
        3.0, "1/s", 0.0, 100.0,
        "proportional gain from position error [m] to linear velocity [m/s]", tunable=True)
    orientation_gain: float = _number(
        3.0, "1/s", 0.0, 100.0,
        "proportional gain from orientation error [rad] to angular velocity [rad/s]",
        tunable=True)
    max_linear_speed: float = _number(
        0.25, "m/s", 0.0, 10.0,
        "largest commanded tip speed; the twist is scaled down uniformly "
        "(linear and angular together) to respect it", tunable=True)
    max_angular_speed: float = _number(
        1.0, "rad/s", 0.0, 20.0,
        "largest commanded tip angular speed (uniform twist scaling)", tunable=True)
    lambda_max: float = _number(
        0.03, "sigma unit (m/rad | 1)", 0.0, 10.0,
        "largest damping factor of the damped least squares inverse, reached at sigma_min = 0",
        tunable=True)
    sigma_damp: float = _number(
        0.04, "sigma unit (m/rad | 1)", 0.0, 10.0,
        "damping ramps in below this sigma_min: "
        "lambda^2 = lambda_max^2 (1 - (sigma_min/sigma_damp)^2)", tunable=True)
    sigma_warn: float = _number(
        0.04, "sigma unit (m/rad | 1)", 0.0, 10.0,
        "below this sigma_min the speed is scaled down (APPROACHING_SINGULARITY)")
    sigma_stop: float = _number(
        0.02, "sigma unit (m/rad | 1)", MIN_SIGMA_STOP, 10.0,
        "the arm never moves on toward a sigma_min below this: SAFE_STOP")
    sigma_resume: float = _number(
        0.03, "sigma unit (m/rad | 1)", 0.0, 10.0,
        "a SAFE_STOP clears once sigma_min exceeds this "
        "(sigma_stop < sigma_resume <= sigma_warn, hysteresis)")
    speed_scale_floor: float = _number(
        0.1, "1", 0.01, 1.0,
        "speed scale at sigma_stop; the scale falls linearly from 1 at "
        "sigma_warn to this value, so the arm reaches the stop in finite time")
    speed_scale_rate: float = _number(
        2.0, "1/s", 0.1, 1000.0,
        "largest increase of the speed scale per second (no sudden speed-up)", tunable=True)
    joint_limit_margin: float = _number(
        0.1, "rad | m", 0.0, 1.0,
        "a joint closer than this to a position limit may only move away "
        "from it; joints brake to reach the margin at zero speed")
    max_joint_velocity: tuple[float, ...] = _per_joint(
        "rad/s | m/s", 1e-6, 100.0,
        "joint velocity limit per joint (empty = URDF <limit velocity>); "
        "may only lower the URDF limit")
    max_joint_acceleration: tuple[float, ...] = _per_joint(
        "rad/s^2 | m/s^2", 1e-6, 10000.0,
        "joint acceleration limit per joint (empty = velocity limit / 0.25 s)")
    stale_timeout: float = _number(
        0.1, "s", 0.001, 10.0,
        "a measurement or twist target older than this stops the arm (STALE_INPUT)",
        tunable=True)
    frozen_timeout: float = _number(
        0.04, "s", 0.001, 10.0,
        "a measurement that stays bit-identical this long (beyond its age) "
        "while the command moves the arm is frozen: the arm stops "
        "(STALE_INPUT) until it changes", tunable=True)
    goal_position_tolerance: float = _number(
        0.001, "m", 0.0, 1.0,
        "goal_reached needs the position error within this", tunable=True)
    goal_orientation_tolerance: float = _number(
        0.01, "rad", 0.0, math.pi,
        "goal_reached needs the orientation error within this (pose task)", tunable=True)
    max_command_drift: float = _number(
        0.05, "rad | m", 0.001, 1.0,
        "the position command is re-anchored on the measured position "
        "when any joint differs from it by more than this")
    barrier_gain: float = _number(
        5.0, "1/s", 0.1, 100.0,
        "rate gamma of the sigma_min barrier: sigma_min may approach its floor "
        "1.15 sigma_stop no faster than d(sigma_min)/dt >= -gamma (sigma_min - "
        "floor), so the arm slides along the floor instead of stopping", tunable=True)
    nullspace_weight: float = _number(
        1e-4, "sigma unit^2", 0.0, 1.0,
        "weight w of the secondary objective w |dq - dq_sec|^2 in the QP: "
        "decides the null-space motion of a redundant arm; small against "
        "sigma^2 so the task is barely biased", tunable=True)
    nullspace_sigma_gain: float = _number(
        1.0, "rad/s per sigma unit/rad", 0.0, 100.0,
        "secondary objective: dq_sec = k_sigma grad(sigma_min) + "
        "k_limit (q_mid - q), raising sigma_min", tunable=True)
    nullspace_limit_gain: float = _number(
        0.5, "1/s", 0.0, 100.0,
        "secondary objective: pull toward the middle of each joint's "
        "range (continuous joints excluded)", tunable=True)
    stall_timeout: float = _number(
        0.5, "s", 0.01, 60.0,
        "a pose goal whose error has not improved by 5 % (or 0.03) for this "
        "long is blocked: the joint-space fallback starts, or the goal is "
        "declared unreachable (SAFE_STOP); a goal sliding along the sigma_min "
        "barrier for this long looks for a short joint path", tunable=True)
    joint_move_distance: float = _number(
        0.3, "m", 0.0, 100.0,
        "a pose goal farther than this from the tip previews its Cartesian "
        "route; where sigma_min would fall toward the barrier on it, the arm "
        "moves in joint space along a path that keeps sigma_min up (then the "
        "pose is tracked); 0 = always Cartesian first", tunable=True)
    joint_fallback: bool = _flag(
        True,
        "for pose goals that are blocked, slide along the sigma_min barrier or "
        "are far (joint_move_distance), look for a joint-space path to an IK "
        "solution along which sigma_min stays up, and follow it (JOINT_MOVE)",
        tunable=True)

    self_collision: bool = _flag(
        True,
        "keep the arm's own links apart (the pairs of the collision model that "
        "are not skipped as adjacent or never in reach)", tunable=True)
    collision_stop_distance: float = _number(
        0.01, "m", 0.0, 0.5,
        "no pair of the collision model (link-link, link-obstacle) comes closer "
        "than this: the arm slides along it, or stops (SAFE_STOP) where no safe "
        "progress exists", tunable=True)
    collision_influence_distance: float = _number(
        0.1, "m", 0.001, 2.0,
        "a pair closer than this adds its row d(distance)/dt >= -collision_gain "
        "(distance - collision_stop_distance) to the QP (APPROACHING_COLLISION)",
        tunable=True)
    collision_gain: float = _number(
        5.0, "1/s", 0.1, 100.0,
        "rate of the collision barrier: a pair's distance approaches "
        "collision_stop_distance no faster than exponentially at this rate",
        tunable=True)

    def __post_init__(self) -> None:
        for name, spec in PARAMETER_SPECS.items():
            value = getattr(self, name)
            if spec.kind == "str":
                _check_choice(name, value, spec)
            elif spec.kind == "bool":
                _check_bool(name, value)
            elif spec.kind == "float":
                object.__setattr__(self, name, _check_number(name, value, spec))
            else:
                object.__setattr__(self, name, _check_array(name, value, spec))
        _check_order(self)

    # ------------------------------------------------------------------ conversions
    @classmethod
    def from_dict(cls, values: dict) -> ControllerParams:
        """Parameters from a mapping of field names to values (missing = default).

        An unknown key raises ``ConfigurationError`` listing the valid keys.
        """
        if not isinstance(values, dict):
            raise ConfigurationError(
                f"controller parameters must be a mapping, got {type(values).__name__}",
                value=values)
        _refuse_unknown(values)
        return cls(**values)

    def to_dict(self) -> dict:
        """Field name → value; per-joint fields as lists (ready for YAML or ROS)."""
        out = {}
        for name, spec in PARAMETER_SPECS.items():
            value = getattr(self, name)
            out[name] = list(value) if spec.kind == "float_array" else value
        return out

    def replace(self, **changes: Any) -> ControllerParams:
        """A validated copy with some fields changed (unknown names raise)."""
        _refuse_unknown(changes)
        return dataclasses.replace(self, **changes)

    def changed_fields(self, other: ControllerParams) -> list[str]:
        """Names of the fields whose value differs between self and other."""
        return [name for name in PARAMETER_SPECS if getattr(self, name) != getattr(other, name)]

    # ------------------------------------------------------------------ robot check
    def resolve(self, robot: Robot) -> JointLimits:
        """Per-joint limits for ``robot`` (a ``jacobian_ik.robot.Robot``), checked.

        Velocity: ``max_joint_velocity`` or the URDF limit (``FALLBACK_JOINT_VELOCITY``
        where the URDF has none); an override above the URDF limit is refused.
        Acceleration: ``max_joint_acceleration`` or velocity / ``DEFAULT_ACCELERATION_TIME``.
        Raises ``ConfigurationError`` when a per-joint tuple's length is not robot.dof.
        """
        n = robot.dof
        urdf = np.array([v if math.isfinite(v) and v > 0.0 else FALLBACK_JOINT_VELOCITY
                         for v in robot.velocity_limits], dtype=np.float64)
        for name in ("max_joint_velocity", "max_joint_acceleration"):
            value = getattr(self, name)
            if value and len(value) != n:
                raise ConfigurationError(
                    f"{name} has {len(value)} values but the robot has {n} joints "
                    f"({', '.join(robot.joint_names)}); give {n} values or none",
                    parameter=name, value=value)
        if self.max_joint_velocity:
            velocity = np.array(self.max_joint_velocity, dtype=np.float64)
            for i, (v, u) in enumerate(zip(velocity, urdf)):
                if v > u * (1.0 + 1e-12):
                    raise ConfigurationError(
                        f"max_joint_velocity[{i}] = {v} for joint '{robot.joint_names[i]}' "
                        f"exceeds its URDF velocity limit {u}; valid range is (0, {u}]",
                        parameter=f"max_joint_velocity[{i}]", value=float(v),
                        valid_range=(0.0, float(u)))
        else:
            velocity = urdf
        if self.max_joint_acceleration:
            acceleration = np.array(self.max_joint_acceleration, dtype=np.float64)
        else:
            acceleration = velocity / DEFAULT_ACCELERATION_TIME
        velocity.setflags(write=False)
        acceleration.setflags(write=False)
        return JointLimits(max_joint_velocity=velocity, max_joint_acceleration=acceleration)


#: Every field of ControllerParams, in declaration order, read from the fields' metadata.
PARAMETER_SPECS: dict[str, ParameterSpec] = {
    f.name: f.metadata[SPEC_KEY] for f in dataclasses.fields(ControllerParams)}


def _refuse_unknown(names: Iterable[str]) -> None:
    """Raise for names that are not parameters; the error's ``parameter`` is the
    first unknown name and its ``choices`` the valid names."""
    unknown = sorted(set(names) - set(PARAMETER_SPECS))
    if unknown:
        raise ConfigurationError(
            f"unknown controller parameter(s) {', '.join(map(repr, unknown))}; valid "
            f"parameters are: {', '.join(sorted(PARAMETER_SPECS))}",
            parameter=unknown[0], choices=tuple(sorted(PARAMETER_SPECS)))


def _range_text(spec: ParameterSpec) -> str:
    lo = "-inf" if spec.minimum is None else repr(float(spec.minimum))
    hi = "inf" if spec.maximum is None else repr(float(spec.maximum))
    unit = f" {spec.unit}" if spec.unit and spec.unit != "1" else ""
    return f"[{lo}, {hi}]{unit}"


def _check_number(name: str, value: Any, spec: ParameterSpec, label: str | None = None) -> float:
    label = label or name
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigurationError(
            f"{label} = {value!r} is not a number; valid range is {_range_text(spec)}",
            parameter=label, value=value, valid_range=(spec.minimum, spec.maximum))
    value = float(value)
    if not math.isfinite(value) or (spec.minimum is not None and value < spec.minimum) \
            or (spec.maximum is not None and value > spec.maximum):
        raise ConfigurationError(
            f"{label} = {value!r} is outside its valid range {_range_text(spec)}",
            parameter=label, value=value, valid_range=(spec.minimum, spec.maximum))
    return value


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigurationError(f"{name} = {value!r} is not a boolean; valid values are: "
                                 f"true, false", parameter=name, value=value,
                                 choices=(True, False))


def _check_choice(name: str, value: Any, spec: ParameterSpec) -> None:
    if not isinstance(value, str) or value not in spec.choices:
        raise ConfigurationError(
            f"{name} = {value!r} is not a valid choice; valid choices are: "
            f"{', '.join(spec.choices)}", parameter=name, value=value, choices=spec.choices)


def _check_array(name: str, value: Any, spec: ParameterSpec) -> tuple[float, ...]:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise ConfigurationError(
            f"{name} = {value!r} is not a list of numbers (one per joint, or empty for the "
            f"default); valid range of each is {_range_text(spec)}",
            parameter=name, value=value, valid_range=(spec.minimum, spec.maximum))
    return tuple(_check_number(name, v, spec, label=f"{name}[{i}]") for i, v in enumerate(value))


def _check_order(p: ControllerParams) -> None:
    if not p.collision_stop_distance < p.collision_influence_distance:
        raise ConfigurationError(
            f"collision_influence_distance = {p.collision_influence_distance!r} must be "
            f"greater than collision_stop_distance = {p.collision_stop_distance!r}",
            parameter="collision_influence_distance", value=p.collision_influence_distance,
            valid_range=(p.collision_stop_distance, None))
    if not p.sigma_stop < p.sigma_resume:
        raise ConfigurationError(
            f"sigma_resume = {p.sigma_resume!r} must be greater than sigma_stop = "
            f"{p.sigma_stop!r} (hysteresis: sigma_stop < sigma_resume <= sigma_warn)",
            parameter="sigma_resume", value=p.sigma_resume, valid_range=(p.sigma_stop, None))
    if not p.sigma_resume <= p.sigma_warn:
        raise ConfigurationError(
            f"sigma_warn = {p.sigma_warn!r} must be at least sigma_resume = "
            f"{p.sigma_resume!r} (sigma_stop < sigma_resume <= sigma_warn)",
            parameter="sigma_warn", value=p.sigma_warn, valid_range=(p.sigma_resume, None))
