"""Flight-recorder files (jacobian_ik.telemetry.bagfile) in ``jacobian-ik audit-path``.

A flight-recorder rosbag2 holds, besides the measured joint positions the path
audit reads, what the controller saw every cycle: its σ_min, its state and the
events that made the recorder write the file.  ``load_flight_record`` reads
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
    """Per cycle: time [s, wall clock], controller σ_min, state value; the events."""

    path: str
    time: np.ndarray
    sigma_min: np.ndarray
    state: np.ndarray
    state_names: list[str]
    events: list[tuple[float, str]]          # [(time [s], text)]

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
    sigma: list[float] = []
    state: list[int] = []
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
                    sigma.append(msg.data[CYCLE_FIELDS.index("sigma_min")])
                    state.append(int(msg.data[CYCLE_FIELDS.index("state")]))
                elif connection.topic == EVENT_TOPIC:
                    events.append((stamp * 1e-9, msg.data))
                else:
                    columns = json.loads(msg.data)
    except (AnyReaderError, OSError, ValueError) as exc:
        raise TrajectoryError(f"cannot read flight record '{path}': {exc}") from None
    if not times or columns is None:
        raise TrajectoryError(f"flight record '{path}' has no recorded cycles")
    return FlightRecord(path=str(path), time=np.asarray(times), sigma_min=np.asarray(sigma),
                        state=np.asarray(state), state_names=list(columns["state_names"]),
                        events=sorted(events))


def flight_block(record: FlightRecord) -> dict[str, Any]:
    """The report's ``flight_recorder`` entry."""
    t0 = record.event_time
    visited: list[str] = []
    for value in record.state:
        name = record.state_names[value]
        if not visited or visited[-1] != name:
            visited.append(name)
    return {
        "events": [{"time": t - t0, "text": text} for t, text in record.events],
        "cycles": int(record.time.size),
        "start": float(record.time[0] - t0),
        "end": float(record.time[-1] - t0),
        "controller_sigma_min": float(np.min(record.sigma_min)),
        "states": visited,
    }


def render_flight(block: dict[str, Any]) -> str:
    """Lines appended to the text report."""
    lines = ["", f"flight record: {block['cycles']} cycles from {block['start']:+.3f} s to "
                 f"{block['end']:+.3f} s around the event; lowest controller sigma_min "
                 f"{block['controller_sigma_min']:.4g}",
             "states: " + " > ".join(block["states"])]
    lines += [f"event at {e['time']:+.3f} s: {e['text']}" for e in block["events"]]
    return "\n".join(lines) + "\n"
