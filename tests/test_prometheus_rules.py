"""The Prometheus recording rules and alerts (config/prometheus/) under ``promtool``,
and the names the Grafana dashboard (config/grafana/) uses.

``promtool`` comes with the Debian package ``prometheus`` (``make test``
installs it when it runs as root with apt-get, as in CI); without it these
tests skip and say so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from jacobian_ik.telemetry import names

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "config" / "prometheus" / "jacobian_ik_rules.yml"
SCRAPE_CONFIG = ROOT / "config" / "prometheus" / "prometheus.yml"
RULE_TESTS = Path(__file__).resolve().parent / "prometheus" / "jacobian_ik_rules_test.yml"
DASHBOARD = ROOT / "config" / "grafana" / "jacobian_ik_dashboard.json"

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not found: install the Debian package 'prometheus' "
                             "(make test does it when run as root with apt-get)")

#: Series names of the exporter (histograms with their _bucket/_sum/_count).
EXPORTED = {m.name for m in names.METRICS} | {
    f"{m.name}_{suffix}" for m in names.METRICS if m.kind == "histogram"
    for suffix in ("bucket", "sum", "count")}


def _run(*args):
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


def _rule_exprs():
    document = yaml.safe_load(RULES.read_text())
    return [(rule.get("record") or rule.get("alert"), rule["expr"])
            for group in document["groups"] for rule in group["rules"]]


def test_rules_name_only_exported_metrics_and_recorded_series():
    """Every jacobian_ik_* name in a rule is a metric the exporter serves."""
    recorded = {name for name, _ in _rule_exprs() if ":" in name}
    for rule, expr in _rule_exprs():
        for used in re.findall(r"\bjacobian_ik[_:][a-z0-9_:]+", expr):
            assert used in EXPORTED or used in recorded, (rule, used)


def test_dashboard_has_three_rows_and_names_only_exported_or_recorded_series():
    import json

    dashboard = json.loads(DASHBOARD.read_text())
    rows = [p["title"].split(":")[0] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ["Executive", "On call", "Debug"]
    recorded = {name for name, _ in _rule_exprs() if ":" in name}
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels and all(p["targets"] for p in panels)
    for panel in panels:
        for target in panel["targets"]:
            used = re.findall(r"\bjacobian_ik[_:][a-z0-9_:]+", target["expr"])
            assert used, panel["title"]
            for name in used:
                assert name in EXPORTED or name in recorded, (panel["title"], name)
    # Every recording rule (SLI) is on the dashboard.
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    assert all(name in exprs for name in recorded)


def test_scrape_config_job_is_the_one_the_alerts_watch():
    document = yaml.safe_load(SCRAPE_CONFIG.read_text())
    assert [job["job_name"] for job in document["scrape_configs"]] == [names.SCRAPE_JOB]
    exprs = " ".join(expr for _, expr in _rule_exprs())
    assert f'job="{names.SCRAPE_JOB}"' in exprs
    port = document["scrape_configs"][0]["static_configs"][0]["targets"][0].rpartition(":")[2]
    assert int(port) == names.DEFAULT_METRICS_PORT


@needs_promtool
def test_rules_file_is_valid_for_promtool():
    result = _run("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_alert_and_sli_unit_tests_pass():
    """Storm, sigma_min low, overruns, input flood, telemetry absent, SLI values."""
    result = _run("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_unit_tests_catch_a_changed_threshold(tmp_path):
    """The unit tests fail when the safe-stop storm threshold is changed."""
    rules_dir = tmp_path / "config" / "prometheus"
    rules_dir.mkdir(parents=True)
    text = RULES.read_text()
    broken = text.replace('[15m])) > 5', '[15m])) > 50')
    assert broken != text
    (rules_dir / RULES.name).write_text(broken)
    tests_dir = tmp_path / "tests" / "prometheus"
    tests_dir.mkdir(parents=True)
    shutil.copy(RULE_TESTS, tests_dir / RULE_TESTS.name)
    result = _run("test", "rules", str(tests_dir / RULE_TESTS.name))
    assert result.returncode != 0
    assert "JacobianIkSafeStopStorm" in result.stdout + result.stderr
