"""The plans page (docs/rollouts/plans.md) shows what the code does: its plans load, its seed
template is the one shipped, and its sample messages are the ones Reelout writes."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from reelout.rollouts.decide import ArmData, Snapshot, decide
from reelout.rollouts.plan import PlanInvalid, load_plan, seed_template
from tests.rollouts.test_decide import T0, rate

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "rollouts" / "plans.md").read_text(encoding="utf-8")
TEMPLATE = ROOT / "src" / "reelout" / "rollouts" / "templates" / "seed.yaml"


def block(marker: str) -> str:
    found = re.search(
        rf"<!-- {marker}:begin -->\n```yaml\n(.*?)```\n<!-- {marker}:end -->", PAGE, re.DOTALL
    )
    assert found is not None, marker
    return found.group(1)


def test_the_smallest_plan_loads() -> None:
    plan = load_plan(block("minimal-plan"))
    assert [s.percent for s in plan.stages] == [10, 100]


def test_the_page_shows_the_shipped_seed_template() -> None:
    shipped = TEMPLATE.read_text(encoding="utf-8")
    shown = block("seed-template")
    assert shipped.endswith(shown)  # the page leaves out the file's header comments only
    assert load_plan(shown) == seed_template("new-upload-pipeline", "production", "on", "off")


def test_the_validation_example_is_the_message_reelout_writes() -> None:
    data = yaml.safe_load(block("minimal-plan"))
    data.update(
        treatment="off",
        stages=[{"percent": 50, "min_duration": "2h"}, {"percent": 30, "min_duration": "0s"}],
    )
    with pytest.raises(PlanInvalid) as caught:
        load_plan(json.dumps(data))
    assert f"```text\n{caught.value.message}\n```" in PAGE


def test_the_reason_example_is_the_reason_reelout_writes() -> None:
    plan = load_plan(block("minimal-plan"))
    now = T0 + timedelta(hours=1)
    got = decide(
        plan,
        Snapshot(
            now, 0, T0, now, now,
            ArmData(12_000, {"error_rate": rate(360, 12_000)}),
            ArmData(12_000, {"error_rate": rate(240, 12_000)}),
        ),
    )  # fmt: skip
    assert got.decision == "rollback"
    assert f"`{got.reasons[0]}`" in PAGE
