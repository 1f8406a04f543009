"""Pieces every `reelout` command shares: the Rich consoles, the runtime, who a change is recorded
as, and the error exit."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reelout.auth.schemas import Scope
from reelout.auth.service import Principal
from reelout.config import Settings
from reelout.errors import ReeloutError
from reelout.runtime import Runtime
from reelout.startup import FirstStart, prepare

console = Console()
err_console = Console(stderr=True)
CLI_ACTOR = "cli:"
ErrorExit = Callable[[ReeloutError], typer.Exit]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
# Why a change is made, where the API takes a Reelout-Change-Reason header
ChangeReason = Annotated[
    str | None, typer.Option("--reason", "-r", help="Why; kept in the audit trail.")
]


def runtime(*first_start: FirstStart) -> Runtime:
    """The runtime on the configured database (REELOUT_*), migrated, with an admin key and the
    caller's first-start steps done."""
    rt = Runtime.from_settings(Settings())
    prepare(rt, *first_start)
    return rt


def fail(exc: ReeloutError) -> typer.Exit:
    """Print an error's code and message on stderr; raise the result to exit with status 1."""
    err_console.print(f"[red]error[/red] {exc.code}: {escape(exc.message)}")
    return typer.Exit(code=1)


def cli_principal() -> Principal:
    """Who a change from the command line is recorded as: `cli:<OS user name>`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment nor in the password database
        user = "unknown"
    name = CLI_ACTOR + user
    return Principal(key_id=name[:32], name=name[:200], scope=Scope.admin, environment=None)


def fail_with_hints(hints: Mapping[str, str]) -> ErrorExit:
    """`fail`, then what to do next for a code in `hints`."""

    def exit_with(exc: ReeloutError) -> typer.Exit:
        exit_ = fail(exc)
        if exc.code in hints:
            err_console.print(escape(hints[exc.code]))
        return exit_

    return exit_with


@contextmanager
def command_runtime(*first_start: FirstStart, exit_with: ErrorExit = fail) -> Iterator[Runtime]:
    """The runtime for one command; a ReeloutError ends it with `exit_with`'s error exit
    (status 1), after the transaction it broke off was rolled back."""
    try:
        with redirect_stdout(sys.stderr):  # a first start's admin-key notice never mixes into JSON
            rt = runtime(*first_start)
        try:
            yield rt
        finally:
            rt.db.dispose()
    except ReeloutError as exc:
        raise exit_with(exc) from None


def iso_time(text: str) -> datetime:
    """An ISO 8601 time as typed (no zone: UTC, as the API reads it); anything else is a usage
    error (status 2)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time; e.g. 2026-12-01 or 2026-12-01T09:00:00Z"
        ) from None


def table(*headers: str, whole: tuple[str, ...] = (), **options: Any) -> Table:
    """A Rich table whose `whole` columns (ids, URLs) fold onto more lines rather than being cut
    short on a narrow terminal, so they can be copied."""
    made = Table(**options)
    for header in headers:
        made.add_column(header, overflow="fold" if header in whole else "ellipsis")
    return made
