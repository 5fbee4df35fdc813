"""The robot arms bundled with the package: their URDF and parameter files.

Each bundled robot ``name`` has ``urdf/<name>.urdf`` and ``config/<name>.yaml``
in the package's share directory.  The YAML file is a standard ROS 2 parameter
file whose ``/**: ros__parameters:`` block names the chain's ``base_link`` and
``tip_link``.

Pure Python: importing this module does not import ROS.
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import yaml

from jacobian_ik.errors import ConfigurationError

PACKAGE_NAME = "jacobian_ik"

#: Names of the bundled robots.
BUNDLED_ROBOTS = ("panda", "ur5", "planar2")

#: The robot used when none is named.
DEFAULT_ROBOT = "panda"


def _has_urdf(path: Path) -> bool:
    return (path / "urdf").is_dir()


def _ament_share_dir() -> Path | None:
    """The share directory that the ament index knows, or None."""
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(PACKAGE_NAME))
    except (LookupError, OSError, ValueError):
        # Not installed in any prefix of AMENT_PREFIX_PATH, or that variable
        # is unset (ament_index_python raises its own LookupError / OSError
        # subclasses for these cases).
        return None


def _candidate_share_dirs() -> list[Path]:
    candidates = []
    ament = _ament_share_dir()
    if ament is not None:
        candidates.append(ament)
    # A source checkout or an editable install: the repository root holding
    # the jacobian_ik/ package folder.
    candidates.append(Path(__file__).resolve().parent.parent)
    # A plain `pip install`: setup.py's data_files land in <prefix>/share.
    candidates.append(Path(sys.prefix) / "share" / PACKAGE_NAME)
    return candidates


def share_dir() -> Path:
    """The package's share directory, the one holding ``urdf/`` and ``config/``.

    In order: the share directory from the ament index (a colcon install),
    the repository root next to the ``jacobian_ik/`` package folder (a source
    checkout or editable install), ``<sys.prefix>/share/jacobian_ik`` (a pip
    install); the first of them that has a ``urdf/`` folder.
    """
    candidates = _candidate_share_dirs()
    for path in candidates:
        if _has_urdf(path):
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise ConfigurationError(
        f"cannot find the share directory of {PACKAGE_NAME} "
        f"(no urdf/ folder in any of: {looked})")


def _check_name(name: str) -> str:
    if name not in BUNDLED_ROBOTS:
        valid = ", ".join(sorted(BUNDLED_ROBOTS))
        raise ConfigurationError(
            f"unknown robot {name!r}; valid names: {valid}",
            parameter="robot", value=name, choices=tuple(sorted(BUNDLED_ROBOTS)))
    return name


def urdf_path(name: str) -> Path:
    """Path of the bundled URDF file of robot ``name``."""
    return share_dir() / "urdf" / f"{_check_name(name)}.urdf"


def config_path(name: str) -> Path:
    """Path of the bundled ROS 2 parameter file of robot ``name``."""
    return share_dir() / "config" / f"{_check_name(name)}.yaml"


def robot_links(name: str) -> tuple[str, str]:
    """``(base_link, tip_link)`` of robot ``name``, read from its parameter file."""
    path = config_path(name)
    try:
        with open(path, encoding="utf-8") as stream:
            document = yaml.safe_load(stream)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(
            f"cannot read parameter file '{path}': {exc}") from None
    try:
        params = document["/**"]["ros__parameters"]
        links = (params["base_link"], params["tip_link"])
    except (KeyError, TypeError):
        raise ConfigurationError(
            f"parameter file '{path}' has no '/**: ros__parameters:' block with "
            f"base_link and tip_link") from None
    for link in links:
        if not isinstance(link, str) or not link:
            raise ConfigurationError(
                f"parameter file '{path}': base_link and tip_link must be "
                f"non-empty strings, got {links!r}")
    return links


def example_robot_data_dir() -> Path | None:
    """The ``robots/`` folder of the installed ``example-robot-data`` package (real
    URDFs of Panda, UR, Kinova, Baxter, PR2 ... arms), or None if it is not installed."""
    try:
        dist = importlib.metadata.distribution("example-robot-data")
    except importlib.metadata.PackageNotFoundError:
        return None
    marker = ("share", "example-robot-data", "robots")
    for file in dist.files or ():
        parts = file.parts
        for i in range(len(parts) - len(marker)):
            if parts[i:i + len(marker)] == marker:
                path = Path(str(dist.locate_file(Path(*parts[:i + len(marker)]))))
                if path.is_dir():
                    return path
    return None
