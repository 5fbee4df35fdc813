"""The JSON form of audit reports: version, key paths, encoding, metric lookup.

A report is a nested dict (built by ``report`` or ``path``) whose ``kind`` is
"audit" (sampled joint space) or "path" (a recorded path).  The keys are
documented in docs/audit.md; ``key_paths`` lists a report's keys in that
document's notation: ``a.b`` for nesting, ``a[]`` for the items of a list, and
``<joint>`` / ``<row>`` for mappings keyed by joint name / twist row name.

JSON has no infinity: ``to_json`` writes +inf (a condition number at σ_min = 0)
as ``null``, and ``metric`` reads ``null`` back as +inf.
"""

from __future__ import annotations

import json
import math
from typing import Any

from jacobian_ik.audit.stats import STAT_KEYS

#: Version of the report layout; bumped when a key is renamed, removed or changes meaning.
SCHEMA_VERSION = 1

KINDS = ("audit", "path")

#: Mappings whose keys are names, and the placeholder for them in key paths.
NAMED_KEYS = {"q": "<joint>", "joint_direction": "<joint>", "joint_involvement": "<joint>",
              "task_direction": "<row>"}

#: Per-sample metrics summarised with ``stats.summary`` in every report, by kind.
SUMMARISED = {
    "audit": ("sigma_min", "sigma_max", "condition", "manipulability", "reach"),
    "path": ("sigma_min", "sigma_max", "condition", "manipulability"),
}

#: Scalars of an audit's ``collisions`` block (present with ``--collisions`` only).
COLLISION_SCALARS = ("collisions.self_collision_fraction", "collisions.collision_fraction",
                     "collisions.within_stop_fraction")

#: Scalars usable in gate expressions and baseline comparisons, besides the summaries.
SCALARS = {
    "audit": ("warn_fraction", "stop_fraction", "workspace.warn_voxel_fraction",
              "workspace.stop_voxel_fraction", *COLLISION_SCALARS),
    "path": ("warn_fraction", "stop_fraction", "warn_samples", "stop_samples", "samples"),
}


def metric_names(kind: str) -> tuple[str, ...]:
    """Every name a gate may test in a report of ``kind``."""
    names = list(SCALARS[kind])
    for metric in SUMMARISED[kind]:
        names.extend(f"{metric}.{key}" for key in STAT_KEYS)
    return tuple(names)


def metric(report: dict, name: str) -> float:
    """The value of a dotted metric name in a report (None in JSON reads as +inf)."""
    value: Any = report
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(name)
        value = value[part]
    if value is None:
        return math.inf
    return float(value)


def key_paths(report: dict) -> set[str]:
    """The report's leaf keys in the notation of docs/audit.md (see the module docstring)."""
    out: set[str] = set()
    _walk(report, "", out)
    return out


def _walk(node: Any, path: str, out: set[str]) -> None:
    if isinstance(node, dict):
        if not node:
            out.add(path)
        last = path.rsplit(".", 1)[-1]
        placeholder = NAMED_KEYS.get(last.removesuffix("[]"))
        for key, value in node.items():
            part = placeholder or key
            _walk(value, f"{path}.{part}" if path else part, out)
    elif isinstance(node, (list, tuple)):
        if not node:
            out.add(path + "[]")
        for item in node:
            _walk(item, path + "[]", out)
    else:
        out.add(path)


def _finite_or_none(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _finite_or_none(value) for key, value in node.items()}
    if isinstance(node, (list, tuple)):
        return [_finite_or_none(value) for value in node]
    if isinstance(node, float) and not math.isfinite(node):
        return None
    return node


def to_json(report: dict) -> str:
    """The report as strict JSON text (non-finite numbers as null), indented."""
    return json.dumps(_finite_or_none(report), indent=2, allow_nan=False) + "\n"
