"""HTTP side of the tus 1.0.0 server at /files/: parse headers, call TusService, shape replies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelout.auth.deps import bearer_token
from reelout.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from reelout.media import streaming
from reelout.media.storage import LocalOriginals, ObjectMedia
from reelout.uploads import tus
from reelout.uploads.context import UploadsContext
from reelout.uploads.receiving import Body
from reelout.uploads.schemas import CreateRequest, Credential, UploadState
from reelout.uploads.service import CreatedThenFailed, TusService
from reelout.urls import base_url

PREFIX = "/files"
router = APIRouter(tags=["tus"])


class MethodOverrideMiddleware:
    """On /files: honour X-HTTP-Method-Override, demand Tus-Resumable, stamp it on replies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        override = headers.get("x-http-method-override")
        if override and scope["method"] == "POST":
            scope = dict(scope, method=override.upper())

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"tus-resumable", b"1.0.0")]
            await send(message)

        needs_version = scope["method"] not in ("OPTIONS", "GET")
        if needs_version and headers.get("tus-resumable") != tus.TUS_VERSION:
            await _version_mismatch(headers.get("tus-resumable"))(scope, receive, stamped)
            return
        await self.app(scope, receive, stamped)


def _version_mismatch(got: str | None) -> Response:
    from fastapi.responses import JSONResponse

    message = f"Tus-Resumable {got!r} is not supported" if got else "Tus-Resumable is missing"
    return JSONResponse(
        {"code": "UNSUPPORTED_TUS_VERSION", "message": message + "; this server speaks 1.0.0"},
        status_code=412,
        headers={"Tus-Version": tus.TUS_VERSION},
    )


async def service(request: Request) -> TusService:
    svc: TusService | None = getattr(request.app.state, "tus", None)
    if svc is None:
        rt: UploadsContext = request.app.state.runtime
        svc = request.app.state.tus = TusService(rt)
    return svc


ServiceDep = Annotated[TusService, Depends(service)]


async def credential(request: Request) -> Credential:
    return Credential(bearer_token(request))


CallerDep = Annotated[Credential, Depends(credential)]


def _header_int(request: Request, name: str) -> int | None:
    return tus.parse_non_negative(name, request.headers.get(name))


def _body(request: Request, required: bool) -> Body | None:
    """The request body as an offset stream, or None when there is none (creation)."""
    length = _header_int(request, "Content-Length")
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    has_body = chunked or (length or 0) > 0
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != tus.OFFSET_CONTENT_TYPE:
        if required or has_body:
            raise UnsupportedMediaType(
                f"Content-Type must be {tus.OFFSET_CONTENT_TYPE}", code="INVALID_CONTENT_TYPE"
            )
        return None
    if not (has_body or required):
        return None
    checksum = tus.parse_checksum(request.headers.get("upload-checksum"))
    return Body(request.stream(), length, checksum)


def _upload_url(request: Request, upload_id: str) -> str:
    rt: UploadsContext = request.app.state.runtime
    return f"{base_url(request, rt.settings)}{PREFIX}/{upload_id}"


def _state_headers(request: Request, state: UploadState) -> dict[str, str]:
    """Headers every reply about an upload carries (offset, expiry, concat, video id)."""
    headers = {
        "Upload-Offset": str(state.offset),
        "Upload-Expires": tus.http_date(state.expires_at),
    }
    if state.concat == "partial":
        headers["Upload-Concat"] = "partial"
    elif state.concat == "final":
        urls = (_upload_url(request, part) for part in state.concat_parts)
        headers["Upload-Concat"] = "final;" + " ".join(urls)
    if state.video_uid:
        headers[tus.VIDEO_ID_HEADER] = state.video_uid
    return headers


@router.options(PREFIX, include_in_schema=False)
@router.options(PREFIX + "/", include_in_schema=False)
@router.options(PREFIX + "/{upload_id}", include_in_schema=False)
async def options(request: Request) -> Response:
    rt: UploadsContext = request.app.state.runtime
    return Response(
        status_code=200,
        headers={
            "Tus-Version": tus.TUS_VERSION,
            "Tus-Extension": ",".join(tus.EXTENSIONS),
            "Tus-Max-Size": str(rt.settings.tus_max_size),
            "Tus-Checksum-Algorithm": ",".join(tus.CHECKSUM_ALGORITHMS),
        },
    )


@router.post(PREFIX, status_code=201, include_in_schema=False)
@router.post(PREFIX + "/", status_code=201, summary="Create a tus upload")
async def create(request: Request, svc: ServiceDep, who: CallerDep) -> Response:
    settings = svc.settings
    defer = request.headers.get("upload-defer-length")
    if defer is not None and defer.strip() != "1":
        raise BadRequest("Upload-Defer-Length must be 1", code="INVALID_UPLOAD_DEFER_LENGTH")
    headers = request.headers
    concat = tus.parse_concat(headers.get("upload-concat"))
    metadata = tus.parse_metadata(headers.get("upload-metadata"), settings.tus_metadata_max_bytes)
    length = _header_int(request, "Upload-Length")
    req = CreateRequest(length, defer is not None, metadata, concat)
    body = _body(request, required=False)
    if body and concat and not concat.partial:
        raise BadRequest("a final upload takes no body", code="INVALID_CONCAT")
    try:
        state = await svc.create(who, req, body)
    except CreatedThenFailed as failed:  # the upload exists: say where to resume it
        failed.cause.headers["Location"] = _upload_url(request, failed.upload_id)
        raise failed.cause from None
    reply = {**_state_headers(request, state), "Location": _upload_url(request, state.id)}
    return Response(status_code=201, headers=reply)


@router.head(PREFIX + "/{upload_id}", summary="Offset and length of an upload")
async def head(upload_id: str, request: Request, svc: ServiceDep, who: CallerDep) -> Response:
    state = await svc.head(who, upload_id)
    headers = _state_headers(request, state)
    headers["Cache-Control"] = "no-store"
    if state.length is None:
        headers["Upload-Defer-Length"] = "1"
    else:
        headers["Upload-Length"] = str(state.length)
    if state.metadata:
        headers["Upload-Metadata"] = tus.format_metadata(state.metadata)
    return Response(status_code=200, headers=headers)


@router.patch(PREFIX + "/{upload_id}", status_code=204, summary="Append bytes to an upload")
async def patch(upload_id: str, request: Request, svc: ServiceDep, who: CallerDep) -> Response:
    offset = _header_int(request, "Upload-Offset")
    body = _body(request, required=True)
    if offset is None:
        raise BadRequest("Upload-Offset is required", code="MISSING_UPLOAD_OFFSET")
    assert body is not None
    try:
        state = await svc.patch(who, upload_id, offset, _header_int(request, "Upload-Length"), body)
    except PayloadTooLarge as exc:
        exc.headers.setdefault("Connection", "close")
        raise
    return Response(status_code=204, headers=_state_headers(request, state))


@router.delete(PREFIX + "/{upload_id}", status_code=204, summary="Terminate an upload")
async def terminate(upload_id: str, svc: ServiceDep, who: CallerDep) -> Response:
    await svc.terminate(who, upload_id)
    return Response(status_code=204)


@router.get(PREFIX + "/{upload_id}", summary="Download a finished upload")
async def download(upload_id: str, request: Request, svc: ServiceDep, who: CallerDep) -> Response:
    from starlette.concurrency import run_in_threadpool

    uid = await run_in_threadpool(svc.finished_video_uid, who, upload_id)
    store = svc.rt.media_store
    if isinstance(store, LocalOriginals):  # Range requests, sendfile
        return FileResponse(
            store.original_path(uid),
            media_type="application/octet-stream",
            headers={"Cache-Control": "no-store"},
        )
    if isinstance(store, ObjectMedia):  # Range requests, read from the bucket
        obj = await run_in_threadpool(store.original_object, uid)
        if obj is None:
            raise NotFound("the upload's bytes are gone", code="UPLOAD_NOT_FOUND")
        headers = {"Cache-Control": "no-store", "ETag": obj.etag}
        return await streaming.stream(store, obj, request, "application/octet-stream", headers)
    size = await run_in_threadpool(store.original_size, uid)

    def chunks() -> Iterator[bytes]:
        with store.open_original(uid) as src:
            while block := src.read(1024 * 1024):
                yield block

    return StreamingResponse(
        chunks(),
        media_type="application/octet-stream",
        headers={"Content-Length": str(size), "Cache-Control": "no-store"},
    )
