"""Direct and legacy uploads: stream a request body straight into a new video's original."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, BinaryIO

from sqlalchemy import update
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from reelout.errors import BadRequest, Gone, PayloadTooLarge, ReeloutError
from reelout.iothreads import run_io
from reelout.media import service as media
from reelout.media.models import Video
from reelout.media.schemas import Stage, VideoOut, VideoState
from reelout.uploads.context import UploadsContext
from reelout.uploads.legacy import LegacyBodyError, LegacyDecoder
from reelout.uploads.space import DiskSpace, is_no_room, no_room

BATCH_BYTES = 1024 * 1024
ACTIVITY_EVERY = timedelta(seconds=60)  # how often a receiving upload marks its video as alive


class OriginalSink:
    """Writes a video's original as bytes arrive, hashing and enforcing a size limit."""

    def __init__(self, rt: UploadsContext, uid: str, limit: int, limit_code: str) -> None:
        self.rt, self.uid, self.limit, self.limit_code = rt, uid, limit, limit_code
        self.size = 0
        self._sha = hashlib.sha256()
        self._file: BinaryIO = rt.media_store.write_original(uid)
        self._active_at = rt.clock.now()

    def write(self, data: bytes) -> None:
        if self.size + len(data) > self.limit:
            raise PayloadTooLarge(
                f"the video is larger than the limit of {self.limit} bytes",
                code=self.limit_code,
                details={"max_bytes": self.limit},
                headers={"Connection": "close"},
            )
        self._file.write(data)
        self._sha.update(data)
        self.size += len(data)

    def activity_due(self) -> bool:
        return self.rt.clock.now() - self._active_at >= ACTIVITY_EVERY

    def mark_active(self) -> None:
        """Bytes are arriving: the reaper of abandoned uploads measures from here."""
        now = self._active_at = self.rt.clock.now()
        with self.rt.db.session() as session:
            session.execute(
                update(Video)
                .where(Video.uid == self.uid, Video.state == VideoState.uploading.value)
                .values(modified_at=now)
            )

    def commit(self, meta: dict[str, Any]) -> VideoOut:
        self._file.close()  # forced to disk by the processing job (media.original_fault)
        if self.size == 0:
            raise BadRequest("the upload is empty", code="EMPTY_UPLOAD")
        with self.rt.db.session() as session:
            row = media.get_video(session, self.uid)
            if row.state != VideoState.uploading.value:
                raise Gone(
                    "the upload was ended as abandoned while it waited for bytes "
                    f"({row.error_code}); upload the video again",
                    code="UPLOAD_ABANDONED",
                )
            if meta:
                row.meta = {**row.meta, **meta}
            video = media.original_received(
                session, self.rt.clock, self.uid, size=self.size, sha256=self._sha.hexdigest()
            )
            return media.to_schema(video)

    def abort(self, code: str) -> None:
        """Keep nothing: the partial original goes, and so does the video unless the reaper
        already ended it (then it stays, in its error state). `code` says why it failed."""
        with contextlib.suppress(OSError):  # closing flushes; on a full disk that fails too
            abandon = getattr(self._file, "abandon", None)  # a file that is stored on close
            abandon() if abandon is not None else self._file.close()
        self.rt.media_store.delete_video(self.uid)
        with self.rt.db.session() as session:
            media.discard_failed_upload(session, self.rt.media_store, self.uid, code)


def _new_video(
    rt: UploadsContext, source: str, order_id: str, stage: Stage, meta: dict[str, Any]
) -> str:
    with rt.db.session() as session:
        return media.create_video(
            session, rt.clock, source=source, meta=meta, order_id=order_id, stage=stage
        ).uid


@dataclass
class Batcher:
    """Groups small chunks into ~1 MiB writes done off the event loop."""

    sink: OriginalSink
    pending: bytearray

    async def add(self, data: bytes) -> None:
        self.pending += data
        if len(self.pending) >= BATCH_BYTES:
            await self.flush()
        if self.sink.activity_due():  # however slowly they come, arriving bytes keep it alive
            await run_in_threadpool(self.sink.mark_active)

    async def flush(self) -> None:
        if self.pending:
            data, self.pending = bytes(self.pending), bytearray()
            await run_io(self.sink.write, data)


async def receive(
    rt: UploadsContext,
    *,
    source: str,
    order_id: str,
    stage: Stage,
    meta: dict[str, Any],
    limit: int,
    limit_code: str,
    feed: AsyncIterator[bytes],
    late_meta: dict[str, Any] | None = None,
    expected: int | None = None,
) -> VideoOut:
    """Create a video and stream `feed` into its original; on any failure nothing is kept.

    `expected` (the request's Content-Length, an upper bound of the bytes stored) must fit on
    the disk beside the reserve, or nothing starts (507)."""
    local = "scratch" if rt.settings.storage_url else "media"  # where the bytes land first
    space = DiskSpace(rt.settings.data_dir / local, rt.settings.disk_reserve_bytes)
    await run_in_threadpool(space.require, min(expected or 0, limit))
    uid = await run_in_threadpool(_new_video, rt, source, order_id, stage, meta)
    sink = await run_in_threadpool(OriginalSink, rt, uid, limit, limit_code)
    batcher = Batcher(sink, bytearray())
    try:
        async for data in feed:
            await batcher.add(data)
        await batcher.flush()
        return await run_in_threadpool(sink.commit, late_meta or {})
    except ClientDisconnect:
        gone = BadRequest(
            "the client went away before the upload finished; nothing was kept",
            code="CLIENT_DISCONNECTED",
        )
        await run_in_threadpool(sink.abort, gone.code)
        raise gone from None
    except OSError as exc:
        refusal = no_room(exc) if is_no_room(exc) else None
        await run_in_threadpool(sink.abort, refusal.code if refusal else ReeloutError.code)
        if refusal is not None:
            raise refusal from exc
        raise
    except BaseException as exc:
        code = exc.code if isinstance(exc, ReeloutError) else ReeloutError.code
        await run_in_threadpool(sink.abort, code)
        raise


async def decode_legacy(
    chunks: AsyncIterator[bytes], into: dict[str, Any], max_depth: int
) -> AsyncIterator[bytes]:
    """Decode a legacy base64 JSON body as it streams; the other fields (nested at most
    `max_depth` levels) land in `into`."""
    out: list[bytes] = []
    decoder = LegacyDecoder(out.append, max_depth)
    try:
        async for chunk in chunks:
            decoder.feed(chunk)
            if out:
                yield b"".join(out)
                out.clear()
        into.update(decoder.finish())
    except LegacyBodyError as exc:
        raise BadRequest(exc.message, code=exc.code) from None
    if out:
        yield b"".join(out)


async def multipart_file(
    chunks: AsyncIterator[bytes],
    boundary: bytes,
    fields: dict[str, str],
    max_field_bytes: int = 64 * 1024,
) -> AsyncIterator[bytes]:
    """Stream the bytes of the form's file part; small text fields are collected in `fields`."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    out: list[bytes] = []
    part: dict[str, Any] = {}

    def on_part_begin() -> None:
        part.clear()
        part.update(headers={}, name=None, is_file=False, text=bytearray(), header=b"", value=b"")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part["header"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        part["value"] += data[start:end]

    def on_header_end() -> None:
        part["headers"][part["header"].lower()] = part["value"]
        part["header"], part["value"] = b"", b""

    def on_headers_finished() -> None:
        _, options = parse_options_header(part["headers"].get(b"content-disposition", b""))
        part["name"] = options.get(b"name", b"").decode()
        part["is_file"] = b"filename" in options
        if part["is_file"]:
            fields.setdefault("filename", options[b"filename"].decode(errors="replace"))
            fields["_files"] = str(int(fields.get("_files", "0")) + 1)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part["is_file"]:
            if fields["_files"] == "1":
                out.append(data[start:end])
            return
        part["text"] += data[start:end]
        if len(part["text"]) > max_field_bytes:
            raise BadRequest(f"form field {part['name']!r} is too long", code="FIELD_TOO_LONG")

    def on_part_end() -> None:
        if not part["is_file"] and part["name"]:
            fields[part["name"]] = part["text"].decode(errors="replace")

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    async for chunk in chunks:
        parser.write(chunk)
        if out:
            yield b"".join(out)
            out.clear()
    parser.finalize()
    if "_files" not in fields:
        raise BadRequest("the form has no file part", code="MISSING_FILE")
    fields.pop("_files")
