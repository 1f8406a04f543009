"""Running `reelout …` (Typer's CliRunner, in this process) on a live server's data folder and
database, so a test can compare what the command line does with what the API answers."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from reelout import cli_common
from reelout.cli import app
from reelout.config import Settings
from tests.support.live import LiveServer
from tests.support.settings import ADMIN_TOKEN

Cli = Callable[..., Result]
CLI_USER = f"cli:{getpass.getuser()}"  # who the command line's changes are recorded as


def cli_env(settings: Settings) -> dict[str, str]:
    """The REELOUT_* environment naming the same data folder, database and public URL."""
    allow = ",".join(str(network) for network in settings.webhook_allow_networks)
    return {
        "REELOUT_DATA_DIR": str(settings.data_dir),
        "REELOUT_DATABASE_URL": settings.resolved_database_url,
        "REELOUT_ADMIN_TOKEN": ADMIN_TOKEN,
        "REELOUT_PUBLIC_URL": settings.public_url or "",
        "REELOUT_WEBHOOK_ALLOW_NETWORKS": allow,
        "COLUMNS": "200",
    }


def cli_for(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """`cli(*args, input=…, **env)` runs `reelout ARGS…` against `server`'s database."""
    monkeypatch.setattr(cli_common.console, "width", 200)  # made at import, before COLUMNS
    runner, env = CliRunner(), cli_env(server.runtime.settings)

    def run(*args: str, input: str | None = None, **settings: str) -> Result:
        return runner.invoke(app, list(args), input=input, env={**env, **settings})

    return run


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def refused(result: Result, code: str, words: str) -> None:
    """The usual error exit: status 1, the code and the message in words on stderr."""
    assert result.exit_code == 1, result.output
    assert f"error {code}: " in result.stderr and words in result.stderr, result.stderr
