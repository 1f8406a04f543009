"""The reason classes `/metrics` and the rollback alert use, read from the words the real
`decide` writes: one case per class, each from a decision `decide` made."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from reelout.rollouts.decide import Snapshot, decide
from reelout.rollouts.reasons import CLASSES, COMMAND, MANUAL_EDIT, OTHER, classify
from tests.rollouts.test_decide import T0, arm, healthy, plan_with, rate, snapshot

N = 12_000
THREE_HOURS = timedelta(hours=3)


def _case(name: str) -> tuple[Any, Snapshot]:
    cases: dict[str, tuple[Any, Snapshot]] = {
        "telemetry_lag": (plan_with(), snapshot(*healthy(), telemetry_watermark=T0)),
        "alert_veto": (plan_with(), snapshot(*healthy(), page_alerts=("error-rate-critical",))),
        "no_traffic": (plan_with(), snapshot(arm(0), arm(0))),
        "srm": (plan_with(), snapshot(*healthy(10_400)[:1], *healthy(9_600)[1:])),
        "guardrail": (
            plan_with(),
            snapshot(arm(N, error_rate=rate(N // 20, N)), arm(N, error_rate=rate(N // 50, N))),
        ),
        "approval": (
            plan_with(approvals={"before_stage": [50]}),
            snapshot(*healthy(), elapsed=THREE_HOURS),
        ),
        "max_duration": (
            plan_with(),
            snapshot(*healthy(600), elapsed=timedelta(hours=6, minutes=20)),
        ),
        "collecting": (plan_with(), snapshot(*healthy())),
        "stage_done": (plan_with(), snapshot(*healthy(), elapsed=THREE_HOURS)),
    }
    return cases[name]


DECIDED = ("telemetry_lag", "alert_veto", "no_traffic", "srm", "guardrail", "approval",
           "max_duration", "collecting", "stage_done")  # fmt: skip


@pytest.mark.parametrize("expected", DECIDED)
def test_each_class_from_the_decision_that_has_it(expected: str) -> None:
    plan, seen = _case(expected)
    made = decide(plan, seen)
    assert classify(made.reasons) == expected, made.reasons


def test_the_decisions_behind_the_classes() -> None:
    """The cases above are the decisions they name (so a class is not matched by luck)."""
    kinds = {name: decide(*_case(name)).decision for name in DECIDED}
    assert kinds == {
        "telemetry_lag": "hold", "alert_veto": "pause", "no_traffic": "hold", "srm": "hold",
        "guardrail": "rollback", "approval": "hold", "max_duration": "extend",
        "collecting": "hold", "stage_done": "advance",
    }  # fmt: skip


def test_the_rest() -> None:
    edited = "the flag use_tus_upload was edited by bob (patch, revision 4) during the rollout"
    assert classify([edited]) == MANUAL_EDIT
    assert classify([]) == OTHER and classify(["something new"]) == OTHER
    assert classify(["collecting (extended until 2026-03-03 16:00): past max_duration"]) == (
        "collecting")  # fmt: skip
    assert set(DECIDED) | {MANUAL_EDIT, COMMAND, OTHER} == set(CLASSES)
