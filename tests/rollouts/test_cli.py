"""`reelout rollouts` on a live server's database: what the API shows, refusals with their codes,
commands recorded as the OS user."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.rollouts.conftest import API, FLAG, PLAN
from tests.support.cli import CLI_USER, Cli, as_json, cli_for, ok, refused
from tests.support.live import LiveServer


@pytest.fixture
def cli(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return cli_for(server, monkeypatch)


def test_a_rollout_from_the_command_line(cli: Cli, server: LiveServer, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(PLAN))  # "off" comes out quoted, as YAML needs it
    made = as_json(cli("rollouts", "create", "-f", str(plan), "--json"))
    rid = str(made["id"])
    assert made["state"] == "pending" and made["created_by"] == CLI_USER
    assert made["plan"]["control"] == PLAN["rollout"]["control"]
    assert made["plan"]["stages"][0]["warmup"] == "0s", "stored with its defaults written out"
    refused(cli("rollouts", "create", "-f", "-", input=json.dumps(PLAN)), "ROLLOUT_EXISTS", FLAG)
    refused(cli("rollouts", "create", "-f", "-", input="rollout: [}"), "INVALID_PLAN", "neither")

    assert "running" in ok(cli("rollouts", "start", rid)).output
    ok(cli("rollouts", "approve", rid, "--stage", "4"))
    ok(cli("rollouts", "dismiss", rid, "crash_rate", "-r", "known, fixed in 2.3"))
    shown = ok(cli("rollouts", "show", rid)).output
    assert "stage 1 at 10%" in shown and "approved stages: 4" in shown
    assert "dismissed crash_rate: known, fixed in 2.3" in shown
    ok(cli("rollouts", "promote", rid, "-r", "fine"))
    ok(cli("rollouts", "pause", rid))
    ok(cli("rollouts", "resume", rid))
    listed = ok(cli("rollouts", "list", "--state", "running")).output
    assert FLAG in listed and "2 (25%)" in listed
    refused(cli("rollouts", "start", rid), "ROLLOUT_STATE_CONFLICT", "it allows pause")
    ok(cli("rollouts", "rollback", rid, "-r", "tickets"))
    with server.client() as api:
        rollout = api.get(f"{API}/{rid}").json()
    assert rollout["state"] == "rolled_back" and rollout["approvals"] == [3]
    shown = ok(cli("rollouts", "show", rid)).output
    assert f"rolled back by {CLI_USER} at " in shown and "(command): tickets" in shown

    entries = as_json(cli("rollouts", "log", rid, "--json"))["entries"]
    assert [e["what"] for e in entries] == [
        "create", "start", "approve", "dismiss", "promote", "pause", "resume", "rollback",
    ]  # fmt: skip
    assert {e["who"] for e in entries} == {CLI_USER}
    assert "tickets" in ok(cli("rollouts", "log", rid, "--kind", "command")).output
    ok(
        cli(
            "rollouts",
            "abort",
            str(as_json(cli("rollouts", "create", "-f", str(plan), "--json"))["id"]),
        )
    )
    refused(cli("rollouts", "show", "99"), "ROLLOUT_NOT_FOUND", "no rollout 99")


def test_the_seeds_template_is_a_plan_to_edit_and_create(cli: Cli) -> None:
    printed = ok(cli("rollouts", "template", "--flag", FLAG)).stdout
    assert printed.startswith("# The seed's rollout of use_tus_upload in production")
    plan = yaml.safe_load(printed)["rollout"]
    assert (plan["flag"], plan["treatment"], plan["control"]["variation"]) == (FLAG, "on", "off")
    assert [stage["percent"] for stage in plan["stages"]] == [10, 25, 50, 100]
    made = as_json(cli("rollouts", "create", "-f", "-", "--json", input=printed))
    assert made["state"] == "pending" and made["plan"]["stages"] == plan["stages"]
