"""`reelout flags` on a real database (SQLite and PostgreSQL): the same services as the admin API."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from typer.testing import CliRunner, Result

from reelout import cli_common
from reelout.cli import app
from reelout.flags.engine.templates import SEED_FLAGS
from tests.support.cli import as_json, ok
from tests.support.live import serving
from tests.support.settings import ADMIN_TOKEN, make_settings
from tests.support.waiting import wait_until

Flags = Callable[..., Result]

PLAYER = {
    "state": "ENABLED",
    "variants": {"a": "media_kit", "b": "video_player"},
    "defaultVariant": "a",
}
# Hand-written: tabs, its own member order, Windows line ends, non-ASCII. Export gives it back as is.
FLAG_SET = (
    '{"flags": {\r\n\t"player": {"variants": {"a": "media_kit", "b": "video_player"},'
    ' "defaultVariant": "a", "state": "ENABLED",\r\n\t\t"metadata": {"owner": "équipe vidéo"}}},'
    '\r\n "metadata": {"flagSetId": "from-git"}}\r\n'
)


@pytest.fixture
def flags(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Flags:
    """Runs `reelout flags ARGS…` on one data folder and database; `input` is its stdin."""
    monkeypatch.setattr(cli_common.console, "width", 200)  # made at import, before COLUMNS
    runner = CliRunner()
    env = {
        "REELOUT_DATA_DIR": str(tmp_path / "data"),
        "REELOUT_DATABASE_URL": database_url,
        "REELOUT_ADMIN_TOKEN": ADMIN_TOKEN,
        "COLUMNS": "200",
        "REELOUT_SEED_FLAGS": "false",  # these tests write their sets from nothing
    }

    def run(*args: str, input: str | bytes | None = None, **settings: str) -> Result:
        return runner.invoke(app, ["flags", *args], input=input, env={**env, **settings})

    return run


def revision(flags: Flags, env: str = "development") -> int:
    number: int = as_json(flags("list", "--env", env, "--json"))["revision"]
    return number


def latest_audit(flags: Flags, env: str = "development") -> dict[str, Any]:
    entry: dict[str, Any] = as_json(flags("history", "-e", env, "--json"))["entries"][0]
    return entry


@pytest.fixture
def flag_file(tmp_path: Path) -> Path:
    path = tmp_path / "flags.json"
    path.write_bytes(FLAG_SET.encode("utf-8"))
    return path


def test_init_creates_the_seed_flags_in_every_environment(flags: Flags) -> None:
    made = ok(flags("init", "--template", "video-rollout"))
    for env in ("development", "preview", "production"):
        assert env in made.stdout
        listing = as_json(flags("list", "-e", env, "--json"))
        assert listing["revision"] == 1
        assert [row["key"] for row in listing["flags"]] == list(SEED_FLAGS)
        assert {row["defaultVariant"] for row in listing["flags"]} == {"off"}
        beta = next(row for row in listing["flags"] if row["key"] == "beta_mode")
        assert beta["targeted"] is (env == "development"), "beta users get beta_mode in dev only"
    table = ok(flags("list")).stdout
    assert "development · revision 1" in table and "use_tus_upload" in table


def test_init_again_changes_nothing_and_other_flags_are_kept_unless_forced(flags: Flags) -> None:
    ok(flags("init", "--template", "video-rollout"))
    unchanged = ok(flags("init", "--template", "video-rollout")).stdout
    assert "yes" not in unchanged and "no" in unchanged
    assert revision(flags) == 1
    ok(flags("set", "beta_mode", "--state", "DISABLED"))
    again = flags("init", "--template", "video-rollout")
    assert again.exit_code == 1
    assert "FLAGS_EXIST" in again.stderr and "--force" in again.stderr
    assert revision(flags) == 2
    unknown = flags("init", "--template", "nope")
    assert unknown.exit_code == 1 and "UNKNOWN_TEMPLATE" in unknown.stderr


def test_a_first_command_on_a_fresh_install_finds_the_template(flags: Flags) -> None:
    listing = as_json(flags("list", "--json", REELOUT_SEED_FLAGS="true"))
    assert listing["revision"] == 1
    assert [row["key"] for row in listing["flags"]] == list(SEED_FLAGS)
    entry = latest_audit(flags)
    assert (entry["actor"], entry["action"]) == ("system", "init")


def test_rollout_sets_the_percentage_of_a_split(flags: Flags) -> None:
    ok(flags("init", "--template", "video-rollout"))
    out = ok(flags("rollout", "use_tus_upload", "10", "-e", "production", "-r", "phase 3"))
    assert "production is now at revision 2" in out.stdout
    flag = as_json(flags("get", "use_tus_upload", "-e", "production"))
    assert flag["targeting"] == {"fractional": [["on", 10], ["off", 90]]}
    ok(flags("rollout", "use_tus_upload", "25", "-e", "production"))
    flag = as_json(flags("get", "use_tus_upload", "-e", "production"))
    assert flag["targeting"] == {"fractional": [["on", 25], ["off", 75]]}
    entry = latest_audit(flags, "production")
    assert (entry["action"], entry["flag"]) == ("rollout", "use_tus_upload")
    ok(flags("rollout", "use_tus_upload", "10"))  # development: beta users, then a split
    rule = as_json(flags("get", "use_tus_upload"))["targeting"]["if"]
    assert rule[1:] == ["on", {"fractional": [["on", 10], ["off", 90]]}]
    too_much = flags("rollout", "use_tus_upload", "101", "-e", "production")
    assert too_much.exit_code == 2


def test_set_from_a_file_from_stdin_or_inline_then_get_gives_it_back(
    flags: Flags, tmp_path: Path
) -> None:
    definition = tmp_path / "player.json"
    definition.write_text(json.dumps(PLAYER))
    ok(flags("set", "player", "--file", str(definition), "--reason", "new player"))
    assert as_json(flags("get", "player")) == PLAYER

    cache = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on"}
    ok(flags("set", "use_video_cache", "-e", "preview", input=json.dumps(cache)))
    assert as_json(flags("get", "use_video_cache", "-e", "preview")) == cache

    ok(flags("set", "use_video_cache", "-e", "preview", "--json", json.dumps(PLAYER)))
    assert as_json(flags("get", "use_video_cache", "-e", "preview")) == PLAYER


def test_state_and_default_shortcuts_patch_an_existing_flag(flags: Flags) -> None:
    ok(flags("set", "player", "--json", json.dumps(PLAYER)))
    ok(flags("set", "player", "--default", "b"))
    ok(flags("set", "player", "--state", "disabled"))
    assert as_json(flags("get", "player")) == {**PLAYER, "defaultVariant": "b", "state": "DISABLED"}
    assert latest_audit(flags)["action"] == "patch"

    missing = flags("set", "nope", "--state", "ENABLED")
    assert missing.exit_code == 1 and "FLAG_NOT_FOUND" in missing.stderr


def test_an_invalid_definition_is_refused_with_its_pointer(flags: Flags) -> None:
    ok(flags("set", "player", "--json", json.dumps(PLAYER)))
    bad = flags("set", "player", input=json.dumps({**PLAYER, "defaultVariant": "c"}))
    assert bad.exit_code == 1
    assert "INVALID_FLAG_SET" in bad.stderr
    assert "/flags/player/defaultVariant" in bad.stderr
    assert "Nothing was changed" in bad.stderr
    assert revision(flags) == 1
    assert as_json(flags("get", "player")) == PLAYER


def test_set_without_a_definition_says_how_to_give_one(flags: Flags) -> None:
    empty = flags("set", "player", input="")
    assert empty.exit_code == 1
    assert "DEFINITION_REQUIRED" in empty.stderr and "--file" in empty.stderr
    both = flags("set", "player", "--json", "{}", "--state", "ENABLED")
    assert both.exit_code == 1 and "AMBIGUOUS_INPUT" in both.stderr
    assert revision(flags) == 0


def test_kill_disables_the_flag_and_the_audit_names_the_os_user(flags: Flags) -> None:
    ok(flags("init", "--template", "video-rollout"))
    ok(flags("kill", "use_tus_upload", "-e", "production", "--reason", "upload failures"))
    assert as_json(flags("get", "use_tus_upload", "-e", "production"))["state"] == "DISABLED"
    entry = latest_audit(flags, "production")
    assert entry["actor"] == f"cli:{getpass.getuser()}"
    assert (entry["action"], entry["flags"], entry["reason"]) == (
        "kill",
        ["use_tus_upload"],
        "upload failures",
    )
    again = ok(flags("kill", "use_tus_upload", "-e", "production"))
    assert "nothing to change" in again.stdout
    assert revision(flags, "production") == 2


def test_export_gives_back_the_imported_bytes(
    flags: Flags, flag_file: Path, tmp_path: Path
) -> None:
    ok(flags("import", str(flag_file), "-e", "preview"))
    exported = ok(flags("export", "-e", "preview"))
    assert exported.stdout_bytes == flag_file.read_bytes()
    copy = tmp_path / "copy.json"
    ok(flags("export", "-e", "preview", "--output", str(copy)))
    assert copy.read_bytes() == flag_file.read_bytes()


def test_import_from_stdin_and_an_old_revision_can_be_exported(flags: Flags) -> None:
    ok(flags("import", "-", input=FLAG_SET))
    ok(flags("set", "player", "--state", "DISABLED"))
    assert ok(flags("export", "--revision", "1")).stdout_bytes == FLAG_SET.encode()
    assert ok(flags("export")).stdout_bytes != FLAG_SET.encode()


def test_import_with_a_stale_if_match_changes_nothing(flags: Flags, flag_file: Path) -> None:
    ok(flags("set", "player", "--json", json.dumps(PLAYER)))
    before = ok(flags("export")).stdout_bytes
    stale = flags("import", str(flag_file), "--if-match", "development-r0")
    assert stale.exit_code == 1
    assert "STALE_FLAG_SET" in stale.stderr and "development-r1" in stale.stderr
    assert ok(flags("export")).stdout_bytes == before
    ok(flags("import", str(flag_file), "--if-match", "development-r1"))
    assert revision(flags) == 2


def test_import_refuses_an_invalid_file_with_pointers(flags: Flags, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"flags": {"player": {**PLAYER, "state": "ON"}}}))
    refused = flags("import", str(bad))
    assert refused.exit_code == 1
    assert "/flags/player/state" in refused.stderr
    assert revision(flags) == 0
    missing = flags("import", str(tmp_path / "nowhere.json"))
    assert missing.exit_code == 1 and "FILE_UNREADABLE" in missing.stderr


def test_import_dry_run_shows_the_difference_and_stores_nothing(
    flags: Flags, flag_file: Path
) -> None:
    ok(flags("init", "--template", "video-rollout"))
    preview = ok(flags("import", str(flag_file), "--dry-run"))
    assert "+ player" in preview.stdout and "- beta_mode" in preview.stdout
    assert "/flags/player" in preview.stdout
    assert revision(flags) == 1


def test_import_is_held_to_the_size_limit(flags: Flags, tmp_path: Path) -> None:
    body = json.dumps({"flags": {"player": PLAYER}})
    at_limit, over = tmp_path / "at.json", tmp_path / "over.json"
    at_limit.write_text(body + " " * (1024 - len(body)))
    over.write_text(body + " " * (1025 - len(body)))
    limit = {"REELOUT_FLAG_SET_MAX_BYTES": "1024"}
    refused = flags("import", str(over), **limit)
    assert refused.exit_code == 1
    assert "FLAG_SET_TOO_LARGE" in refused.stderr and "REELOUT_FLAG_SET_MAX_BYTES" in refused.stderr
    ok(flags("import", str(at_limit), **limit))
    assert revision(flags) == 1


def test_promote_dry_run_changes_nothing_and_yes_copies(flags: Flags, flag_file: Path) -> None:
    ok(flags("import", str(flag_file), "-e", "preview"))
    shown = ok(flags("promote", "preview", "production", "--dry-run"))
    assert "+ player" in shown.stdout and "JSON Patch" in shown.stdout
    assert revision(flags, "production") == 0

    declined = flags("promote", "preview", "production", input="n\n")
    assert declined.exit_code == 1
    assert revision(flags, "production") == 0

    ok(flags("promote", "preview", "production", "--yes", "--reason", "ship it"))
    production = ok(flags("export", "-e", "production")).stdout_bytes
    assert production == flag_file.read_bytes()
    entry = latest_audit(flags, "production")
    assert (entry["action"], entry["source_environment"], entry["reason"]) == (
        "promote",
        "preview",
        "ship it",
    )
    same = ok(flags("promote", "preview", "production", "--json", "--yes"))
    assert json.loads(same.stdout)["applied"] is False


def test_promote_after_confirming(flags: Flags, flag_file: Path) -> None:
    ok(flags("import", str(flag_file), "-e", "preview"))
    ok(flags("promote", "preview", "production", input="y\n"))
    assert revision(flags, "production") == 1
    ok(flags("set", "player", "-e", "preview", "--default", "b"))
    stale = flags("promote", "preview", "production", "--yes", "--if-match", "production-r0")
    assert stale.exit_code == 1 and "STALE_FLAG_SET" in stale.stderr
    same_env = flags("promote", "preview", "preview", "--yes")
    assert same_env.exit_code == 1 and "SAME_ENVIRONMENT" in same_env.stderr


def test_history_lists_who_did_what_and_why(flags: Flags) -> None:
    ok(flags("set", "player", "--json", json.dumps(PLAYER), "--reason", "new player"))
    ok(flags("kill", "player", "--reason", "stutters on Android"))
    ok(flags("set", "other", "--json", json.dumps(PLAYER)))
    table = ok(flags("history")).stdout
    assert "stutters on Android" in table and "new player" in table
    assert f"cli:{getpass.getuser()}" in table
    entries = as_json(flags("history", "--flag", "player", "--json"))["entries"]
    assert [(e["revision"], e["action"]) for e in entries] == [(2, "kill"), (1, "put")]
    assert len(as_json(flags("history", "--limit", "1", "--json"))["entries"]) == 1


def test_revert_brings_back_an_earlier_revision(flags: Flags, flag_file: Path) -> None:
    ok(flags("import", str(flag_file)))
    ok(flags("set", "player", "--default", "b"))
    ok(flags("revert", "1", "--reason", "b was a mistake"))
    assert ok(flags("export")).stdout_bytes == flag_file.read_bytes()
    assert revision(flags) == 3
    assert latest_audit(flags)["action"] == "revert"
    missing = flags("revert", "9")
    assert missing.exit_code == 1 and "REVISION_NOT_FOUND" in missing.stderr


def test_an_unknown_environment_is_named_with_the_valid_ones(flags: Flags) -> None:
    wrong = flags("list", "--env", "staging")
    assert wrong.exit_code == 1
    assert (
        "UNKNOWN_ENVIRONMENT" in wrong.stderr and "development, preview, production" in wrong.stderr
    )


class Running(NamedTuple):
    url: str
    client_key: str  # of development


@pytest.fixture
def server_on_the_same_database(tmp_path: Path, database_url: str) -> Iterator[Running]:
    """A running Reelout on the data folder and database the CLI writes to."""
    with serving(make_settings(tmp_path, database_url=database_url, seed_flags=False)) as live:
        with live.client() as admin:
            body = {"scope": "client", "environment": "development"}
            made = admin.post("/api/v1/keys", json=body)
            assert made.status_code == 201, made.text
        yield Running(live.url, made.json()["key"])


def test_a_cli_change_reaches_a_running_servers_ofrep(
    flags: Flags, server_on_the_same_database: Running
) -> None:
    url, key = server_on_the_same_database
    ok(flags("init", "--template", "video-rollout"))

    def evaluate() -> dict[str, Any]:
        reply = httpx.post(
            f"{url}/ofrep/v1/evaluate/flags/use_tus_upload",
            headers={"Authorization": f"Bearer {key}"},
            json={"context": {"targetingKey": "user-17", "cohort": "beta"}},
        )
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    assert evaluate()["value"] is True
    ok(flags("kill", "use_tus_upload", "--reason", "upload failures"))
    # the CLI writes as another process would: the server takes it in within one poll
    wait_until(lambda: evaluate()["reason"] == "DISABLED", message="the kill served")
    killed = evaluate()
    assert killed["reason"] == "DISABLED" and "value" not in killed
