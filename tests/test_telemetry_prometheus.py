"""The telemetry end to end: simulator, controller, exporter and a real Prometheus.

One set of processes for the module: the kinematic Panda, the controller (its
metrics topic decimated, a temporary flight-recorder folder), the
``telemetry_exporter`` on a free port, and ``prometheus`` scraping it every
second with the project's rules.  The demo's goal sequence (two goals, the
beyond-reach goal that ends in SAFE_STOP, back home) runs once; then every
panel of the Grafana dashboard must return data through the HTTP API.  The
last test kills the exporter and checks that the controller does not notice.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("prometheus_client")

from node_support import bundled_robot, running
from prometheus_client.parser import text_string_to_metric_families
from prometheus_support import PROMETHEUS, PROMETHEUS_MISSING, PrometheusServer, free_port, http_get

from jacobian_ik.node.bringup import EXPORTER_NODE, BringupConfig
from jacobian_ik.telemetry import names

pytestmark = [pytest.mark.ros, pytest.mark.slow,
              pytest.mark.skipif(PROMETHEUS is None, reason=PROMETHEUS_MISSING)]

ROBOT = "panda"
DASHBOARD = Path(__file__).resolve().parent.parent / "config" / "grafana" / \
    "jacobian_ik_dashboard.json"
DECIMATION = 5          # metrics every 5th cycle: metrics_rate = control_rate / 5
CONTROL_RATE = 500.0    # the bundled configs' rate
#: Grafana's $__rate_interval, for a 1 s scrape.
RATE_INTERVAL = "15s"


def panel_queries():
    """(panel title, PromQL) of every dashboard panel, variables replaced as
    Grafana does for "All"."""
    dashboard = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$robot", ".*").replace("$controller", ".*")
            out.append((panel["title"], expr.replace("$__rate_interval", RATE_INTERVAL)))
    return out


def exporter_samples(url):
    text = http_get(url)
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


@pytest.fixture(scope="module")
def stack(domain_id_allocator, tmp_path_factory):
    folder = tmp_path_factory.mktemp("telemetry")
    recorder_folder = folder / "flight"
    port = free_port()
    from jacobian_ik.demo import scene_path

    config = BringupConfig(robot=ROBOT, metrics_port=port,
                           controller_parameters={"scene_file": str(scene_path()),
                                                  "stale_timeout": 0.25,
                                                  "metrics_rate": CONTROL_RATE / DECIMATION,
                                                  "flight_recorder_folder": str(recorder_folder)},
                           exporter_parameters={"robot": "test_arm"})
    robot = bundled_robot(ROBOT)
    with running(config, domain_id_allocator(), robot=robot,
                 client_kwargs={"record_joint_states": True, "record_metrics": True}) as (
            bringup, client, lines):
        url = f"http://127.0.0.1:{port}/metrics"
        with PrometheusServer(folder, [f"127.0.0.1:{port}"], names.SCRAPE_JOB) as prometheus:
            yield {"bringup": bringup, "client": client, "lines": lines, "robot": robot,
                   "url": url, "prometheus": prometheus, "recorder": recorder_folder}


def totals(client) -> dict:
    """The telemetry block of the latest recorded metrics message, parsed."""
    from jacobian_ik.node.status import METRIC_NAMES
    from jacobian_ik.telemetry.aggregate import parse_block

    _, _, metrics = client.recorded()
    return parse_block(metrics[-1][1][len(METRIC_NAMES):]) if metrics else {}


def _wait(predicate, timeout, poll=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    return predicate()


def test_exporter_serves_the_fixed_series_count(stack):
    """69 series for the controller, labelled robot and controller, nothing more."""
    def complete():
        samples = exporter_samples(stack["url"])
        return samples if any(s.name == names.INFO.name for s in samples) else None

    samples = _wait(complete, 30.0)
    assert samples, stack["lines"][-20:]
    assert len(samples) == names.SERIES_PER_CONTROLLER
    assert {(s.labels["robot"], s.labels["controller"]) for s in samples} == {
        ("test_arm", "/ik_controller")}


def test_decimated_metrics_topic_still_counts_every_cycle(stack):
    """Each message carries the totals: cycles are a multiple of the decimation and
    every cycle is in the sigma_min histogram and in one band."""
    client = stack["client"]
    assert client.wait_for(lambda: totals(client).get("cycles", 0) > 100, 10.0)
    m = totals(client)
    assert m["cycles"] % DECIMATION == 0
    buckets = sum(v for k, v in m.items() if k.startswith("sigma_min_bucket:"))
    bands = sum(v for k, v in m.items() if k.startswith("band:"))
    assert buckets == bands == m["cycles"]


def test_goal_sequence_with_a_safe_stop_fills_every_dashboard_panel(stack):
    """The demo's goals in the demo's cell (two end in SAFE_STOP, one of them at the
    table) run; then every panel query of the dashboard returns data from
    Prometheus."""
    from jacobian_ik.demo import GOALS, run_goal

    client, robot, prometheus = stack["client"], stack["robot"], stack["prometheus"]
    home = robot.fk(client.q)
    outcomes = [run_goal(client, robot, goal, home, 20.0) for goal in GOALS]
    # The goals' own outcomes are tested in test_node_closed_loop.py; here the
    # sequence must have produced a safe stop and reached goals.
    assert "SAFE_STOP" in [o.outcome for o in outcomes], outcomes
    assert "reached" in [o.outcome for o in outcomes], outcomes
    stops = 'sum(jacobian_ik_state_transitions_total{state="SAFE_STOP"})'
    assert _wait(lambda: (r := prometheus.query(stops)) and float(r[0]["value"][1]) >= 1, 20.0)
    # Rules evaluate every second; a rate needs two scrapes of the new values.
    time.sleep(3.0)
    missing = []
    for title, expr in panel_queries():
        result = _wait(lambda expr=expr: prometheus.query(expr), 15.0, poll=1.0)
        if not result:
            missing.append((title, expr))
    assert missing == [], missing
    goals = prometheus.query("sum(jacobian_ik_goals_reached_total)")
    assert float(goals[0]["value"][1]) >= sum(o.outcome == "reached" for o in outcomes)


def test_safe_stop_left_a_flight_record_that_audit_path_reads(stack, tmp_path):
    from jacobian_ik.audit.cli import main

    files = _wait(lambda: sorted(stack["recorder"].glob("flight_*safe_stop")), 60.0)
    assert files, list(stack["recorder"].iterdir()) if stack["recorder"].exists() else []
    out, err = io.StringIO(), io.StringIO()
    plot = tmp_path / "safe_stop.png"
    assert main(["audit-path", ROBOT, str(files[-1]), "--json", "--plot", str(plot)],
                out=out, err=err) == 0, err.getvalue()
    block = json.loads(out.getvalue())["flight_recorder"]
    assert block["events"][0]["text"].startswith("SAFE_STOP")
    assert "SAFE_STOP" in block["states"]
    assert block["start"] < -1.0 < 0.0 < block["end"]
    assert plot.exists()
    files_total = stack["prometheus"].query("max(jacobian_ik_flight_recorder_files_total)")
    assert float(files_total[0]["value"][1]) >= 1


def test_dump_service_writes_a_flight_record(stack):
    response = stack["client"].dump()
    assert response.success, response.message
    path = Path(response.message)
    assert path.parent == stack["recorder"]
    assert _wait(lambda: path.is_dir(), 60.0), list(stack["recorder"].iterdir())


def test_killing_the_exporter_leaves_the_controller_running(stack):
    """SIGKILL to the exporter: the controller keeps its rate and reaches a goal;
    Prometheus sees the target down."""
    bringup, client, robot = stack["bringup"], stack["client"], stack["robot"]
    exporter = bringup.processes[EXPORTER_NODE[0]]
    os.killpg(exporter.pid, signal.SIGKILL)
    exporter.wait(10.0)
    before = totals(client)["cycles"]
    target = robot.fk(client.q)
    target[:3, 3] += [0.0, 0.05, 0.0]
    client.send_pose(target, robot.base_link)
    assert client.wait_for(lambda: client.metrics.get("goal_reached") == 1.0
                           and totals(client)["cycles"] > before + 500, 20.0)
    assert bringup.failed() is None
    assert bringup.optional_exited() == {EXPORTER_NODE[0]: -signal.SIGKILL}
    up = f'up{{job="{names.SCRAPE_JOB}"}}'
    assert _wait(lambda: (r := stack["prometheus"].query(up)) and r[0]["value"][1] == "0", 20.0)
    assert not any(re.search(r"\[ik_controller\].*(ERROR|Traceback)", line)
                   for line in stack["lines"])


def test_stopping_the_controller_with_a_pending_record_exits_cleanly(stack):
    """A dump requested just before the stop: the node exits 0 within the runner's
    SIGINT window and the file is still completed."""
    bringup, client = stack["bringup"], stack["client"]
    response = client.dump()
    assert response.success
    codes = bringup.stop()
    assert codes["ik_controller"] == 0, stack["lines"][-20:]
    path = Path(response.message)
    assert _wait(lambda: path.is_dir(), 60.0), list(stack["recorder"].iterdir())
