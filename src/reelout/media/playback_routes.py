"""HTTP delivery of published media: `/media/{uid}/{version}/...` (HLS, MP4 fallback, poster)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from reelout.auth.deps import RuntimeDep
from reelout.errors import NotFound
from reelout.media import delivery, encode, playlists
from reelout.media.models import Video
from reelout.media.storage import LocalVersions
from reelout.runtime import Runtime

PREFIX = "/media"
router = APIRouter(tags=["playback"])


def _allowed_origins(rt: Runtime, uid: str) -> list[str]:
    with rt.db.read() as session:
        video = session.get(Video, uid)
        if video is None or video.version is None:
            raise NotFound("no such video, or it is not ready", code="VIDEO_NOT_FOUND")
        return list(video.allowed_origins or [])


async def _located(
    rt: Runtime, uid: str, version: str, name: str
) -> tuple[delivery.Kind, list[str]]:
    kind = delivery.kind_of(name)
    if kind is None:
        raise NotFound("no such media file", code="MEDIA_NOT_FOUND")
    return kind, await run_in_threadpool(_allowed_origins, rt, uid)


@router.api_route(
    PREFIX + "/{uid}/{version}/{name:path}", methods=["GET", "HEAD"], summary="A published file"
)
async def media_file(
    uid: str,
    version: str,
    name: str,
    request: Request,
    rt: RuntimeDep,
    max_height: Annotated[int | None, Query(ge=1, le=10000)] = None,
) -> Response:
    kind, origins = await _located(rt, uid, version, name)
    store = rt.media_store
    path = store.version_file(uid, version, name) if isinstance(store, LocalVersions) else None
    if path is None:
        raise NotFound("no such media file", code="MEDIA_NOT_FOUND")
    stat = path.stat()
    etag = delivery.entity_tag(stat)
    capped = max_height is not None and name == encode.HLS_MASTER
    if capped:
        etag = f'{etag[:-1]}-h{max_height}"'
    headers = {"Cache-Control": kind.cache_control, "ETag": etag}
    headers |= delivery.cors_headers(request.headers.get("origin"), origins)
    if delivery.not_modified(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if capped:
        assert max_height is not None
        text = playlists.cap_master(path.read_text(), max_height)
        return Response(text, media_type=kind.media_type, headers=headers)
    accel = rt.settings.media_accel_redirect
    if accel:  # nginx sends the file (sendfile, ranges); we only decided who may have it
        headers["X-Accel-Redirect"] = f"{accel}/{uid}/{version}/{name}"
        return Response(media_type=kind.media_type, headers=headers)
    return FileResponse(path, media_type=kind.media_type, headers=headers, stat_result=stat)


@router.options(PREFIX + "/{uid}/{version}/{name:path}", include_in_schema=False)
async def media_preflight(
    uid: str, version: str, name: str, request: Request, rt: RuntimeDep
) -> Response:
    _, origins = await _located(rt, uid, version, name)
    headers = delivery.cors_headers(request.headers.get("origin"), origins)
    headers |= {
        "Access-Control-Allow-Methods": "GET, HEAD",
        "Access-Control-Allow-Headers": "Range",
    }
    headers["Access-Control-Max-Age"] = "86400"
    return Response(status_code=204, headers=headers)
