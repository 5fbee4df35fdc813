"""The JSON reports' keys are exactly those documented in docs/audit.md."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from jacobian_ik.audit.cli import main
from jacobian_ik.audit.schema import SCHEMA_VERSION, key_paths
from jacobian_ik.audit.stats import STAT_KEYS

DOC = Path(__file__).resolve().parent.parent / "docs" / "audit.md"


def documented_blocks() -> dict[str, list[str]]:
    """Key column of each ``<!-- schema: NAME -->`` table of docs/audit.md."""
    text = DOC.read_text(encoding="utf-8")
    blocks = {}
    for name, body in re.findall(r"<!-- schema: (\w+) -->\n(.*?)<!-- /schema -->", text, re.S):
        blocks[name] = re.findall(r"^\| `([^`]+)` \|", body, re.M)
    return blocks


def documented_keys(kind: str) -> set[str]:
    """The documented key paths of a report kind, placeholders <stat> and <record>
    expanded (<joint> and <row> stay, as key_paths writes them)."""
    blocks = documented_blocks()
    rows = blocks["common"] + blocks[kind]
    record = [r.removeprefix("<record>.") for r in rows if r.startswith("<record>.")]
    keys = set()
    for row in rows:
        if row.startswith("<record>."):
            continue
        if row.endswith(".<record>"):
            keys.update(f"{row.removesuffix('<record>')}{field}" for field in record)
        elif "<stat>" in row:
            keys.update(row.replace("<stat>", stat) for stat in STAT_KEYS)
        else:
            keys.add(row)
    return keys


def _run(argv) -> dict:
    out, err = io.StringIO(), io.StringIO()
    main(argv + ["--json"], out=out, err=err)
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def baseline_files(tmp_path_factory):
    """Saved audit and path reports to use as baselines."""
    tmp = tmp_path_factory.mktemp("schema")
    csv = tmp / "path.csv"
    csv.write_text("time,joint1,joint2\n" + "".join(
        f"{0.1 * i},0.2,{0.5 - 0.05 * i}\n" for i in range(21)))
    audit = tmp / "audit.json"
    path = tmp / "path.json"
    for argv, out in ((["audit", "planar2", "--samples", "2000"], audit),
                      (["audit-path", "planar2", str(csv)], path)):
        assert main(argv + ["--task", "position", "--output", str(out)],
                    out=io.StringIO(), err=io.StringIO()) == 0
    return {"audit": audit, "path": path, "csv": csv}


def test_doc_has_the_three_schema_tables():
    """docs/audit.md has the common, audit and path key tables, each non-empty."""
    blocks = documented_blocks()
    assert set(blocks) == {"common", "audit", "path"}
    assert all(len(rows) >= 10 for rows in blocks.values())


def test_audit_report_keys_equal_the_documented_keys(baseline_files):
    """An audit report with a gate and a baseline has exactly the documented keys."""
    report = _run(["audit", "planar2", "--task", "position", "--samples", "2000",
                   "--fail-if", "stop_fraction>0.9",
                   "--baseline", str(baseline_files["audit"])])
    assert report["schema_version"] == SCHEMA_VERSION and report["kind"] == "audit"
    keys = key_paths(report)
    expected = documented_keys("audit")
    assert keys - expected == set(), "undocumented keys"
    assert expected - keys == set(), "documented keys missing from the report"


def test_path_report_keys_equal_the_documented_keys(baseline_files):
    """A path report that crosses both thresholds, with a gate and a baseline, has
    exactly the documented keys."""
    report = _run(["audit-path", "planar2", str(baseline_files["csv"]), "--task", "position",
                   "--fail-if", "stop_samples>100",
                   "--baseline", str(baseline_files["path"])])
    assert report["kind"] == "path"
    assert report["first_stop"] is not None and report["first_warn"] is not None
    keys = key_paths(report)
    expected = documented_keys("path")
    assert keys - expected == set(), "undocumented keys"
    assert expected - keys == set(), "documented keys missing from the report"


def test_report_without_gates_or_baseline_has_empty_gates_and_null_baseline():
    """Without --fail-if / --baseline: gates is [] and baseline is null, as documented."""
    report = _run(["audit", "planar2", "--samples", "500"])
    assert report["gates"] == [] and report["baseline"] is None
