"""Soak: the controller at 1 kHz for minutes, goals changing every second.

Usage: ``python -m bench.bench_soak [--minutes M] [--full]`` (``--full`` = 10
minutes; the default run, used by ``make bench``, is 2 minutes).  Writes
``bench/results/soak.json`` and prints the figures.

The kinematic simulator and the controller (EventsExecutor, velocity output,
metrics at 100 Hz) run as in ``bench_node``; goal poses 16 cm apart alternate
every second.  A consumer process records every command's receipt time and,
once a second, the controller's resident set size (VmRSS from /proc).

Figures: RSS at the end of the first minute and its growth after it (max of
the later samples minus that value); achieved rate; gaps longer than 1.5
periods (count, share); missed-deadline bursts: the longest run of
consecutive late gaps, the largest gap and the worst one-second window
(the share of late gaps in it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from bench.common import write_results
from bench.loop_runs import (
    LATE_FACTOR,
    GoalSender,
    consume,
    controller,
    loop_figures,
    measurement_env,
    start_pose,
)

RATE = 1000.0
#: RSS growth is counted after this warm-up [s].
SETTLE = 60.0


def soak(minutes: float, priority: int = 0) -> dict:
    env = measurement_env()
    seconds = 60.0 * minutes
    with controller(env, {"control_rate": RATE, "executor": "events"},
                    priority) as (pid, ready, lines):
        goals = GoalSender(env, start_pose())
        try:
            time.sleep(2.0)
            info = consume(env, pid, seconds, goals, priority)
        finally:
            goals.close()
        overruns = [line for line in lines if "overrun" in line]
    row = loop_figures(info, RATE)
    rss = np.array(info["rss"])                  # (t [s], bytes)
    settled = rss[rss[:, 0] >= SETTLE] if rss[-1, 0] >= SETTLE else rss[len(rss) // 2:]
    times = info["times"]
    gaps = np.diff(times)
    late = gaps > LATE_FACTOR / RATE
    windows = np.floor(times[1:]).astype(int)
    whole = windows < int(info["window_s"])         # whole seconds only
    per_window = (np.bincount(windows[whole], weights=late[whole])
                  / np.maximum(np.bincount(windows[whole]), 1))
    row.update(
        minutes=minutes, goals_sent=goals.sent, ready_s=ready,
        rss_mb={"start": rss[0, 1] / 2**20, "after_first_minute": settled[0, 1] / 2**20,
                "max": rss[:, 1].max() / 2**20, "end": rss[-1, 1] / 2**20},
        rss_growth_after_first_minute_mb=float(settled[:, 1].max() - settled[0, 1]) / 2**20,
        worst_second_late_share_percent=100.0 * float(per_window.max()),
        seconds_with_late_gaps_over_1_percent=int((per_window > 0.01).sum()),
        node_log_lines_about_overruns=len(overruns))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--full", action="store_true", help="10 minutes")
    parser.add_argument("--realtime-priority", type=int, default=0, metavar="P",
                        help="SCHED_FIFO priority of every process (default 0 = off)")
    args = parser.parse_args(argv)
    minutes = 10.0 if args.full else args.minutes
    print(f"soak at {RATE:g} Hz for {minutes:g} min ...", flush=True)
    load_before = os.getloadavg()[0]
    row = soak(minutes, args.realtime_priority)
    row["realtime_priority"] = args.realtime_priority
    row["load_average_1min"] = [load_before, os.getloadavg()[0]]
    g, r = row["gap_ms"], row["rss_mb"]
    print(f"""
| soak | value |
|---|---|
| duration | {row['window_s']:.0f} s at {RATE:g} Hz, {row['goals_sent']} goals |
| achieved rate | {row['rate_achieved_hz']:.1f} Hz ({100 * row['rate_achieved_hz'] / RATE:.2f} %) |
| commands received | {row['messages']} |
| gaps > 1.5 periods | {row['late_gaps']} ({row['late_share_percent']:.2f} %) |
| gap p50 / p99 / max | {g['p50']:.2f} / {g['p99']:.2f} / {g['max']:.1f} ms |
| longest run of late gaps | {row['longest_late_run']} |
| worst 1 s window | {row['worst_second_late_share_percent']:.1f} % late; {row['seconds_with_late_gaps_over_1_percent']} s with > 1 % late |
| controller RSS start / after 1 min / max / end | {r['start']:.1f} / {r['after_first_minute']:.1f} / {r['max']:.1f} / {r['end']:.1f} MB |
| RSS growth after the first minute | {row['rss_growth_after_first_minute_mb']:.2f} MB |
| controller CPU | {row['cpu_percent_of_one_core']:.0f} % of a core |
| machine load (1-min average) | {max(row['load_average_1min']):.1f} |""")
    path = write_results("soak_full" if args.full else "soak", row)
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
