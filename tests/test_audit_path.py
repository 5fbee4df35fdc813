"""Properties of the path audit: CSV and rosbag2 paths, first threshold crossings."""

from __future__ import annotations

import numpy as np
import pytest

from jacobian_ik.audit.errors import TrajectoryError
from jacobian_ik.audit.path import first_below, run_path_audit
from jacobian_ik.audit.source import load_target
from jacobian_ik.audit.trajectory import load_trajectory

#: A constructed planar2 path: joint1 fixed, joint2 from 1.0 rad through 0 (stretched,
#: singular) to -1.0 rad, 41 samples, 0.05 s apart, starting at t = 10 s.
Q2 = np.linspace(1.0, -1.0, 41)
Q1 = np.full_like(Q2, 0.3)
TIME = 10.0 + 0.05 * np.arange(41)


@pytest.fixture(scope="module")
def target():
    return load_target("planar2", task="position")


def _expected_first(target, threshold):
    """First index whose σ_min (numpy SVD of the position Jacobian) is below threshold."""
    robot = target.robot
    rows = robot.task_rows("position")
    sigma = [np.linalg.svd(robot.jacobian(np.array([a, b]))[rows], compute_uv=False)[-1]
             for a, b in zip(Q1, Q2)]
    return int(np.flatnonzero(np.array(sigma) < threshold)[0])


def _write_csv(path, columns):
    names = list(columns)
    rows = zip(*columns.values())
    text = ",".join(names) + "\n" + "".join(",".join(repr(float(v)) for v in row) + "\n"
                                            for row in rows)
    path.write_text("# recorded by a test\n" + text)
    return path


def _write_bag(path, topic="/joint_states"):
    """A rosbag2 with JointState messages: the joints in swapped order plus a gripper,
    and one message on another topic, stamped with TIME."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.LATEST)
    JointState = store.types["sensor_msgs/msg/JointState"]
    Header = store.types["std_msgs/msg/Header"]
    Time = store.types["builtin_interfaces/msg/Time"]
    with Writer(path, version=9) as writer:
        conn = writer.add_connection(topic, JointState.__msgtype__, typestore=store)
        other = writer.add_connection("/other", JointState.__msgtype__, typestore=store)
        for i, (a, b, t) in enumerate(zip(Q1, Q2, TIME)):
            sec = int(t)
            stamp = Time(sec=sec, nanosec=int(round((t - sec) * 1e9)))
            msg = JointState(header=Header(stamp=stamp, frame_id=""),
                             name=["gripper", "joint2", "joint1"],
                             position=np.array([0.01, b, a]),
                             velocity=np.zeros(0), effort=np.zeros(0))
            data = store.serialize_cdr(msg, JointState.__msgtype__)
            writer.write(conn, int(t * 1e9), data)
            if i == 0:
                writer.write(other, int(t * 1e9), data)
    return path


def test_csv_path_first_crossings_match_numpy_svd(target, tmp_path):
    """On the constructed CSV path, first_warn / first_stop are the first samples whose
    σ_min (numpy SVD) is below sigma_warn / sigma_stop, with time and configuration;
    the minimum is the stretched sample (q2 = 0, index 20)."""
    path = _write_csv(tmp_path / "path.csv",
                      {"time": TIME, "joint2": Q2, "extra": Q2 * 0, "joint1": Q1})
    report, _ = run_path_audit(target, load_trajectory(path, target.robot.joint_names))
    th = report["thresholds"]
    for key in ("warn", "stop"):
        rec = report[f"first_{key}"]
        index = _expected_first(target, th[f"sigma_{key}"])
        assert rec["index"] == index
        assert rec["time"] == pytest.approx(TIME[index])
        assert rec["q"] == {"joint1": pytest.approx(Q1[index]), "joint2": pytest.approx(Q2[index])}
        assert rec["sigma_min"] < th[f"sigma_{key}"]
    assert report["first_warn"]["index"] < report["first_stop"]["index"] <= 20
    assert report["minimum"]["index"] == 20 and report["minimum"]["sigma_min"] < 1e-12
    assert report["input"]["duration"] == pytest.approx(2.0)
    stops = report["stop_samples"]
    assert stops == 2 * (20 - report["first_stop"]["index"]) + 1  # symmetric about q2 = 0


def test_rosbag2_path_gives_the_same_crossings_as_the_csv(target, tmp_path):
    """The same path written as a rosbag2 (joints in another order, an extra joint,
    another topic present) gives the same crossings, times from the header stamps."""
    bag = _write_bag(tmp_path / "bag")
    trajectory = load_trajectory(bag, target.robot.joint_names)
    assert trajectory.format == "rosbag2" and trajectory.q.shape == (41, 2)
    np.testing.assert_allclose(trajectory.q[:, 1], Q2)
    report, _ = run_path_audit(target, trajectory)
    for key in ("warn", "stop"):
        index = _expected_first(target, report["thresholds"][f"sigma_{key}"])
        assert report[f"first_{key}"]["index"] == index
        assert report[f"first_{key}"]["time"] == pytest.approx(TIME[index], abs=1e-6)
    assert report["input"]["topic"] == "/joint_states"


def test_rosbag2_without_the_topic_lists_its_topics(target, tmp_path):
    """Asking for a topic the bag lacks raises TrajectoryError naming the topics."""
    bag = _write_bag(tmp_path / "bag", topic="/arm/joint_states")
    with pytest.raises(TrajectoryError, match="/arm/joint_states"):
        load_trajectory(bag, target.robot.joint_names)


def test_path_that_stays_clear_has_no_crossing(target, tmp_path):
    """A path with q2 in [0.8, 1.0] never crosses a threshold: first_* are None."""
    path = _write_csv(tmp_path / "clear.csv", {"joint1": Q1[:5], "joint2": Q2[:5]})
    report, _ = run_path_audit(target, load_trajectory(path, target.robot.joint_names))
    assert report["first_warn"] is None and report["first_stop"] is None
    assert report["stop_samples"] == 0 and report["input"]["duration"] is None


@pytest.mark.parametrize("text, fragment", [
    ("joint1\n0.1\n", "no column for joint(s) joint2"),
    ("joint1,joint2\n0.1,abc\n", "line 2: 'abc' is not a number"),
    ("joint1,joint2\n0.1,nan\n", "not a finite number"),
    ("joint1,joint2\n", "no configuration rows"),
    ("joint1,joint2\n0.1\n", "1 values for 2 columns"),
    ("", "empty"),
])
def test_malformed_csv_raises_trajectory_error(target, tmp_path, text, fragment):
    """Missing joints, non-numbers, short rows and empty files raise TrajectoryError."""
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(TrajectoryError) as info:
        load_trajectory(path, target.robot.joint_names)
    assert fragment in str(info.value)


def test_first_below_is_strict_and_none_when_never_below():
    """first_below uses '<': a value equal to the threshold is not a crossing."""
    values = np.array([0.5, 0.2, 0.1, 0.05])
    assert first_below(values, 0.1) == 3
    assert first_below(values, 0.01) is None
    assert first_below(values, 1.0) == 0
