"""README: the parameter table says what the code does, and no figure is left unfilled."""

from __future__ import annotations

import re
from pathlib import Path

from jacobian_ik.params import PARAMETER_SPECS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _parameter_rows() -> dict[str, list[str]]:
    section = README.split("## Parameters", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `(\w+)` \|", line)
        if match:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows[match.group(1)] = cells
    return rows


def test_readme_parameter_table_lists_exactly_the_controller_parameters():
    """Every ControllerParams field has a README row and every row is a field."""
    assert set(_parameter_rows()) == set(PARAMETER_SPECS)


def test_readme_parameter_defaults_and_live_flags_match_the_code():
    """The default and the 'live' column of each README row equal PARAMETER_SPECS."""
    for name, cells in _parameter_rows().items():
        spec = PARAMETER_SPECS[name]
        default, live = cells[2], cells[4]
        if spec.kind == "float":
            assert float(default) == spec.default, name
        elif spec.kind == "str":
            assert default == f"`{spec.default}`", name
        elif spec.kind == "bool":
            assert default == f"`{str(spec.default).lower()}`", name
        else:
            assert default.startswith("`[]`") and spec.default == (), name
        assert live == ("yes" if spec.tunable else "no"), name


def test_readme_has_no_unfilled_benchmark_figures():
    """Every benchmark cell of the README holds a measured figure."""
    assert "BENCH_" not in README
