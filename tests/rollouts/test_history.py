"""What a rollout's log says of its stages, read directly from log entries: entries and exits
(a pause and a resume stay in the stage), durations to the end or to now, units per arm from the
stage's last decision, decisions by kind, and runs of one decision folded for the printed log."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reelout.rollouts.history import folded, stage_histories, units
from reelout.rollouts.schemas import LogEntryOut

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PERCENTS = (10, 25, 50, 100)


class Log:
    """Entries one after another, `at` minutes after T0."""

    def __init__(self) -> None:
        self.entries: list[LogEntryOut] = []

    def add(self, minutes: int, kind: str, what: str, body: dict[str, Any]) -> None:
        self.entries.append(
            LogEntryOut(
                id=len(self.entries) + 1,
                rollout_id=1,
                at=T0 + timedelta(minutes=minutes),
                kind=kind,
                who="someone",
                what=what,
                reason=f"{what} at {minutes}",
                body=body,
            )
        )

    def move(self, minutes: int, what: str, before: tuple[str, int], after: tuple[str, int]):
        body = {"from": {"state": before[0], "stage": before[1]},
                "to": {"state": after[0], "stage": after[1]}}  # fmt: skip
        self.add(minutes, "command", what, body)

    def decide(self, minutes: int, what: str, stage: int, n: tuple[int, int] | None = None):
        per_metric = {}
        if n is not None:
            per_metric = {
                "error_rate": {"n_treatment": n[0], "n_control": n[1]},
                "crash_rate": {"n_treatment": n[0] // 2, "n_control": n[1] // 2},
            }
        self.add(minutes, "decision", what, {"decision": what, "stage": stage,
                                             "per_metric": per_metric})  # fmt: skip


def test_stages_entered_left_and_how_long_they_ran() -> None:
    log = Log()
    log.add(0, "command", "create", {"plan": {}})
    log.move(5, "start", ("pending", 0), ("running", 0))
    log.decide(15, "hold", 0, (100, 98))
    log.move(20, "pause", ("running", 0), ("paused", 0))
    log.move(30, "resume", ("paused", 0), ("running", 0))  # the same stage: not entered again
    log.decide(65, "advance", 0, (400, 390))
    log.move(65, "advance", ("running", 0), ("running", 1))
    log.decide(80, "hold", 1)  # no guardrail judged: no units
    log.move(90, "promote", ("running", 1), ("running", 2))
    now = T0 + timedelta(minutes=125)
    first, second, third, last = stage_histories(PERCENTS, log.entries, None, now)

    assert (first.entered_at, first.left_at) == (
        T0 + timedelta(minutes=5),
        T0 + timedelta(minutes=65),
    )
    assert first.duration_seconds == 60 * 60  # pauses included
    assert (first.units_treatment, first.units_control) == (400, 390)  # its last decision's
    assert first.decisions == {"advance": 1, "hold": 1}
    assert second.duration_seconds == 25 * 60 and second.units_treatment is None
    assert second.decisions == {"hold": 1}
    assert third.left_at is None and third.duration_seconds == 35 * 60  # running: up to now
    assert third.decisions == {}
    assert last.entered_at is None and last.duration_seconds is None and not last.entered


def test_the_stage_a_rollout_ended_in_ends_with_it() -> None:
    log = Log()
    log.move(0, "start", ("pending", 0), ("running", 0))
    log.decide(30, "rollback", 0, (50, 50))
    log.move(30, "rollback", ("running", 0), ("rolled_back", 0))
    ended = T0 + timedelta(minutes=30)
    (first, *rest) = stage_histories(PERCENTS, log.entries, ended, ended + timedelta(days=3))
    assert first.left_at == ended and first.duration_seconds == 30 * 60
    assert first.decisions == {"rollback": 1} and (first.units_treatment, first.units_control) == (
        50, 50,
    )  # fmt: skip
    assert all(stage.entered_at is None for stage in rest)
    never = stage_histories(PERCENTS, [], None, ended)
    assert [s.duration_seconds for s in never] == [None] * 4


def test_units_are_the_most_any_guardrail_counted() -> None:
    assert units({"per_metric": {"a": {"n_treatment": 5, "n_control": 9},
                                 "b": {"n_treatment": 7, "n_control": 1}}}) == (7, 9)  # fmt: skip
    assert units({"per_metric": {}}) is None and units({}) is None


def test_runs_of_one_decision_at_one_stage_fold_into_a_line() -> None:
    log = Log()
    log.move(0, "start", ("pending", 0), ("running", 0))
    for minute in range(1, 6):
        log.decide(minute, "hold", 0)
    log.decide(6, "advance", 0)
    log.move(6, "advance", ("running", 0), ("running", 1))
    log.decide(7, "hold", 1)  # another stage: a new run
    log.decide(8, "hold", 1)
    runs = folded(log.entries)
    assert [(r.first.what, r.count) for r in runs] == [
        ("start", 1), ("hold", 5), ("advance", 1), ("advance", 1), ("hold", 2),
    ]  # fmt: skip
    hold = runs[1]
    assert (hold.first.at, hold.last.at) == (T0 + timedelta(minutes=1), T0 + timedelta(minutes=5))
    assert hold.last.reason == "hold at 5"  # the latest reason shows


@given(st.lists(st.sampled_from(["hold", "extend", "pause"]), max_size=40))
def test_folding_keeps_every_entry(decisions: list[str]) -> None:
    log = Log()
    for minute, what in enumerate(decisions):
        log.decide(minute, what, 0)
    runs = folded(log.entries)
    assert sum(r.count for r in runs) == len(decisions)
    assert all(a.last.what != b.first.what for a, b in itertools.pairwise(runs))
