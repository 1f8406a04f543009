"""The scheduled digest (pure): a KPI table per label set (e.g. per flag and variant) from the
samples of the rule's metric and its report's other metrics, checked against its condition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reelout.alerts import templates
from reelout.alerts.evaluator import LabelKey, label_key
from reelout.alerts.rules import DigestRule
from reelout.alerts.signals import SignalSample


@dataclass(frozen=True)
class Cell:
    numerator: float
    denominator: float

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator > 0 else None


@dataclass(frozen=True)
class Row:
    labels: Mapping[str, str]
    cells: Mapping[str, Cell]  # by metric
    met: bool | None  # the condition on the rule's metric; None: no condition or no data


@dataclass(frozen=True)
class Report:
    rule_id: str
    at: datetime  # the scheduled time it reports for
    window: str
    metric: str
    metrics: tuple[str, ...]
    condition: str | None  # e.g. "> 98%"
    rows: tuple[Row, ...]

    @property
    def status(self) -> str:
        """met (every row with data meets the condition), not_met, no_data or reported."""
        judged = [row.met for row in self.rows if row.met is not None]
        if self.condition is None:
            return "reported" if self.rows else "no_data"
        if not judged:
            return "no_data"
        return "met" if all(judged) else "not_met"

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "window": self.window,
            "metric": self.metric,
            "metrics": list(self.metrics),
            "condition": self.condition,
            "status": self.status,
            "rows": [
                {
                    "labels": dict(row.labels),
                    "met": row.met,
                    "values": {
                        m: {
                            "value": c.value,
                            "numerator": c.numerator,
                            "denominator": c.denominator,
                        }
                        for m, c in row.cells.items()
                    },
                }
                for row in self.rows
            ],
        }


def metrics_of(rule: DigestRule) -> tuple[str, ...]:
    """The rule's metric first, then the report's others, without repeats."""
    return tuple(dict.fromkeys([rule.signal.metric, *rule.report.metrics]))


def build(rule: DigestRule, samples: Mapping[str, Sequence[SignalSample]], at: datetime) -> Report:
    """The table: one row per label set any metric has, sorted by its labels."""
    cells: dict[LabelKey, dict[str, Cell]] = {}
    for metric in metrics_of(rule):
        for sample in samples.get(metric, ()):
            row = cells.setdefault(label_key(sample.labels), {})
            row[metric] = Cell(sample.numerator, sample.denominator)
    cond = rule.condition
    rows = []
    for key in sorted(cells):
        main = cells[key].get(rule.signal.metric)
        met = None
        if cond is not None and main is not None and main.denominator > 0:
            met = cond.met(main.numerator, main.denominator)
        rows.append(Row(dict(key), cells[key], met))
    assert rule.signal.window is not None
    shown = None if cond is None else f"{cond.op.value} {templates.percent(cond.threshold)}"
    return Report(
        rule.id,
        at,
        templates.spell_duration(rule.signal.window),
        rule.signal.metric,
        metrics_of(rule),
        shown,
        tuple(rows),
    )
