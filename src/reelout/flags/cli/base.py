"""What every `reelout flags` command shares: the runtime for one command, its error exit (faults
by JSON Pointer and a next step), and the common options."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from typing import Annotated

import typer
from rich.markup import escape

from reelout.cli_common import err_console, fail, runtime
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
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def error_exit(exc: ReeloutError) -> typer.Exit:
    """The error line, each fault of an invalid flag set by JSON Pointer, and what to do next."""
    exit_ = fail(exc)
    for fault in exc.details.get("errors", []):
        err_console.print(f"  {escape(fault['pointer'] or '/')}: {escape(fault['message'])}")
    if exc.code in HINTS:
        err_console.print(escape(HINTS[exc.code]))
    return exit_


@contextmanager
def admin_runtime() -> Iterator[Runtime]:
    """The runtime for one command; a ReeloutError ends it (exit status 1) with nothing written."""
    try:
        with redirect_stdout(sys.stderr):  # a first start's admin-key notice never mixes into JSON
            rt = runtime(service.seed_on_start)
        try:
            yield rt
        finally:
            rt.db.dispose()
    except ReeloutError as exc:
        raise error_exit(exc) from None


def checked_environment(rt: Runtime, name: str) -> str:
    """The --env option, checked against REELOUT_ENVIRONMENTS."""
    return service.check_environment(name, rt.settings.environments)
