"""Flight-recorder files (jacobian_ik.telemetry.bagfile) in ``jacobian-ik audit-path``.

A flight-recorder rosbag2 holds, besides the measured joint positions the path
audit reads, what the controller saw every cycle: its σ_min, its state, the smallest distance
of an active collision pair and that pair, and the events that made the recorder
write the file.  ``load_flight_record`` reads
them; ``flight_block`` summarises them for the report (key ``flight_recorder``);
``jacobian_ik.audit.plot.plot_flight`` draws σ_min and the state timeline around
the event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jacobian_ik.audit.errors import TrajectoryError
from jacobian_ik.telemetry.bagfile import (
    COLUMNS_TOPIC,
    CYCLE_FIELDS,
    CYCLE_TOPIC,
    EVENT_TOPIC,
    JOINT_TOPIC,
)

#: The JointState topic audit-path reads from a flight-recorder file.
FLIGHT_JOINT_TOPIC = JOINT_TOPIC


@dataclass
class FlightRecord:
    """Per cycle: time [s, wall clock], controller σ_min, state value, smallest
    collision distance [m] (inf: no pair active or no geometry; also in records
    written before distances were recorded) and the index of its pair in
    ``pair_names`` (< 0: none); the events."""

    path: str
    time: np.ndarray
    sigma_min: np.ndarray
    state: np.ndarray
    state_names: list[str]
    events: list[tuple[float, str]]          # [(time [s], text)]
    min_distance: np.ndarray
    pair: np.ndarray
    pair_names: list[str]

    def pair_name(self, index: int) -> str:
        """The pair text of cycle ``index`` ("" for none)."""
        k = int(self.pair[index])
        return self.pair_names[k] if 0 <= k < len(self.pair_names) else ""

    @property
    def event_time(self) -> float:
        """Time of the first event (the origin of the plots) [s]."""
        return self.events[0][0] if self.events else float(self.time[-1])


def is_flight_record(path: str | Path) -> bool:
    """A rosbag2 with the flight recorder's cycle topic."""
    from rosbags.highlevel import AnyReader, AnyReaderError

    try:
        with AnyReader([Path(path)]) as reader:
            return any(c.topic == CYCLE_TOPIC for c in reader.connections)
    except (AnyReaderError, OSError):
        return False


def load_flight_record(path: str | Path) -> FlightRecord:
    from rosbags.highlevel import AnyReader, AnyReaderError

    times: list[float] = []
    cycles: list[Any] = []
    events: list[tuple[float, str]] = []
    columns = None
    try:
        with AnyReader([Path(path)]) as reader:
            wanted = [c for c in reader.connections
                      if c.topic in (CYCLE_TOPIC, EVENT_TOPIC, COLUMNS_TOPIC)]
            for connection, stamp, raw in reader.messages(connections=wanted):
                # rosbags builds the message classes at run time: typed `object`
                msg: Any = reader.deserialize(raw, connection.msgtype)
                if connection.topic == CYCLE_TOPIC:
                    times.append(stamp * 1e-9)
                    cycles.append(msg.data)
                elif connection.topic == EVENT_TOPIC:
                    events.append((stamp * 1e-9, msg.data))
                else:
                    columns = json.loads(msg.data)
    except (AnyReaderError, OSError, ValueError) as exc:
        raise TrajectoryError(f"cannot read flight record '{path}': {exc}") from None
    if not times or columns is None:
        raise TrajectoryError(f"flight record '{path}' has no recorded cycles")
    # the file's own field list (older records have fewer fields)
    fields = list(columns.get("cycle_fields", CYCLE_FIELDS))
    data = np.array([np.asarray(values, dtype=np.float64)[:len(fields)] for values in cycles])

    def column(name: str, missing: float) -> np.ndarray:
        return data[:, fields.index(name)] if name in fields else np.full(len(times), missing)

    return FlightRecord(path=str(path), time=np.asarray(times),
                        sigma_min=column("sigma_min", np.nan),
                        state=column("state", 0.0).astype(int),
                        state_names=list(columns["state_names"]), events=sorted(events),
                        min_distance=column("min_distance", np.inf),
                        pair=column("pair", -1.0).astype(int),
                        pair_names=list(columns.get("pair_names", [])))


def flight_block(record: FlightRecord) -> dict[str, Any]:
    """The report's ``flight_recorder`` entry."""
    t0 = record.event_time
    visited: list[str] = []
    for value in record.state:
        name = record.state_names[value]
        if not visited or visited[-1] != name:
            visited.append(name)
    return {
        "event_time": float(t0),     # [s, wall clock]: the origin of the times below
        "events": [{"time": t - t0, "text": text} for t, text in record.events],
        "cycles": int(record.time.size),
        "start": float(record.time[0] - t0),
        "end": float(record.time[-1] - t0),
        "controller_sigma_min": float(np.min(record.sigma_min)),
        "states": visited,
        "collision": _collision_block(record, t0),
    }


def _collision_block(record: FlightRecord, t0: float) -> dict[str, Any] | None:
    """The lowest recorded collision distance, its pair and time, and the pairs that
    were closest in some cycle with their lowest distances (None: no pair was active
    in any recorded cycle)."""
    finite = np.isfinite(record.min_distance)
    if not finite.any():
        return None
    i = int(np.argmin(np.where(finite, record.min_distance, np.inf)))
    lowest: dict[str, float] = {}
    for k in np.flatnonzero(finite).tolist():
        name = record.pair_name(k) or "(unnamed)"
        d = float(record.min_distance[k])
        lowest[name] = min(d, lowest.get(name, np.inf))
    return {"min_distance": float(record.min_distance[i]), "pair": record.pair_name(i),
            "time": float(record.time[i] - t0),
            "closest_pairs": [{"pair": name, "min_distance": d}
                              for name, d in sorted(lowest.items(), key=lambda kv: kv[1])]}


def render_flight(block: dict[str, Any]) -> str:
    """Lines appended to the text report."""
    lines = ["", f"flight record: {block['cycles']} cycles from {block['start']:+.3f} s to "
                 f"{block['end']:+.3f} s around the event; lowest controller sigma_min "
                 f"{block['controller_sigma_min']:.4g}",
             "states: " + " > ".join(block["states"])]
    collision = block.get("collision")
    if collision is not None:
        lines.append(f"lowest collision distance {collision['min_distance']:.4f} m "
                     f"({collision['pair'] or 'pair not named'}) at "
                     f"{collision['time']:+.3f} s; closest pairs: " + ", ".join(
                         f"{c['pair']} {c['min_distance']:.4f} m"
                         for c in collision["closest_pairs"][:5]))
    lines += [f"event at {e['time']:+.3f} s: {e['text']}" for e in block["events"]]
    return "\n".join(lines) + "\n"
