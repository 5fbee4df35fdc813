"""Telemetry faults leave the controller alone: a metrics port already in use, a
flight-recorder folder that cannot be written.

The controller runs without a simulator (``sim = "none"``); the exporter is
asked for a port this test holds open.
"""

from __future__ import annotations

import socket
import time

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("prometheus_client")

from node_support import bundled_robot, running

from jacobian_ik.node.bringup import EXPORTER_NODE, BringupConfig

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(domain_id_allocator, tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    blocker = folder / "a_file"
    blocker.write_text("")
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    config = BringupConfig(robot="panda", sim="none", metrics_port=port,
                           controller_parameters={
                               "flight_recorder_folder": str(blocker / "flight")})
    try:
        with running(config, domain_id_allocator(), robot=bundled_robot("panda")) as (
                bringup, client, lines):
            # Discovery done: the controller's state has arrived.
            assert client.wait_for(lambda: client.state is not None, 30.0)
            yield bringup, client, lines, port, blocker
    finally:
        taken.close()


def test_port_in_use_stops_the_exporter_with_an_error_naming_the_port(stack):
    bringup, client, _lines, port, _ = stack
    exporter = bringup.processes[EXPORTER_NODE[0]]
    exporter.wait(60.0)
    assert exporter.returncode == 1
    errors = [line for line in bringup.lines[EXPORTER_NODE[0]] if "cannot start" in line]
    assert errors, bringup.lines[EXPORTER_NODE[0]]
    assert f"port {port} is already in use" in errors[0]
    assert f"127.0.0.1:{port}" in errors[0]
    # The controller is unaffected: running, answering its services.
    assert bringup.failed() is None
    assert client.pause(False, timeout=30.0).success


def test_unwritable_recorder_folder_warns_once_and_counts(stack):
    """Two dumps, each failing: two counted failures, one warning, the controller runs."""
    bringup, client, _lines, _, blocker = stack

    def failures():
        status = client.diagnostics
        if status is None:
            return 0
        return int({kv.key: kv.value for kv in status.values}["flight_recorder_failures"])

    for expected in (1, 2):
        response = client.dump(timeout=30.0)
        assert response.success
        # A file starts at most once per recorder window (5 s): allow for it.
        deadline = time.monotonic() + 30.0
        while failures() < expected and time.monotonic() < deadline:
            time.sleep(0.2)
        assert failures() == expected
    warnings = [line for line in bringup.lines["ik_controller"]
                if "flight recorder cannot write" in line]
    assert len(warnings) == 1, warnings
    assert str(blocker) in warnings[0]
    assert bringup.failed() is None
