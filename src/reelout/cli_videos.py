"""`reelout videos`: list, show, history, re-encode, delete and sign a playback URL, calling the
same media services as GET/POST/DELETE /api/v1/videos and the console's Videos pages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from pydantic import BaseModel
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from reelout.cli_common import (
    AsJson,
    ChangeReason,
    cli_principal,
    command_runtime,
    console,
    err_console,
    fail_with_hints,
    iso_time,
)
from reelout.cli_common import table as cli_table
from reelout.errors import BadRequest
from reelout.flags.admin.service import seed_on_start
from reelout.media import history, service
from reelout.media.schemas import Rendition, Stage, VideoOut, VideoState
from reelout.runtime import Runtime
from reelout.urls import configured_base_url

videos_app = typer.Typer(help="List, inspect, re-encode and delete videos.", no_args_is_help=True)

HINTS = {
    "VIDEO_NOT_FOUND": "See the videos with `reelout videos list`.",
    "VIDEO_BUSY": "See its state with `reelout videos show UID`.",
    "VIDEO_NOT_READY": "See its state with `reelout videos show UID`.",
    "INVALID_CURSOR": "Pass the cursor a previous `reelout videos list` printed.",
}
MAX_SEARCH_CHARS = 200  # as GET /api/v1/videos

Uid = Annotated[str, typer.Argument(help="The video's uid (see `reelout videos list`).")]


def _http_url(text: str | None) -> str | None:
    if text is not None and urlsplit(text).scheme not in ("http", "https"):
        raise typer.BadParameter(f"{text!r} is not an http(s) URL; e.g. https://media.example.com")
    return text


BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        callback=_http_url,
        help="Scheme, host and prefix clients reach this server at (default: REELOUT_PUBLIC_URL).",
    ),
]


def _search(text: str | None) -> str | None:
    if text is not None and len(text) > MAX_SEARCH_CHARS:
        raise typer.BadParameter(f"at most {MAX_SEARCH_CHARS} characters")
    return text


@contextmanager
def _videos() -> Iterator[Runtime]:
    with command_runtime(seed_on_start, exit_with=fail_with_hints(HINTS)) as rt:
        yield rt


def _echo_json(value: BaseModel) -> None:
    typer.echo(value.model_dump_json(indent=2))


def _when(at: datetime | None) -> str:
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M:%S}"


def _state(video: VideoOut) -> Text:
    status = video.status
    text = Text(status.state.value, style={"ready": "green", "error": "red"}.get(status.state, ""))
    if status.pct_complete is not None and status.state == VideoState.processing:
        text.append(f" {status.pct_complete:.0f} %")
    if status.error_code:
        text.append(f" {status.error_code}", style="red")
    return text


def _filename(video: VideoOut) -> str:
    name = video.meta.get("filename")
    return name if isinstance(name, str) else "-"


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f} s"


def _videos_table(videos: list[VideoOut]) -> Table:
    table = cli_table(
        "uid", "file", "order", "stage", "state", "duration", "created (UTC)", whole=("uid",)
    )
    for video in videos:
        table.add_row(
            video.uid,
            Text(_filename(video)),
            Text(video.order_id or "-"),
            video.stage.value if video.stage else "-",
            _state(video),
            _duration(video.duration),
            _when(video.created),
        )
    if not videos:
        table.caption = "no videos match"
    return table


@videos_app.command("list")
def list_videos(
    state: Annotated[VideoState | None, typer.Option(help="Only videos in this state.")] = None,
    order: Annotated[str | None, typer.Option("--order", help="Only this order's videos.")] = None,
    stage: Annotated[Stage | None, typer.Option(help="Only this order stage's videos.")] = None,
    created_from: Annotated[
        datetime | None,
        typer.Option(parser=iso_time, metavar="TIME", help="Created at or after (no zone: UTC)."),
    ] = None,
    created_before: Annotated[
        datetime | None,
        typer.Option(parser=iso_time, metavar="TIME", help="Created before (no zone: UTC)."),
    ] = None,
    search: Annotated[
        str | None,
        typer.Option(callback=_search, help="A uid or its start, or part of the file name."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many videos.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="The next page's cursor.")] = None,
    base_url: BaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Videos newest first, filtered as GET /api/v1/videos filters them."""
    where = service.VideoFilter(state, order, stage, created_from, created_before, search)
    with _videos() as rt, rt.db.read() as session:
        base = base_url or configured_base_url(rt.settings)
        page = service.list_videos(session, where, limit=limit, cursor=cursor, base_url=base)
    if as_json:
        _echo_json(page)
        return
    console.print(_videos_table(page.videos))
    if page.next_cursor:
        console.print(f"more videos: --cursor {page.next_cursor}")


def _details(video: VideoOut) -> Table:
    table = Table.grid(padding=(0, 2))
    rows: list[tuple[str, Any]] = [
        ("uid", video.uid),
        ("state", _state(video)),
        ("error", Text(video.status.error_text or "-")),
        ("file", Text(_filename(video))),
        ("order / stage", Text(f"{video.order_id or '-'} / {video.stage or '-'}")),
        ("source", video.source),
        ("created (UTC)", _when(video.created)),
        ("modified (UTC)", _when(video.modified)),
        ("size", "-" if video.size is None else f"{video.size} bytes"),
        ("duration", _duration(video.duration)),
        ("input", f"{video.input.width}x{video.input.height}" if video.input else "-"),
        ("signed URLs", "required" if video.require_signed_urls else "not required"),
        ("allowed origins", Text(", ".join(video.allowed_origins) or "any")),
        ("original sha256", video.original_sha256 or "-"),
        ("HLS", Text(video.playback.hls if video.playback else "-")),
        ("MP4", Text(video.playback.mp4 if video.playback else "-")),
        ("poster", Text(video.thumbnail or "-")),
    ]
    for name, value in rows:
        table.add_row(Text(name, style="bold"), value)
    return table


def _renditions(renditions: list[Rendition]) -> Table:
    table = Table(
        "name", "resolution", "peak kbit/s", "average kbit/s", "fps", "codecs", title="renditions"
    )
    for r in renditions:
        table.add_row(
            r.name,
            f"{r.width}x{r.height}",
            f"{r.bandwidth / 1000:.0f}",
            f"{r.average_bandwidth / 1000:.0f}",
            f"{r.frame_rate:g}",
            Text(r.codecs),
        )
    if not renditions:
        table.caption = "none yet"
    return table


@videos_app.command("show")
def show(uid: Uid, base_url: BaseUrl = None, as_json: AsJson = False) -> None:
    """One video: its state, file, sizes, playback URLs and renditions (GET /api/v1/videos/UID)."""
    with _videos() as rt, rt.db.read() as session:
        base = base_url or configured_base_url(rt.settings)
        video = service.to_schema(service.get_video(session, uid), base)
    if as_json:
        _echo_json(video)
        return
    console.print(_details(video))
    console.print(_renditions(video.renditions))


@videos_app.command("history")
def state_history(uid: Uid, as_json: AsJson = False) -> None:
    """Every state the video has been in, oldest first, with why (GET /api/v1/videos/UID/history)."""
    with _videos() as rt, rt.db.read() as session:
        service.get_video(session, uid)
        changes = history.history(session, uid)
    if as_json:
        _echo_json(changes)
        return
    table = Table("at (UTC)", "from", "to", "attempt", "error", "reason", title=uid)
    for change in changes.changes:
        table.add_row(
            _when(change.at),
            change.from_state.value if change.from_state else "-",
            change.to_state.value,
            "-" if change.attempt is None else str(change.attempt),
            change.error_code or "-",
            Text(change.reason or ""),
        )
    console.print(table)


@videos_app.command("reencode")
def reencode(uid: Uid, reason: ChangeReason = None) -> None:
    """Encode the original again into a new version; the current one plays until it is out
    (POST /api/v1/videos/UID/reprocess)."""
    with _videos() as rt, rt.db.session() as session:
        service.reprocess(
            session, rt.clock, rt.media_store, uid, who=cli_principal(), reason=reason
        )
    console.print(f"re-encode of {uid} queued; the current version plays until the new one is out")


@videos_app.command("delete")
def delete(
    uid: Uid,
    reason: ChangeReason = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a video and every file of it (DELETE /api/v1/videos/UID)."""
    with _videos() as rt:
        if not yes:
            with rt.db.read() as session:
                name = _filename(service.to_schema(service.get_video(session, uid)))
            typer.confirm(f"Delete video {uid} ({name}) and all its files?", abort=True, err=True)
        with rt.db.session() as session:
            service.delete_video(
                session, rt.clock, rt.media_store, uid, who=cli_principal(), reason=reason
            )
    console.print(f"deleted video {uid}")


def _public_base(rt: Runtime, given: str | None) -> str:
    """Where viewers reach this server: --base-url, else REELOUT_PUBLIC_URL; never guessed."""
    base = given or rt.settings.public_url
    if not base:
        raise BadRequest(
            "no public URL is configured, so a playback URL cannot be made: set "
            "REELOUT_PUBLIC_URL, or pass --base-url https://media.example.com",
            code="PUBLIC_URL_REQUIRED",
        )
    return base.rstrip("/")


@videos_app.command("url")
def url(
    uid: Uid,
    ttl: Annotated[
        int | None,
        typer.Option(
            "--ttl",
            min=60,
            help="Seconds the URL lasts, rounded up to 5 minutes "
            "(default: REELOUT_PLAYBACK_TOKEN_TTL_SECONDS).",
        ),
    ] = None,
    base_url: BaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """A signed playback URL of a ready video: the HLS master with its token
    (POST /api/v1/videos/UID/token)."""
    with _videos() as rt:
        base, seconds = _public_base(rt, base_url), service.token_ttl(rt.settings, ttl)
        with rt.db.read() as session:
            video = service.get_video(session, uid)
            signed = service.playback_token(video, base, rt.playback_key, rt.clock.now(), seconds)
    if as_json:
        _echo_json(signed)
        return
    err_console.print(
        f"valid until {signed.expires_at:%Y-%m-%d %H:%M:%S} UTC; MP4: {escape(signed.mp4)}"
    )
    typer.echo(signed.hls)
