"""The controller node's scene: ``scene_file``, live updates on ``~/scene`` and the
collision markers on ``~/collision_markers``.

``~/scene`` (visualization_msgs/MarkerArray) edits the obstacles the controller keeps
the arm away from.  Each marker is one obstacle named ``"<ns>/<id>"``:

* ``CUBE`` (``scale`` = full edges), ``SPHERE`` (``scale.x`` = diameter, x = y = z),
  ``CYLINDER`` (``scale.x`` = ``scale.y`` = diameter, ``scale.z`` = length, axis z);
* action ``ADD`` (= MODIFY) adds or replaces it, ``DELETE`` removes it,
  ``DELETEALL`` removes every obstacle that came from ``~/scene`` (those of
  ``scene_file`` stay);
* ``header.frame_id`` must be the chain's base frame, the pose a finite pose with a
  unit quaternion.

A bad marker (another frame, an unknown type or action, a non-finite or
non-positive size, a bad quaternion) is refused: the rest of the array is applied,
the node logs it (rate-limited) and ``~/scene_status`` (std_msgs/String) says what
was applied and refused, the obstacle and pair counts and how long the update
took.  An update that changes nothing (only refused markers, say) leaves the
controller alone.

The update runs in the subscription callback, between two control cycles, so it
must take well under a period: the controller gets the new scene with one call
(``Controller.set_scene``), and the messages are read and written as CDR bytes
(``read_marker_array``, ``write_marker_array``), with array operations where
there are many markers.  rclpy's message objects would cost about 85 µs per
marker to receive and 40 µs to build: 13 ms for 100, six late cycles at 500 Hz.
At start-up ``cdr_round_trip_ok`` checks both against rclpy's own serialisation
of the middleware in use; if they disagree the node uses the message objects.

``~/collision_markers`` (transient local) republishes the scene and, at
``ROBOT_MARKER_RATE`` while someone listens, the arm's collision capsules at the
last measured position, for RViz.
"""

from __future__ import annotations

import functools
import math
import struct
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray

from jacobian_ik.collision.scene import QUATERNION_TOLERANCE as SCENE_QUATERNION_TOLERANCE
from jacobian_ik.collision.scene import Scene
from jacobian_ik.errors import ConfigurationError, SceneError
from jacobian_ik.kernels.distance import OBS_BOX, OBS_CYLINDER, OBS_HALFSPACE, OBS_SPHERE
from jacobian_ik.rotations import quaternion_to_matrix

if TYPE_CHECKING:
    from rclpy.node import Node

    from jacobian_ik.controller import Controller

SCENE_TOPIC = "~/scene"
STATUS_TOPIC = "~/scene_status"
MARKERS_TOPIC = "~/collision_markers"
#: Rate [Hz] of the robot's capsule markers (only while ~/collision_markers has a
#: subscriber).
ROBOT_MARKER_RATE = 2.0
#: A changed scene is republished on ~/collision_markers this long [s] after the
#: update, in a callback of its own: the update and the republication (0.2 ms for
#: 100 obstacles) each fit between two cycles.
REPUBLISH_DELAY = 1e-3
#: Refused markers are logged at most once per this period [s].
LOG_PERIOD = 1.0
#: Edge [m] of the flat box that draws a half-space.
PLANE_SIZE = 4.0
#: Marker types ~/scene accepts, by marker type.
MARKER_KINDS = {Marker.CUBE: "box", Marker.SPHERE: "sphere", Marker.CYLINDER: "cylinder"}
#: Largest |‖q‖ − 1| of a marker's orientation quaternion (as in scene files).
QUATERNION_TOLERANCE = SCENE_QUATERNION_TOLERANCE
#: Refusals ~/scene_status quotes in full (the count says how many there were).
STATUS_REFUSALS = 3
#: Colours (r, g, b, a) of the scene's and the arm's markers.
SCENE_COLOR = (0.8, 0.3, 0.2, 0.6)
ROBOT_COLOR = (0.2, 0.5, 0.9, 0.4)

MARKERS_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: ~/scene_status keeps the last few updates' answers for a late subscriber.
STATUS_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)


def load_scene_file(path: str, base_frame: str) -> Scene:
    """The scene of parameter ``scene_file`` ("" = empty); its ``frame``, when given,
    must be ``base_frame``.  Raises SceneError / ConfigurationError."""
    if not path.strip():
        return Scene()
    frame = Scene.frame_of(path)
    if frame is not None and frame != base_frame:
        raise ConfigurationError(
            f"scene_file '{path}' is written in frame '{frame}'; it must be the chain's "
            f"base frame '{base_frame}'", parameter="scene_file", value=path)
    return Scene.from_yaml(path)


# ============================================================== markers as arrays
class Markers(NamedTuple):
    """The fields of N markers that ~/scene reads, as lists and arrays."""

    frames: list[str]       # header.frame_id
    names: list[str]        # "<ns>/<id>"
    types: np.ndarray       # Shape (N,) int64
    actions: np.ndarray     # Shape (N,) int64
    poses: np.ndarray       # Shape (N, 7): position x y z, orientation x y z w
    scales: np.ndarray      # Shape (N, 3)


def markers_of(markers: Sequence[Marker]) -> Markers:
    """``Markers`` of message objects (the path without CDR)."""
    poses = np.array([(m.pose.position.x, m.pose.position.y, m.pose.position.z,
                       m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z,
                       m.pose.orientation.w) for m in markers], dtype=np.float64)
    scales = np.array([(m.scale.x, m.scale.y, m.scale.z) for m in markers],
                      dtype=np.float64)
    return Markers([m.header.frame_id for m in markers], [marker_name(m) for m in markers],
                   np.array([m.type for m in markers], dtype=np.int64),
                   np.array([m.action for m in markers], dtype=np.int64),
                   poses.reshape(-1, 7), scales.reshape(-1, 3))


def marker_name(marker: Marker) -> str:
    """The obstacle name of a marker: ``"<ns>/<id>"``."""
    return f"{marker.ns}/{marker.id}"


def marker_pose(marker: Marker) -> np.ndarray:
    """``T_base_obj`` of a marker's pose; SceneError for a non-unit quaternion."""
    p, q = marker.pose.position, marker.pose.orientation
    return _pose_of(marker_name(marker), (p.x, p.y, p.z, q.x, q.y, q.z, q.w))


def _pose_of(name: str, pose: Sequence[float]) -> np.ndarray:
    x, y, z, w = (float(v) for v in pose[3:7])
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(norm) or abs(norm - 1.0) > QUATERNION_TOLERANCE:
        raise SceneError(f"marker '{name}': orientation quaternion has norm "
                         f"{norm:.6g}, not 1", obstacle=name, field="orientation")
    T = np.eye(4)
    quaternion_to_matrix(x / norm, y / norm, z / norm, w / norm, T)
    T[:3, 3] = pose[:3]
    return T


def apply_marker(scene: Scene, marker: Marker, base_frame: str,
                 from_topic: set[str]) -> None:
    """Apply one marker to ``scene`` (``from_topic``: the names that came from
    ~/scene); SceneError says why a marker is refused, leaving the scene as it was."""
    p, q, s = marker.pose.position, marker.pose.orientation, marker.scale
    _apply_one(scene, marker_name(marker), marker.header.frame_id, marker.type,
               marker.action, (p.x, p.y, p.z, q.x, q.y, q.z, q.w), (s.x, s.y, s.z),
               base_frame, from_topic)


def _apply_one(scene: Scene, name: str, frame: str, kind_code: int, action: int,
               pose: Sequence[float], scale: Sequence[float], base_frame: str,
               from_topic: set[str]) -> None:
    """One marker, field by field (``apply_marker``; the markers ``apply_markers``
    does not add in bulk)."""
    if action == Marker.DELETEALL:
        for other in sorted(from_topic):
            if other in scene:
                scene.remove(other)
        from_topic.clear()
        return
    if frame != base_frame:
        raise SceneError(f"marker '{name}': frame '{frame}' is not the base "
                         f"frame '{base_frame}'", obstacle=name, field="header.frame_id")
    if action == Marker.DELETE:
        if name in from_topic:
            scene.remove(name)
            from_topic.discard(name)
        return
    if action != Marker.ADD:
        raise SceneError(f"marker '{name}': action {action} is unknown; actions are: "
                         f"ADD ({Marker.ADD}), DELETE ({Marker.DELETE}), DELETEALL "
                         f"({Marker.DELETEALL})", obstacle=name, field="action")
    kind = MARKER_KINDS.get(kind_code)
    if kind is None:
        raise SceneError(f"marker '{name}': type {kind_code} is not an obstacle; types "
                         f"are: " + ", ".join(f"{k.upper()} ({t})" for t, k in
                                              ((Marker.CUBE, "cube"),
                                               (Marker.SPHERE, "sphere"),
                                               (Marker.CYLINDER, "cylinder"))),
                         obstacle=name, field="type")
    T = _pose_of(name, pose)
    sx, sy, sz = (float(v) for v in scale)
    if kind == "box":
        scene.add_box(name, (sx, sy, sz), T)
    elif kind == "sphere":
        if not (sx == sy == sz):
            raise SceneError(f"marker '{name}': a sphere needs scale x = y = z, got "
                             f"({sx:g}, {sy:g}, {sz:g})", obstacle=name, field="scale")
        scene.add_sphere(name, 0.5 * sx, T)
    else:
        if sx != sy:
            raise SceneError(f"marker '{name}': a cylinder needs scale x = y (its "
                             f"diameter), got ({sx:g}, {sy:g})", obstacle=name,
                             field="scale")
        scene.add_cylinder(name, 0.5 * sx, sz, T)
    from_topic.add(name)


#: Scene.add_many's kind of each marker type (index = kind code below).
_BULK_KINDS = ("box", "sphere", "cylinder")


def apply_markers(scene: Scene, markers: Markers, base_frame: str,
                  from_topic: set[str]) -> list[str]:
    """Apply N markers to ``scene`` in order, as ``apply_marker`` one after the
    other would; returns the refusals' messages.

    The markers that are valid ADDs are checked and converted with array
    operations and added with ``Scene.add_many`` (each run of them between two
    other markers at once); the others (DELETE, DELETEALL, the refused ones) go
    through ``apply_marker``'s checks one by one.
    """
    count = len(markers.names)
    if count == 0:
        return []
    types, poses, scales = markers.types, markers.poses, markers.scales
    kind = np.full(count, -1, dtype=np.intp)
    kind[types == Marker.CUBE] = 0
    kind[types == Marker.SPHERE] = 1
    kind[types == Marker.CYLINDER] = 2
    sx, sy, sz = scales[:, 0], scales[:, 1], scales[:, 2]
    dims = np.zeros((count, 3))
    box, sphere, cylinder = kind == 0, kind == 1, kind == 2
    dims[box] = scales[box]
    dims[sphere | cylinder, 0] = 0.5 * sx[sphere | cylinder]
    dims[cylinder, 1] = sz[cylinder]
    with np.errstate(invalid="ignore", over="ignore"):
        q = poses[:, 3:7]
        norm = np.sqrt(np.einsum("ij,ij->i", q, q))
        used = np.array([[True, True, True], [True, False, False],
                         [True, True, False]])[np.maximum(kind, 0)]
        fast = ((markers.actions == Marker.ADD) & (kind >= 0)
                & np.fromiter(map(base_frame.__eq__, markers.frames), bool, count)
                & np.isfinite(norm) & (np.abs(norm - 1.0) <= QUATERNION_TOLERANCE)
                & np.isfinite(poses[:, :3]).all(axis=1)
                & np.all(~used | (np.isfinite(dims) & (dims > 0.0)), axis=1)
                & (~sphere | ((sx == sy) & (sy == sz))) & (~cylinder | (sx == sy)))
    refused: list[str] = []
    names = markers.names

    def one(i: int) -> None:
        try:
            _apply_one(scene, names[i], markers.frames[i], int(types[i]),
                       int(markers.actions[i]), poses[i].tolist(), scales[i].tolist(),
                       base_frame, from_topic)
        except SceneError as exc:
            refused.append(str(exc))

    start = 0
    kinds = kind.tolist()
    for stop in np.flatnonzero(~fast).tolist() + [count]:
        if stop > start:
            run = names[start:stop]
            try:
                scene.add_many(run, [_BULK_KINDS[k] for k in kinds[start:stop]],
                               dims[start:stop], poses[start:stop])
                from_topic.update(run)
            except SceneError:   # not expected: the array checks are add_many's
                for i in range(start, stop):
                    one(i)
        if stop < count:
            one(stop)
        start = stop + 1
    return refused


def _quaternions(R: np.ndarray) -> np.ndarray:
    """(N, 4) quaternions x y z w of rotation matrices (N, 3, 3), by the cases of
    ``rotations.matrix_to_quaternion``."""
    r00, r01, r02 = R[:, 0, 0], R[:, 0, 1], R[:, 0, 2]
    r10, r11, r12 = R[:, 1, 0], R[:, 1, 1], R[:, 1, 2]
    r20, r21, r22 = R[:, 2, 0], R[:, 2, 1], R[:, 2, 2]
    trace = r00 + r11 + r22
    case = np.where(trace > 0.0, 0, np.where((r00 > r11) & (r00 > r22), 1,
                                             np.where(r11 > r22, 2, 3)))
    with np.errstate(invalid="ignore", divide="ignore"):
        s = 2.0 * np.sqrt(np.choose(case, (trace + 1.0, 1.0 + r00 - r11 - r22,
                                           1.0 + r11 - r00 - r22, 1.0 + r22 - r00 - r11)))
        quarter = 0.25 * s
        out = np.empty((len(R), 4))
        out[:, 0] = np.choose(case, ((r21 - r12) / s, quarter, (r01 + r10) / s,
                                     (r02 + r20) / s))
        out[:, 1] = np.choose(case, ((r02 - r20) / s, (r01 + r10) / s, quarter,
                                     (r12 + r21) / s))
        out[:, 2] = np.choose(case, ((r10 - r01) / s, (r02 + r20) / s, (r12 + r21) / s,
                                     quarter))
        out[:, 3] = np.choose(case, (quarter, (r21 - r12) / s, (r02 - r20) / s,
                                     (r10 - r01) / s))
    return out


# ============================================================== CDR
# A MarkerArray in XCDR1 (what rmw_fastrtps and rmw_cyclonedds send): 4 bytes of
# encapsulation (0 1 = little endian, 0 0 = big), then the fields in order, each
# aligned to its size (strings and sequence lengths: 4; doubles: 8) counted from the
# end of the encapsulation; a string is its length with the NUL, its bytes, a NUL.
# Marker: header (stamp sec nanosec, frame_id), ns, id, type, action, pose (7 d),
# scale (3 d), color (4 f), lifetime (sec nanosec), frame_locked, points (d × 3 × k),
# colors (f × 4 × k), texture_resource, texture (header, format, uint8[]),
# uv_coordinates (f × 2 × k), text, mesh_resource, mesh_file (filename, uint8[]),
# mesh_use_embedded_materials.

class _Codec(NamedTuple):
    """unpack_from of the pieces ``read_marker_array`` reads, in one byte order."""

    order: str          # "<" or ">"
    u32: Callable[..., tuple[Any, ...]]
    #: stamp (skipped) and frame_id's length
    head: Callable[..., tuple[Any, ...]]
    #: from frame_locked (offset ≡ 1 mod 4) to text's length, when all in between
    #: is empty: points count, colors count, texture_resource length, texture frame_id
    #: length, format length, data count, uv count, text length
    common: Callable[..., tuple[Any, ...]]
    #: after the text, when all is empty: mesh_resource length, filename length,
    #: mesh data count, the last bool; by the offset after the text, mod 4
    after_text: tuple[Callable[..., tuple[Any, ...]], ...]


_COMMON = "3xIII1x3x8xI1x3xI1x3xIII"


def _codec(order: str) -> _Codec:
    return _Codec(order, struct.Struct(order + "I").unpack_from,
                  struct.Struct(order + "8xI").unpack_from,
                  struct.Struct(order + _COMMON).unpack_from,
                  tuple(struct.Struct(order + f"{(-k) % 4}xI1x3xI1x3xI?").unpack_from
                        for k in range(4)))


_CODECS = {b"\x00\x01": _codec("<"), b"\x00\x00": _codec(">")}
#: Bytes from frame_locked to the text's first byte, when all in between is empty.
_COMMON_SIZE = struct.calcsize("<" + _COMMON)
#: Bytes of ``after_text`` after its padding.
_AFTER_TEXT_SIZE = struct.calcsize("<I1x3xI1x3xI?")


#: Offsets in the common part (from frame_locked + 1) of the u32 fields
#: ``_uniform_offsets`` checks, and their values when empty (the text's length:
#: the first marker's): points, colors, texture_resource, texture frame_id, format,
#: texture data, uv_coordinates, text.
_COMMON_FIELDS = (3, 7, 11, 27, 35, 43, 47, 51)
_COMMON_EMPTY = (0, 0, 1, 1, 1, 0, 0)


def _uniform_offsets(buf: memoryview, codec: _Codec,
                     count: int) -> tuple[str, str, np.ndarray] | None:
    """The fast path of ``read_marker_array``, for an array whose markers are all laid
    out as the first one: the same frame_id and ns, a text of the same length, every
    other string and sequence empty.  Then where each marker starts follows from
    where the one before it starts (mod 8, for the pose's alignment), and every
    length field and both strings are checked at once; (frame_id, ns, offset of
    each marker's id), or None when the array is not like that."""
    u32 = codec.u32
    size = len(buf)
    start = 4
    (frame_size,) = codec.head(buf, start)
    at_ns = (start + 12 + frame_size + 3) & ~3
    (ns_size,) = u32(buf, at_ns)
    if not frame_size or not ns_size:
        return None
    at_id = (at_ns + 4 + ns_size + 3) & ~3
    at_common = ((at_id + 12 + 7) & ~7) + 105
    text_size = codec.common(buf, at_common)[-1]
    # per start mod 8 (0 or 4): offsets of the fields from the start, the size
    layouts = {}
    for residue in (0, 4):
        s = 8 + residue            # any start ≡ residue mod 8, here relative to 8
        ns = (s + 12 + frame_size + 3) & ~3
        marker_id = (ns + 4 + ns_size + 3) & ~3
        common = ((marker_id + 12 + 7) & ~7) + 105
        end_text = common + 55 + text_size
        after = (end_text + 3) & ~3
        end = after + 8 + 8 + 5
        layouts[residue] = (np.array([s + 8, ns] + [common + k for k in _COMMON_FIELDS]
                                     + [after, after + 8, after + 16]) - s,
                            marker_id - s, (end + 3 & ~3) - s)
    starts = []
    s = start
    steps = {0: layouts[0][2], 4: layouts[4][2]}
    for _ in range(count):
        starts.append(s)
        s += steps[s & 7]
    begin = np.array(starts, dtype=np.intp)
    odd = (begin & 7).astype(bool)
    fields = begin[:, None] + np.where(odd[:, None], layouts[4][0], layouts[0][0])
    if fields[-1, -1] + 5 > size:      # the last marker's last field and bool
        return None
    words = np.frombuffer(buf, dtype=codec.order + "u4", count=size // 4)
    expected = (frame_size, ns_size, *_COMMON_EMPTY, text_size, 1, 1, 0)
    if not np.array_equal(words[fields // 4], np.broadcast_to(expected, fields.shape)):
        return None
    raw = np.frombuffer(buf, dtype=np.uint8)
    frame_bytes = raw[(begin + 12)[:, None] + np.arange(frame_size - 1)]
    ns_bytes = raw[(fields[:, 1] + 4)[:, None] + np.arange(ns_size - 1)]
    if not ((frame_bytes == frame_bytes[0]).all() and (ns_bytes == ns_bytes[0]).all()):
        return None
    return (str(frame_bytes[0].tobytes(), "utf-8"), str(ns_bytes[0].tobytes(), "utf-8"),
            begin + np.where(odd, layouts[4][1], layouts[0][1]))


def read_marker_array(data: bytes) -> Markers:
    """``Markers`` of a serialised MarkerArray (XCDR1, either byte order; the other
    fields are skipped).  ValueError (or struct.error, UnicodeDecodeError) for data
    it cannot read."""
    codec = _CODECS.get(bytes(data[:2]))
    if codec is None or len(data) < 8:
        raise ValueError(f"unknown CDR encapsulation {bytes(data[:4]).hex()}")
    buf = memoryview(data)[4:]
    size = len(buf)
    u32, head, common, after_text = codec.u32, codec.head, codec.common, codec.after_text
    (count,) = u32(buf, 0)
    if count > size // 64:
        raise ValueError(f"{count} markers cannot fit in {size} bytes")
    uniform = _uniform_offsets(buf, codec, count) if count > 1 else None
    if uniform is not None:
        frame, ns, offsets = uniform
        return _gather(buf, codec.order, [frame] * count, [ns] * count, offsets)
    frames: list[str] = []
    spaces: list[str] = []
    at: list[int] = []          # offset of each marker's id
    r = 4

    def skip_string(r: int) -> int:
        r = (r + 3) & ~3
        return r + 4 + u32(buf, r)[0]

    for _ in range(count):
        r = (r + 3) & ~3
        (n,) = head(buf, r)                         # header.stamp, frame_id
        r += 12
        frames.append(str(buf[r:r + n - 1], "utf-8") if n else "")
        r = (r + n + 3) & ~3
        (n,) = u32(buf, r)                          # ns
        spaces.append(str(buf[r + 4:r + 3 + n], "utf-8") if n else "")
        r = (r + 4 + n + 3) & ~3
        at.append(r)                                # id, type, action, pose, scale ...
        r = ((r + 12 + 7) & ~7) + 80 + 16 + 8 + 1   # ... color, lifetime, frame_locked
        points, colors, resource, frame, fmt, data_count, uvs, n = common(buf, r)
        if (points | colors | data_count | uvs) == 0 and resource == frame == fmt == 1:
            r += _COMMON_SIZE + n                   # the common case: all empty; text
        else:
            r = (r + 3) & ~3
            (points,) = u32(buf, r)
            r += 4
            if points:
                r = ((r + 7) & ~7) + 24 * points
            r = (r + 3) & ~3
            r += 4 + 16 * u32(buf, r)[0]            # colors
            r = skip_string(r)                      # texture_resource
            r = ((r + 3) & ~3) + 8                  # texture.header.stamp
            r = skip_string(skip_string(r))         # its frame_id, format
            r = (r + 3) & ~3
            r += 4 + u32(buf, r)[0]                 # texture data
            r = (r + 3) & ~3
            r += 4 + 8 * u32(buf, r)[0]             # uv_coordinates
            r = skip_string(r)                      # text
        mesh, filename, mesh_data, _flag = after_text[r & 3](buf, r)
        if mesh == filename == 1 and mesh_data == 0:
            r += (-r) % 4 + _AFTER_TEXT_SIZE
        else:
            r = skip_string(skip_string(r))         # mesh_resource, mesh_file.filename
            r = (r + 3) & ~3
            r += 4 + u32(buf, r)[0] + 1             # mesh data, the bool
        if r > size:
            raise ValueError("the data ends inside a marker")
    return _gather(buf, codec.order, frames, spaces, np.array(at, dtype=np.intp))


def _gather(buf: memoryview, order: str, frames: list[str], spaces: list[str],
            offsets: np.ndarray) -> Markers:
    """``Markers`` from the offsets of the markers' ids: the numbers gathered, int32
    from the 4-aligned offsets, float64 from the 8-aligned ones (counted from the
    end of the encapsulation)."""
    size = len(buf)
    words = np.frombuffer(buf, dtype=order + "i4", count=size // 4)
    ints = words[(offsets // 4)[:, None] + np.arange(3)].astype(np.int64)
    doubles = np.frombuffer(buf, dtype=order + "f8", count=size // 8)
    numbers = doubles[((offsets + 19) // 8)[:, None] + np.arange(10)]
    names = [f"{ns}/{i}" for ns, i in zip(spaces, ints[:, 0].tolist())]
    return Markers(frames, names, ints[:, 1], ints[:, 2], numbers[:, :7], numbers[:, 7:])


class MarkerSpec(NamedTuple):
    """N markers to publish: one frame and namespace; the rest per marker (every
    other field zero or empty)."""

    frame: str
    ns: str
    ids: Sequence[int]
    types: Sequence[int]
    actions: Sequence[int]
    poses: np.ndarray       # Shape (N, 7): position, orientation x y z w
    scales: np.ndarray      # Shape (N, 3)
    color: tuple[float, float, float, float]
    texts: Sequence[str]


def _string(text: str) -> bytes:
    raw = text.encode("utf-8") + b"\x00"
    return struct.pack("<I", len(raw)) + raw


#: From frame_locked (offset ≡ 0 mod 8 before it) to the text, all empty.
_WRITE_COMMON = (b"\x00" + bytes(3) + bytes(4) + bytes(4) + _string("") + bytes(3)
                 + bytes(8) + _string("") + bytes(3) + _string("") + bytes(3) + bytes(4)
                 + bytes(4))
#: After the text (offset ≡ k mod 4): mesh_resource, mesh_file, the last bool.
_WRITE_AFTER_TEXT = tuple(bytes((-k) % 4) + _string("") + bytes(3) + _string("")
                          + bytes(3) + bytes(4) + b"\x00" for k in range(4))
#: id, type, action, [pad], pose, scale, color, lifetime: by the offset % 8 of id.
_WRITE_NUMBERS = {0: struct.Struct("<3i4x10d4f8x").pack, 4: struct.Struct("<3i10d4f8x").pack}


@functools.lru_cache(maxsize=4096)
def _marker_tail(text: str) -> bytes:
    """A marker's bytes from frame_locked to its end, for ``text``: the same wherever
    the marker starts (its offset there is ≡ 0 mod 8, the text's ≡ 0 mod 4)."""
    raw = _string(text)
    return _WRITE_COMMON + raw + _WRITE_AFTER_TEXT[len(raw) % 4]


def write_marker_array(specs: Sequence[MarkerSpec]) -> bytes:
    """A MarkerArray of ``specs`` serialised as XCDR1, little endian."""
    total = sum(len(spec.ids) for spec in specs)
    parts = [b"\x00\x01\x00\x00", struct.pack("<I", total)]
    append = parts.append
    r = 4
    for spec in specs:
        head = bytes(8) + _string(spec.frame)
        head += bytes((-len(head)) % 4) + _string(spec.ns)
        head += bytes((-len(head)) % 4)
        size = len(head)
        color = spec.color
        numbers = np.concatenate([spec.poses, spec.scales], axis=1).tolist()
        for mid, mtype, action, text, values in zip(spec.ids, spec.types, spec.actions,
                                                   spec.texts, numbers):
            if r & 3:                       # a marker ends at ≡ 1 mod 4 (a bool)
                append(b"\x00\x00\x00")
                r += 3
            append(head)
            r += size
            append(_WRITE_NUMBERS[r & 7](mid, mtype, action, *values, *color))
            r += 120 if r & 7 == 0 else 116         # ... to frame_locked
            tail = _marker_tail(text)
            append(tail)
            r += len(tail)
    return b"".join(parts)


def spec_messages(specs: Sequence[MarkerSpec]) -> MarkerArray:
    """The MarkerArray of ``specs`` as message objects (the path without CDR)."""
    msg = MarkerArray()
    for spec in specs:
        for k, (mid, mtype, action, text) in enumerate(zip(
                spec.ids, spec.types, spec.actions, spec.texts)):
            m = Marker()
            m.header.frame_id = spec.frame
            m.ns = spec.ns
            m.id = int(mid)
            m.type = int(mtype)
            m.action = int(action)
            p = spec.poses[k]
            m.pose.position.x, m.pose.position.y, m.pose.position.z = map(float, p[:3])
            o = m.pose.orientation
            o.x, o.y, o.z, o.w = map(float, p[3:7])
            m.scale.x, m.scale.y, m.scale.z = map(float, spec.scales[k])
            m.color.r, m.color.g, m.color.b, m.color.a = spec.color
            m.text = text
            msg.markers.append(m)
    return msg


def cdr_round_trip_ok() -> bool:
    """Whether ``read_marker_array`` reads what rclpy serialises and rclpy reads what
    ``write_marker_array`` writes, on markers that use every field."""
    from geometry_msgs.msg import Point
    from std_msgs.msg import ColorRGBA
    from visualization_msgs.msg import UVCoordinate

    try:
        specs = [MarkerSpec("base", "scene", [0], [Marker.CUBE], [Marker.DELETEALL],
                            np.array([[0, 0, 0, 0, 0, 0, 1.0]]), np.zeros((1, 3)),
                            (0.0, 0.0, 0.0, 0.0), [""]),
                 MarkerSpec("panda_link0", "ab", [7, -3, 2], [1, 2, 3], [0, 0, 2],
                            np.arange(21.0).reshape(3, 7) / 7.0,
                            np.arange(9.0).reshape(3, 3) + 0.25, (0.5, 0.25, 1.0, 0.75),
                            ["t", "obstacle/name", "xy"])]
        reference = spec_messages(specs)
        extra = reference.markers[2]
        extra.points = [Point(x=1.0, y=2.0, z=3.0)]
        extra.colors = [ColorRGBA(r=1.0), ColorRGBA(g=0.5)]
        extra.texture_resource = "file://t"
        extra.texture.header.frame_id = "cam"
        extra.texture.format = "png"
        extra.texture.data = [1, 2, 3]
        extra.uv_coordinates = [UVCoordinate(u=0.5, v=0.25)]
        extra.mesh_resource = "package://m"
        extra.mesh_file.filename = "m.stl"
        extra.mesh_file.data = [4, 5]
        extra.mesh_use_embedded_materials = True
        read = read_marker_array(serialize_message(reference))
        expected = markers_of(reference.markers)
        if not (read.frames == expected.frames and read.names == expected.names
                and all(np.array_equal(a, b) for a, b in zip(read[2:], expected[2:]))):
            return False
        written = deserialize_message(write_marker_array(specs), MarkerArray)
        plain = deserialize_message(serialize_message(spec_messages(specs)), MarkerArray)
        return bool(written == plain)
    except Exception:   # any failure: use the message objects
        return False


# ============================================================== the node's part
class SceneInterface:
    """``~/scene`` in, ``~/scene_status`` and ``~/collision_markers`` out, for one
    controller (whose scene it replaces with ``set_scene``)."""

    def __init__(self, node: Node, controller: Controller, scene: Scene,
                 last_q: Callable[[], np.ndarray | None]) -> None:
        self._node = node
        self._controller = controller
        self._base = controller.robot.base_link
        self._scene = scene
        self._from_topic: set[str] = set()
        self._last_q = last_q
        self.refused = 0
        #: Seconds the last ~/scene update took in the callback.
        self.apply_time = 0.0
        self._next_log = 0.0        # [s, monotonic] when a refusal may be logged again
        self._unlogged = 0          # updates with refusals since the last log line
        #: Messages read and written as CDR bytes (else as rclpy message objects).
        self.cdr = cdr_round_trip_ok()
        if not self.cdr:
            node.get_logger().info("~/scene: the middleware's CDR is not the one this node "
                                   "reads; using message objects (slower)")
        self._status = node.create_publisher(String, STATUS_TOPIC, STATUS_QOS)
        self._markers = node.create_publisher(MarkerArray, MARKERS_TOPIC, MARKERS_QOS)
        node.create_subscription(MarkerArray, SCENE_TOPIC, self._on_scene, 10,
                                 raw=self.cdr)
        node.create_timer(1.0 / ROBOT_MARKER_RATE, self._on_robot_markers)
        self._republish = node.create_timer(REPUBLISH_DELAY, self._on_republish,
                                            autostart=False)
        self._publish_scene()

    @property
    def scene(self) -> Scene:
        return self._scene

    def _on_scene(self, msg: bytes | MarkerArray) -> None:
        started = time.perf_counter()
        if isinstance(msg, bytes):
            try:
                markers = read_marker_array(msg)
            except (ValueError, IndexError, struct.error, UnicodeDecodeError):
                try:    # what rclpy reads, slowly
                    markers = markers_of(deserialize_message(msg, MarkerArray).markers)
                except Exception as exc:  # the middleware gave bytes nothing can read
                    self._refuse_message(f"refused a MarkerArray that cannot be read: {exc}")
                    return
        else:
            markers = markers_of(msg.markers)
        scene = self._scene.copy()
        version = scene.version
        from_topic = set(self._from_topic)
        refused = apply_markers(scene, markers, self._base, from_topic)
        total = len(markers.names)
        changed = scene.version != version
        if changed:
            self._scene = scene
            self._from_topic = from_topic
            self._controller.set_scene(scene)
            self._republish.reset()         # _on_republish, after this callback
        self.refused += len(refused)
        self.apply_time = time.perf_counter() - started
        text = (f"applied {total - len(refused)} of {total} markers; {len(self._scene)} "
                f"obstacles, {len(self._controller.pair_names)} pairs; "
                f"{1e3 * self.apply_time:.2f} ms"
                + (f"; refused {len(refused)}: " + "; ".join(refused[:STATUS_REFUSALS])
                   if refused else ""))
        self._status.publish(String(data=text))
        if refused:
            self._log_refusal(text)

    def _refuse_message(self, text: str) -> None:
        self.refused += 1
        self._status.publish(String(data=text))
        self._log_refusal(text)

    def _log_refusal(self, text: str) -> None:
        """At most one log line per LOG_PERIOD (rclpy's own throttle inspects the
        caller's frame at every call, 0.3 ms)."""
        now = time.monotonic()
        if now < self._next_log:
            self._unlogged += 1
            return
        self._next_log = now + LOG_PERIOD
        more = f" ({self._unlogged} more updates with refusals not logged)" \
            if self._unlogged else ""
        self._unlogged = 0
        self._node.get_logger().warning(f"~/scene: {text}{more}")

    # ------------------------------------------------------------ markers out
    def _publish(self, specs: list[MarkerSpec]) -> None:
        self._markers.publish(write_marker_array(specs) if self.cdr
                              else spec_messages(specs))

    def _on_republish(self) -> None:
        self._republish.cancel()            # one shot
        self._publish_scene()

    def _publish_scene(self) -> None:
        clear = MarkerSpec("", "scene", [0], [Marker.ARROW], [Marker.DELETEALL],
                           np.array([[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]]),
                           np.zeros((1, 3)), (0.0, 0.0, 0.0, 0.0), [""])
        self._publish([clear, self._scene_spec()])

    def _scene_spec(self) -> MarkerSpec:
        """The obstacles as markers, from the scene's kernel rows: a half-space as a
        flat box whose top face is the plane."""
        rows = np.asarray(self._scene.array(), dtype=np.float64)
        count = len(rows)
        code = rows[:, 0]
        R = rows[:, 1:10].reshape(count, 3, 3)
        position = rows[:, 10:13].copy()
        scale = 2.0 * rows[:, 13:16]
        sphere, cylinder = code == OBS_SPHERE, code == OBS_CYLINDER
        plane = code == OBS_HALFSPACE
        scale[sphere] = scale[sphere, :1]                           # 2r, 2r, 2r
        scale[cylinder] = scale[cylinder][:, [0, 0, 1]]              # 2r, 2r, length
        scale[plane] = (PLANE_SIZE, PLANE_SIZE, 0.01)
        position[plane] -= 0.005 * R[plane, :, 2]
        types = np.where(sphere, Marker.SPHERE, np.where(cylinder, Marker.CYLINDER,
                                                         Marker.CUBE))
        assert np.all(sphere | cylinder | plane | (code == OBS_BOX))
        return MarkerSpec(self._base, "scene", range(count), types.tolist(),
                          [Marker.ADD] * count,
                          np.concatenate([position, _quaternions(R)], axis=1), scale,
                          SCENE_COLOR, self._scene.names)

    def _on_robot_markers(self) -> None:
        model = self._controller.collision_model
        q = self._last_q()
        if model is None or q is None or self._markers.get_subscription_count() == 0:
            return
        self._publish([self._robot_spec(q)])

    def _robot_spec(self, q: np.ndarray) -> MarkerSpec:
        """The arm's capsules at ``q``: per capsule a sphere at each end and a cylinder
        between them (ids 3·i, 3·i + 1, 3·i + 2)."""
        model = self._controller.collision_model
        assert model is not None
        caps = np.asarray(model.caps, dtype=np.float64)
        count = len(caps)
        frames = np.concatenate([np.eye(4)[None], np.asarray(self._controller.robot.frames(q))])
        T = frames[caps[:, 0].astype(np.intp) + 1]          # frame −1: the base
        a = np.einsum("kij,kj->ki", T[:, :3, :3], caps[:, 1:4]) + T[:, :3, 3]
        b = np.einsum("kij,kj->ki", T[:, :3, :3], caps[:, 4:7]) + T[:, :3, 3]
        d = 2.0 * caps[:, 7]
        axis = b - a
        length = np.linalg.norm(axis, axis=1)
        z = np.where(length[:, None] > 1e-12, axis / np.maximum(length, 1e-300)[:, None],
                     (0.0, 0.0, 1.0))
        helper = np.where(np.abs(z[:, :1]) < 0.9, (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
        x = np.cross(helper, z)
        x /= np.linalg.norm(x, axis=1)[:, None]
        R = np.stack([x, np.cross(z, x), z], axis=2)
        poses = np.zeros((count, 3, 7))
        poses[:, 0, :3] = a
        poses[:, 1, :3] = b
        poses[:, :2, 6] = 1.0
        poses[:, 2, :3] = 0.5 * (a + b)
        poses[:, 2, 3:] = _quaternions(R)
        scales = np.repeat(d[:, None, None], 3, axis=1).repeat(3, axis=2)
        scales[:, 2, 2] = length
        types = [Marker.SPHERE, Marker.SPHERE, Marker.CYLINDER] * count
        texts = [text for name in model.names for text in ("", "", name)]
        return MarkerSpec(self._base, "robot_capsules", range(3 * count), types,
                          [Marker.ADD] * (3 * count), poses.reshape(-1, 7),
                          scales.reshape(-1, 3), ROBOT_COLOR, texts)
