"""HTTP routes for videos: creator uploads, read, list, state history, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from reelout.auth.deps import AdminDep, PlaybackSignerDep, PrincipalDep
from reelout.auth.service import require_playback_signer
from reelout.deps import ChangeReason
from reelout.media import history, service
from reelout.media.context import MediaDep
from reelout.media.recommend import Network
from reelout.media.schemas import (
    CreatorUpload,
    CreatorUploadRequest,
    PlaybackInfo,
    PlaybackToken,
    Stage,
    TokenRequest,
    VideoHistory,
    VideoOut,
    VideoPage,
    VideoState,
    VideoUpdate,
)
from reelout.urls import base_url

router = APIRouter(prefix="/api/v1/videos", tags=["videos"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_video(
    body: CreatorUploadRequest, request: Request, rt: MediaDep, _: AdminDep
) -> CreatorUpload:
    files_url = base_url(request, rt.settings) + "/files/"
    with rt.db.session() as session:
        return service.start_creator_upload(session, rt.clock, rt.settings, body, files_url)


@router.get("")
def list_videos(
    request: Request,
    rt: MediaDep,
    _: AdminDep,
    state: VideoState | None = None,
    order_id: str | None = None,
    stage: Stage | None = None,
    created_from: Annotated[
        datetime | None, Query(description="Created at or after (ISO 8601; no zone: UTC).")
    ] = None,
    created_before: Annotated[
        datetime | None, Query(description="Created before (ISO 8601; no zone: UTC).")
    ] = None,
    search: Annotated[
        str | None,
        Query(max_length=200, description="A uid or its start, or part of the file name."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> VideoPage:
    """Videos newest first, filtered; pass `next_cursor` back as `cursor` for the next page."""
    where = service.VideoFilter(state, order_id, stage, created_from, created_before, search)
    with rt.db.read() as session:
        return service.list_videos(
            session, where, limit=limit, cursor=cursor, base_url=base_url(request, rt.settings)
        )


@router.get("/{uid}")
def get_video(uid: str, request: Request, rt: MediaDep, _: AdminDep) -> VideoOut:
    with rt.db.read() as session:
        video = service.get_video(session, uid)
        return service.to_schema(video, base_url(request, rt.settings))


@router.get("/{uid}/history")
def video_history(uid: str, rt: MediaDep, _: AdminDep) -> VideoHistory:
    """Every state the video has been in, oldest first: when, from which state, why (an error's
    code and message) and which processing attempt made the change."""
    with rt.db.read() as session:
        service.get_video(session, uid)
        return history.history(session, uid)


@router.patch("/{uid}")
def update_video(
    uid: str, change: VideoUpdate, request: Request, rt: MediaDep, _: AdminDep
) -> VideoOut:
    """Change a video's meta, allowed origins or signed-URL requirement."""
    with rt.db.session() as session:
        video = service.update_video(session, rt.clock, uid, change)
        return service.to_schema(video, base_url(request, rt.settings))


@router.get("/{uid}/playback")
def playback(
    uid: str,
    request: Request,
    rt: MediaDep,
    who: PrincipalDep,
    network: Network | None = None,
    downlink_kbps: Annotated[float | None, Query(gt=0, le=10_000_000)] = None,
) -> PlaybackInfo:
    """What a player needs to start fast (any API key: admin or an app's client key; a video
    that requires signed URLs: an admin or server key, which mints the token)."""
    base = base_url(request, rt.settings)
    with rt.db.read() as session:
        video = service.get_video(session, uid)
        token = None
        if video.require_signed_urls:
            require_playback_signer(who)
            ttl = rt.settings.playback_token_ttl_seconds
            signed = service.playback_token(video, base, rt.playback_key, rt.clock.now(), ttl)
            token = signed.token
        return service.playback_info(video, base, network, downlink_kbps, token)


@router.post("/{uid}/token")
def playback_token(
    uid: str,
    request: Request,
    rt: MediaDep,
    _: PlaybackSignerDep,
    body: TokenRequest | None = None,
) -> PlaybackToken:
    """A signed-URL token for a video that requires one (an admin or server key)."""
    ttl = service.token_ttl(rt.settings, body.expires_in if body else None)
    with rt.db.read() as session:
        video = service.get_video(session, uid)
        return service.playback_token(
            video, base_url(request, rt.settings), rt.playback_key, rt.clock.now(), ttl
        )


@router.post("/{uid}/reprocess", status_code=status.HTTP_202_ACCEPTED)
def reprocess_video(
    uid: str, request: Request, rt: MediaDep, who: AdminDep, reason: ChangeReason = None
) -> VideoOut:
    """Encode the original again into a new version; the current one plays until it is out."""
    with rt.db.session() as session:
        video = service.reprocess(session, rt.clock, rt.media_store, uid, who=who, reason=reason)
        return service.to_schema(video, base_url(request, rt.settings))


@router.delete("/{uid}", status_code=status.HTTP_204_NO_CONTENT)
def delete_video(uid: str, rt: MediaDep, who: AdminDep, reason: ChangeReason = None) -> None:
    with rt.db.session() as session:
        service.delete_video(session, rt.clock, rt.media_store, uid, who=who, reason=reason)
