"""Parameters of the simulated arm: one validated, frozen dataclass.

``SimConfig`` holds every parameter of the ``sim_arm`` node (the node fills it
from its ROS parameters, ``SimConfig.from_mapping`` does the type checks) and
validates them at construction: a bad value raises ``ConfigurationError`` with
the valid range or choices.  No ROS import here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from jacobian_ik.errors import ConfigurationError

#: Simulation backends, by ``backend`` name.
BACKENDS = ("kinematic", "mujoco")

#: What /joint_states does after ``freeze_after``, by ``freeze_mode`` name: nothing
#: is published (``silent``), the last message is published again with its stamp (a
#: hung bridge, ``repeat``), or its positions with fresh stamps (a stuck encoder,
#: ``stuck``).
FREEZE_MODES = ("silent", "repeat", "stuck")

#: Joint actuators of the MuJoCo backend, by ``mujoco_actuator`` name.
MUJOCO_ACTUATORS = ("velocity", "position")

#: Largest accepted ``publish_rate`` [Hz].
MAX_PUBLISH_RATE = 10_000.0


@dataclass(frozen=True)
class SimConfig:
    """Every parameter of the simulated arm, checked at construction.

    Robot: ``robot_description`` (URDF XML; takes precedence) or ``urdf_path``
    (a URDF file), ``base_link``, ``tip_link``.  The simulated joints are the moving
    joints of the chain base_link → tip_link, in chain order.
    """

    robot_description: str = ""
    urdf_path: str = ""
    base_link: str = ""
    tip_link: str = ""
    backend: str = "kinematic"
    #: Start configuration [rad | m], one per chain joint; empty = ``Robot.q_mid``.
    initial_positions: tuple[float, ...] = ()
    publish_rate: float = 500.0          # [Hz] /joint_states rate = backend stepping rate
    velocity_lag: float = 0.0            # [s] first-order lag of the kinematic backend; 0 = exact
    # Faults.
    noise_std: float = 0.0               # [rad] std of Gaussian noise on published positions
    latency: float = 0.0                 # [s] age of the published state
    drop_probability: float = 0.0        # [-] probability that one /joint_states is not sent
    freeze_after: float = 0.0            # [s] the published state freezes at this time; <= 0: never
    freeze_mode: str = "silent"          # FREEZE_MODES: what is published once frozen
    jump_after: float = 0.0              # [s] configuration jump at this time; <= 0: never
    jump_offset: float = 0.0             # [rad | m] size of the jump, added to every joint
    seed: int = 0                        # seed of the fault RNG (noise, drops)
    # MuJoCo backend.
    mujoco_actuator: str = "velocity"
    mujoco_kv: float = 1.0e4             # [N·m·s/rad] velocity-loop gain
    mujoco_kp: float = 5.0e5             # [N·m/rad] position-loop gain
    mujoco_timestep: float = 0.001       # [s] physics time step

    def __post_init__(self) -> None:
        if not all(_is_number(v) for v in self.initial_positions):
            raise ConfigurationError(
                f"initial_positions must be numbers; got {list(self.initial_positions)}",
                parameter="initial_positions", value=self.initial_positions)
        object.__setattr__(self, "initial_positions",
                           tuple(float(v) for v in self.initial_positions))
        self._check_robot_source()
        _choice("backend", self.backend, BACKENDS)
        _choice("mujoco_actuator", self.mujoco_actuator, MUJOCO_ACTUATORS)
        _choice("freeze_mode", self.freeze_mode, FREEZE_MODES)
        for value in self.initial_positions:
            if not math.isfinite(value):
                raise ConfigurationError(
                    f"initial_positions must be finite numbers; got {list(self.initial_positions)}",
                    parameter="initial_positions", value=self.initial_positions)
        _in_range("publish_rate", self.publish_rate, 0.0, MAX_PUBLISH_RATE,
                  low_open=True, unit="Hz")
        _in_range("velocity_lag", self.velocity_lag, 0.0, math.inf, unit="s")
        _in_range("noise_std", self.noise_std, 0.0, math.inf, unit="rad")
        _in_range("latency", self.latency, 0.0, math.inf, unit="s")
        _in_range("drop_probability", self.drop_probability, 0.0, 1.0)
        for name in ("freeze_after", "jump_after", "jump_offset"):
            if not _is_number(getattr(self, name)) or not math.isfinite(getattr(self, name)):
                raise ConfigurationError(
                    f"{name} must be a finite number; got {getattr(self, name)}",
                    parameter=name, value=getattr(self, name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigurationError(f"seed must be an integer >= 0; got {self.seed!r}",
                                     parameter="seed", value=self.seed, valid_range=(0, None))
        _in_range("mujoco_kv", self.mujoco_kv, 0.0, math.inf, low_open=True, unit="N·m·s/rad")
        _in_range("mujoco_kp", self.mujoco_kp, 0.0, math.inf, low_open=True, unit="N·m/rad")
        _in_range("mujoco_timestep", self.mujoco_timestep, 0.0, 0.01, low_open=True, unit="s")
        loop = self.mujoco_kp / self.mujoco_kv * self.mujoco_timestep
        if loop > 1.0:
            raise ConfigurationError(
                f"mujoco_kp / mujoco_kv * mujoco_timestep = {loop:g} > 1: the MuJoCo position "
                "loop would oscillate; lower mujoco_kp or mujoco_timestep, or raise mujoco_kv",
                parameter="mujoco_kp", value=self.mujoco_kp)

    def _check_robot_source(self) -> None:
        if not self.robot_description and not self.urdf_path:
            raise ConfigurationError(
                "no robot: set parameter robot_description (URDF XML) or urdf_path (URDF file)",
                parameter="robot_description")
        for name in ("base_link", "tip_link"):
            if not getattr(self, name):
                raise ConfigurationError(
                    f"parameter {name} is empty; name the chain's {name.replace('_', ' ')}",
                    parameter=name, value="")

    @property
    def robot_source(self) -> str:
        """The URDF for ``Robot.from_urdf``: the XML string or the file path."""
        return self.robot_description or self.urdf_path

    @property
    def period(self) -> float:
        """Nominal time between two /joint_states messages [s]."""
        return 1.0 / self.publish_rate

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SimConfig:
        """Build from a name → value mapping (ROS parameters), checking types.

        Integers are accepted where a float is expected; ``None`` means "not
        set" and keeps the default.  Unknown names raise ``ConfigurationError``.
        """
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigurationError(
                f"unknown simulator parameter(s) {', '.join(unknown)}; parameters are: "
                f"{', '.join(known)}", parameter=unknown[0], choices=tuple(known))
        defaults = cls.__dataclass_fields__
        kwargs = {}
        for name, value in values.items():
            if value is None:
                continue
            default = defaults[name].default
            kwargs[name] = _coerce(name, value, default)
        return cls(**kwargs)


def _coerce(name: str, value: Any, default: Any) -> Any:
    """``value`` converted to the type of ``default``, or ConfigurationError."""
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigurationError(f"parameter {name} must be a string; got {value!r}",
                                     parameter=name, value=value)
        return value
    if isinstance(default, tuple):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ConfigurationError(
                f"parameter {name} must be an array of numbers; got {value!r}",
                parameter=name, value=value)
        items = list(value)
        if not all(_is_number(v) for v in items):
            raise ConfigurationError(
                f"parameter {name} must be an array of numbers; got {items!r}",
                parameter=name, value=value)
        return tuple(float(v) for v in items)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigurationError(f"parameter {name} must be true or false; got {value!r}",
                                     parameter=name, value=value)
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigurationError(f"parameter {name} must be an integer; got {value!r}",
                                     parameter=name, value=value)
        return value
    if not _is_number(value):
        raise ConfigurationError(f"parameter {name} must be a number; got {value!r}",
                                 parameter=name, value=value)
    return float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        plural = {"backend": "backends", "mujoco_actuator": "actuators"}.get(name, "choices")
        raise ConfigurationError(
            f"{name} '{value}' is unknown; {plural} are: {', '.join(choices)}",
            parameter=name, value=value, choices=choices)


def _in_range(name: str, value: float, low: float, high: float, *, low_open: bool = False,
              unit: str = "") -> None:
    if not _is_number(value):
        raise ConfigurationError(f"{name} must be a number; got {value!r}",
                                 parameter=name, value=value, valid_range=(low, high))
    ok = math.isfinite(value) and (value > low if low_open else value >= low) and value <= high
    if not ok:
        left = "(" if low_open else "["
        right = ")" if math.isinf(high) else "]"
        unit = f" {unit}" if unit else ""
        raise ConfigurationError(
            f"{name} = {value} is out of range; valid: {left}{low:g}, {high:g}{right}{unit}",
            parameter=name, value=value, valid_range=(low, high))
