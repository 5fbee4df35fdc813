"""Static obstacles in the robot's base frame: boxes, spheres, cylinders, half-spaces.

``Scene`` is what ``Controller(robot, params, scene=...)`` and ``set_scene`` take::

    scene = (Scene()
             .add_plane("table", normal=(0, 0, 1), offset=0.0)   # solid below z = 0
             .add_box("bin", size=(0.2, 0.3, 0.1), T_base_obj=T)
             .add_sphere("lamp", 0.05, (0.4, -0.3, 0.6)))
    scene = Scene.from_yaml("config/scenes/panda_cell.yaml")

Every pose is ``T_base_obj`` (a (4, 4) rigid transform, or a (3,) position with no
rotation); sizes are full edge lengths, radii and lengths [m].  A cylinder's axis
is its z axis, centred at its origin; a plane ``(normal, offset)`` is the solid
half-space ``{x : n·x ≤ offset}``.  Adding a name that exists replaces it (as a
ROS marker ADD does).  Invalid obstacles raise ``SceneError`` and leave the scene
unchanged.  ``array()`` is the (O, 16) layout of ``kernels.distance``.

``add_many`` adds many boxes, spheres and cylinders at once, checked and converted
with array operations (the controller node's ``~/scene`` updates: 100 obstacles
in about 0.1 ms, against about 1 ms one by one).

The YAML file::

    frame: panda_link0            # optional: the base frame it is written in
    obstacles:
      - {name: table, type: plane, normal: [0, 0, 1], offset: 0.0}
      - {name: bin, type: box, size: [0.2, 0.3, 0.1], position: [0.5, 0, 0.05],
         rpy: [0, 0, 0.3]}        # or quaternion: [x, y, z, w]
      - {name: lamp, type: sphere, radius: 0.05, position: [0.4, -0.3, 0.6]}
      - {name: post, type: cylinder, radius: 0.04, length: 0.6, position: [...]}
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from jacobian_ik.errors import SceneError
from jacobian_ik.kernels.distance import OBS_BOX, OBS_CYLINDER, OBS_HALFSPACE, OBS_SPHERE
from jacobian_ik.rotations import matrix_to_quaternion, quaternion_to_matrix

#: Largest orthonormality error of a pose's rotation (as for target poses).
POSE_TOLERANCE = 1e-6
#: Largest |‖q‖ − 1| of an orientation quaternion (scene files, ``add_many``).
QUATERNION_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Kind:
    """One kind of obstacle: its kernel code and the size fields it takes."""

    code: int
    sizes: tuple[str, ...]


#: The obstacle kinds, by name (the YAML ``type``), declared once.
KINDS: dict[str, Kind] = {
    "box": Kind(OBS_BOX, ("size",)),
    "sphere": Kind(OBS_SPHERE, ("radius",)),
    "cylinder": Kind(OBS_CYLINDER, ("radius", "length")),
    "plane": Kind(OBS_HALFSPACE, ("normal", "offset")),
}

#: ``add_many``'s kinds: index in this tuple → KINDS name; which of the three
#: ``dims`` columns each one uses.
_MANY_KINDS = ("box", "sphere", "cylinder")
_MANY_INDEX = {kind: i for i, kind in enumerate(_MANY_KINDS)}
_MANY_USED = np.array([[True, True, True], [True, False, False], [True, True, False]])
_MANY_CODES = np.array([float(KINDS[kind].code) for kind in _MANY_KINDS])
#: Row columns 13:16 per dims column of each kind (box: half edges; sphere: radius;
#: cylinder: radius, half length).
_MANY_ROW_SCALE = np.array([[0.5, 0.5, 0.5], [1.0, 0.0, 0.0], [1.0, 0.5, 0.0]])

#: Keys of an obstacle in a YAML file besides its size fields.
_POSE_KEYS = ("position", "rpy", "quaternion")
_COMMON_KEYS = ("name", "type")


@dataclass(frozen=True)
class Obstacle:
    """One obstacle: ``kind`` (a KINDS name), ``dims`` (box: full edges (3,); sphere:
    (radius,); cylinder: (radius, length); plane: (nx, ny, nz, offset)) and its pose
    ``T_base_obj`` (for a plane: z along the normal, origin at offset·n)."""

    name: str
    kind: str
    dims: tuple[float, ...]
    T_base_obj: np.ndarray

    def row(self) -> np.ndarray:
        """The obstacle as a row of ``kernels.distance`` (Shape (16,))."""
        row = np.zeros(16)
        row[0] = KINDS[self.kind].code
        row[1:10] = self.T_base_obj[:3, :3].ravel()
        row[10:13] = self.T_base_obj[:3, 3]
        if self.kind == "box":
            row[13:16] = 0.5 * np.asarray(self.dims)
        elif self.kind == "sphere":
            row[13] = self.dims[0]
        elif self.kind == "cylinder":
            row[13] = self.dims[0]
            row[14] = 0.5 * self.dims[1]
        return row


class Scene:
    """Named static obstacles in the base frame (see the module docstring)."""

    def __init__(self) -> None:
        # None: an obstacle of add_many, built from its row when first read
        self._obstacles: dict[str, Obstacle | None] = {}
        # each obstacle's kernel row (read-only), in the same order as _obstacles
        self._rows: dict[str, np.ndarray] = {}
        self._version = 0
        self._array: np.ndarray | None = None

    # ------------------------------------------------------------------ adding
    def add_box(self, name: str, size: ArrayLike, T_base_obj: ArrayLike) -> Scene:
        """A box with full edge lengths ``size`` (3,) [m], centred at its origin."""
        dims = _sizes(name, "size", size, 3)
        return self._put(Obstacle(_name(name), "box", dims, _pose(name, T_base_obj)))

    def add_sphere(self, name: str, radius: float, T_base_obj: ArrayLike) -> Scene:
        """A sphere of ``radius`` [m] at the origin of ``T_base_obj``."""
        dims = _sizes(name, "radius", [radius], 1)
        return self._put(Obstacle(_name(name), "sphere", dims, _pose(name, T_base_obj)))

    def add_cylinder(self, name: str, radius: float, length: float,
                     T_base_obj: ArrayLike) -> Scene:
        """A solid cylinder of ``radius`` and full ``length`` [m] along the object's z
        axis, centred at its origin."""
        dims = _sizes(name, "radius", [radius], 1) + _sizes(name, "length", [length], 1)
        return self._put(Obstacle(_name(name), "cylinder", dims, _pose(name, T_base_obj)))

    def add_plane(self, name: str, normal: ArrayLike, offset: float) -> Scene:
        """The solid half-space ``{x : n·x ≤ offset}`` (n = normal, normalised) [m]."""
        n = _vector(name, "normal", normal, 3)
        length = float(np.linalg.norm(n))
        if not length > 1e-9:
            raise SceneError(f"obstacle '{name}': normal {n.tolist()} has no direction",
                             obstacle=name, field="normal")
        n = n / length
        d = _finite(name, "offset", offset)
        helper = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        x = np.cross(helper, n)
        x /= np.linalg.norm(x)
        T = np.eye(4)
        T[:3, :3] = np.column_stack([x, np.cross(n, x), n])
        T[:3, 3] = d * n
        return self._put(Obstacle(_name(name), "plane", (*n.tolist(), d), T))

    def add_many(self, names: Sequence[str], kinds: Sequence[str], dims: ArrayLike,
                 poses: ArrayLike) -> Scene:
        """Add (or replace) N boxes, spheres and cylinders at once, as the calls of
        ``add_box`` / ``add_sphere`` / ``add_cylinder`` in turn would (a name that
        comes twice: the last one wins), checked and converted with array operations.

        ``kinds``: "box", "sphere" or "cylinder" each; ``dims`` Shape (N, 3): a box's
        full edges, a sphere's (radius, -, -), a cylinder's (radius, length, -) [m]
        (the unused entries are ignored); ``poses`` Shape (N, 7): the position x y z
        [m] and the orientation quaternion x y z w (the order of ROS messages; its
        norm within QUATERNION_TOLERANCE of 1, normalised), so every pose is rigid
        by construction.  All or nothing: an invalid obstacle raises the SceneError
        of its single call (or of a scene file's quaternion), the scene unchanged.
        """
        names = list(names)
        count = len(names)
        try:
            index = np.array([_MANY_INDEX[kind] for kind in kinds], dtype=np.intp)
        except (KeyError, TypeError):
            bad = next(k for k in kinds if not isinstance(k, str) or k not in _MANY_INDEX)
            raise SceneError(f"add_many: kind {bad!r} is not one of "
                             f"{', '.join(_MANY_KINDS)}", field="kind") from None
        D = np.asarray(dims, dtype=np.float64)
        P = np.asarray(poses, dtype=np.float64)
        if index.shape != (count,) or D.shape != (count, 3) or P.shape != (count, 7):
            raise SceneError(f"add_many: {count} names need {count} kinds, dims of shape "
                             f"({count}, 3) and poses of shape ({count}, 7); got "
                             f"{index.shape[0]}, {D.shape} and {P.shape}")
        if count == 0:
            return self
        q = P[:, 3:7]
        with np.errstate(invalid="ignore", over="ignore"):
            norm = np.sqrt(np.einsum("ij,ij->i", q, q))
            ok = (np.all(~_MANY_USED[index] | (np.isfinite(D) & (D > 0.0)), axis=1)
                  & np.isfinite(P[:, :3]).all(axis=1) & np.isfinite(norm)
                  & (np.abs(norm - 1.0) <= QUATERNION_TOLERANCE))
        if not (ok.all() and all(map(isinstance, names, repeat(str))) and all(names)):
            i = next(i for i, name in enumerate(names)
                     if not ok[i] or not (isinstance(name, str) and name))
            _many_refusal(names[i], _MANY_KINDS[index[i]], D[i], P[i])
        q = q / norm[:, None]
        rows = np.empty((count, 16))
        rows[:, 0] = _MANY_CODES[index]
        _rotation_rows(q, rows[:, 1:10])
        rows[:, 10:13] = P[:, :3]
        rows[:, 13:16] = D * _MANY_ROW_SCALE[index]
        rows.setflags(write=False)
        # the Obstacle objects are made when read (Scene.get, iteration): the
        # controller reads the rows only
        self._obstacles.update(dict.fromkeys(names))
        self._rows.update(zip(names, list(rows)))
        self._changed()
        return self

    def _put(self, obstacle: Obstacle) -> Scene:
        obstacle.T_base_obj.setflags(write=False)
        row = obstacle.row()
        row.setflags(write=False)
        self._obstacles[obstacle.name] = obstacle
        self._rows[obstacle.name] = row
        self._changed()
        return self

    # ------------------------------------------------------------------ changing
    def remove(self, name: str) -> Scene:
        """Remove obstacle ``name`` (SceneError listing the names if there is none)."""
        if name not in self._obstacles:
            raise SceneError(f"no obstacle '{name}' in the scene; obstacles are: "
                             f"{', '.join(self._obstacles) or '(none)'}", obstacle=name)
        del self._obstacles[name]
        del self._rows[name]
        self._changed()
        return self

    def clear(self) -> Scene:
        """Remove every obstacle."""
        self._obstacles.clear()
        self._rows.clear()
        self._changed()
        return self

    def copy(self) -> Scene:
        """A scene with the same obstacles (obstacles are immutable)."""
        other = Scene()
        other._obstacles = dict(self._obstacles)
        other._rows = dict(self._rows)
        other._array = self._array      # read-only, the same rows
        return other

    def _changed(self) -> None:
        self._version += 1
        self._array = None

    # ------------------------------------------------------------------ reading
    @property
    def version(self) -> int:
        """Increments at every change."""
        return self._version

    @property
    def names(self) -> tuple[str, ...]:
        """The obstacles' names, in the order they were first added."""
        return tuple(self._obstacles)

    def get(self, name: str) -> Obstacle:
        if name not in self._obstacles:
            raise SceneError(f"no obstacle '{name}' in the scene; obstacles are: "
                             f"{', '.join(self._obstacles) or '(none)'}", obstacle=name)
        return self._obstacle(name)

    def _obstacle(self, name: str) -> Obstacle:
        obstacle = self._obstacles[name]
        if obstacle is None:    # from add_many: its row holds every field
            row = self._rows[name]
            kind = _MANY_KINDS[int(np.flatnonzero(row[0] == _MANY_CODES)[0])]
            T = np.eye(4)
            T[:3, :3] = row[1:10].reshape(3, 3)
            T[:3, 3] = row[10:13]
            T.setflags(write=False)
            half = row[13:16].tolist()
            dims = ((2.0 * half[0], 2.0 * half[1], 2.0 * half[2]) if kind == "box"
                    else (half[0],) if kind == "sphere" else (half[0], 2.0 * half[1]))
            obstacle = Obstacle(name, kind, dims, T)
            self._obstacles[name] = obstacle
        return obstacle

    def __len__(self) -> int:
        return len(self._obstacles)

    def __contains__(self, name: object) -> bool:
        return name in self._obstacles

    def __iter__(self) -> Iterator[Obstacle]:
        return (self._obstacle(name) for name in list(self._obstacles))

    def array(self) -> np.ndarray:
        """The obstacles as rows of ``kernels.distance`` (Shape (O, 16), read-only; in
        ``names`` order)."""
        if self._array is None:
            rows = list(self._rows.values())
            self._array = np.array(rows).reshape(len(rows), 16)
            self._array.setflags(write=False)
        return self._array

    def __repr__(self) -> str:
        return f"Scene({', '.join(f'{o.kind} {o.name!r}' for o in self) or 'empty'})"

    # ------------------------------------------------------------------ files
    @classmethod
    def from_dict(cls, data: Any, source: str = "scene") -> Scene:
        """A scene from the mapping of a scene file (see the module docstring)."""
        if not isinstance(data, Mapping):
            raise SceneError(f"{source}: a scene must be a mapping with 'obstacles', got "
                             f"{type(data).__name__}")
        unknown = sorted(set(data) - {"frame", "obstacles"})
        if unknown:
            raise SceneError(f"{source}: unknown key(s) {', '.join(map(repr, unknown))}; "
                             f"valid keys are: frame, obstacles")
        items = data.get("obstacles") or []
        if not isinstance(items, Sequence) or isinstance(items, str):
            raise SceneError(f"{source}: 'obstacles' must be a list")
        scene = cls()
        for index, item in enumerate(items):
            scene._add_item(item, f"{source}: obstacle {index}")
        return scene

    @classmethod
    def from_yaml(cls, path: str | Path) -> Scene:
        """A scene from a YAML file (``frame`` is read by ``frame_of``)."""
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SceneError(f"cannot read scene file '{path}': {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise SceneError(f"scene file '{path}' is not valid YAML: {exc}") from None
        return cls.from_dict(data if data is not None else {}, str(path))

    @staticmethod
    def frame_of(path: str | Path) -> str | None:
        """The ``frame`` a scene file names (None when it names none)."""
        import yaml

        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        frame = data.get("frame") if isinstance(data, Mapping) else None
        return None if frame is None else str(frame)

    def to_dict(self, frame: str | None = None) -> dict:
        """The scene as the mapping ``from_dict`` reads (round trip)."""
        items = []
        for o in self:
            item: dict[str, Any] = {"name": o.name, "type": o.kind}
            if o.kind == "plane":
                item["normal"] = list(o.dims[:3])
                item["offset"] = o.dims[3]
            else:
                item.update(zip(KINDS[o.kind].sizes, ([list(o.dims)] if o.kind == "box"
                                                      else list(o.dims))))
                item["position"] = o.T_base_obj[:3, 3].tolist()
                item["quaternion"] = list(matrix_to_quaternion(o.T_base_obj[:3, :3]))
            items.append(item)
        out: dict[str, Any] = {"obstacles": items}
        if frame is not None:
            out["frame"] = frame
        return out

    def _add_item(self, item: Any, where: str) -> None:
        if not isinstance(item, Mapping):
            raise SceneError(f"{where}: must be a mapping, got {type(item).__name__}")
        kind = item.get("type")
        if kind not in KINDS:
            raise SceneError(f"{where}: type {kind!r} is unknown; types are: "
                             f"{', '.join(KINDS)}", field="type")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise SceneError(f"{where}: needs a non-empty 'name'", field="name")
        valid = _COMMON_KEYS + KINDS[kind].sizes + (() if kind == "plane" else _POSE_KEYS)
        unknown = sorted(set(item) - set(valid))
        if unknown:
            raise SceneError(f"{where} ('{name}'): unknown key(s) "
                             f"{', '.join(map(repr, unknown))}; valid keys for a {kind} "
                             f"are: {', '.join(valid)}", obstacle=name)
        missing = [key for key in KINDS[kind].sizes if key not in item]
        if missing:
            raise SceneError(f"{where} ('{name}'): missing {', '.join(missing)}",
                             obstacle=name, field=missing[0])
        try:
            if kind == "plane":
                self.add_plane(name, item["normal"], item["offset"])
                return
            T = _yaml_pose(name, item)
            if kind == "box":
                self.add_box(name, item["size"], T)
            elif kind == "sphere":
                self.add_sphere(name, item["radius"], T)
            else:
                self.add_cylinder(name, item["radius"], item["length"], T)
        except SceneError as exc:
            raise SceneError(f"{where}: {exc}", obstacle=name, field=exc.field) from None


# ---------------------------------------------------------------------- checks
def _many_refusal(name: Any, kind: str, dims: np.ndarray, pose: np.ndarray) -> None:
    """Raise the SceneError of one obstacle ``add_many`` refuses: its single call's
    (name, sizes, position) or a scene file's (quaternion)."""
    name = _name(name)
    if kind == "box":
        _sizes(name, "size", dims, 3)
    elif kind == "sphere":
        _sizes(name, "radius", dims[:1], 1)
    else:
        _sizes(name, "radius", dims[:1], 1)
        _sizes(name, "length", dims[1:2], 1)
    _vector(name, "position", pose[:3], 3)
    x, y, z, w = pose[3:7].tolist()
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    raise SceneError(f"obstacle '{name}': quaternion [x, y, z, w] has norm {norm:.6g}, "
                     f"not 1", obstacle=name, field="quaternion")


def _rotation_rows(q: np.ndarray, out: np.ndarray) -> None:
    """Rotation matrices (row-major, Shape (N, 9) into ``out``) of unit quaternions
    (N, 4) x y z w, by the formula of ``rotations.quaternion_to_matrix``."""
    x, y, z, w = q.T
    out[:, 0] = 1.0 - 2.0 * (y * y + z * z)
    out[:, 1] = 2.0 * (x * y - z * w)
    out[:, 2] = 2.0 * (x * z + y * w)
    out[:, 3] = 2.0 * (x * y + z * w)
    out[:, 4] = 1.0 - 2.0 * (x * x + z * z)
    out[:, 5] = 2.0 * (y * z - x * w)
    out[:, 6] = 2.0 * (x * z - y * w)
    out[:, 7] = 2.0 * (y * z + x * w)
    out[:, 8] = 1.0 - 2.0 * (x * x + y * y)


def _name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise SceneError(f"an obstacle needs a non-empty name, got {name!r}", field="name")
    return name


def _finite(name: str, field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SceneError(f"obstacle '{name}': {field} {value!r} is not a number",
                         obstacle=name, field=field)
    value = float(value)
    if not math.isfinite(value):
        raise SceneError(f"obstacle '{name}': {field} {value!r} is not finite",
                         obstacle=name, field=field)
    return value


def _vector(name: str, field: str, value: Any, size: int) -> np.ndarray:
    try:
        v = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise SceneError(f"obstacle '{name}': {field} {value!r} is not a list of {size} "
                         f"numbers", obstacle=name, field=field) from None
    if v.shape != (size,):
        raise SceneError(f"obstacle '{name}': {field} must have {size} values, got "
                         f"{v.size}", obstacle=name, field=field)
    if not np.all(np.isfinite(v)):
        raise SceneError(f"obstacle '{name}': {field} {v.tolist()} is not finite",
                         obstacle=name, field=field)
    return v


def _sizes(name: str, field: str, value: Any, size: int) -> tuple[float, ...]:
    v = _vector(name, field, value, size)
    if not np.all(v > 0.0):
        raise SceneError(f"obstacle '{name}': {field} {v.tolist()} must be positive",
                         obstacle=name, field=field)
    return tuple(float(x) for x in v)


def _pose(name: str, T: ArrayLike) -> np.ndarray:
    """A (4, 4) rigid transform from a (4, 4) one or a (3,) position."""
    arr = np.asarray(T, dtype=np.float64) if not isinstance(T, np.ndarray) else T
    if arr.shape == (3,):
        p = _vector(name, "position", arr, 3)
        out = np.eye(4)
        out[:3, 3] = p
        return out
    if arr.shape != (4, 4):
        raise SceneError(f"obstacle '{name}': T_base_obj must be a (4, 4) transform or a "
                         f"(3,) position, got shape {arr.shape}", obstacle=name,
                         field="T_base_obj")
    if not np.all(np.isfinite(arr)):
        raise SceneError(f"obstacle '{name}': T_base_obj is not finite", obstacle=name,
                         field="T_base_obj")
    R = arr[:3, :3]
    error = float(np.max(np.abs(R.T @ R - np.eye(3))))
    if error > POSE_TOLERANCE or np.linalg.det(R) < 0.0 \
            or np.any(arr[3] != (0.0, 0.0, 0.0, 1.0)):
        raise SceneError(f"obstacle '{name}': T_base_obj is not a rigid transform "
                         f"(orthonormality error {error:.3g}, or a reflection, or its last "
                         f"row is not 0 0 0 1)", obstacle=name, field="T_base_obj")
    return np.array(arr, dtype=np.float64)


def _yaml_pose(name: str, item: Mapping) -> np.ndarray:
    T = np.eye(4)
    T[:3, 3] = _vector(name, "position", item.get("position", [0.0, 0.0, 0.0]), 3)
    if "rpy" in item and "quaternion" in item:
        raise SceneError(f"obstacle '{name}': give rpy or quaternion, not both",
                         obstacle=name, field="rpy")
    if "rpy" in item:
        r, p, y = _vector(name, "rpy", item["rpy"], 3)
        T[:3, :3] = _rot("z", y) @ _rot("y", p) @ _rot("x", r)
    elif "quaternion" in item:
        x, y, z, w = _vector(name, "quaternion", item["quaternion"], 4)
        norm = math.sqrt(x * x + y * y + z * z + w * w)
        if abs(norm - 1.0) > QUATERNION_TOLERANCE:
            raise SceneError(f"obstacle '{name}': quaternion [x, y, z, w] has norm "
                             f"{norm:.6g}, not 1", obstacle=name, field="quaternion")
        quaternion_to_matrix(x / norm, y / norm, z / norm, w / norm, T)
    return T


def _rot(axis: str, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    if axis == "x":
        return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    if axis == "y":
        return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
