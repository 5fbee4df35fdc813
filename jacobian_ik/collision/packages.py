"""Where a URDF's mesh file is: ``package://`` URIs, ``file://`` URIs and relative paths.

``package://PKG/REST`` is looked up, in order, in

1. the ``package_dirs`` given (each either a folder holding package folders, or a
   package folder named PKG itself),
2. the ament index (``ament_index_python``: PKG's share directory),
3. the folders of ``ROS_PACKAGE_PATH`` (same two forms as ``package_dirs``),
4. the packages this library knows without ROS: ``jacobian_ik`` (its own share
   directory, ``jacobian_ik.bundled.share_dir()``) and ``example-robot-data`` (the
   share folder of the installed pip / cmeel package).

``file:///abs/path`` is that path; a relative path is relative to the URDF file's
folder (to the current folder for a URDF given as a string).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

PACKAGE_SCHEME = "package://"
FILE_SCHEME = "file://"


def resolve(filename: str, *, urdf_dir: Path | None, package_dirs: Sequence[str | Path] = (),
            environ: Mapping[str, str] | None = None) -> tuple[Path | None, list[str]]:
    """The existing file a URDF ``<mesh filename=..>`` names, or None, and the places
    looked at (for the message when it is not found)."""
    if filename.startswith(PACKAGE_SCHEME):
        package, _, rest = filename[len(PACKAGE_SCHEME):].partition("/")
        candidates = _package_candidates(package, rest, package_dirs,
                                         os.environ if environ is None else environ)
    elif filename.startswith(FILE_SCHEME):
        candidates = [Path(filename[len(FILE_SCHEME):])]
    else:
        path = Path(filename)
        base = urdf_dir if urdf_dir is not None else Path.cwd()
        candidates = [path if path.is_absolute() else base / path]
    for path in candidates:
        if path.is_file():
            return path, [str(p) for p in candidates]
    return None, [str(p) for p in candidates]


def _package_candidates(package: str, rest: str, package_dirs: Sequence[str | Path],
                        environ: Mapping[str, str]) -> list[Path]:
    out = [p for folder in package_dirs for p in _in_folder(Path(folder), package, rest)]
    share = _ament_share(package)
    if share is not None:
        out.append(share / rest)
    for entry in environ.get("ROS_PACKAGE_PATH", "").split(os.pathsep):
        if entry:
            out.extend(_in_folder(Path(entry), package, rest))
    known = _known_package(package)
    if known is not None:
        out.append(known / rest)
    return out


def _in_folder(folder: Path, package: str, rest: str) -> list[Path]:
    """``folder/PKG/REST``, and ``folder/REST`` when the folder is the package itself."""
    paths = [folder / package / rest]
    if folder.name == package:
        paths.append(folder / rest)
    return paths


def _ament_share(package: str) -> Path | None:
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(package))
    except (LookupError, OSError, ValueError):
        return None


def _known_package(package: str) -> Path | None:
    """Share folder of a package this library finds without ROS, or None."""
    from jacobian_ik import bundled
    from jacobian_ik.errors import ConfigurationError

    if package == bundled.PACKAGE_NAME:
        try:
            return bundled.share_dir()
        except ConfigurationError:  # no share directory: nothing to offer
            return None
    if package == "example-robot-data":
        robots = bundled.example_robot_data_dir()
        return None if robots is None else robots.parent
    return None
