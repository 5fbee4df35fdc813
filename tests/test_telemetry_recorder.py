"""Properties of the flight recorder (jacobian_ik.telemetry.recorder) and its
rosbag2 files (jacobian_ik.telemetry.bagfile)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rosbags")

from rosbags.highlevel import AnyReader

from jacobian_ik.errors import ConfigurationError
from jacobian_ik.telemetry import bagfile
from jacobian_ik.telemetry.names import STATE_NAMES
from jacobian_ik.telemetry.recorder import FlightRecorder, RecorderSettings

JOINTS = ["j1", "j2", "j3"]
RATE = 100.0


class Events:
    def __init__(self):
        self.written, self.failed, self.warnings = [], [], []


def _recorder(folder, events, **settings):
    values = {"seconds": 1.0, "folder": str(folder), "post_event": 0.0}
    values.update(settings)
    return FlightRecorder(JOINTS, RATE, RecorderSettings(**values), STATE_NAMES,
                          on_written=events.written.append, on_failed=events.failed.append,
                          warn=events.warnings.append)


def _fill(recorder, cycles, start=0):
    for k in range(start, start + cycles):
        q = np.full(3, float(k))
        recorder.record(1000.0 + k / RATE, q, -q, q + 0.5, 0.001 * k, k % 8, 1, np.eye(4))


def _wait(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _read(path):
    out = {}
    with AnyReader([Path(path)]) as reader:
        for connection, stamp, raw in reader.messages():
            out.setdefault(connection.topic, []).append(
                (stamp, reader.deserialize(raw, connection.msgtype)))
    return out


def test_ring_keeps_the_last_n_seconds_oldest_first(tmp_path):
    events = Events()
    recorder = _recorder(tmp_path, events)
    try:
        _fill(recorder, 250)
        rows = recorder.snapshot()
        assert recorder.capacity == 100
        col = bagfile.ring_columns(3)
        first_q = rows[:, col["q"].start]
        # Every row kept was written before the copy and not overwritten during it.
        assert len(rows) >= recorder.capacity - 1
        assert list(first_q) == sorted(first_q)
        assert first_q[-1] == 249.0
        np.testing.assert_array_equal(rows[-1, col["dq_command"]], -249.0)
    finally:
        recorder.close()


def test_event_writes_a_rosbag2_with_cycles_commands_and_the_event(tmp_path):
    events = Events()
    recorder = _recorder(tmp_path, events)
    try:
        _fill(recorder, 150)
        expected = recorder.trigger(time.monotonic(), "SAFE_STOP: sigma_min 0.01 < 0.02")
        assert _wait(lambda: events.written or events.failed)
    finally:
        recorder.close()
    assert events.failed == []
    assert str(events.written[0]) == expected
    topics = _read(expected)
    joints = topics[bagfile.JOINT_TOPIC]
    commands = topics[bagfile.COMMAND_TOPIC]
    cycles = topics[bagfile.CYCLE_TOPIC]
    assert len(joints) == len(commands) == len(cycles) >= 99
    assert list(joints[-1][1].name) == JOINTS
    np.testing.assert_array_equal(joints[-1][1].position, 149.0)
    np.testing.assert_array_equal(commands[-1][1].velocity, -149.0)
    np.testing.assert_array_equal(commands[-1][1].position, 149.5)
    assert cycles[-1][1].data[1] == pytest.approx(0.149)            # sigma_min
    assert STATE_NAMES[int(cycles[-1][1].data[2])] == STATE_NAMES[149 % 8]
    stamps = [s for s, _ in joints]
    assert stamps == sorted(stamps)
    assert stamps[-1] - stamps[0] == pytest.approx(0.01e9 * (len(stamps) - 1), rel=1e-6)
    assert [m.data for _, m in topics[bagfile.EVENT_TOPIC]] == ["SAFE_STOP: sigma_min 0.01 "
                                                                "< 0.02"]
    columns = json.loads(topics[bagfile.COLUMNS_TOPIC][0][1].data)
    assert columns["joint_names"] == JOINTS
    assert columns["state_names"] == list(STATE_NAMES)


def test_folder_caps_remove_the_oldest_files(tmp_path):
    events = Events()
    recorder = _recorder(tmp_path, events, max_files=2, seconds=0.05)
    try:
        _fill(recorder, 10)
        for k in range(3):
            recorder.trigger(time.monotonic(), f"JOINT_LIMIT: event {k}")
            assert _wait(lambda k=k: len(events.written) == k + 1)
    finally:
        recorder.close()
    kept = recorder.list_files()
    assert [p.name for p in kept] == [p.name for p in events.written[1:]]


def test_unwritable_folder_warns_once_and_counts_every_failure(tmp_path):
    """A folder that cannot be made (its parent is a file): one warning, N failures,
    and recording goes on."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    events = Events()
    recorder = _recorder(blocker / "flight", events, seconds=0.05)
    try:
        for k in range(3):
            _fill(recorder, 10, start=10 * k)
            recorder.trigger(time.monotonic(), "STALE_INPUT: old")
            assert _wait(lambda k=k: len(events.failed) == k + 1)
        _fill(recorder, 10, start=100)
    finally:
        recorder.close()
    assert len(events.failed) == 3 and events.written == []
    assert len(events.warnings) == 1
    assert "not_a_folder" in events.warnings[0]


def test_events_during_a_pending_file_go_into_it(tmp_path):
    events = Events()
    recorder = _recorder(tmp_path, events, post_event=0.3)
    try:
        _fill(recorder, 20)
        first = recorder.trigger(time.monotonic(), "STALE_INPUT: a")
        second = recorder.trigger(time.monotonic(), "INVALID_INPUT: b")
        assert first == second
        assert _wait(lambda: events.written)
    finally:
        recorder.close()
    texts = [m.data for _, m in _read(first)[bagfile.EVENT_TOPIC]]
    assert texts == ["STALE_INPUT: a", "INVALID_INPUT: b"]


@pytest.mark.parametrize("values", [{"seconds": -1.0}, {"seconds": float("nan")},
                                    {"max_files": 0}, {"max_megabytes": 0.0}])
def test_bad_settings_raise_configuration_errors(values):
    with pytest.raises(ConfigurationError):
        RecorderSettings(**values)


def test_pairs_are_numbered_once_each_and_pairs_beyond_the_cap_are_recorded_as_other(tmp_path):
    from jacobian_ik.telemetry.bagfile import ring_columns
    from jacobian_ik.telemetry.recorder import MAX_PAIR_NAMES, PAIR_NONE, PAIR_OTHER

    events = Events()
    recorder = _recorder(tmp_path, events, seconds=60.0)
    try:
        q = np.zeros(3)
        pairs = [("", ""), ("a", "b"), ("a", "b"), ("b", "c")] + [
            ("x", str(i)) for i in range(MAX_PAIR_NAMES)]
        for k, pair in enumerate(pairs):
            recorder.record(float(k), q, q, q, 0.1, 1, 1, None, 0.01 * k, pair)
        col = ring_columns(3)
        rows = recorder.snapshot()
        assert rows[:4, col["pair"].start].tolist() == [PAIR_NONE, 0.0, 0.0, 1.0]
        assert rows[:4, col["min_distance"].start].tolist() == [0.0, 0.01, 0.02, 0.03]
        assert recorder.pair_names[:2] == ["a – b", "b – c"]
        assert len(recorder.pair_names) == MAX_PAIR_NAMES
        # a – b, b – c and MAX_PAIR_NAMES - 2 of the x pairs are named; the last two are not
        assert rows[-3:, col["pair"].start].tolist() == [MAX_PAIR_NAMES - 1.0, PAIR_OTHER,
                                                          PAIR_OTHER]
    finally:
        recorder.close()
