"""What a rollout's log says of its stages (pure): when each stage was entered and left, how
long it ran, the units per arm its last decision counted, its decisions by kind, and the log
with runs of the same decision folded into one line for a printed report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reelout.rollouts.schemas import LogEntryOut


@dataclass(frozen=True)
class StageHistory:
    """One stage of the plan as the rollout lived it. `left_at` is None while the rollout is
    still in the stage (its duration then runs to `now`) or never entered it; durations are
    wall-clock, pauses included."""

    index: int
    percent: int
    entered_at: datetime | None
    left_at: datetime | None
    duration_seconds: float | None
    units_treatment: int | None  # as the stage's last decision counted them (None: none)
    units_control: int | None
    decisions: dict[str, int] = field(default_factory=dict)  # decision kind -> how many

    @property
    def entered(self) -> bool:
        return self.entered_at is not None


def entries_of_stages(commands: Iterable[LogEntryOut]) -> dict[int, datetime]:
    """stage index -> when the rollout first entered it, from the command rows' `from` and
    `to` positions: a start enters stage 0, an advance or a promote the next stage."""
    entered: dict[int, datetime] = {}
    for entry in commands:
        before, after = entry.body.get("from"), entry.body.get("to")
        if not isinstance(before, Mapping) or not isinstance(after, Mapping):
            continue
        starts = before.get("state") == "pending" and after.get("state") == "running"
        stage = after.get("stage")
        if isinstance(stage, int) and (starts or stage != before.get("stage")):
            entered.setdefault(stage, entry.at)
    return entered


def units(decision: Mapping[str, Any]) -> tuple[int, int] | None:
    """(treatment, control) units a logged decision counted: the most any guardrail had per
    arm (None when it judged no guardrail)."""
    per_metric = decision.get("per_metric")
    if not isinstance(per_metric, Mapping) or not per_metric:
        return None
    verdicts = [v for v in per_metric.values() if isinstance(v, Mapping)]
    if not verdicts:
        return None
    treatment = max(int(v.get("n_treatment") or 0) for v in verdicts)
    control = max(int(v.get("n_control") or 0) for v in verdicts)
    return treatment, control


def _stage_of(entry: LogEntryOut) -> int | None:
    stage = entry.body.get("stage")
    return stage if isinstance(stage, int) and not isinstance(stage, bool) else None


def stage_histories(
    percents: Sequence[int],
    log: Sequence[LogEntryOut],
    ended_at: datetime | None,
    now: datetime,
) -> list[StageHistory]:
    """Every stage of the plan in order, from the whole log (oldest first)."""
    entered = entries_of_stages(e for e in log if e.kind == "command")
    decisions: dict[int, Counter[str]] = {}
    last: dict[int, LogEntryOut] = {}
    for entry in log:
        stage = _stage_of(entry) if entry.kind == "decision" else None
        if stage is not None:
            decisions.setdefault(stage, Counter())[entry.what] += 1
            last[stage] = entry
    reached = max(entered, default=-1)
    out = []
    for index, percent in enumerate(percents):
        began = entered.get(index)
        left = entered.get(index + 1)
        if began is not None and left is None and index == reached:
            left = ended_at  # the stage it ended in (None: still in it)
        end = left or (now if began is not None else None)
        counted = units(last[index].body) if index in last else None
        out.append(
            StageHistory(
                index=index,
                percent=percent,
                entered_at=began,
                left_at=left,
                duration_seconds=(end - began).total_seconds() if began and end else None,
                units_treatment=counted[0] if counted else None,
                units_control=counted[1] if counted else None,
                decisions=dict(sorted(decisions.get(index, Counter()).items())),
            )
        )
    return out


@dataclass(frozen=True)
class LogRun:
    """One line of the printed log: an entry, or a run of the same decision at the same stage
    one after another, from its first to its last (whose reason it shows)."""

    first: LogEntryOut
    last: LogEntryOut
    count: int


def folded(log: Iterable[LogEntryOut]) -> list[LogRun]:
    """The log (oldest first) with each run of identical consecutive decisions as one line."""
    runs: list[LogRun] = []
    for entry in log:
        prior = runs[-1] if runs else None
        if prior is not None and _same_decision(prior.last, entry):
            runs[-1] = LogRun(prior.first, entry, prior.count + 1)
        else:
            runs.append(LogRun(entry, entry, 1))
    return runs


def _same_decision(a: LogEntryOut, b: LogEntryOut) -> bool:
    return a.kind == b.kind == "decision" and a.what == b.what and _stage_of(a) == _stage_of(b)
