"""The controller node's scene: scene_file, ~/scene (MarkerArray) and the markers it
publishes, on real processes and topics."""

from __future__ import annotations

import math
import threading
import time

import pytest

pytest.importorskip("rclpy")

from node_support import bundled_robot, running
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray

from jacobian_ik import bundled
from jacobian_ik.node.bringup import BringupConfig
from jacobian_ik.node.scene import MARKERS_QOS, STATUS_QOS

pytestmark = [pytest.mark.ros, pytest.mark.slow]

ROBOT = "panda"
NODE = "/ik_controller"


class SceneWatch:
    """Publishes ~/scene and records ~/scene_status and ~/collision_markers."""

    def __init__(self, client) -> None:
        node = client.node
        self.lock = threading.Lock()
        self.status: list[str] = []
        self.scenes: list[MarkerArray] = []
        self.pub = node.create_publisher(MarkerArray, f"{NODE}/scene", 10)
        node.create_subscription(String, f"{NODE}/scene_status", self._on_status, STATUS_QOS)
        node.create_subscription(MarkerArray, f"{NODE}/collision_markers", self._on_markers,
                                 MARKERS_QOS)

    def _on_status(self, msg: String) -> None:
        with self.lock:
            self.status.append(msg.data)

    def _on_markers(self, msg: MarkerArray) -> None:
        if any(m.ns == "scene" for m in msg.markers):
            with self.lock:
                self.scenes.append(msg)

    def scene_names(self) -> set[str]:
        with self.lock:
            if not self.scenes:
                return set()
            return {m.text for m in self.scenes[-1].markers if m.action == Marker.ADD}

    def wait(self, predicate, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return False


def _cube(ns: str, index: int, x: float, frame: str = "panda_link0",
          size: float = 0.05) -> Marker:
    m = Marker()
    m.header.frame_id = frame
    m.ns = ns
    m.id = index
    m.type = Marker.CUBE
    m.action = Marker.ADD
    m.pose.position.x = x
    m.pose.position.y = 0.6
    m.pose.position.z = 0.5
    m.pose.orientation.w = 1.0
    m.scale.x = m.scale.y = m.scale.z = size
    return m


def test_scene_file_and_marker_updates_reach_the_controller_and_bad_markers_are_refused(
        domain_id_allocator):
    """The node starts with scene_file's obstacles and republishes them; an array of
    100 cubes is applied in one update (they come back as markers); markers in another
    frame, of an unknown type or with a NaN or negative size are refused with a
    status, the rest of their array applied, and a stream of them changes nothing;
    DELETE and DELETEALL remove what ~/scene added and keep the file's obstacles."""
    scene_file = str(bundled.share_dir() / "config" / "scenes" / "panda_cell.yaml")
    config = BringupConfig(robot=ROBOT, controller_parameters={"scene_file": scene_file})
    with running(config, domain_id_allocator(), robot=bundled_robot(ROBOT)) as (
            _bringup, client, _lines):
        watch = SceneWatch(client)
        file_names = {"table", "crate", "post", "shelf"}
        assert watch.wait(lambda: watch.scene_names() == file_names), watch.scene_names()

        watch.pub.publish(MarkerArray(markers=[_cube("bins", i, -1.0 + 0.02 * i)
                                               for i in range(100)]))
        expected = file_names | {f"bins/{i}" for i in range(100)}
        assert watch.wait(lambda: watch.scene_names() == expected)
        assert watch.status[-1] == "applied 100 of 100 markers; 104 obstacles"

        bad_frame = _cube("bad", 0, 0.3, frame="world")
        bad_type = _cube("bad", 1, 0.3)
        bad_type.type = Marker.ARROW
        bad_nan = _cube("bad", 2, 0.3, size=math.nan)
        bad_size = _cube("bad", 3, 0.3, size=-0.1)
        good = _cube("good", 0, 0.3)
        count = len(watch.status)
        watch.pub.publish(MarkerArray(markers=[bad_frame, bad_type, bad_nan, bad_size, good]))
        assert watch.wait(lambda: len(watch.status) > count)
        status = watch.status[-1]
        assert status.startswith("applied 1 of 5 markers; 105 obstacles; refused 4: ")
        assert "frame 'world' is not the base frame 'panda_link0'" in status
        assert watch.wait(lambda: watch.scene_names() == expected | {"good/0"})

        count = len(watch.status)
        only_bad = MarkerArray(markers=[bad_frame, bad_nan])
        for _ in range(20):
            watch.pub.publish(only_bad)
            time.sleep(0.05)
        assert watch.wait(lambda: len(watch.status) >= count + 20)
        assert all(s.startswith("applied 0 of 2 markers; 105 obstacles; refused 2")
                   for s in watch.status[count:])
        assert watch.scene_names() == expected | {"good/0"}

        delete = _cube("good", 0, 0.3)
        delete.action = Marker.DELETE
        watch.pub.publish(MarkerArray(markers=[delete]))
        assert watch.wait(lambda: watch.scene_names() == expected)
        clear = Marker()
        clear.action = Marker.DELETEALL
        watch.pub.publish(MarkerArray(markers=[clear]))
        assert watch.wait(lambda: watch.scene_names() == file_names)
