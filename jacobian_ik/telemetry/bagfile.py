"""Flight-recorder files: rosbag2 folders written with the ``rosbags`` writer.

A file holds the recorded cycles of one event (oldest first), one message per
cycle on each of:

``/flight_recorder/joint_states``    ``sensor_msgs/msg/JointState``: measured positions
                                     [rad | m] (``jacobian-ik audit-path`` reads it)
``/flight_recorder/joint_commands``  ``sensor_msgs/msg/JointState``: position command
                                     [rad | m] and velocity command [rad/s | m/s]
``/flight_recorder/cycle``           ``std_msgs/msg/Float64MultiArray``: the values named
                                     by ``CYCLE_FIELDS`` (controller σ_min, state value,
                                     target mode, the smallest distance of an active
                                     collision pair [m] (inf without geometry) and its
                                     pair, an index into the columns' ``pair_names``
                                     (-1: none), then the target's 16 values)

and once: ``/flight_recorder/events`` (``std_msgs/msg/String``, one per event:
"STATE: reason"), ``/flight_recorder/columns`` (``std_msgs/msg/String``, JSON:
joint names, cycle fields, state names, pair names as "link – link|obstacle").
Stamps are wall-clock times.

Run as ``python -m jacobian_ik.telemetry.bagfile SNAPSHOT.npz OUT_FOLDER``: the
controller node's recorder hands its snapshot to this separate process so that
serialising thousands of messages never holds the control loop's interpreter.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

JOINT_TOPIC = "/flight_recorder/joint_states"
COMMAND_TOPIC = "/flight_recorder/joint_commands"
CYCLE_TOPIC = "/flight_recorder/cycle"
EVENT_TOPIC = "/flight_recorder/events"
COLUMNS_TOPIC = "/flight_recorder/columns"
#: Values of each ``/flight_recorder/cycle`` message, then 16 target values (a ring
#: row holds them too, with the stamp after the cycle number).
CYCLE_FIELDS = ("cycle", "sigma_min", "state", "target_mode", "min_distance", "pair")
TARGET_SIZE = 16
#: target_mode values.
TARGET_MODES = ("none", "pose", "twist", "rejected")

JOINT_STATE = "sensor_msgs/msg/JointState"
MULTI_ARRAY = "std_msgs/msg/Float64MultiArray"
STRING = "std_msgs/msg/String"


def ring_columns(n: int) -> dict[str, slice]:
    """Columns of a recorder ring row for ``n`` joints: name → slice."""
    out = {}
    offset = 0
    scalars = (CYCLE_FIELDS[0], "stamp", *CYCLE_FIELDS[1:])
    for name, width in (*((scalar, 1) for scalar in scalars), ("q", n), ("dq_command", n),
                        ("q_command", n), ("target", TARGET_SIZE)):
        out[name] = slice(offset, offset + width)
        offset += width
    return out


def row_width(n: int) -> int:
    return ring_columns(n)["target"].stop


def save_snapshot(path: str | Path, rows: np.ndarray, joint_names: Iterable[str],
                  state_names: Iterable[str], events: Iterable[dict[str, Any]],
                  wall_offset: float, pair_names: Iterable[str] = ()) -> None:
    """The recorder's hand-over file: rows (oldest first) and what names them
    (``pair_names``: the texts of the rows' pair indices)."""
    meta = {"joint_names": list(joint_names), "state_names": list(state_names),
            "events": list(events), "wall_offset": wall_offset,
            "pair_names": list(pair_names)}
    with open(path, "wb") as stream:
        np.savez(stream, rows=rows, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))


def _typestore() -> Typestore:
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_HUMBLE)


def write_bag(snapshot: str | Path, out: Path) -> Path:
    """Write the rosbag2 folder ``out`` from a snapshot file (atomically: a
    temporary folder renamed at the end)."""
    from rosbags.rosbag2 import Writer

    with np.load(snapshot) as data:
        rows = data["rows"]
        meta = json.loads(bytes(data["meta"]).decode())
    names = meta["joint_names"]
    n = len(names)
    col = ring_columns(n)
    ts = _typestore()
    Time = ts.types["builtin_interfaces/msg/Time"]
    Header = ts.types["std_msgs/msg/Header"]
    JointState = ts.types[JOINT_STATE]
    MultiArray = ts.types[MULTI_ARRAY]
    Layout = ts.types["std_msgs/msg/MultiArrayLayout"]
    String = ts.types[STRING]
    empty = np.zeros(0)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    stamps = ((rows[:, col["stamp"].start] + meta["wall_offset"]) * 1e9).astype(np.int64)
    first = int(stamps[0]) if len(stamps) else 0
    with Writer(tmp, version=8) as writer:
        c_joint = writer.add_connection(JOINT_TOPIC, JOINT_STATE, typestore=ts)
        c_command = writer.add_connection(COMMAND_TOPIC, JOINT_STATE, typestore=ts)
        c_cycle = writer.add_connection(CYCLE_TOPIC, MULTI_ARRAY, typestore=ts)
        c_event = writer.add_connection(EVENT_TOPIC, STRING, typestore=ts)
        c_columns = writer.add_connection(COLUMNS_TOPIC, STRING, typestore=ts)
        columns = {"joint_names": names, "cycle_fields": list(CYCLE_FIELDS),
                   "target_size": TARGET_SIZE, "target_modes": list(TARGET_MODES),
                   "state_names": meta["state_names"],
                   "pair_names": meta.get("pair_names", [])}
        writer.write(c_columns, first, ts.serialize_cdr(String(data=json.dumps(columns)),
                                                        STRING))
        for event in meta["events"]:
            stamp = int((event["stamp"] + meta["wall_offset"]) * 1e9)
            writer.write(c_event, stamp, ts.serialize_cdr(String(data=event["text"]), STRING))
        layout = Layout(dim=[], data_offset=0)
        cycle_columns = [col[name].start for name in CYCLE_FIELDS]
        for row, stamp in zip(rows, stamps):
            stamp = int(stamp)
            header = Header(stamp=Time(sec=stamp // 1_000_000_000,
                                       nanosec=stamp % 1_000_000_000), frame_id="")
            writer.write(c_joint, stamp, ts.serialize_cdr(
                JointState(header=header, name=names, position=row[col["q"]].copy(),
                           velocity=empty, effort=empty), JOINT_STATE))
            writer.write(c_command, stamp, ts.serialize_cdr(
                JointState(header=header, name=names, position=row[col["q_command"]].copy(),
                           velocity=row[col["dq_command"]].copy(), effort=empty), JOINT_STATE))
            values = np.concatenate((row[cycle_columns], row[col["target"]]))
            writer.write(c_cycle, stamp, ts.serialize_cdr(
                MultiArray(layout=layout, data=values), MULTI_ARRAY))
    os.replace(tmp, out)
    return out


def folder_size(path: Path) -> int:
    """Bytes of the files below ``path`` (a file's own size for a file)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.path.getsize(os.path.join(dirpath, name))
            except OSError:
                pass
    return total


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m jacobian_ik.telemetry.bagfile SNAPSHOT.npz OUT_FOLDER",
              file=sys.stderr)
        return 2
    snapshot, out = Path(argv[0]), Path(argv[1])
    try:
        write_bag(snapshot, out)
    except (OSError, ValueError) as exc:
        print(f"cannot write flight record '{out}': {exc}", file=sys.stderr)
        shutil.rmtree(out.with_name(out.name + ".partial"), ignore_errors=True)
        return 1
    finally:
        try:
            snapshot.unlink()
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
