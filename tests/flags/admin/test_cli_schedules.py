"""`reelout flags schedule add|list|cancel` and `reelout flags stale` on a real local database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from reelout import cli_common
from reelout.auth.schemas import Scope
from reelout.auth.service import Principal
from reelout.clock import ManualClock
from reelout.flags.admin import service
from reelout.flags.cli.schedules import register
from reelout.flags.governance import jobs as schedule_jobs
from reelout.jobs.registry import Registry
from reelout.jobs.worker import Worker
from reelout.runtime import Runtime
from tests.flags.admin.conftest import FLAG_SET
from tests.support.settings import ADMIN_TOKEN, make_settings, start_runtime

runner = CliRunner()
WRITER = Principal("test-key", "release-manager", Scope.admin, None)


@pytest.fixture
def cli(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs `reelout flags …` (the commands this module adds) against the test database."""
    monkeypatch.setattr(cli_common.console, "width", 200)  # made at import, before COLUMNS
    app = typer.Typer()
    register(app)
    env = {
        "REELOUT_DATA_DIR": str(tmp_path / "data"),
        "REELOUT_DATABASE_URL": database_url,
        "REELOUT_ADMIN_TOKEN": ADMIN_TOKEN,
        "COLUMNS": "200",
    }

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env)

    return run


def local(tmp_path: Path, database_url: str, clock: ManualClock) -> Runtime:
    """The same database as the commands, on a clock the test moves."""
    return start_runtime(make_settings(tmp_path, database_url=database_url), clock)


def write_set(rt: Runtime, env: str = "development", text: str = FLAG_SET) -> None:
    with rt.db.session() as session:
        service.put_flag_set(session, rt.clock, env, text.encode(), service.Edit(WRITER))


def soon(hours: float = 1) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def test_a_change_scheduled_on_the_command_line_is_applied_at_its_time(
    cli: Any, tmp_path: Path, database_url: str
) -> None:
    clock = ManualClock(datetime.now(UTC))
    rt = local(tmp_path, database_url, clock)
    write_set(rt)
    added = cli(
        "schedule",
        "add",
        "player",
        "--action",
        "patch",
        "--at",
        (clock.now() + timedelta(hours=2)).isoformat(),  # the clock the worker runs on
        "--patch",
        '{"defaultVariant": "b"}',
        "--reason",
        "switch player",
        "--json",
    )
    assert added.exit_code == 0, added.output
    made = json.loads(added.stdout)
    assert (made["status"], made["patch"]) == ("pending", {"defaultVariant": "b"})
    assert made["scheduled_by"].startswith("cli:")

    clock.advance(2 * 3600 + 1)
    registry = Registry()
    schedule_jobs.register(registry)
    assert Worker(rt, registry).run_once() is True

    listed = cli("schedule", "list", "--status", "applied", "--json")
    assert listed.exit_code == 0, listed.output
    (applied,) = json.loads(listed.stdout)["schedules"]
    assert (applied["id"], applied["revision"]) == (made["id"], 2)
    with rt.db.read() as session:
        _, flag = service.get_flag(session, "development", "player")
        (entry,) = service.list_audit(session, limit=1).entries
    assert flag["defaultVariant"] == "b"
    assert (entry.actor, entry.reason) == (
        made["scheduled_by"],
        f"scheduled change #{made['id']}: switch player",
    )
    table = cli("schedule", "list")
    assert table.exit_code == 0 and "player" in table.stdout and "applied" in table.stdout
    rt.db.dispose()


def test_put_reads_the_definition_from_a_file_and_refuses_a_bad_one_now(
    cli: Any, tmp_path: Path, database_url: str
) -> None:
    rt = local(tmp_path, database_url, ManualClock(datetime.now(UTC)))
    write_set(rt)
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('{"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}')
    bad.write_text('{"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "off"}')

    refused = cli(
        "schedule", "add", "new", "--action", "put", "--at", soon(), "--definition", str(bad)
    )
    assert refused.exit_code == 1
    assert "INVALID_FLAG_SET" in refused.output and "/flags/new/defaultVariant" in refused.output
    done = cli(
        "schedule", "add", "new", "--action", "put", "--at", soon(), "--definition", str(good)
    )
    assert done.exit_code == 0, done.output
    assert "Scheduled change #1: put new in development" in done.stdout
    rt.db.dispose()


def test_bad_times_and_cancels_exit_with_the_error_code(
    cli: Any, tmp_path: Path, database_url: str
) -> None:
    rt = local(tmp_path, database_url, ManualClock(datetime.now(UTC)))
    write_set(rt, "preview")
    garbled = cli(
        "schedule", "add", "player", "--action", "kill", "--at", "tomorrow", "-e", "preview"
    )
    assert garbled.exit_code == 1 and "INVALID_TIME" in garbled.output
    past = cli("schedule", "add", "player", "--action", "kill", "--at", soon(-1), "-e", "preview")
    assert past.exit_code == 1 and "APPLY_AT_IN_PAST" in past.output

    made = json.loads(
        cli(
            "schedule",
            "add",
            "player",
            "--action",
            "kill",
            "--at",
            soon(),
            "-e",
            "preview",
            "--json",
        ).stdout
    )
    canceled = cli(
        "schedule", "cancel", str(made["id"]), "-e", "preview", "-r", "not tonight", "--json"
    )
    assert canceled.exit_code == 0, canceled.output
    body = json.loads(canceled.stdout)
    assert body["status"] == "canceled" and body["cancel_reason"] == "not tonight"
    assert body["canceled_by"] == made["scheduled_by"] and body["canceled_by"].startswith("cli:")
    listed = cli("schedule", "list", "-e", "preview")
    assert f"canceled by {body['canceled_by']}: not tonight" in listed.output
    again = cli("schedule", "cancel", str(made["id"]), "-e", "preview")
    assert again.exit_code == 1 and "SCHEDULE_NOT_PENDING" in again.output
    wrong_env = cli("schedule", "cancel", str(made["id"]))
    assert wrong_env.exit_code == 1 and "SCHEDULE_NOT_FOUND" in wrong_env.output
    rt.db.dispose()


def test_stale_lists_flags_left_at_one_variant(cli: Any, tmp_path: Path, database_url: str) -> None:
    long_ago = ManualClock(datetime.now(UTC) - timedelta(days=40))
    rt = local(tmp_path, database_url, long_ago)
    write_set(rt, "production")  # `player` has no targeting; `use_tus_upload` follows a cohort
    as_json = cli("stale", "--env", "production", "--json")
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    assert report["days"] == 30
    assert [(f["key"], f["variant"], f["value"]) for f in report["flags"]] == [
        ("player", "a", "media_kit")
    ]
    table = cli("stale", "--env", "production")
    assert (
        table.exit_code == 0 and "player" in table.stdout and "use_tus_upload" not in table.stdout
    )
    assert (
        json.loads(cli("stale", "-e", "production", "--days", "41", "--json").stdout)["flags"] == []
    )
    unknown = cli("stale", "--env", "staging")
    assert unknown.exit_code == 1 and "UNKNOWN_ENVIRONMENT" in unknown.output
    rt.db.dispose()
