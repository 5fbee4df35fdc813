"""The flight recorder: the last seconds of control cycles, written out after an event.

``FlightRecorder.record`` runs in the control cycle and only writes one row of a
ring buffer preallocated at start (``seconds`` × control rate rows: stamp, q,
dq and q commands, σ_min, state, target, the smallest collision distance and its
pair).  ``trigger`` (a transition into one of
``names.RECORDER_TRIGGER_STATES``) and ``request_dump`` (the ``~/dump`` service)
only note the event.  A worker thread waits ``post_event`` seconds, so the file
also shows how the stop went, copies the ring and hands the copy to a separate
process (``python -m jacobian_ik.telemetry.bagfile``) that writes the rosbag2
folder: the control loop never serialises a message or waits for the disk.
Events that arrive while one is pending go into the same file, and a file
starts at most once per ``seconds`` (the ring's length): a burst of events
(e.g. a starved host flipping in and out of STALE_INPUT) gives one file per
window, not one writer process per event.

Stopping: ``close`` writes a pending event's snapshot at once and starts its
writer process without waiting for it; the writer runs in a session of its
own, so it finishes the file after the node has exited (a stop signal to the
node's process group does not reach it).

Folder caps: after each file, the oldest files are removed until at most
``max_files`` remain and they take at most ``max_megabytes`` (the newest file is
always kept).  A folder that cannot be written (permissions, full disk) gives
one warning per run of failures and ``on_failed()``; control is not affected.

Ring rows are committed by writing their cycle number last; the worker keeps
only rows whose number shows they were neither written nor overwritten while
it copied (no lock in the cycle).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jacobian_ik.errors import ConfigurationError
from jacobian_ik.telemetry.bagfile import (
    TARGET_MODES,
    TARGET_SIZE,
    folder_size,
    ring_columns,
    row_width,
    save_snapshot,
)

#: File (rosbag2 folder) names: FILE_PREFIX + time + sequence + the first event's state.
FILE_PREFIX = "flight_"
#: At most this many events are listed in one file.
MAX_EVENTS_PER_FILE = 32
#: At most this many distinct collision pairs are named in a run (each a
#: "link – link|obstacle" text); pairs beyond are recorded as PAIR_OTHER.
MAX_PAIR_NAMES = 4096
#: Pair index of a cycle without a closest pair, and of pairs beyond MAX_PAIR_NAMES.
PAIR_NONE, PAIR_OTHER = -1.0, -2.0
#: Seconds allowed to the writer process.
WRITER_TIMEOUT = 120.0


def default_folder() -> str:
    """``$ROS_HOME/jacobian_ik/flight_recorder`` (ROS_HOME defaults to ~/.ros)."""
    ros_home = os.environ.get("ROS_HOME") or os.path.join(os.path.expanduser("~"), ".ros")
    return os.path.join(ros_home, "jacobian_ik", "flight_recorder")


@dataclass(frozen=True)
class RecorderSettings:
    """seconds [s] of history kept (0 disables the recorder); folder ("" = default);
    caps on the folder's file count and size [MB]; post_event [s] recorded after
    the event before the file is written."""

    seconds: float = 5.0
    folder: str = ""
    max_files: int = 20
    max_megabytes: float = 200.0
    post_event: float = 0.5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and 0.0 <= self.seconds <= 60.0):
            raise ConfigurationError(
                f"flight_recorder_seconds is {self.seconds}; valid: 0 (off) to 60 s")
        if self.max_files < 1:
            raise ConfigurationError(f"flight_recorder_max_files is {self.max_files}; it must "
                                     "be >= 1")
        if not (self.max_megabytes > 0.0):
            raise ConfigurationError(f"flight_recorder_max_megabytes is {self.max_megabytes};"
                                     " it must be > 0")

    @property
    def resolved_folder(self) -> Path:
        return Path(self.folder or default_folder()).expanduser()


@dataclass
class _Request:
    name: str
    due: float
    events: list[dict[str, Any]] = field(default_factory=list)   # {stamp, text}


class FlightRecorder:
    """Ring buffer of recent cycles and the worker that writes them out.

    ``on_written(path)``, ``on_failed(message)`` and ``warn(text)`` are called
    from the worker thread.
    """

    def __init__(self, joint_names: Iterable[str], control_rate: float,
                 settings: RecorderSettings, state_names: Iterable[str], *,
                 on_written: Callable[[Path], object] | None = None,
                 on_failed: Callable[[str], object] | None = None,
                 warn: Callable[[str], object] | None = None,
                 python: str = sys.executable) -> None:
        self.settings = settings
        self.folder = settings.resolved_folder
        self.joint_names = list(joint_names)
        self.state_names = list(state_names)
        n = len(self.joint_names)
        self.capacity = max(int(math.ceil(settings.seconds * control_rate)), 2)
        self._ring = np.zeros((self.capacity, row_width(n)))
        self._rows = [self._ring[i] for i in range(self.capacity)]
        col = ring_columns(n)
        self._c_cycle = col["cycle"].start
        self._c_stamp = col["stamp"].start
        self._c_sigma = col["sigma_min"].start
        self._c_state = col["state"].start
        self._c_mode = col["target_mode"].start
        self._c_distance = col["min_distance"].start
        self._c_pair = col["pair"].start
        # pair (two names) → its index in pair_names (a float, as the ring holds it)
        self._pair_index: dict[tuple[str, str], float] = {("", ""): PAIR_NONE}
        self.pair_names: list[str] = []
        self._s_q, self._s_dq, self._s_qc = col["q"], col["dq_command"], col["q_command"]
        self._s_target = col["target"]
        self._s_twist = slice(col["target"].start, col["target"].start + 6)
        self._written_rows = 0
        self._on_written = on_written or (lambda path: None)
        self._on_failed = on_failed or (lambda message: None)
        self._warn = warn or (lambda text: None)
        self._python = python
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: _Request | None = None
        self._stopping = False
        self._warned = False
        self._sequence = 0
        self._next_allowed = 0.0          # [s, monotonic] earliest due time of a file
        self.files_written = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="flight_recorder", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ control cycle
    def record(self, stamp: float, q: np.ndarray, dq_command: np.ndarray,
               q_command: np.ndarray, sigma_min: float, state: int, target_mode: int,
               target: np.ndarray | None, min_distance: float = math.inf,
               pair: tuple[str, str] = ("", "")) -> None:
        """One cycle: stamp [s, monotonic], arrays Shape (n,), target None, (6,) or (4, 4);
        min_distance [m] of the closest active collision pair (inf: none) and its two
        names (("", ""): none)."""
        row = self._rows[self._written_rows % self.capacity]
        row[self._c_stamp] = stamp
        row[self._c_sigma] = sigma_min
        row[self._c_state] = state
        row[self._c_mode] = target_mode
        row[self._c_distance] = min_distance
        index = self._pair_index.get(pair)
        row[self._c_pair] = self._new_pair(pair) if index is None else index
        row[self._s_q] = q
        row[self._s_dq] = dq_command
        row[self._s_qc] = q_command
        if target is None:
            row[self._s_target] = 0.0
        elif target.shape == (6,):
            row[self._s_twist] = target
        else:
            row[self._s_target] = target.reshape(TARGET_SIZE)
        self._written_rows += 1
        row[self._c_cycle] = self._written_rows      # commit: written last

    def _new_pair(self, pair: tuple[str, str]) -> float:
        """Index of a pair seen for the first time (appended to pair_names)."""
        if len(self.pair_names) >= MAX_PAIR_NAMES:
            return PAIR_OTHER
        index = float(len(self.pair_names))
        self.pair_names.append(" – ".join(pair))
        self._pair_index[pair] = index
        return index

    def trigger(self, stamp: float, text: str) -> str:
        """Note an event at ``stamp`` [s, monotonic]; returns the file it goes to."""
        with self._lock:
            request = self._pending
            if request is None:
                self._sequence += 1
                state = text.partition(":")[0].strip().lower() or "event"
                name = (f"{FILE_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}_"
                        f"{self._sequence:04d}_{state}")
                request = _Request(name=name, due=max(stamp + self.settings.post_event,
                                                      self._next_allowed))
                self._pending = request
            if len(request.events) < MAX_EVENTS_PER_FILE:
                request.events.append({"stamp": stamp, "text": text})
        self._wake.set()
        return str(self.folder / request.name)

    def request_dump(self, stamp: float) -> str:
        """The ``~/dump`` service: write the ring now (after post_event)."""
        return self.trigger(stamp, "DUMP: requested by the ~/dump service")

    # ------------------------------------------------------------ worker
    def _run(self) -> None:
        while True:
            with self._lock:
                request = self._pending
                due = None if request is None else request.due
            now = time.monotonic()
            if request is not None and (now >= request.due or self._stopping):
                with self._lock:
                    self._pending = None
                self._write(request)
                continue
            if self._stopping:
                return
            self._wake.wait(None if due is None else max(due - now, 0.0))
            self._wake.clear()

    def snapshot(self) -> np.ndarray:
        """The committed rows of the ring, oldest first (safe while ``record`` runs)."""
        before = self._written_rows
        rows = self._ring.copy()
        after = self._written_rows
        cycle = rows[:, self._c_cycle]
        keep = (cycle >= 1) & (cycle <= before) & (cycle >= after + 2 - self.capacity)
        rows = rows[keep]
        return rows[np.argsort(rows[:, self._c_cycle], kind="stable")]

    def _write(self, request: _Request) -> None:
        self._next_allowed = time.monotonic() + self.settings.seconds
        out = self.folder / request.name
        snapshot = self.folder / f".{request.name}.npz"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            rows = self.snapshot()
            if len(rows) == 0:
                return
            save_snapshot(snapshot, rows, self.joint_names, self.state_names, request.events,
                          time.time() - time.monotonic(), self.pair_names)
            process = subprocess.Popen(
                [self._python, "-m", "jacobian_ik.telemetry.bagfile", str(snapshot), str(out)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True, start_new_session=True)
            try:
                os.setpriority(os.PRIO_PROCESS, process.pid, 10)   # below the control loop
            except OSError:
                pass
            if self._stopping:
                return                 # the writer finishes on its own
            _, stderr = process.communicate(timeout=WRITER_TIMEOUT)
            if process.returncode != 0:
                lines = (stderr or "").strip().splitlines()
                raise OSError(lines[-1] if lines else f"writer exited with {process.returncode}")
        except (OSError, subprocess.SubprocessError) as exc:
            try:
                snapshot.unlink()
            except OSError:
                pass
            self.failures += 1
            self._on_failed(str(exc))
            if not self._warned:
                self._warned = True
                self._warn(f"flight recorder cannot write to '{self.folder}': {exc}; control "
                           "continues, further failures are only counted")
            return
        self._warned = False
        self.files_written += 1
        self._on_written(out)
        self._enforce_caps(out)

    def _enforce_caps(self, newest: Path) -> None:
        try:
            files = [p for p in self.folder.iterdir()
                     if p.name.startswith(FILE_PREFIX) and not p.name.endswith(".partial")]
            files.sort(key=lambda p: (p.stat().st_mtime, p.name))
        except OSError:
            return
        sizes = {p: folder_size(p) for p in files}
        limit = self.settings.max_megabytes * 1e6
        while len(files) > 1 and (len(files) > self.settings.max_files
                                  or sum(sizes[p] for p in files) > limit):
            oldest = files.pop(0)
            if oldest == newest:
                files.append(oldest)
                break
            shutil.rmtree(oldest, ignore_errors=True) if oldest.is_dir() else oldest.unlink(
                missing_ok=True)

    def list_files(self) -> list[Path]:
        """The flight-recorder files in the folder, oldest first."""
        if not self.folder.is_dir():
            return []
        files = [p for p in self.folder.iterdir()
                 if p.name.startswith(FILE_PREFIX) and not p.name.endswith(".partial")]
        return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))

    def close(self, timeout: float = 2.0) -> None:
        """Hand a pending event to its writer now, then stop the worker (a file being
        written is finished by its writer process).  Returns within about
        ``timeout`` seconds even when the worker waits for a slow writer."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            with self._lock:
                request, self._pending = self._pending, None
            if request is not None:
                self._write(request)


#: target_mode code of each mode name (``bagfile.TARGET_MODES``).
TARGET_MODE_CODES = {name: i for i, name in enumerate(TARGET_MODES)}
