"""Properties of CI gates (jacobian_ik.audit.gates) and baseline comparison."""

from __future__ import annotations

import copy
import json
import math

import pytest

from jacobian_ik.audit import baseline, gates
from jacobian_ik.audit.errors import ReportError
from jacobian_ik.audit.schema import metric, metric_names, to_json
from jacobian_ik.audit.stats import STAT_KEYS
from jacobian_ik.errors import ConfigurationError


def _report(**changes):
    """A minimal audit report with every metric that gates and baselines read."""
    summaries = {name: dict.fromkeys(STAT_KEYS, 1.0)
                 for name in ("sigma_min", "sigma_max", "condition", "manipulability", "reach")}
    report = {"schema_version": 1, "kind": "audit", "warn_fraction": 0.1,
              "stop_fraction": 0.05, "sampling": {"samples": 100_000},
              "workspace": {"voxels": 5000, "warn_voxel_fraction": 0.02,
                            "stop_voxel_fraction": 0.01},
              "robot": {"base_link": "a", "tip_link": "b", "joint_names": ["j"]},
              "task": {"name": "pose"}, "thresholds": {"sigma_warn": 0.04, "sigma_stop": 0.02},
              **summaries}
    for name, value in changes.items():
        node = report
        parts = name.split("__")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
    return report


@pytest.mark.parametrize("text, name, op, threshold", [
    ("stop_fraction>0.02", "stop_fraction", ">", 0.02),
    ("  sigma_min.p5 <  0.03 ", "sigma_min.p5", "<", 0.03),
    ("warn_fraction>=2%", "warn_fraction", ">=", 0.02),
    ("condition.p99!=1e3", "condition.p99", "!=", 1000.0),
    ("manipulability.min<=.5", "manipulability.min", "<=", 0.5),
    ("workspace.stop_voxel_fraction==0", "workspace.stop_voxel_fraction", "==", 0.0),
])
def test_gate_expressions_parse_into_name_operator_number(text, name, op, threshold):
    """NAME OP NUMBER parses with spaces, exponents, leading dots and percent signs."""
    gate = gates.parse_gate(text, "audit")
    assert (gate.name, gate.op) == (name, op)
    assert gate.threshold == pytest.approx(threshold)


@pytest.mark.parametrize("text, fragment", [
    ("stop_fraction>>0.02", "NAME OP NUMBER"),
    ("stop_fraction 0.02", "NAME OP NUMBER"),
    ("stop_fraction>abc", "NAME OP NUMBER"),
    ("__import__('os')>1", "NAME OP NUMBER"),
    ("stop_fraction>1;rm", "NAME OP NUMBER"),
    ("stop_fractions>0.1", "unknown metric"),
    ("sigma_min.p7<0.1", "unknown metric"),
    ("stop_samples>0", "unknown metric"),
])
def test_invalid_gate_expressions_raise_configuration_error(text, fragment):
    """Malformed expressions and unknown metric names raise ConfigurationError; the
    unknown-name message lists the valid names."""
    with pytest.raises(ConfigurationError, match=fragment) as info:
        gates.parse_gate(text, "audit")
    if fragment == "unknown metric":
        assert "stop_fraction" in str(info.value) and "sigma_min.{p1" in str(info.value)


def test_gate_fails_exactly_when_its_comparison_holds():
    """`stop_fraction>0.05` passes at 0.05 and fails just above; `<` likewise."""
    above = gates.parse_gate("stop_fraction>0.05", "audit")
    below = gates.parse_gate("sigma_min.p5<1.0", "audit")
    results = gates.evaluate([above, below], _report())
    assert [r["failed"] for r in results] == [False, False]
    results = gates.evaluate([above, below], _report(stop_fraction=0.0501,
                                                     sigma_min__p5=0.999))
    assert [r["failed"] for r in results] == [True, True]
    lines = gates.failure_lines(results)
    assert lines[0] == "gate failed: stop_fraction>0.05 (stop_fraction = 0.0501)"


def test_path_reports_have_their_own_gate_names():
    """Path reports accept stop_samples and samples; audit reports do not."""
    assert "stop_samples" in metric_names("path")
    assert gates.parse_gate("stop_samples>0", "path").name == "stop_samples"
    with pytest.raises(ConfigurationError):
        gates.parse_gate("reach.p50>1", "path")


def test_null_in_json_reads_back_as_infinity():
    """to_json writes +inf as null (strict JSON); metric() reads null as +inf."""
    report = _report(condition__max=math.inf)
    text = to_json(report)
    assert "Infinity" not in text
    assert metric(json.loads(text), "condition.max") == math.inf


def test_identical_report_does_not_regress_against_itself():
    """Comparing a report with itself regresses nothing at any tolerance."""
    report = _report()
    block = baseline.compare(report, copy.deepcopy(report), 0.0)
    assert not block["regressed"]
    assert {c["metric"] for c in block["comparisons"]} == set(baseline.RULES["audit"])


def test_smaller_sigma_min_regresses_beyond_tolerance_only():
    """σ_min.p5 20 % lower regresses with tolerance 0.1, not with 0.3."""
    old = _report()
    new = _report(sigma_min__p5=0.8)
    assert baseline.compare(new, old, 0.1)["regressed"]
    assert not baseline.compare(new, old, 0.3)["regressed"]
    lines = baseline.regression_lines(baseline.compare(new, old, 0.1))
    assert len(lines) == 1 and lines[0].startswith("regression: sigma_min.p5 = 0.8 is below")


def test_fraction_increase_within_sampling_noise_passes_and_beyond_fails():
    """stop_fraction may grow by tolerance plus three standard errors of two
    samples' fractions; a larger increase regresses."""
    old = _report(stop_fraction=0.05)
    se = math.sqrt(0.05 * 0.95 * 2 / 100_000)
    assert not baseline.compare(_report(stop_fraction=0.05 * 1.1 + 2 * se), old, 0.1)["regressed"]
    assert baseline.compare(_report(stop_fraction=0.05 * 1.1 + 4 * se), old, 0.1)["regressed"]


def test_changed_thresholds_are_noted():
    """A baseline with other thresholds is compared, with a note naming the change."""
    old = _report(thresholds={"sigma_warn": 0.05, "sigma_stop": 0.02})
    notes = baseline.compare(_report(), old, 0.1)["notes"]
    assert notes == ["sigma_warn differs from the baseline: sigma_warn 0.05 -> 0.04"]


@pytest.mark.parametrize("content, fragment", [
    ("not json", "not JSON"),
    ('{"a": 1}', "no schema_version"),
    ('{"schema_version": 99, "kind": "audit"}', "schema_version 99"),
])
def test_unreadable_baselines_raise_report_error(tmp_path, content, fragment):
    """Non-JSON, non-report or other-version files raise ReportError."""
    path = tmp_path / "old.json"
    path.write_text(content)
    with pytest.raises(ReportError, match=fragment):
        baseline.load_report(path)


@pytest.mark.parametrize("tolerance", [-0.1, 1.0, math.nan])
def test_tolerance_outside_zero_one_is_rejected(tolerance):
    """The relative tolerance must be in [0, 1)."""
    with pytest.raises(ConfigurationError):
        baseline.check_tolerance(tolerance)
