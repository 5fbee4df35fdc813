"""Recorded joint paths: a CSV file or a rosbag2 of ``sensor_msgs/msg/JointState``.

CSV: a header row of column names, then one configuration per row.  Columns
named like the chain's joints hold their positions [rad | m]; a column named
``time`` (or ``t``, ``time_s``, ``stamp``) holds the sample time [s]; other
columns are ignored.  Blank lines and lines starting with ``#`` are skipped.

rosbag2 (a bag folder, or its .db3 / .mcap file), read with ``rosbags``:
messages of type ``sensor_msgs/msg/JointState`` on one topic (``/joint_states``
by default).  A message may carry only some joints (several publishers); each
message that carries a chain joint yields a sample once every chain joint has
been seen, with the latest position of each.  Its time is the header stamp,
or the bag's receive time when the stamp is zero.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jacobian_ik.audit.errors import TrajectoryError

DEFAULT_TOPIC = "/joint_states"
JOINT_STATE = "sensor_msgs/msg/JointState"
TIME_COLUMNS = ("time", "t", "time_s", "stamp")
BAG_SUFFIXES = (".db3", ".mcap")


@dataclass
class Trajectory:
    """Configurations Shape (N, n) in the chain's joint order, and times [s] or None."""

    q: np.ndarray
    time: np.ndarray | None
    path: str
    format: str            # "csv" | "rosbag2"
    topic: str | None


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TrajectoryError(f"{where}: {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise TrajectoryError(f"{where}: {text.strip()!r} is not a finite number")
    return value


def load_csv(path: str | Path, joint_names: Sequence[str]) -> Trajectory:
    """Read a CSV path (see the module docstring)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as stream:
            lines = [(i, row) for i, row in enumerate(csv.reader(stream), start=1)
                     if row and any(c.strip() for c in row) and not row[0].lstrip().startswith("#")]
    except OSError as exc:
        raise TrajectoryError(f"cannot read path file '{path}': {exc.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TrajectoryError(f"path file '{path}' is not a CSV text file: {exc}") from None
    if not lines:
        raise TrajectoryError(f"path file '{path}' is empty (expected a header of joint names)")
    header = [c.strip() for c in lines[0][1]]
    missing = [name for name in joint_names if name not in header]
    if missing:
        raise TrajectoryError(
            f"path file '{path}' has no column for joint(s) {', '.join(missing)}; "
            f"its columns are: {', '.join(header)}")
    columns = [header.index(name) for name in joint_names]
    time_column = next((header.index(c) for c in header if c.lower() in TIME_COLUMNS), None)
    q, times = [], []
    for number, row in lines[1:]:
        where = f"path file '{path}' line {number}"
        if len(row) < len(header):
            raise TrajectoryError(f"{where}: {len(row)} values for {len(header)} columns")
        q.append([_number(row[c], where) for c in columns])
        if time_column is not None:
            times.append(_number(row[time_column], where))
    if not q:
        raise TrajectoryError(f"path file '{path}' has a header but no configuration rows")
    return Trajectory(q=np.ascontiguousarray(q, dtype=np.float64),
                      time=np.asarray(times) if time_column is not None else None,
                      path=str(path), format="csv", topic=None)


def load_bag(path: str | Path, joint_names: Sequence[str],
             topic: str = DEFAULT_TOPIC) -> Trajectory:
    """Read JointState messages of ``topic`` from a rosbag2 (see the module docstring)."""
    from rosbags.highlevel import AnyReader, AnyReaderError

    path = Path(path)
    wanted = set(joint_names)
    last: dict[str, float] = {}
    rows: list[list[float]] = []
    times: list[float] = []
    try:
        with AnyReader([path]) as reader:
            connections = [c for c in reader.connections if c.topic == topic]
            if not connections:
                topics = ", ".join(sorted(f"{c.topic} ({c.msgtype})" for c in reader.connections))
                raise TrajectoryError(
                    f"rosbag2 '{path}' has no topic '{topic}'; its topics are: "
                    f"{topics or '(none)'}")
            for c in connections:
                if c.msgtype != JOINT_STATE:
                    raise TrajectoryError(
                        f"topic '{topic}' of rosbag2 '{path}' has type {c.msgtype}; "
                        f"expected {JOINT_STATE}")
            for connection, stamp_ns, raw in reader.messages(connections=connections):
                msg: Any = reader.deserialize(raw, connection.msgtype)
                touched = False
                for name, position in zip(msg.name, msg.position):
                    if name in wanted:
                        last[name] = float(position)
                        touched = True
                if touched and len(last) == len(wanted):
                    rows.append([last[name] for name in joint_names])
                    stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
                    times.append(stamp if stamp > 0.0 else 1e-9 * stamp_ns)
    except (AnyReaderError, OSError) as exc:
        raise TrajectoryError(f"cannot read rosbag2 '{path}': {exc}") from None
    if not rows:
        missing = sorted(wanted - set(last))
        raise TrajectoryError(
            f"rosbag2 '{path}' topic '{topic}' has no JointState with every chain joint "
            f"(never seen: {', '.join(missing)})")
    q = np.ascontiguousarray(rows, dtype=np.float64)
    if not np.all(np.isfinite(q)):
        raise TrajectoryError(f"rosbag2 '{path}' topic '{topic}' has non-finite positions")
    return Trajectory(q=q, time=np.asarray(times), path=str(path), format="rosbag2",
                      topic=topic)


def is_bag(path: str | Path) -> bool:
    """A rosbag2: a folder (with metadata.yaml) or a .db3 / .mcap file."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() in BAG_SUFFIXES


def load_trajectory(path: str | Path, joint_names: Sequence[str],
                    topic: str = DEFAULT_TOPIC) -> Trajectory:
    """A CSV or rosbag2 path, told apart by ``is_bag``."""
    if not Path(path).exists():
        raise TrajectoryError(f"path file '{path}' does not exist")
    if is_bag(path):
        return load_bag(path, joint_names, topic)
    return load_csv(path, joint_names)
