"""Plain-text rendering of audit reports (the default output of the command)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

from jacobian_ik.audit.schema import SUMMARISED
from jacobian_ik.audit.stats import ROW_NAMES, STAT_KEYS

UNITS = {"reach": "reach [m]"}


def _g(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "-"
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}"


def _pct(x: float) -> str:
    return f"{100.0 * x:.2f} %"


def _header(report: dict) -> list[str]:
    robot, task, th = report["robot"], report["task"], report["thresholds"]
    rows = " ".join(ROW_NAMES[r] for r in task["rows"])
    return [
        f"robot: {robot['source']}: {robot['base_link']} -> {robot['tip_link']}, "
        f"{robot['dof']} joints; task {task['name']} (rows {rows}, "
        f"{task['singular_values']} singular values)",
        f"thresholds: sigma_warn {_g(th['sigma_warn'])}, sigma_stop {_g(th['sigma_stop'])} "
        f"(from {th['source']})",
    ]


def _summary_table(report: dict) -> list[str]:
    names = [UNITS.get(m, m) for m in SUMMARISED[report["kind"]]]
    width = max(len(n) for n in names) + 2
    lines = ["".ljust(width) + "".join(k.rjust(11) for k in STAT_KEYS)]
    for metric, label in zip(SUMMARISED[report["kind"]], names):
        stats = report[metric]
        lines.append(label.ljust(width) + "".join(_g(stats[k]).rjust(11) for k in STAT_KEYS))
    return lines


def _configuration_table(records: Iterable[dict], names: Sequence[str],
                         lead_keys: Sequence[tuple[str, Callable[[dict], str], int]],
                         ) -> list[str]:
    """Rows of configurations: ``lead_keys`` (label, formatter, width) columns, then
    the joint values by name and the involved joints."""
    widths = [max(len(n), 8) for n in names]
    head = " ".join(k.rjust(w) for k, _, w in lead_keys)
    head += "  " + "  ".join(n.rjust(w) for n, w in zip(names, widths)) + "  involved joints"
    lines = [head]
    for rec in records:
        row = " ".join(fmt(rec).rjust(w) for _, fmt, w in lead_keys)
        row += "  " + "  ".join(f"{rec['q'][n]:+.3f}".rjust(w) for n, w in zip(names, widths))
        row += "  " + ", ".join(rec["involved_joints"])
        lines.append(row)
    return lines


def _checks(report: dict) -> list[str]:
    lines = []
    if report.get("gates"):
        lines.append("")
        lines.append("gates:")
        for g in report["gates"]:
            verdict = "FAIL" if g["failed"] else "pass"
            lines.append(f"  {verdict}  {g['expression']}  ({g['metric']} = {_g(g['value'], 6)})")
    block = report.get("baseline")
    if block:
        lines.append("")
        lines.append(f"baseline {block['path']} (relative tolerance {block['tolerance']:g}):")
        width = max(len(c["metric"]) for c in block["comparisons"]) + 2
        lines.append("  " + "metric".ljust(width) + "baseline".rjust(12) + "now".rjust(12)
                     + "limit".rjust(12) + "  worse if")
        for c in block["comparisons"]:
            verdict = "  REGRESSED" if c["regressed"] else ""
            lines.append("  " + c["metric"].ljust(width) + _g(c["baseline"]).rjust(12)
                         + _g(c["value"]).rjust(12) + _g(c["limit"]).rjust(12)
                         + f"  {c['worse_if']}{verdict}")
        for note in block["notes"]:
            lines.append(f"  note: {note}")
    return lines


def _collision_lines(block: dict) -> list[str]:
    """The ``collisions`` block of an audit report (``--collisions``)."""
    stop = f"{block['stop_distance']:g} m"
    checked = f"{block['self_pairs']} self pairs"
    if block["scene"] is not None:
        checked += (f" + {block['scene_pairs']} scene pairs ({len(block['obstacles'])} "
                    f"obstacles of {block['scene']})")
    lines = ["", f"collisions: {block['capsules']} capsules, {checked}; stop distance "
                 f"{stop} (from {block['stop_distance_source']}); {block['seconds']:.2f} s",
             f"  in self-collision (distance <= 0): {_pct(block['self_collision_fraction'])} "
             "of samples"]
    if block["scene"] is not None:
        lines.append(f"  in collision, self or scene:       "
                     f"{_pct(block['collision_fraction'])} of samples")
    lines.append(f"  within the stop distance {stop}: {_pct(block['within_stop_fraction'])} "
                 "of samples")
    if block["top_pairs"]:
        lines.append("  pairs most often within the stop distance (share of samples "
                     "within it | in contact):")
        width = max(len(" – ".join(p["pair"])) for p in block["top_pairs"]) + 2
        for p in block["top_pairs"]:
            lines.append(f"    {' – '.join(p['pair']).ljust(width)}"
                         f"{_pct(p['within_stop_fraction']).rjust(9)}"
                         f"{_pct(p['collision_fraction']).rjust(10)}  ({p['kind']})")
    return lines


def render_audit(report: dict) -> str:
    """The report of ``jacobian-ik audit`` as a text table."""
    s, th, ws = report["sampling"], report["thresholds"], report["workspace"]
    t = report["timing"]
    names = report["robot"]["joint_names"]
    lines = ["jacobian-ik audit"] + _header(report)
    lines.append(f"samples: {s['samples']} {s['method']}, seed {s['seed']}; "
                 f"{t['seconds']:.2f} s, {t['configurations_per_second']:,.0f} "
                 f"configurations/s on {t['threads']} threads")
    lines.append("")
    lines.extend(_summary_table(report))
    lines.append("")
    lines.append(f"below sigma_warn {_g(th['sigma_warn'])}: {_pct(report['warn_fraction'])} of "
                 f"samples, {_pct(ws['warn_voxel_fraction'])} of workspace voxels")
    lines.append(f"below sigma_stop {_g(th['sigma_stop'])}: {_pct(report['stop_fraction'])} of "
                 f"samples, {_pct(ws['stop_voxel_fraction'])} of workspace voxels")
    lines.append(f"  (voxels: {ws['voxels']} cubes of {ws['voxel_size']:g} m reached by the "
                 "samples; a voxel counts when every sample in it is below the threshold)")
    if report.get("collisions"):
        lines.extend(_collision_lines(report["collisions"]))
    lines.append("")
    lines.append("worst configurations (exact SVD; joints in rad | m; involved joints: the "
                 "largest components of sigma_min's joint direction):")
    lines.extend("  " + x for x in _configuration_table(
        report["worst"], names,
        [("#", lambda r: str(r["rank"]), 3), ("sigma_min", lambda r: _g(r["sigma_min"]), 10),
         ("condition", lambda r: _g(r["condition"]), 10)]))
    lines.append("")
    lines.append(f"joint involvement in sigma_min's direction (mean v_i^2 over the "
                 f"{len(report['worst'])} worst):")
    lines.append("  " + "  ".join(f"{n} {v:.2f}" for n, v in report["joint_involvement"].items()))
    lines.extend(_checks(report))
    return "\n".join(lines) + "\n"


def render_path(report: dict) -> str:
    """The report of ``jacobian-ik audit-path`` as a text table."""
    th, src = report["thresholds"], report["input"]
    names = report["robot"]["joint_names"]
    lines = ["jacobian-ik audit-path"] + _header(report)
    topic = f", topic {src['topic']}" if src["topic"] else ""
    duration = f", {src['duration']:.3f} s" if src["duration"] is not None else ""
    lines.append(f"path: {src['path']} ({src['format']}{topic}), {report['samples']} "
                 f"samples{duration}")
    lines.append("")
    lines.extend(_summary_table(report))
    lines.append("")
    for key, label in (("warn", "sigma_warn"), ("stop", "sigma_stop")):
        lines.append(f"below {label} {_g(th[label])}: {report[key + '_samples']} samples "
                     f"({_pct(report[key + '_fraction'])})")
    lines.append("")
    rows = [("minimum", report["minimum"])]
    rows += [(f"first {key}", report[f"first_{key}"]) for key in ("warn", "stop")]
    shown = [dict(rec, label=label) for label, rec in rows if rec is not None]
    for label, rec in rows:
        if rec is None:
            lines.append(f"{label}: never crossed")
    # a flight record's times count from its event, as in its plot and event lines
    flight = report.get("flight_recorder")
    t0 = flight["event_time"] if flight else None

    def when(r: dict) -> str:
        if t0 is None or r["time"] is None:
            return _g(r["time"], 10)
        return f"{r['time'] - t0:+.3f}"

    lines.extend(_configuration_table(
        shown, names,
        [("", lambda r: r["label"], 10), ("index", lambda r: str(r["index"]), 7),
         ("time [s]" if t0 is None else "t from event [s]", when, 16),
         ("sigma_min", lambda r: _g(r["sigma_min"]), 10)]))
    lines.extend(_checks(report))
    return "\n".join(lines) + "\n"
