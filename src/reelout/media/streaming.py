"""Answers for files in object storage: streamed through (Range, 206/416, 304) or redirected to
the object (a presigned URL, or a public base URL such as a CDN in front of the bucket)."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from reelout.errors import NotFound
from reelout.media import delivery
from reelout.media.storage import ObjectMedia, StoredObject


def not_found() -> NotFound:
    return NotFound("no such media file", code="MEDIA_NOT_FOUND")


async def stream(
    store: ObjectMedia,
    obj: StoredObject,
    request: Request,
    media_type: str,
    headers: dict[str, str],
) -> Response:
    """The object, or the one range of it the request asks for; `headers` go on every answer."""
    headers = {**headers, "Accept-Ranges": "bytes"}
    wanted = None
    if delivery.range_applies(request.headers.get("if-range"), headers.get("ETag", "")):
        wanted = delivery.byte_range(request.headers.get("range"), obj.size)
    if wanted == delivery.UNSATISFIABLE:
        headers["Content-Range"] = f"bytes */{obj.size}"
        return Response(status_code=416, headers=headers)
    part = wanted if isinstance(wanted, delivery.ByteRange) else None
    status = 200 if part is None else 206
    if part is not None:
        headers["Content-Range"] = part.content_range
    headers["Content-Length"] = str(obj.size if part is None else part.length)
    if request.method == "HEAD" or obj.size == 0:
        return Response(status_code=status, media_type=media_type, headers=headers)
    first, last = (0, obj.size - 1) if part is None else (part.first, part.last)
    body = await run_in_threadpool(store.open_range, obj.key, first, last)
    if body is None:  # deleted since it was looked up
        raise not_found()
    return StreamingResponse(body, status_code=status, media_type=media_type, headers=headers)


async def redirect(
    store: ObjectMedia,
    obj: StoredObject,
    *,
    public_base: str | None,
    presign_seconds: int,
    token_left: int | None,
    headers: dict[str, str],
) -> Response:
    """302 to the object: under `public_base` when the video needs no token, else presigned for
    no longer than the token has left. Cached no longer than the URL lives."""
    headers = dict(headers)
    if public_base is not None and token_left is None:
        location = delivery.public_url(public_base, obj.key)
    else:
        life = delivery.redirect_lifetime(presign_seconds, token_left)
        location = await run_in_threadpool(store.presign, obj.key, life)
        private = headers["Cache-Control"].replace("public", "private")  # a URL to one viewer
        headers["Cache-Control"] = delivery.bounded_cache(private, life)
    headers["Location"] = location
    return Response(status_code=302, headers=headers)
