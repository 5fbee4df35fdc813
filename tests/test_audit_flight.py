"""``jacobian-ik audit-path`` on flight-recorder files (jacobian_ik.audit.flight)."""

from __future__ import annotations

import io
import json
import re
import time

import numpy as np
import pytest

pytest.importorskip("rosbags")

from jacobian_ik import bundled
from jacobian_ik.audit.cli import main
from jacobian_ik.robot import Robot
from jacobian_ik.telemetry.names import STATE_NAMES
from jacobian_ik.telemetry.recorder import FlightRecorder, RecorderSettings

RATE = 100.0


@pytest.fixture(scope="module")
def flight_file(tmp_path_factory):
    """A recorded stretch of the planar arm straightening its elbow: TRACKING,
    then SAFE_STOP at cycle 150 (the event), held to the end.  No collision pair is
    active before cycle 100; then link2 – table closes from 0.05 m to 0.0302 m at
    the last cycle, and cycles 110-119 have link1 – box closest at 0.04 m."""
    robot = Robot.from_urdf(bundled.urdf_path("planar2"), *bundled.robot_links("planar2"))
    folder = tmp_path_factory.mktemp("flight")
    written = []
    recorder = FlightRecorder(robot.joint_names, RATE,
                              RecorderSettings(seconds=2.0, folder=str(folder), post_event=0.0),
                              STATE_NAMES, on_written=written.append)
    tracking, safe_stop = STATE_NAMES.index("TRACKING"), STATE_NAMES.index("SAFE_STOP")
    start = time.monotonic() - 2.0
    event_stamp = None
    for k in range(200):
        elbow = max(0.8 - 0.005 * k, 0.05)
        q = np.array([0.3, elbow])
        state = tracking if k < 150 else safe_stop
        stamp = start + k / RATE
        if k < 100:
            distance, pair = np.inf, ("", "")
        elif 110 <= k < 120:
            distance, pair = 0.04, ("link1", "box")
        else:
            distance, pair = 0.05 - 0.0002 * (k - 100), ("link2", "table")
        recorder.record(stamp, q, np.zeros(2), q, 0.1 * elbow, state, 1, np.eye(4),
                        distance, pair)
        if k == 150:
            event_stamp = stamp
    recorder.trigger(event_stamp, "SAFE_STOP: sigma_min below sigma_stop")
    deadline = time.monotonic() + 60.0
    while not written and time.monotonic() < deadline:
        time.sleep(0.05)
    recorder.close()
    assert written, "the recorder wrote no file"
    return written[0]


def _text_report(flight_file) -> str:
    """The text report of ``audit-path`` on the fixture's record (position task)."""
    out, err = io.StringIO(), io.StringIO()
    assert main(["audit-path", "planar2", str(flight_file), "--task", "position"],
                out=out, err=err) == 0, err.getvalue()
    return out.getvalue()


def test_audit_path_reads_a_flight_record_and_reports_the_event(flight_file, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    plot = tmp_path / "flight.png"
    code = main(["audit-path", "planar2", str(flight_file), "--task", "position", "--json",
                 "--plot", str(plot)], out=out, err=err)
    assert code == 0, err.getvalue()
    report = json.loads(out.getvalue())
    block = report["flight_recorder"]
    assert report["input"]["topic"] == "/flight_recorder/joint_states"
    assert report["samples"] == block["cycles"] >= 199
    assert block["states"] == ["TRACKING", "SAFE_STOP"]
    assert [e["text"] for e in block["events"]] == ["SAFE_STOP: sigma_min below sigma_stop"]
    assert block["events"][0]["time"] == 0.0
    # The recording spans the event: 1.5 s before it, 0.5 s after it.
    assert block["start"] == pytest.approx(-1.5, abs=0.02)
    assert block["end"] == pytest.approx(0.49, abs=0.02)
    # The straightening elbow drives the exact sigma_min down along the path.
    assert report["minimum"]["index"] > report["samples"] * 0.7
    assert plot.stat().st_size > 10_000


def test_text_report_lists_the_event_and_the_state_timeline(flight_file):
    text = _text_report(flight_file)
    assert "states: TRACKING > SAFE_STOP" in text
    assert "event at +0.000 s: SAFE_STOP: sigma_min below sigma_stop" in text


def test_text_report_table_counts_time_from_the_event_as_the_plot_does(flight_file):
    text = _text_report(flight_file)
    assert "t from event [s]" in text
    # the elbow stops straightening at the event (cycle 150): the minimum is there,
    # the first sigma_warn crossing 0.29 s before it; no epoch seconds
    times = {}      # label -> the "t from event [s]" column
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["minimum"]:
            times["minimum"] = float(words[2])
        elif words[:2] == ["first", "warn"]:
            times["first warn"] = float(words[3])
    assert times["minimum"] == pytest.approx(0.0, abs=0.015), text
    assert times["first warn"] == pytest.approx(-0.29, abs=0.015), text
    assert not re.search(r"\b1[0-9]{9}\b", text), text


def test_a_plain_path_has_a_null_flight_recorder_entry(tmp_path):
    csv = tmp_path / "path.csv"
    csv.write_text("joint1,joint2\n0.1,0.5\n0.2,0.4\n")
    out = io.StringIO()
    assert main(["audit-path", "planar2", str(csv), "--task", "position", "--json"],
                out=out, err=io.StringIO()) == 0
    assert json.loads(out.getvalue())["flight_recorder"] is None


def test_flight_record_names_the_closest_collision_pair_and_its_lowest_distance(flight_file):
    out, err = io.StringIO(), io.StringIO()
    assert main(["audit-path", "planar2", str(flight_file), "--task", "position", "--json"],
                out=out, err=err) == 0, err.getvalue()
    collision = json.loads(out.getvalue())["flight_recorder"]["collision"]
    assert collision["pair"] == "link2 – table"
    assert collision["min_distance"] == pytest.approx(0.05 - 0.0002 * 99, abs=1e-12)
    assert collision["time"] == pytest.approx(0.49, abs=0.02)     # the last cycle
    assert [c["pair"] for c in collision["closest_pairs"]] == ["link2 – table", "link1 – box"]
    assert collision["closest_pairs"][1]["min_distance"] == 0.04


def test_text_report_gives_the_lowest_collision_distance_with_its_pair(flight_file):
    text = _text_report(flight_file)
    assert re.search(r"lowest collision distance 0\.0302 m \(link2 – table\) at \+0\.4\d\d s; "
                     r"closest pairs: link2 – table 0\.0302 m, link1 – box 0\.0400 m",
                     text), text
