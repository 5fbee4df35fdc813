"""CI gates: ``--fail-if "stop_fraction>0.02"`` expressions, parsed without eval.

Grammar (spaces allowed around the parts)::

    gate   := name op number
    name   := a metric name of the report, e.g. stop_fraction, sigma_min.p5
              (``schema.metric_names`` lists them)
    op     := <  <=  >  >=  ==  !=
    number := a decimal number, optionally in exponent form, or ending in %
              (2% = 0.02)

A gate *fails* when its comparison is true for the report's value.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable
from dataclasses import dataclass

from jacobian_ik.audit.schema import metric, metric_names
from jacobian_ik.errors import ConfigurationError

OPERATORS = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}

_GATE = re.compile(
    r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*"
    r"(?P<op><=|>=|==|!=|<|>)\s*"
    r"(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<percent>%?)\s*$")


@dataclass(frozen=True)
class Gate:
    """``name op threshold``: fails when ``value op threshold`` holds."""

    text: str
    name: str
    op: str
    threshold: float

    def fails(self, value: float) -> bool:
        return bool(OPERATORS[self.op](value, self.threshold))


def _names_text(kind: str) -> str:
    """The metric names of a report kind, summaries grouped: sigma_min.{p1,p5,...}."""
    groups: dict[str, list[str]] = {}
    for name in metric_names(kind):
        head, _, tail = name.partition(".")
        groups.setdefault(head, []).append(tail)
    parts = []
    for head, tails in groups.items():
        if tails == [""]:
            parts.append(head)
        else:
            parts.append(f"{head}.{{{','.join(tails)}}}")
    return ", ".join(parts)


def parse_gate(text: str, kind: str) -> Gate:
    """Parse and check one expression for a report of ``kind`` ("audit" | "path")."""
    match = _GATE.match(text)
    if match is None:
        raise ConfigurationError(
            f"gate {text!r} is not 'NAME OP NUMBER' (OP one of "
            f"{' '.join(sorted(OPERATORS, key=len))}), e.g. 'stop_fraction>0.02'",
            parameter="gate", value=text)
    name = match["name"]
    if name not in metric_names(kind):
        raise ConfigurationError(
            f"gate {text!r}: unknown metric {name!r}; metrics are: {_names_text(kind)}",
            parameter="gate", value=name, choices=tuple(metric_names(kind)))
    threshold = float(match["number"])
    if match["percent"]:
        threshold /= 100.0
    if not math.isfinite(threshold):
        raise ConfigurationError(f"gate {text!r}: the number must be finite",
                                 parameter="gate", value=text)
    return Gate(text=text.strip(), name=name, op=match["op"], threshold=threshold)


def evaluate(gates: Iterable[Gate], report: dict) -> list[dict]:
    """One entry per gate: {expression, metric, value, failed}."""
    out = []
    for gate in gates:
        value = metric(report, gate.name)
        out.append({"expression": gate.text, "metric": gate.name, "value": value,
                    "failed": gate.fails(value)})
    return out


def failure_lines(results: Iterable[dict]) -> list[str]:
    """One human-readable line per failed gate."""
    return [f"gate failed: {r['expression']} ({r['metric']} = {r['value']:.6g})"
            for r in results if r["failed"]]
