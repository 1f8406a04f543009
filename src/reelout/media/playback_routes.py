"""HTTP delivery of published media: `/media/{uid}/{version}/...` (HLS, MP4 fallback, poster)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from reelout.errors import Forbidden, NotFound, Unauthorized
from reelout.media import delivery, encode, playlists, signing, streaming
from reelout.media.context import MediaContext, MediaDep
from reelout.media.models import Video
from reelout.media.storage import LocalVersions, ObjectMedia

PREFIX = "/media"
router = APIRouter(tags=["playback"])


@dataclass(frozen=True)
class Policy:
    """What a video allows: which origins may read it, and whether a token is needed."""

    origins: list[str]
    signed: bool


def _policy(rt: MediaContext, uid: str) -> Policy:
    with rt.db.read() as session:
        video = session.get(Video, uid)
        if video is None or video.version is None:
            raise NotFound("no such video, or it is not ready", code="VIDEO_NOT_FOUND")
        return Policy(list(video.allowed_origins or []), bool(video.require_signed_urls))


async def _located(rt: MediaContext, uid: str, name: str) -> tuple[delivery.Kind, Policy]:
    kind = delivery.kind_of(name)
    if kind is None:
        raise NotFound("no such media file", code="MEDIA_NOT_FOUND")
    return kind, await run_in_threadpool(_policy, rt, uid)


def _checked_token(rt: MediaContext, uid: str, token: str | None) -> int:
    """Seconds of life left in a valid token; 401/403 with a code otherwise."""
    verdict = signing.check(rt.playback_key, uid, token, int(rt.clock.now().timestamp()))
    if verdict.problem is signing.TokenProblem.missing:
        raise Unauthorized(
            "this video needs a signed URL: get a token from POST /api/v1/videos/{uid}/token",
            code=verdict.problem.value,
        )
    if verdict.problem is not None:
        raise Forbidden(
            "the playback token is not valid for this video, or it has expired; get a new one",
            code=verdict.problem.value,
        )
    return verdict.seconds_left


@router.api_route(
    PREFIX + "/{uid}/{version}/{name:path}", methods=["GET", "HEAD"], summary="A published file"
)
async def media_file(
    uid: str,
    version: str,
    name: str,
    request: Request,
    rt: MediaDep,
    max_height: Annotated[int | None, Query(ge=1, le=10000)] = None,
    token: str | None = None,
) -> Response:
    kind, policy = await _located(rt, uid, name)
    store = rt.media_store
    if isinstance(store, ObjectMedia):
        return await _object_file(
            rt, store, uid, version, name, request, kind, policy, token, max_height
        )
    path = store.version_file(uid, version, name) if isinstance(store, LocalVersions) else None
    if path is None:
        raise NotFound("no such media file", code="MEDIA_NOT_FOUND")
    cache = kind.cache_control
    if policy.signed:  # cached copies must not outlive the token
        left = _checked_token(rt, uid, token)
        cache = delivery.bounded_cache(cache, left)
    stat = path.stat()
    rewrite = _rewrite(name, max_height, token if policy.signed else None)
    etag = delivery.entity_tag(stat)
    etag = etag if rewrite is None else _variant_tag(etag, rewrite)
    headers = {"Cache-Control": cache, "ETag": etag}
    headers |= delivery.cors_headers(request.headers.get("origin"), policy.origins)
    if delivery.not_modified(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if rewrite is not None:
        text = _rewritten(path.read_text(), rewrite)
        return Response(text, media_type=kind.media_type, headers=headers)
    accel = rt.settings.media_accel_redirect
    if accel:  # nginx sends the file (sendfile, ranges); we only decided who may have it
        headers["X-Accel-Redirect"] = f"{accel}/{uid}/{version}/{name}"
        return Response(media_type=kind.media_type, headers=headers)
    return FileResponse(path, media_type=kind.media_type, headers=headers, stat_result=stat)


async def _object_file(
    rt: MediaContext,
    store: ObjectMedia,
    uid: str,
    version: str,
    name: str,
    request: Request,
    kind: delivery.Kind,
    policy: Policy,
    token: str | None,
    max_height: int | None,
) -> Response:
    """A published file in object storage: streamed, redirected to, or (playlists) rewritten."""
    obj = await run_in_threadpool(store.version_object, uid, version, name)
    if obj is None:
        raise streaming.not_found()
    left = _checked_token(rt, uid, token) if policy.signed else None
    cache = kind.cache_control if left is None else delivery.bounded_cache(kind.cache_control, left)
    headers = {"Cache-Control": cache}
    headers |= delivery.cors_headers(request.headers.get("origin"), policy.origins)
    s = rt.settings
    if s.media_delivery == "redirect" and kind.media_type != delivery.PLAYLIST_TYPE:
        return await streaming.redirect(
            store,
            obj,
            public_base=s.media_public_base_url,
            presign_seconds=s.media_presign_seconds,
            token_left=left,
            headers=headers,
        )
    rewrite = _rewrite(name, max_height, token if policy.signed else None)
    headers["ETag"] = obj.etag if rewrite is None else _variant_tag(obj.etag, rewrite)
    if delivery.not_modified(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    if rewrite is None:
        return await streaming.stream(store, obj, request, kind.media_type, headers)
    text = await run_in_threadpool(store.read_text, obj.key)
    if text is None:
        raise streaming.not_found()
    return Response(_rewritten(text, rewrite), media_type=kind.media_type, headers=headers)


@dataclass(frozen=True)
class Rewrite:
    """How a playlist is served differently from its file: capped, and/or carrying a token."""

    max_height: int | None
    token: str | None


def _rewrite(name: str, max_height: int | None, token: str | None) -> Rewrite | None:
    is_master = name == encode.HLS_MASTER
    is_playlist = is_master or name.endswith("/" + encode.MEDIA_PLAYLIST)
    cap = max_height if is_master else None
    if not is_playlist or (cap is None and token is None):
        return None
    return Rewrite(cap, token)


def _rewritten(text: str, rewrite: Rewrite) -> str:
    if rewrite.max_height is not None:
        text = playlists.cap_master(text, rewrite.max_height)
    if rewrite.token is not None:
        text = playlists.rewrite_media_playlist(text, f"token={rewrite.token}")
    return text


def _variant_tag(base: str, rewrite: Rewrite) -> str:
    extra = hashlib.sha256(f"{rewrite.max_height}|{rewrite.token}".encode()).hexdigest()[:12]
    return delivery.entity_tag_variant(base, extra)


@router.options(PREFIX + "/{uid}/{version}/{name:path}", include_in_schema=False)
async def media_preflight(
    uid: str, version: str, name: str, request: Request, rt: MediaDep
) -> Response:
    _, policy = await _located(rt, uid, name)
    headers = delivery.cors_headers(request.headers.get("origin"), policy.origins)
    headers |= {
        "Access-Control-Allow-Methods": "GET, HEAD",
        "Access-Control-Allow-Headers": "Range",
    }
    headers["Access-Control-Max-Age"] = "86400"
    return Response(status_code=204, headers=headers)
