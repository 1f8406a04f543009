"""Pieces every `reelout` command shares: the Rich consoles, the runtime and the error exit."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from reelout.config import Settings
from reelout.errors import ReeloutError
from reelout.runtime import Runtime
from reelout.startup import FirstStart, prepare

console = Console()
err_console = Console(stderr=True)


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
