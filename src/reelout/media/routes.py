"""HTTP routes for videos: creator uploads, read, list, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from reelout.auth.deps import AdminDep, RuntimeDep
from reelout.media import service
from reelout.media.schemas import (
    CreatorUpload,
    CreatorUploadRequest,
    Stage,
    UploadLink,
    VideoOut,
    VideoPage,
    VideoState,
)
from reelout.runtime import Runtime
from reelout.urls import base_url

router = APIRouter(prefix="/api/v1/videos", tags=["videos"])


def start_creator_upload(
    rt: Runtime,
    request: Request,
    body: CreatorUploadRequest,
    order_id: str | None = None,
    stage: Stage | None = None,
) -> CreatorUpload:
    """Make a video waiting for its upload, and a one-time token to upload it with over tus."""
    settings = rt.settings
    max_bytes = min(body.max_bytes or settings.tus_max_size, settings.tus_max_size)
    with rt.db.session() as session:
        video = service.create_video(
            session,
            rt.clock,
            source="tus",
            meta=body.meta,
            order_id=order_id,
            stage=stage,
            max_bytes=max_bytes,
        )
        token, expires = service.issue_upload_token(
            session, rt.clock, video, body.expires_in or settings.upload_token_ttl_seconds
        )
    url = base_url(request, settings) + "/files/"
    return CreatorUpload(
        uid=video.uid,
        upload=UploadLink(url=url, token=token, expires_at=expires, max_bytes=max_bytes),
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def create_video(
    body: CreatorUploadRequest, request: Request, rt: RuntimeDep, _: AdminDep
) -> CreatorUpload:
    return start_creator_upload(rt, request, body)


@router.get("")
def list_videos(
    rt: RuntimeDep,
    _: AdminDep,
    state: VideoState | None = None,
    order_id: str | None = None,
    stage: Stage | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> VideoPage:
    with rt.db.session() as session:
        return service.list_videos(
            session, state=state, order_id=order_id, stage=stage, limit=limit, cursor=cursor
        )


@router.get("/{uid}")
def get_video(uid: str, rt: RuntimeDep, _: AdminDep) -> VideoOut:
    with rt.db.session() as session:
        return service.to_schema(service.get_video(session, uid))


@router.delete("/{uid}", status_code=status.HTTP_204_NO_CONTENT)
def delete_video(uid: str, rt: RuntimeDep, _: AdminDep) -> None:
    with rt.db.session() as session:
        service.delete_video(session, rt.media_store, uid)
