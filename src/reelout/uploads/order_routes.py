"""Order-stage routes: attach videos to an order stage (inbound, work, outbound) by any path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from reelout.auth.deps import AdminDep
from reelout.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from reelout.jsondepth import too_deep, too_deep_message
from reelout.media import service as media
from reelout.media.schemas import CreatorUploadRequest, Stage, VideoPage
from reelout.uploads import direct
from reelout.uploads.context import UploadsContext, UploadsDep
from reelout.urls import base_url

router = APIRouter(prefix="/api/v1/orders/{order_id}/{stage}/videos", tags=["orders"])
DEPRECATION = {
    "Deprecation": "true",
    "Link": '</api/v1/orders/{order}/{stage}/videos>; rel="successor-version"',
}


def _stage(value: str) -> Stage:
    try:
        return Stage(value)
    except ValueError:
        valid = [s.value for s in Stage]
        raise NotFound(
            f"unknown stage {value!r}; valid stages are {', '.join(valid)}",
            code="UNKNOWN_STAGE",
            details={"valid_stages": valid},
        ) from None


@router.get("")
def list_stage_videos(
    order_id: str,
    stage: str,
    request: Request,
    rt: UploadsDep,
    _: AdminDep,
    limit: int = 50,
    cursor: str | None = None,
) -> VideoPage:
    with rt.db.session() as session:
        return media.list_videos(
            session,
            media.VideoFilter(order_id=order_id, stage=_stage(stage)),
            limit=min(max(limit, 1), 500),
            cursor=cursor,
            base_url=base_url(request, rt.settings),
        )


@router.post("", status_code=201, response_model=None)
async def add_stage_video(
    order_id: str, stage: str, request: Request, rt: UploadsDep, _: AdminDep
) -> Response:
    """JSON {"upload": "tus"} → tus link; multipart or video/* → direct; file_base64 → legacy."""
    where = _stage(stage)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return await _json_body(rt, request, order_id, where)
    if content_type == "multipart/form-data":
        return await _multipart(rt, request, order_id, where)
    if content_type.startswith("video/") or content_type == "application/octet-stream":
        meta = {"content_type": content_type, **_filename(request)}
        return await _store(
            rt, order_id, where, request.stream(), meta=meta, expected=_content_length(request)
        )
    raise UnsupportedMediaType(
        "send application/json (tus link or legacy base64), multipart/form-data, or a video/* body",
        code="UNSUPPORTED_UPLOAD_TYPE",
    )


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def _filename(request: Request) -> dict[str, str]:
    name = request.headers.get("x-filename") or request.query_params.get("filename")
    return {"filename": name} if name else {}


def _created(body: dict[str, Any], uid: str, extra: dict[str, str] | None = None) -> Response:
    headers = {"Location": f"/api/v1/videos/{uid}", **(extra or {})}
    return JSONResponse(body, status_code=201, headers=headers)


def _check_json_size(body: bytearray, limit: int) -> None:
    if len(body) > limit:
        raise PayloadTooLarge(
            f"the request body is over {limit} bytes (REELOUT_JSON_MAX_BYTES); send a smaller "
            "one (a file goes as `file_base64`, multipart or the raw body instead)",
            code="BODY_TOO_LARGE",
        )


async def _json_body(rt: UploadsContext, request: Request, order_id: str, stage: Stage) -> Response:
    head = bytearray()
    chunks = request.stream()
    async for chunk in chunks:
        head += chunk
        if len(head) >= 4096 or b"file_base64" in head:
            break
    if b'"file_base64"' in head:
        return await _legacy(rt, bytes(head), chunks, order_id, stage, _content_length(request))
    async for chunk in chunks:
        head += chunk
        _check_json_size(head, rt.settings.json_max_bytes)
    _check_json_size(head, rt.settings.json_max_bytes)
    if too_deep(bytes(head), rt.settings.json_max_depth):
        raise BadRequest(too_deep_message(rt.settings.json_max_depth), code="JSON_TOO_DEEP")
    try:
        body = CreatorUploadRequest.model_validate_json(bytes(head) or b"{}")
    except ValueError as exc:
        raise BadRequest(
            f"the JSON body is not a valid upload request: {exc}", code="INVALID_JSON"
        ) from None
    files_url = base_url(request, rt.settings) + "/files/"
    with rt.db.session() as session:
        link = media.start_creator_upload(
            session, rt.clock, rt.settings, body, files_url, order_id, stage
        )
    return _created(link.model_dump(mode="json"), link.uid)


async def _store(
    rt: UploadsContext,
    order_id: str,
    stage: Stage,
    feed: AsyncIterator[bytes],
    *,
    meta: dict[str, Any] | None = None,
    late_meta: dict[str, Any] | None = None,
    legacy: bool = False,
    expected: int | None = None,
) -> Response:
    """Stream one upload into a new video of this order stage; 201 with the video."""
    limit, code = (
        (rt.settings.legacy_max_bytes, "LEGACY_UPLOAD_TOO_LARGE")
        if legacy
        else (rt.settings.direct_limit, "UPLOAD_TOO_LARGE")
    )
    video = await direct.receive(
        rt,
        source="legacy" if legacy else "direct",
        order_id=order_id,
        stage=stage,
        meta=meta or {},
        limit=limit,
        limit_code=code,
        feed=feed,
        late_meta=late_meta,
        expected=expected,
    )
    return _created(video.model_dump(mode="json"), video.uid, DEPRECATION if legacy else None)


async def _legacy(
    rt: UploadsContext, head: bytes, rest: Any, order_id: str, stage: Stage, expected: int | None
) -> Response:
    async def chunks() -> Any:
        yield head
        async for chunk in rest:
            yield chunk

    fields: dict[str, Any] = {}
    feed = direct.decode_legacy(chunks(), fields, rt.settings.json_max_depth)
    return await _store(rt, order_id, stage, feed, late_meta=fields, legacy=True, expected=expected)


async def _multipart(rt: UploadsContext, request: Request, order_id: str, stage: Stage) -> Response:
    from python_multipart.multipart import parse_options_header

    _, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart/form-data needs a boundary", code="INVALID_MULTIPART")
    fields: dict[str, Any] = {}
    feed = direct.multipart_file(request.stream(), boundary, fields)
    return await _store(
        rt, order_id, stage, feed, late_meta=fields, expected=_content_length(request)
    )
