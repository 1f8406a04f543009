"""What every `reelout flags` command shares: the runtime for one command, its error exit (faults
by JSON Pointer and a next step), and the common options."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Annotated

import typer
from rich.markup import escape

from reelout.cli_common import command_runtime, err_console, fail
from reelout.errors import ReeloutError
from reelout.flags.admin import service
from reelout.runtime import Runtime

DEFAULT_ENV = "development"
HINTS = {
    "INVALID_FLAG_SET": "Nothing was changed; fix the definition and run the command again.",
    "INVALID_JSON": "Nothing was changed; fix the JSON and run the command again.",
    "STALE_FLAG_SET": "Nothing was changed; export the set again (`reelout flags export`), "
    "re-apply your change and pass the new ETag as --if-match.",
    "FLAGS_EXIST": "Run again with --force to replace them (the old sets stay as revisions).",
    "UNKNOWN_ENVIRONMENT": "Choose one of them with --env/-e.",
    "FLAG_NOT_FOUND": "See the environment's flags with `reelout flags list --env ENV`.",
    "REVISION_NOT_FOUND": "See the revisions with `reelout flags history --env ENV`.",
    "FLAG_SET_TOO_LARGE": "Raise REELOUT_FLAG_SET_MAX_BYTES if the set really needs to be larger.",
}

Env = Annotated[str, typer.Option("--env", "-e", help="The environment (REELOUT_ENVIRONMENTS).")]


def error_exit(exc: ReeloutError) -> typer.Exit:
    """The error line, each fault of an invalid flag set by JSON Pointer, and what to do next."""
    exit_ = fail(exc)
    for fault in exc.details.get("errors", []):
        err_console.print(f"  {escape(fault['pointer'] or '/')}: {escape(fault['message'])}")
    if exc.code in HINTS:
        err_console.print(escape(HINTS[exc.code]))
    return exit_


def admin_runtime() -> AbstractContextManager[Runtime]:
    """The runtime for one command; a ReeloutError ends it (exit status 1) with nothing written."""
    return command_runtime(service.seed_on_start, exit_with=error_exit)


def checked_environment(rt: Runtime, name: str) -> str:
    """The --env option, checked against REELOUT_ENVIRONMENTS."""
    return service.check_environment(name, rt.settings.environments)
