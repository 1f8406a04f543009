"""`reelout upload`: the command line over `reelout.client.upload`, with Rich progress and a summary."""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as Bars
from rich.table import Table

if TYPE_CHECKING:
    from reelout.client.uploader import Progress, UploadResult

UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
}
NO_KEY = "no key: pass --key, set REELOUT_KEY, or run where data/admin.key is (REELOUT_DATA_DIR)"


class StageName(StrEnum):
    inbound = "inbound"
    work = "work"
    outbound = "outbound"


def parse_size(text: str) -> int:
    """'8MiB', '512k', '1.5MB', '1048576' → bytes (k/M/G alone are binary, like KiB/MiB/GiB)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match[2].lower() if match else ""
    if match is None or unit not in UNITS or float(match[1]) * UNITS[unit] < 1:
        raise typer.BadParameter(
            f"{text!r} is not a size; try 8MiB, 512KiB or 1048576", param_hint="--chunk-size"
        )
    return int(float(match[1]) * UNITS[unit])


def resolve_key(key: str | None) -> str:
    """--key / REELOUT_KEY, else the admin key a local `reelout serve` saved on first start."""
    if key:
        return key
    key_file = Path(os.environ.get("REELOUT_DATA_DIR", "data")) / "admin.key"
    if key_file.is_file() and (saved := key_file.read_text("utf-8").strip()):
        return saved
    raise typer.BadParameter(NO_KEY, param_hint="--key")


def upload(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Video files to upload.",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ],
    server: Annotated[
        str, typer.Option(envvar="REELOUT_URL", help="Reelout base URL.")
    ] = "http://127.0.0.1:8000",
    key: Annotated[
        str | None,
        typer.Option(
            envvar="REELOUT_KEY",
            show_default=False,
            help="Admin API key (else ./data/admin.key when present).",
        ),
    ] = None,
    order: Annotated[str | None, typer.Option(help="Attach to this order (with --stage).")] = None,
    stage: Annotated[StageName | None, typer.Option(help="Order stage (with --order).")] = None,
    chunk_size: Annotated[
        str, typer.Option(help="Bytes per PATCH, e.g. 8MiB, 512KiB (held in memory per file).")
    ] = "8MiB",
    parallel: Annotated[int, typer.Option(min=1, max=16, help="Files uploaded at once.")] = 1,
    retries: Annotated[
        int, typer.Option(min=0, help="Retries per request on network errors and 5xx/409/423.")
    ] = 5,
) -> None:
    """Upload video files over tus: resumable (run again to resume), retried, checksummed."""
    from reelout.client.uploader import upload as upload_files  # tuspy loads only when needed

    if (order is None) != (stage is None):
        raise typer.BadParameter("--order and --stage go together", param_hint="--order/--stage")
    size = parse_size(chunk_size)
    api_key = resolve_key(key)
    out, err = Console(), Console(stderr=True)
    with Bars(*_columns(), console=err) as bars:
        board = _Board(bars, files)
        try:
            results = upload_files(
                files,
                server=server,
                key=api_key,
                order=order,
                stage=stage.value if stage else None,
                chunk_size=size,
                parallel=parallel,
                retries=retries,
                progress=board.update,
            )
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]: run the same command again to resume")
            raise typer.Exit(130) from None
    _summary(out, results)
    if not all(result.ok for result in results):
        raise typer.Exit(1)


def _columns() -> tuple[ProgressColumn, ...]:
    return (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[note]}"),
    )


class _Board:
    """One progress bar per file, fed by the uploader's callback (from worker threads)."""

    NOTES = {"done": "[green]done", "failed": "[red]failed"}

    def __init__(self, bars: Bars, files: list[Path]) -> None:
        self.bars = bars
        self.tasks: dict[Path, TaskID] = {}
        for path in files:
            self.tasks.setdefault(path, bars.add_task(path.name, total=None, note="waiting"))

    def update(self, event: Progress) -> None:
        task = self.tasks[event.path]
        note = self.NOTES.get(event.state, event.note)
        if event.state == "resumed":  # start the rate and ETA from here, not from zero
            self.bars.reset(task, total=event.total, completed=event.done, note=note)
        else:
            self.bars.update(task, total=event.total, completed=event.done, note=note)


def _summary(console: Console, results: list[UploadResult]) -> None:
    table = Table(
        "file",
        "video uid",
        "size",
        "time",
        "rate",
        "resumed",
        "status",
        title="Upload summary",
        title_justify="left",
    )
    for res in results:
        table.add_row(
            res.path.name,
            res.video_uid or "-",
            decimal(res.size),
            f"{res.seconds:.1f} s",
            f"{decimal(int(res.rate))}/s" if res.ok else "-",
            f"from {decimal(res.resumed_from)}" if res.resumed_from else "no",
            _status(res),
        )
    console.print(table)
    for res in results:
        if not res.ok:
            console.print(f"[red]✗ {res.path}[/red]: {res.error}")
            if res.hint:
                console.print(f"  next: {res.hint}")
    failed = sum(not res.ok for res in results)
    console.print(f"{len(results) - failed} uploaded, {failed} failed")


def _status(res: UploadResult) -> str:
    if not res.ok:
        return "[red]failed[/red]"
    extras = ["sha256 verified"] if res.verified else []
    extras += [f"{res.retries} retries"] if res.retries else []
    return "[green]ok[/green]" + (f" ({', '.join(extras)})" if extras else "")
