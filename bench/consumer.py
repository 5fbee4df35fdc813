"""A command consumer in its own process: what a ros2_control controller would see.

``python -m bench.consumer --topic T --seconds S --out DIR [--pid PID]``
subscribes to ``T`` (``std_msgs/Float64MultiArray``), waits for the first
message, then records the receipt time [s, monotonic] of every message for
``S`` seconds into ``DIR/times.npy``.  With ``--pid``, it also samples that
process's CPU time (utime + stime, /proc/PID/stat) at the start and end of the
window and its resident set size (VmRSS) once a second, written with the
window to ``DIR/process.json``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from std_msgs.msg import Float64MultiArray

from bench.common import cpu_seconds


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as stream:
        for line in stream:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return -1


class Recorder:
    def __init__(self, capacity: int) -> None:
        self.times = np.zeros(capacity)
        self.count = 0

    def __call__(self, msg: Float64MultiArray) -> None:
        if self.count < self.times.size:
            self.times[self.count] = time.monotonic()
            self.count += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--pid", type=int)
    parser.add_argument("--start-timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    rclpy.init()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    node = Node("bench_consumer")
    recorder = Recorder(int(args.seconds * 5000) + 1000)
    node.create_subscription(Float64MultiArray, args.topic, recorder, QoSProfile(depth=100))
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    deadline = time.monotonic() + args.start_timeout
    while recorder.count == 0 and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    if recorder.count == 0:
        print(f"no message on {args.topic}", file=sys.stderr)
        return 1
    recorder.count = 0
    t0 = time.monotonic()
    cpu0 = cpu_seconds(args.pid) if args.pid else None
    rss = []
    next_sample = t0
    while (now := time.monotonic()) < t0 + args.seconds:
        if args.pid and now >= next_sample:
            rss.append((now - t0, rss_bytes(args.pid)))
            next_sample += 1.0
        executor.spin_once(timeout_sec=0.01)
    t1 = time.monotonic()
    cpu1 = cpu_seconds(args.pid) if args.pid else None
    np.save(out / "times.npy", recorder.times[:recorder.count] - t0)
    (out / "process.json").write_text(json.dumps({
        "window_s": t1 - t0,
        "cpu_s": (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None,
        "rss": rss}))
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
