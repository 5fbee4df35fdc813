"""ROS 2 node ``telemetry_exporter``: the controller's telemetry as Prometheus metrics.

A process of its own, so that a scrape never runs in the control loop's
interpreter.  Subscribes to ``<controller>/jacobian_metrics`` (per-cycle values
and the totals of every cycle, see jacobian_ik.telemetry.aggregate),
``<controller>/state`` and ``/diagnostics`` (loop rate, info), and serves
``names.METRICS`` on ``http://<metrics_address>:<metrics_port>/metrics``.

Parameters (read-only): ``EXPORTER_PARAMETERS``.  The address defaults to
127.0.0.1 (loopback): exposing the metrics beyond the host is an explicit choice.
A port already in use stops the exporter at start with an error naming the
port; the controller does not depend on this process.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from prometheus_client import CollectorRegistry
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray, String

from jacobian_ik.errors import ConfigurationError
from jacobian_ik.node.interface import EXPORTER_NODE
from jacobian_ik.node.parameters import NodeParameter, node_descriptor
from jacobian_ik.node.process import run_node
from jacobian_ik.node.status import STATE_SUBSCRIBER_QOS, parse_state_text
from jacobian_ik.telemetry.collector import ControllerCollector, layout_offsets
from jacobian_ik.telemetry.names import DEFAULT_METRICS_ADDRESS, DEFAULT_METRICS_PORT
from jacobian_ik.telemetry.server import endpoint_url, serve

NODE_NAME = EXPORTER_NODE[0]
#: Logged once the endpoint serves (the bring-up runner and tests wait for it).
READY_TEXT = "serving metrics on"

EXPORTER_PARAMETERS = {
    "controller": NodeParameter("/ik_controller", "fully qualified name of the controller "
                                                  "node to export (the 'controller' label)"),
    "robot": NodeParameter("", "value of the 'robot' label (empty: this host's name)"),
    "metrics_address": NodeParameter(DEFAULT_METRICS_ADDRESS,
                                     "address the metrics endpoint binds (127.0.0.1: this "
                                     "host only; 0.0.0.0 exposes it on every interface)"),
    "metrics_port": NodeParameter(DEFAULT_METRICS_PORT, "TCP port of the metrics endpoint"),
}


class TelemetryExporterNode(Node):
    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        values: dict[str, Any] = {}
        for name, spec in EXPORTER_PARAMETERS.items():
            try:
                self.declare_parameter(name, spec.default, node_descriptor(name, spec))
            except InvalidParameterTypeException as exc:
                self.destroy_node()
                raise ConfigurationError(
                    f"parameter '{name}' must be of type {type(spec.default).__name__} "
                    f"(default {spec.default!r}): {exc}") from None
            values[name] = self.get_parameter(name).value
        controller = values["controller"].rstrip("/")
        if not controller.startswith("/") or len(controller) < 2:
            self.destroy_node()
            raise ConfigurationError(
                f"parameter 'controller' is '{values['controller']}'; give the fully "
                "qualified node name, e.g. /ik_controller")
        robot = values["robot"] or socket.gethostname()
        self.collector = ControllerCollector(robot, controller)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.collector)
        address, port = values["metrics_address"], int(values["metrics_port"])
        try:
            self._server = serve(registry, address, port)
        except ConfigurationError:
            self.destroy_node()
            raise
        self._status_name_suffix = f": {controller}"
        self._dims = -1
        self._offsets: dict[str, tuple[int, int]] = {}
        self.create_subscription(Float64MultiArray, f"{controller}/jacobian_metrics",
                                 self._on_metrics, 10)
        self.create_subscription(String, f"{controller}/state", self._on_state,
                                 STATE_SUBSCRIBER_QOS)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.url = endpoint_url(address, port)
        self.get_logger().info(f"{READY_TEXT} {self.url} (controller {controller}, "
                               f"robot {robot})")

    def _on_metrics(self, msg: Float64MultiArray) -> None:
        dims = msg.layout.dim
        if len(dims) != self._dims:      # the layout is fixed: read it once
            self._dims = len(dims)
            self._offsets = layout_offsets((d.label, d.size) for d in dims)
        self.collector.update_metrics(self._offsets, msg.data)

    def _on_state(self, msg: String) -> None:
        self.collector.update_state(parse_state_text(msg.data)[0])

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith(self._status_name_suffix):
                self.collector.update_diagnostics({kv.key: kv.value for kv in status.values})

    def shutdown_server(self) -> None:
        self._server.shutdown()


def _on_stop(node: TelemetryExporterNode) -> None:
    try:
        node.shutdown_server()
    except Exception:  # already closed
        pass


def main(args: list[str] | None = None) -> int:
    """Run until Ctrl-C / SIGTERM; 1 if it cannot start (e.g. the port is taken)."""
    return run_node(NODE_NAME, TelemetryExporterNode, _on_stop, args)


if __name__ == "__main__":
    sys.exit(main())
