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
was applied and refused.  The conversion runs in the subscription callback; the
controller gets the new scene with one call (``Controller.set_scene``), between
two cycles.

``~/collision_markers`` (transient local) republishes the scene and, at
``ROBOT_MARKER_RATE`` while someone listens, the arm's collision capsules at the
last measured position, for RViz.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile
from std_msgs.msg import ColorRGBA, String
from visualization_msgs.msg import Marker, MarkerArray

from jacobian_ik.collision.scene import Obstacle, Scene
from jacobian_ik.errors import ConfigurationError, SceneError
from jacobian_ik.rotations import matrix_to_quaternion, quaternion_to_matrix

if TYPE_CHECKING:
    from rclpy.node import Node

    from jacobian_ik.controller import Controller

SCENE_TOPIC = "~/scene"
STATUS_TOPIC = "~/scene_status"
MARKERS_TOPIC = "~/collision_markers"
#: Rate [Hz] of the robot's capsule markers (only while ~/collision_markers has a
#: subscriber).
ROBOT_MARKER_RATE = 2.0
#: Refused markers are logged at most once per this period [s].
LOG_PERIOD = 1.0
#: Edge [m] of the flat box that draws a half-space.
PLANE_SIZE = 4.0
#: Marker types ~/scene accepts, by marker type.
MARKER_KINDS = {Marker.CUBE: "box", Marker.SPHERE: "sphere", Marker.CYLINDER: "cylinder"}
#: Largest |‖q‖ − 1| of a marker's orientation quaternion.
QUATERNION_TOLERANCE = 1e-3

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


def marker_name(marker: Marker) -> str:
    """The obstacle name of a marker: ``"<ns>/<id>"``."""
    return f"{marker.ns}/{marker.id}"


def marker_pose(marker: Marker) -> np.ndarray:
    """``T_base_obj`` of a marker's pose; SceneError for a non-unit quaternion."""
    q = marker.pose.orientation
    x, y, z, w = q.x, q.y, q.z, q.w
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(norm) or abs(norm - 1.0) > QUATERNION_TOLERANCE:
        raise SceneError(f"marker '{marker_name(marker)}': orientation quaternion has norm "
                         f"{norm:.6g}, not 1", obstacle=marker_name(marker),
                         field="orientation")
    T = np.eye(4)
    quaternion_to_matrix(x / norm, y / norm, z / norm, w / norm, T)
    p = marker.pose.position
    T[:3, 3] = (p.x, p.y, p.z)
    return T


def apply_marker(scene: Scene, marker: Marker, base_frame: str,
                 from_topic: set[str]) -> None:
    """Apply one marker to ``scene`` (``from_topic``: the names that came from
    ~/scene); SceneError says why a marker is refused, leaving the scene as it was."""
    name = marker_name(marker)
    if marker.action == Marker.DELETEALL:
        for other in sorted(from_topic):
            if other in scene:
                scene.remove(other)
        from_topic.clear()
        return
    if marker.header.frame_id != base_frame:
        raise SceneError(f"marker '{name}': frame '{marker.header.frame_id}' is not the base "
                         f"frame '{base_frame}'", obstacle=name, field="header.frame_id")
    if marker.action == Marker.DELETE:
        if name in from_topic:
            scene.remove(name)
            from_topic.discard(name)
        return
    if marker.action != Marker.ADD:
        raise SceneError(f"marker '{name}': action {marker.action} is unknown; actions are: "
                         f"ADD ({Marker.ADD}), DELETE ({Marker.DELETE}), DELETEALL "
                         f"({Marker.DELETEALL})", obstacle=name, field="action")
    kind = MARKER_KINDS.get(marker.type)
    if kind is None:
        raise SceneError(f"marker '{name}': type {marker.type} is not an obstacle; types "
                         f"are: " + ", ".join(f"{k.upper()} ({t})" for t, k in
                                              ((Marker.CUBE, "cube"),
                                               (Marker.SPHERE, "sphere"),
                                               (Marker.CYLINDER, "cylinder"))),
                         obstacle=name, field="type")
    T = marker_pose(marker)
    s = marker.scale
    if kind == "box":
        scene.add_box(name, (s.x, s.y, s.z), T)
    elif kind == "sphere":
        if not (s.x == s.y == s.z):
            raise SceneError(f"marker '{name}': a sphere needs scale x = y = z, got "
                             f"({s.x:g}, {s.y:g}, {s.z:g})", obstacle=name, field="scale")
        scene.add_sphere(name, 0.5 * s.x, T)
    else:
        if s.x != s.y:
            raise SceneError(f"marker '{name}': a cylinder needs scale x = y (its "
                             f"diameter), got ({s.x:g}, {s.y:g})", obstacle=name,
                             field="scale")
        scene.add_cylinder(name, 0.5 * s.x, s.z, T)
    from_topic.add(name)


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
        self._status = node.create_publisher(String, STATUS_TOPIC, STATUS_QOS)
        self._markers = node.create_publisher(MarkerArray, MARKERS_TOPIC, MARKERS_QOS)
        node.create_subscription(MarkerArray, SCENE_TOPIC, self._on_scene, 10)
        node.create_timer(1.0 / ROBOT_MARKER_RATE, self._on_robot_markers)
        self._publish_scene()

    @property
    def scene(self) -> Scene:
        return self._scene

    def _on_scene(self, msg: MarkerArray) -> None:
        scene = self._scene.copy()
        from_topic = set(self._from_topic)
        refused: list[str] = []
        for marker in msg.markers:
            try:
                apply_marker(scene, marker, self._base, from_topic)
            except SceneError as exc:
                refused.append(str(exc))
        self.refused += len(refused)
        applied = len(msg.markers) - len(refused)
        if applied:
            self._scene = scene
            self._from_topic = from_topic
            self._controller.set_scene(scene)
        text = (f"applied {applied} of {len(msg.markers)} markers; {len(scene)} obstacles"
                + (f"; refused {len(refused)}: " + "; ".join(refused[:3]) if refused else ""))
        self._status.publish(String(data=text))
        if refused:
            self._node.get_logger().warning(f"~/scene: {text}",
                                            throttle_duration_sec=LOG_PERIOD)
        if applied:
            self._publish_scene()

    # ------------------------------------------------------------ markers out
    def _publish_scene(self) -> None:
        msg = MarkerArray()
        clear = Marker()
        clear.action = Marker.DELETEALL
        clear.ns = "scene"
        msg.markers.append(clear)
        for index, obstacle in enumerate(self._scene):
            msg.markers.append(self._obstacle_marker(index, obstacle))
        self._markers.publish(msg)

    def _obstacle_marker(self, index: int, obstacle: Obstacle) -> Marker:
        m = self._marker("scene", index, ColorRGBA(r=0.8, g=0.3, b=0.2, a=0.6))
        T = obstacle.T_base_obj
        m.pose = _pose(T)
        if obstacle.kind == "box":
            m.type = Marker.CUBE
            m.scale = Vector3(x=obstacle.dims[0], y=obstacle.dims[1], z=obstacle.dims[2])
        elif obstacle.kind == "sphere":
            m.type = Marker.SPHERE
            d = 2.0 * obstacle.dims[0]
            m.scale = Vector3(x=d, y=d, z=d)
        elif obstacle.kind == "cylinder":
            m.type = Marker.CYLINDER
            d = 2.0 * obstacle.dims[0]
            m.scale = Vector3(x=d, y=d, z=obstacle.dims[1])
        else:   # a half-space: a flat box whose top face is the plane
            m.type = Marker.CUBE
            lifted = T.copy()
            lifted[:3, 3] -= 0.005 * T[:3, 2]
            m.pose = _pose(lifted)
            m.scale = Vector3(x=PLANE_SIZE, y=PLANE_SIZE, z=0.01)
        m.text = obstacle.name
        return m

    def _marker(self, ns: str, index: int, color: ColorRGBA) -> Marker:
        m = Marker()
        m.header.frame_id = self._base
        m.ns = ns
        m.id = index
        m.action = Marker.ADD
        m.color = color
        return m

    def _on_robot_markers(self) -> None:
        model = self._controller.collision_model
        q = self._last_q()
        if model is None or q is None or self._markers.get_subscription_count() == 0:
            return
        frames = self._controller.robot.frames(q)
        msg = MarkerArray()
        color = ColorRGBA(r=0.2, g=0.5, b=0.9, a=0.4)
        for index, row in enumerate(model.caps):
            f = int(row[0])
            T = np.eye(4) if f < 0 else frames[f]
            a = T[:3, :3] @ row[1:4] + T[:3, 3]
            b = T[:3, :3] @ row[4:7] + T[:3, 3]
            r = float(row[7])
            for j, point in enumerate((a, b)):
                s = self._marker("robot_capsules", 3 * index + j, color)
                s.type = Marker.SPHERE
                s.pose.position = Point(x=float(point[0]), y=float(point[1]),
                                        z=float(point[2]))
                s.pose.orientation.w = 1.0
                s.scale = Vector3(x=2 * r, y=2 * r, z=2 * r)
                msg.markers.append(s)
            c = self._marker("robot_capsules", 3 * index + 2, color)
            c.type = Marker.CYLINDER
            c.pose = _pose(_segment_frame(a, b))
            c.scale = Vector3(x=2 * r, y=2 * r, z=float(np.linalg.norm(b - a)))
            c.text = model.names[index]
            msg.markers.append(c)
        self._markers.publish(msg)


def _segment_frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A frame at the middle of a → b whose z axis points along it."""
    axis = b - a
    length = float(np.linalg.norm(axis))
    z = axis / length if length > 1e-12 else np.array([0.0, 0.0, 1.0])
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    T = np.eye(4)
    T[:3, :3] = np.column_stack([x, np.cross(z, x), z])
    T[:3, 3] = 0.5 * (a + b)
    return T


def _pose(T: np.ndarray) -> Pose:
    x, y, z, w = matrix_to_quaternion(T[:3, :3])
    return Pose(position=Point(x=float(T[0, 3]), y=float(T[1, 3]), z=float(T[2, 3])),
                orientation=Quaternion(x=x, y=y, z=z, w=w))
