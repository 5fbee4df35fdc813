"""Which robot and which settings an audit command runs on.

The robot argument is a URDF file or the name of a bundled robot
(``jacobian_ik.bundled.BUNDLED_ROBOTS``); an existing file of that name wins.
The chain's links come from ``--base``/``--tip``, else from the parameter file's
``base_link``/``tip_link``, else (bundled robot) from its own parameter file.
A bundled robot's parameter file ``config/<name>.yaml`` is also the default
``--config``: it holds what the node would run with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jacobian_ik import bundled
from jacobian_ik.audit.rosparams import node_parameters
from jacobian_ik.audit.settings import AuditSettings, resolve_settings
from jacobian_ik.errors import ChainError, UrdfError
from jacobian_ik.robot import Robot


@dataclass(frozen=True)
class AuditTarget:
    """A loaded robot, where it came from, and the audit settings."""

    robot: Robot
    source: str            # the robot argument as given
    urdf: str              # path of the URDF file
    config: str | None     # path of the parameter file used, if any
    settings: AuditSettings


def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when inside it, else absolute."""
    absolute = Path(path).resolve()
    try:
        return str(absolute.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(absolute)


def resolve_urdf(spec: str) -> tuple[Path, str | None]:
    """(URDF path, bundled robot name or None) of a robot argument."""
    path = Path(spec)
    if path.is_file():
        return path, None
    if spec in bundled.BUNDLED_ROBOTS:
        return bundled.urdf_path(spec), spec
    raise UrdfError(
        f"'{spec}' is neither a URDF file nor a bundled robot; bundled robots are: "
        f"{', '.join(sorted(bundled.BUNDLED_ROBOTS))}", path=spec)


def load_target(spec: str, *, base: str | None = None, tip: str | None = None,
                config: str | None = None, node: str | None = None, task: str | None = None,
                sigma_warn: float | None = None,
                sigma_stop: float | None = None) -> AuditTarget:
    """Load the robot and resolve links, thresholds and task (see the module docstring)."""
    urdf, name = resolve_urdf(spec)
    if config is None and name is not None:
        config = display_path(bundled.config_path(name))
    parameters = node_parameters(config, node) if config is not None else None
    if parameters is not None:
        base = base if base is not None else parameters.get("base_link")
        tip = tip if tip is not None else parameters.get("tip_link")
    missing = [flag for flag, link in (("--base", base), ("--tip", tip)) if not link]
    if missing:
        raise ChainError(
            f"the chain needs {' and '.join(missing)} (or a --config file with base_link "
            f"and tip_link) for URDF '{urdf}'")
    robot = Robot.from_urdf(urdf, str(base), str(tip))
    settings = resolve_settings(parameters, config, task=task, sigma_warn=sigma_warn,
                                sigma_stop=sigma_stop)
    return AuditTarget(robot=robot, source=spec, urdf=display_path(urdf), config=config,
                       settings=settings)
