"""Where sampled collision matrices are kept between runs.

One SRDF file per matrix, ``<folder>/<key>.srdf``, in
``$XDG_CACHE_HOME/jacobian_ik/collision_matrix`` (``~/.cache`` when XDG_CACHE_HOME
is unset), the user cache folder ``jacobian_ik.numba_cache`` also uses.  The key
is a hash of everything the matrix depends on (``matrix.cache_key``).  A folder
that is missing and cannot be created, or cannot be written, only means there is
no cache: nothing here raises.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from jacobian_ik.numba_cache import user_cache_dir

FOLDER_NAME = "collision_matrix"


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/jacobian_ik/collision_matrix``."""
    return user_cache_dir(environ).parent / FOLDER_NAME


def load(key: str, folder: Path | None = None) -> str | None:
    """The cached SRDF text of ``key``, or None."""
    path = (cache_dir() if folder is None else folder) / f"{key}.srdf"
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def store(key: str, text: str, folder: Path | None = None) -> bool:
    """Write the SRDF text of ``key`` (atomically: a reader sees all of it or
    nothing); False when the folder cannot be written."""
    folder = cache_dir() if folder is None else folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.replace(tmp, folder / f"{key}.srdf")
        except OSError:
            os.unlink(tmp)
            raise
    except OSError:
        return False
    return True
