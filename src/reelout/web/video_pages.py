"""The console's Videos pages: the filtered list, one video (player, renditions, history,
deliveries) and its actions (re-encode, delete, a signed playback URL), through the media service."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Protocol, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response

from reelout.context import Signing
from reelout.deps import app_context
from reelout.errors import BadRequest
from reelout.media import history
from reelout.media import service as media
from reelout.media.context import MediaContext
from reelout.media.schemas import Stage, VideoOut, VideoState
from reelout.urls import base_url
from reelout.web.pages import (
    PREFIX,
    ActionViewer,
    ConsoleRoute,
    PageViewer,
    is_htmx,
    render,
    telemetry_config,
)
from reelout.webhooks import service as webhooks

router = APIRouter(prefix=PREFIX + "/videos", include_in_schema=False, route_class=ConsoleRoute)
PAGE_SIZE = 25
DELIVERIES_SHOWN = 20
BUSY = (VideoState.uploading, VideoState.queued, VideoState.processing)
# the list's filters: the same query parameters as GET /api/v1/videos
FILTERS = ("order_id", "stage", "state", "created_from", "created_before", "search", "limit")
MAX_PAGE_SIZE = 500


class VideoPagesContext(MediaContext, Signing, Protocol):
    """The media domain's context plus the server's secret the console's session needs."""


VideosDep = Annotated[VideoPagesContext, Depends(app_context)]


E = TypeVar("E", bound=StrEnum)


def _choice(kind: type[E], value: str, name: str) -> E | None:
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        valid = ", ".join(item.value for item in kind)
        raise BadRequest(
            f"{name} {value!r} is not one of {valid}", code="INVALID_FILTER", details={name: value}
        ) from None


def _when(value: str, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(
            f"{name} {value!r} is not a date (YYYY-MM-DD)",
            code="INVALID_FILTER",
            details={name: value},
        ) from None


def video_filter(chosen: dict[str, str]) -> media.VideoFilter:
    """The list's filters as the media service takes them; 400 INVALID_FILTER in words."""
    return media.VideoFilter(
        state=_choice(VideoState, chosen["state"], "state"),
        order_id=chosen["order_id"] or None,
        stage=_choice(Stage, chosen["stage"], "stage"),
        created_from=_when(chosen["created_from"], "created_from"),
        created_before=_when(chosen["created_before"], "created_before"),
        search=chosen["search"] or None,
    )


def _limit(value: str) -> int:
    if not value:
        return PAGE_SIZE
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise BadRequest(
            f"limit {value!r} is not a number from 1 to {MAX_PAGE_SIZE}", code="INVALID_FILTER"
        )
    return int(value)


def list_url(chosen: dict[str, str], cursor: str | None = None) -> str:
    """The list's address with its filters and page size (those set), and a page's cursor."""
    query = {name: value for name, value in chosen.items() if value}
    if cursor:
        query["cursor"] = cursor
    return f"{PREFIX}/videos" + (f"?{urlencode(query)}" if query else "")


@router.get("")
def videos_page(request: Request, rt: VideosDep, viewer: PageViewer) -> Response:
    """Videos newest first, filtered like GET /api/v1/videos; htmx asks for the next rows only."""
    params = request.query_params
    chosen = {name: params.get(name, "").strip() for name in FILTERS}
    cursor = params.get("cursor") or None
    with rt.db.read() as session:
        page = media.list_videos(
            session,
            video_filter(chosen),
            limit=_limit(chosen["limit"]),
            cursor=cursor,
            base_url=base_url(request, rt.settings),
        )
    more = list_url(chosen, page.next_cursor) if page.next_cursor else None
    context: dict[str, Any] = {"videos": page.videos, "more": more}
    if is_htmx(request):
        return render(request, rt, "_video_rows.html", context, viewer=viewer)
    context |= {
        "chosen": chosen,
        "stages": [s.value for s in Stage],
        "states": [s.value for s in VideoState],
        "first_page": list_url(chosen) if cursor else None,
        "deleted": params.get("deleted"),
    }
    return render(request, rt, "videos.html", context, viewer=viewer, section="videos")


def _player(rt: VideosDep, video: VideoOut, base: str) -> dict[str, Any] | None:
    """What the page's player plays: the video's URLs, signed when the video requires it."""
    if video.playback is None:
        return None
    if not video.require_signed_urls:
        return {
            "uid": video.uid,
            "playback": video.playback.model_dump(),
            "thumbnail": video.thumbnail,
        }
    with rt.db.read() as session:
        row = media.get_video(session, video.uid)
        ttl = rt.settings.playback_token_ttl_seconds
        signed = media.playback_token(row, base, rt.playback_key, rt.clock.now(), ttl)
    playback = {"hls": signed.hls, "mp4": signed.mp4}
    return {"uid": video.uid, "playback": playback, "thumbnail": signed.poster}


@router.get("/{uid}")
def video_page(uid: str, request: Request, rt: VideosDep, viewer: PageViewer) -> Response:
    """One video: player, poster, renditions, history, deliveries and its actions."""
    base = base_url(request, rt.settings)
    with rt.db.read() as session:
        video = media.to_schema(media.get_video(session, uid), base)
        changes = history.history(session, uid)
        deliveries = webhooks.list_deliveries(
            session, webhooks.DeliveryFilter(video_uid=uid), limit=DELIVERIES_SHOWN
        )
    player = _player(rt, video, base)
    context = {
        "video": video,
        "busy": video.status.state in BUSY,
        "history": changes,
        "deliveries": deliveries,
        "player": player,
        "token_ttl": rt.settings.playback_token_ttl_seconds,
        "telemetry": telemetry_config(rt, viewer) if player else None,
    }
    return render(request, rt, "video.html", context, viewer=viewer, section="videos")


@router.get("/{uid}/state")
def video_state(uid: str, request: Request, rt: VideosDep, viewer: PageViewer) -> Response:
    """The state line alone (the page polls it while the video is busy)."""
    with rt.db.read() as session:
        video = media.to_schema(media.get_video(session, uid), base_url(request, rt.settings))
    context = {"video": video, "busy": video.status.state in BUSY}
    return render(request, rt, "_video_state.html", context, viewer=viewer)


@router.post("/{uid}/reprocess")
def reprocess(uid: str, request: Request, rt: VideosDep, viewer: ActionViewer) -> Response:
    """Re-encode, as POST /api/v1/videos/{uid}/reprocess: the state line, now queued."""
    with rt.db.session() as session:
        row = media.reprocess(session, rt.clock, rt.media_store, uid, who=viewer.who)
        video = media.to_schema(row, base_url(request, rt.settings))
    context = {"video": video, "busy": True, "requeued": True}
    return render(request, rt, "_video_state.html", context, viewer=viewer)


@router.delete("/{uid}")
def delete(uid: str, rt: VideosDep, viewer: ActionViewer) -> Response:
    """Delete, as DELETE /api/v1/videos/{uid}; then back to the list, which says so."""
    with rt.db.session() as session:
        media.delete_video(session, rt.clock, rt.media_store, uid, who=viewer.who)
    target = f"{PREFIX}/videos?{urlencode({'deleted': uid})}"
    return Response(status_code=204, headers={"HX-Redirect": target})


@router.post("/{uid}/token")
def playback_url(uid: str, request: Request, rt: VideosDep, viewer: ActionViewer) -> Response:
    """A signed playback URL to copy, as POST /api/v1/videos/{uid}/token (default lifetime)."""
    ttl = rt.settings.playback_token_ttl_seconds
    with rt.db.read() as session:
        row = media.get_video(session, uid)
        signed = media.playback_token(
            row, base_url(request, rt.settings), rt.playback_key, rt.clock.now(), ttl
        )
    return render(request, rt, "_playback_url.html", {"signed": signed}, viewer=viewer)
