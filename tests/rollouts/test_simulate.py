"""`reelout simulate` end to end: the command starts its own `reelout serve` (a child process on
an accelerated clock) on a kept data folder, drives synthetic users through OFREP and the ingest,
and prints the decision log; the rollout it leaves is read back from that folder by
`reelout rollouts show`, as a later `reelout serve` there would show it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from reelout import cli_common
from reelout.cli import app
from tests.support.settings import ADMIN_TOKEN

LINE = re.compile(r"^\s*\+(\d+)h(\d\d)m\s+(\d+) %\s+(\w+)\s+(.*)$", re.MULTILINE)


@pytest.fixture
def rehearse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.setattr(cli_common.console, "width", 200)

    def run(scenario: str) -> tuple[Result, Path]:
        folder = tmp_path / scenario
        args = ["simulate", "--scenario", scenario, "--data-dir", str(folder), "--timeout", "80"]
        return CliRunner().invoke(app, args, env={"COLUMNS": "200"}), folder

    return run


def decisions(output: str) -> list[tuple[int, str, str]]:
    """(stage percent, decision, first reason) of each printed log line."""
    return [(int(m[3]), m[4], m[5]) for m in LINE.finditer(output)]


def stored(folder: Path) -> dict[str, Any]:
    """The rollout as `reelout rollouts show` reads it from the kept data folder."""
    env = {"REELOUT_DATA_DIR": str(folder), "REELOUT_ADMIN_TOKEN": ADMIN_TOKEN,
           "REELOUT_DATABASE_URL": f"sqlite:///{folder / 'reelout.db'}"}  # fmt: skip
    shown = CliRunner().invoke(app, ["rollouts", "show", "1", "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    found: dict[str, Any] = json.loads(shown.stdout)
    return found


def test_a_healthy_canary_advances_through_every_stage_and_completes(rehearse: Any) -> None:
    result, folder = rehearse("healthy")
    assert result.exit_code == 0, result.output
    log = decisions(result.output)
    advances = [percent for percent, decision, _ in log if decision == "advance"]
    assert advances == [10, 25, 50], result.output
    assert log[-1][:2] == (100, "complete"), result.output
    assert "rollout 1: completed at 100 %" in result.output
    assert "rollback" not in [decision for _, decision, _ in log]
    assert "10 %" in result.output and "monitor only" in result.output  # the plan it printed
    assert f"kept at {folder}" in result.output
    rollout = stored(folder)
    assert (rollout["state"], rollout["percent"]) == ("completed", 100)


def test_an_upload_regression_in_treatment_rolls_back(rehearse: Any) -> None:
    result, folder = rehearse("regression")
    assert result.exit_code == 0, result.output
    log = decisions(result.output)
    percent, decision, reason = log[-1]
    assert decision == "rollback", result.output
    assert re.match(r'guardrail "(upload_success_rate|error_rate)" FAIL', reason), reason
    assert "complete" not in [decision for _, decision, _ in log]
    rollout = stored(folder)
    assert rollout["state"] == "rolled_back" and rollout["percent"] == percent
    assert rollout["frozen_evidence"]["decision"]["decision"] == "rollback"
