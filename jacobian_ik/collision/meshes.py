"""The vertices of a mesh file, in the file's own frame and units.

STL files (binary or ASCII) are read here with numpy; any other format (Collada,
OBJ, PLY ...) through coal's mesh loader (assimp), as pinocchio reads them.  The
vertices are deduplicated and kept in memory per file (path, size and
modification time), so a second model of the same robot reads no mesh again.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

from jacobian_ik.errors import UrdfError

_STL_HEADER = 80
_STL_TRIANGLE = np.dtype([("normal", "<f4", 3), ("vertices", "<f4", (3, 3)),
                          ("attribute", "<u2")])
_ASCII_VERTEX = re.compile(rb"vertex\s+(\S+)\s+(\S+)\s+(\S+)")


def mesh_vertices(path: Path, link: str) -> np.ndarray:
    """Distinct vertices of the mesh file ``path``, Shape (V, 3) float64, read-only,
    in the file's frame and units (the URDF ``scale`` is not applied).

    UrdfError naming ``link`` and the file if it cannot be read or has no vertex.
    """
    try:
        stat = path.stat()
    except OSError as exc:
        raise UrdfError(f"link '{link}': cannot read mesh '{path}': {exc.strerror}",
                        link=link) from None
    return _cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns, link)


@functools.lru_cache(maxsize=256)
def _cached(path: str, size: int, mtime_ns: int, link: str) -> np.ndarray:
    del size, mtime_ns  # part of the cache key only: a changed file is read again
    if path.lower().endswith(".stl"):
        points = _read_stl(Path(path), link)
    else:
        points = _read_with_coal(Path(path), link)
    if points.size == 0:
        raise UrdfError(f"link '{link}': mesh '{path}' has no vertex", link=link)
    if not np.isfinite(points).all():
        raise UrdfError(f"link '{link}': mesh '{path}' has a non-finite vertex", link=link)
    unique = np.unique(points.astype(np.float64), axis=0)
    unique.setflags(write=False)
    return unique


def _read_stl(path: Path, link: str) -> np.ndarray:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UrdfError(f"link '{link}': cannot read mesh '{path}': {exc.strerror}",
                        link=link) from None
    if len(data) >= _STL_HEADER + 4:
        count = int(np.frombuffer(data, "<u4", 1, _STL_HEADER)[0])
        if len(data) == _STL_HEADER + 4 + count * _STL_TRIANGLE.itemsize:
            triangles = np.frombuffer(data, _STL_TRIANGLE, count, _STL_HEADER + 4)
            return triangles["vertices"].reshape(-1, 3)
    if data.lstrip().startswith(b"solid"):
        try:
            return np.array(_ASCII_VERTEX.findall(data), dtype=np.float64).reshape(-1, 3)
        except ValueError:
            pass
    raise UrdfError(f"link '{link}': mesh '{path}' is neither a binary nor an ASCII STL file",
                    link=link)


def _read_with_coal(path: Path, link: str) -> np.ndarray:
    import coal

    try:
        bvh = coal.MeshLoader().load(str(path), np.ones(3))
    except Exception as exc:  # assimp's failures reach Python as plain exceptions
        raise UrdfError(f"link '{link}': cannot load mesh '{path}': "
                        f"{' '.join(str(exc).split())}", link=link) from None
    return np.asarray(bvh.vertices(), dtype=np.float64).reshape(-1, 3)
