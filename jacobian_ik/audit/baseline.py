"""Compare a report with a saved one (``--baseline old.json --tolerance 0.1``).

Each metric of ``RULES`` has a direction: +1 when larger is worse (fractions
below the thresholds, condition numbers), −1 when smaller is worse (σ_min,
manipulability).  With relative tolerance t a metric regresses when

* smaller is worse:  ``new < old · (1 − t)``
* larger is worse:   ``new > old · (1 + t)``, plus, for the fractions of a
  sampled audit, ``3·√(p(1 − p)(1/N_old + 1/N_new))`` (p the pooled fraction,
  N the sample counts, voxel counts for the voxel fractions): three standard
  errors of the difference of two independent sample fractions, so that a
  different seed alone does not fail the comparison.

A recorded path is the same data every time, so path fractions get no noise
allowance.  Differences of chain, task or thresholds are noted, not errors:
telling whether such a change made things worse is the point of a baseline.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from jacobian_ik.audit.errors import ReportError
from jacobian_ik.audit.schema import SCHEMA_VERSION, metric
from jacobian_ik.errors import ConfigurationError

RULES = {
    "audit": {
        "stop_fraction": 1, "warn_fraction": 1, "workspace.stop_voxel_fraction": 1,
        "sigma_min.p1": -1, "sigma_min.p5": -1, "sigma_min.p50": -1,
        "manipulability.p5": -1, "manipulability.p50": -1,
        "condition.p50": 1, "condition.p95": 1,
    },
    "path": {
        "stop_fraction": 1, "warn_fraction": 1,
        "sigma_min.min": -1, "sigma_min.p5": -1, "sigma_min.p50": -1,
    },
}

#: Sample count behind each sampled fraction of an audit report.
_FRACTION_COUNTS = {"stop_fraction": "sampling.samples", "warn_fraction": "sampling.samples",
                    "workspace.stop_voxel_fraction": "workspace.voxels"}


def load_report(path: str | Path) -> dict:
    """A saved report; ``ReportError`` when unreadable or of another schema version."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"cannot read baseline report '{path}': {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"baseline report '{path}' is not JSON: {exc}") from None
    if not isinstance(data, dict) or "schema_version" not in data or "kind" not in data:
        raise ReportError(f"baseline report '{path}' is not a jacobian-ik audit report "
                          "(no schema_version / kind)")
    if data["schema_version"] != SCHEMA_VERSION:
        raise ReportError(
            f"baseline report '{path}' has schema_version {data['schema_version']!r}; this "
            f"version reads schema_version {SCHEMA_VERSION}")
    return data


def check_tolerance(tolerance: float) -> float:
    if not (math.isfinite(tolerance) and 0.0 <= tolerance < 1.0):
        raise ConfigurationError(
            f"tolerance {tolerance!r} must be a relative tolerance in [0, 1), e.g. 0.1")
    return float(tolerance)


def _noise(report: dict, baseline: dict, name: str, p_new: float, p_old: float) -> float:
    count = _FRACTION_COUNTS.get(name)
    if report["kind"] != "audit" or count is None:
        return 0.0
    n_new, n_old = metric(report, count), metric(baseline, count)
    if not (n_new > 0 and n_old > 0):
        return 0.0
    pooled = (p_new * n_new + p_old * n_old) / (n_new + n_old)
    return 3.0 * math.sqrt(max(pooled * (1.0 - pooled), 0.0) * (1.0 / n_new + 1.0 / n_old))


def _notes(report: dict, baseline: dict) -> list[str]:
    notes = []
    for label, key in (("chain", ("robot", "base_link")), ("chain", ("robot", "tip_link")),
                       ("joints", ("robot", "joint_names")), ("task", ("task", "name")),
                       ("sigma_warn", ("thresholds", "sigma_warn")),
                       ("sigma_stop", ("thresholds", "sigma_stop"))):
        new = report.get(key[0], {}).get(key[1])
        old = baseline.get(key[0], {}).get(key[1])
        if new != old:
            notes.append(f"{label} differs from the baseline: {key[1]} {old!r} -> {new!r}")
    return notes


def compare(report: dict, baseline: dict, tolerance: float, path: str = "") -> dict:
    """The ``baseline`` block of a report: every compared metric and whether it regressed."""
    tolerance = check_tolerance(tolerance)
    kind = report["kind"]
    if baseline.get("kind") != kind:
        raise ReportError(
            f"baseline report '{path}' is of kind {baseline.get('kind')!r}, this report is "
            f"{kind!r}; compare audit with audit and audit-path with audit-path")
    comparisons = []
    for name, direction in RULES[kind].items():
        try:
            old = metric(baseline, name)
        except (KeyError, TypeError, ValueError):
            raise ReportError(f"baseline report '{path}' lacks metric {name!r}") from None
        new = metric(report, name)
        if direction < 0:
            limit = old * (1.0 - tolerance)
            regressed = new < limit
        else:
            limit = old * (1.0 + tolerance) if math.isfinite(old) else math.inf
            if name.endswith("fraction"):
                limit += _noise(report, baseline, name, new, old)
            regressed = new > limit
        comparisons.append({"metric": name, "worse_if": "lower" if direction < 0 else "higher",
                            "baseline": old, "value": new, "limit": limit,
                            "regressed": bool(regressed)})
    return {"path": str(path), "tolerance": tolerance,
            "regressed": any(c["regressed"] for c in comparisons),
            "comparisons": comparisons, "notes": _notes(report, baseline)}


def regression_lines(block: dict) -> list[str]:
    """One human-readable line per regressed metric."""
    lines = []
    for c in block["comparisons"]:
        if c["regressed"]:
            side = "below" if c["worse_if"] == "lower" else "above"
            lines.append(f"regression: {c['metric']} = {c['value']:.6g} is {side} the limit "
                         f"{c['limit']:.6g} (baseline {c['baseline']:.6g}, tolerance "
                         f"{block['tolerance']:g})")
    return lines
