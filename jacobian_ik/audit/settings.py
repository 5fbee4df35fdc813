"""Thresholds and task of an audit: the controller's, from a file, flags or defaults.

Order, later wins per value:

1. defaults: those of ``jacobian_ik.params.ControllerParams`` when that module
   is importable, else ``FALLBACK`` (sigma_warn 0.04, sigma_stop 0.02, task pose);
2. a parameter file (``--config``, ROS form; see ``rosparams``): its controller
   parameters are validated with ``ControllerParams.from_dict`` exactly as the
   node does (other keys such as base_link are ignored here);
3. the command line (``--sigma-warn``, ``--sigma-stop``, ``--task``).

The result must satisfy ``0 ≤ sigma_stop < sigma_warn`` (finite numbers) and
name a task of ``TASKS``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jacobian_ik.errors import ConfigurationError

if TYPE_CHECKING:
    from jacobian_ik.params import ControllerParams

#: Tasks an audit can use (the Jacobian rows: linear and angular, or linear only).
TASKS = ("pose", "position")

#: Defaults used when ``jacobian_ik.params`` cannot be imported.
FALLBACK = {"sigma_warn": 0.04, "sigma_stop": 0.02, "task": "pose"}

#: The values an audit takes from the controller's parameters.
AUDIT_KEYS = ("sigma_warn", "sigma_stop", "task")


@dataclass(frozen=True)
class AuditSettings:
    """Task and thresholds [σ unit: m/rad along linear rows, 1 along angular rows]."""

    task: str
    sigma_warn: float
    sigma_stop: float
    source: str

    def to_dict(self) -> dict:
        return {"sigma_warn": self.sigma_warn, "sigma_stop": self.sigma_stop,
                "source": self.source}


def _controller_params() -> type[ControllerParams] | None:
    try:
        from jacobian_ik.params import ControllerParams
    except ImportError:
        return None
    return ControllerParams


def default_values() -> tuple[dict, str]:
    """(values of AUDIT_KEYS, where they come from) before any file or flag."""
    params = _controller_params()
    if params is None:
        return dict(FALLBACK), "built-in fallback"
    defaults = params.from_dict({})
    return {key: getattr(defaults, key) for key in AUDIT_KEYS}, "ControllerParams defaults"


def config_values(parameters: dict, where: str) -> dict:
    """AUDIT_KEYS found in a node's parameters, validated as the controller would."""
    params = _controller_params()
    if params is None:
        return {key: parameters[key] for key in AUDIT_KEYS if key in parameters}
    names = {f.name for f in dataclasses.fields(params)}
    subset = {key: value for key, value in parameters.items() if key in names}
    try:
        checked = params.from_dict(subset)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}", parameter=exc.parameter, value=exc.value,
                                 choices=exc.choices, valid_range=exc.valid_range) from None
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{where}: invalid controller parameters: {exc}") from None
    return {key: getattr(checked, key) for key in AUDIT_KEYS if key in subset}


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} = {value!r} is not a number",
                                 parameter=name, value=value, valid_range=(0.0, None))
    value = float(value)
    if not math.isfinite(value) or value < 0.0:
        raise ConfigurationError(f"{name} = {value!r} must be a finite number >= 0",
                                 parameter=name, value=value, valid_range=(0.0, None))
    return value


def resolve_settings(parameters: dict | None = None, config_name: str | None = None, *,
                     task: str | None = None, sigma_warn: float | None = None,
                     sigma_stop: float | None = None) -> AuditSettings:
    """Merge defaults, a node's file parameters and flags (see the module docstring)."""
    values, source = default_values()
    origins = dict.fromkeys(AUDIT_KEYS, source)
    if parameters is not None:
        where = config_name or "parameter file"
        for key, value in config_values(parameters, where).items():
            values[key] = value
            origins[key] = where
    for key, value in (("task", task), ("sigma_warn", sigma_warn), ("sigma_stop", sigma_stop)):
        if value is not None:
            values[key] = value
            origins[key] = "command line"
    if values["task"] not in TASKS:
        raise ConfigurationError(
            f"task {values['task']!r} is unknown; tasks are: {', '.join(TASKS)}",
            parameter="task", value=values["task"], choices=tuple(TASKS))
    warn = _number("sigma_warn", values["sigma_warn"])
    stop = _number("sigma_stop", values["sigma_stop"])
    if not stop < warn:
        raise ConfigurationError(
            f"sigma_stop = {stop!r} must be below sigma_warn = {warn!r} "
            "(0 <= sigma_stop < sigma_warn)",
            parameter="sigma_stop", value=stop, valid_range=(0.0, warn))
    used = []
    for key in AUDIT_KEYS:
        if origins[key] not in used:
            used.append(origins[key])
    return AuditSettings(task=values["task"], sigma_warn=warn, sigma_stop=stop,
                         source=" + ".join(used))
