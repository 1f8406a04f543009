"""Video records: create, list, delete, creator-upload tokens, and receiving an original."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reelout.auth.tokens import hash_secret, new_secret
from reelout.clock import Clock
from reelout.errors import BadRequest, NotFound, Unauthorized
from reelout.jobs import service as jobs
from reelout.media.models import Video
from reelout.media.schemas import Stage, VideoOut, VideoPage, VideoState, VideoStatus
from reelout.media.storage import MediaStore

PROCESS_JOB = "media.process"


def new_uid() -> str:
    return secrets.token_hex(16)


def create_video(
    session: Session,
    clock: Clock,
    *,
    source: str,
    size: int | None = None,
    meta: dict[str, Any] | None = None,
    order_id: str | None = None,
    stage: Stage | None = None,
    max_bytes: int | None = None,
) -> Video:
    now = clock.now()
    video = Video(
        uid=new_uid(),
        created_at=now,
        modified_at=now,
        state=VideoState.uploading.value,
        source=source,
        size=size,
        max_bytes=max_bytes,
        meta=meta or {},
        order_id=order_id,
        stage=stage.value if stage else None,
    )
    session.add(video)
    session.flush()
    return video


def issue_upload_token(
    session: Session, clock: Clock, video: Video, ttl: int
) -> tuple[str, datetime]:
    """A one-time secret that lets its bearer upload this one video over tus."""
    token = new_secret("upload")
    video.upload_token_hash = hash_secret(token)
    video.upload_token_expires_at = clock.now() + timedelta(seconds=ttl)
    session.flush()
    return token, video.upload_token_expires_at


def video_for_upload_token(session: Session, token: str) -> Video | None:
    return session.scalar(select(Video).where(Video.upload_token_hash == hash_secret(token)))


def claim_upload_token(
    session: Session, clock: Clock, token: str, *, consume: bool = True
) -> Video:
    """Use a creator-upload token to start the upload; it works once, before it expires.

    With `consume=False` the token is only checked (the parts of a parallel upload)."""
    video = video_for_upload_token(session, token)
    if video is None or video.upload_token_expires_at is None:
        raise Unauthorized("the upload token is unknown", code="INVALID_UPLOAD_TOKEN")
    if video.upload_token_used_at is not None:
        raise Unauthorized("the upload token was already used", code="UPLOAD_TOKEN_USED")
    if video.upload_token_expires_at <= clock.now():
        raise Unauthorized(
            "the upload token has expired; ask for a new upload link", code="UPLOAD_TOKEN_EXPIRED"
        )
    if consume:
        video.upload_token_used_at = clock.now()
    return video


def get_video(session: Session, uid: str) -> Video:
    video = session.get(Video, uid)
    if video is None:
        raise NotFound(f"no video with uid {uid!r}", code="VIDEO_NOT_FOUND")
    return video


def set_size(session: Session, clock: Clock, uid: str, size: int) -> None:
    video = get_video(session, uid)
    video.size = size
    video.modified_at = clock.now()


def original_received(session: Session, clock: Clock, uid: str, *, size: int, sha256: str) -> Video:
    """The whole original is stored: record it, queue the video and its processing job."""
    video = get_video(session, uid)
    video.size = size
    video.original_sha256 = sha256
    video.state = VideoState.queued.value
    video.modified_at = clock.now()
    jobs.enqueue(session, clock, PROCESS_JOB, {"uid": uid}, dedupe_key=f"{PROCESS_JOB}:{uid}")
    return video


def mark_error(session: Session, clock: Clock, uid: str, code: str, text: str) -> None:
    video = session.get(Video, uid)
    if video is None or video.state != VideoState.uploading.value:
        return
    video.state = VideoState.error.value
    video.error_code, video.error_text = code, text
    video.modified_at = clock.now()


def secure_original(session: Session, clock: Clock, store: MediaStore, uid: str) -> bool:
    """Force a received original to disk and check it is what was received.

    Uploads answer before their bytes are synced (a sync per upload on the request path costs
    ~0.5 s per GiB); this is where durability is made sure, before any processing. A crash in
    between shows up as a size or SHA-256 mismatch, and the video fails with a clear error."""
    video = session.get(Video, uid)
    if video is None or not store.has_original(uid):
        return False  # deleted since: nothing to secure
    store.sync_original(uid)
    with store.open_original(uid) as src:
        digest, size = hashlib.sha256(), 0
        while block := src.read(4 * 1024 * 1024):
            digest.update(block)
            size += len(block)
    if size == video.size and digest.hexdigest() == video.original_sha256:
        return True
    video.state = VideoState.error.value
    video.error_code = "ERR_MALFORMED"
    video.error_text = (
        f"the stored original ({size} bytes) is not what was uploaded ({video.size} bytes, "
        "sha256 recorded at upload); the server probably lost power before it reached the "
        "disk — upload the video again"
    )
    video.modified_at = clock.now()
    return False


def _cursor(video: Video) -> str:
    raw = f"{video.created_at.isoformat()}|{video.uid}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, uid = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(created), uid
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest(
            "the cursor is not one this server gave out", code="INVALID_CURSOR"
        ) from None


def list_videos(
    session: Session,
    *,
    state: VideoState | None = None,
    order_id: str | None = None,
    stage: Stage | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> VideoPage:
    """Newest first, keyset-paginated so pages stay stable while videos arrive."""
    query = select(Video).order_by(Video.created_at.desc(), Video.uid.desc())
    if state:
        query = query.where(Video.state == state.value)
    if order_id is not None:
        query = query.where(Video.order_id == order_id)
    if stage:
        query = query.where(Video.stage == stage.value)
    if cursor:
        created, uid = _decode_cursor(cursor)
        query = query.where(
            (Video.created_at < created) | ((Video.created_at == created) & (Video.uid < uid))
        )
    rows = list(session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return VideoPage(
        videos=[to_schema(v) for v in rows],
        next_cursor=_cursor(rows[-1]) if more and rows else None,
    )


def delete_video(session: Session, store: MediaStore, uid: str) -> None:
    video = get_video(session, uid)
    session.delete(video)
    session.flush()
    store.delete_video(uid)


def to_schema(video: Video) -> VideoOut:
    return VideoOut(
        uid=video.uid,
        created=video.created_at,
        modified=video.modified_at,
        size=video.size,
        meta=video.meta,
        order_id=video.order_id,
        stage=Stage(video.stage) if video.stage else None,
        source=video.source,
        status=VideoStatus(
            state=VideoState(video.state), error_code=video.error_code, error_text=video.error_text
        ),
        ready_to_stream=video.state == VideoState.ready.value,
        original_sha256=video.original_sha256,
    )
