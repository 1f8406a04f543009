"""Video records: create, list, delete, creator-upload tokens, and receiving an original."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from reelout.audit import service as audit
from reelout.audit.service import Actor, Target
from reelout.auth.tokens import hash_secret, new_secret
from reelout.clock import Clock
from reelout.config import Settings
from reelout.db.paging import decode_cursor, encode_cursor
from reelout.errors import BadRequest, Conflict, NotFound, Unauthorized
from reelout.jobs import service as jobs
from reelout.media import facts, history, signing
from reelout.media.models import Video
from reelout.media.recommend import Network, Option, recommended_max_height
from reelout.media.schemas import (
    CreatorUpload,
    CreatorUploadRequest,
    InputSize,
    Playback,
    PlaybackInfo,
    PlaybackToken,
    Rendition,
    Stage,
    UploadLink,
    VideoOut,
    VideoPage,
    VideoState,
    VideoStatus,
    VideoUpdate,
)
from reelout.media.storage import MediaStore
from reelout.webhooks import service as webhooks

PROCESS_JOB = "media.process"
PROCESS_ATTEMPTS = 3  # an unexpected failure is retried; the third one ends in error
PURGE_JOB = "media.purge"


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
        source=source,
        size=size,
        max_bytes=max_bytes,
        meta=meta or {},
        order_id=order_id,
        stage=stage.value if stage else None,
    )
    session.add(video)
    history.change_state(
        session, clock, video, VideoState.uploading, reason=f"created for a {source} upload"
    )
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


def start_creator_upload(
    session: Session,
    clock: Clock,
    settings: Settings,
    request: CreatorUploadRequest,
    files_url: str,
    order_id: str | None = None,
    stage: Stage | None = None,
) -> CreatorUpload:
    """A video waiting for its upload, and a one-time token to upload it over tus at
    `files_url`; the link's size is capped by the largest upload (REELOUT_TUS_MAX_SIZE)."""
    largest = settings.tus_max_size
    max_bytes = min(request.max_bytes or largest, largest)
    video = create_video(
        session,
        clock,
        source="tus",
        meta=request.meta,
        order_id=order_id,
        stage=stage,
        max_bytes=max_bytes,
    )
    ttl = request.expires_in or settings.upload_token_ttl_seconds
    token, expires = issue_upload_token(session, clock, video, ttl)
    link = UploadLink(url=files_url, token=token, expires_at=expires, max_bytes=max_bytes)
    return CreatorUpload(uid=video.uid, upload=link)


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


def release_upload_token(session: Session, uid: str) -> None:
    """The upload a token started could not be stored: the token may start one again."""
    video = session.get(Video, uid)
    if video is not None and video.state == VideoState.uploading.value:
        video.upload_token_used_at = None


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
    reason = f"the original arrived ({size} bytes)"
    history.change_state(session, clock, video, VideoState.queued, reason=reason)
    _enqueue_processing(session, clock, uid)
    facts.note(session, facts.UploadEnded(video.source))
    return video


def upload_failed(
    session: Session, clock: Clock, uid: str, code: str, text: str, *, base_url: str
) -> None:
    """The upload ended before all its bytes arrived (terminated, expired)."""
    video = session.get(Video, uid)
    if video is not None and video.state == VideoState.uploading.value:
        _set_error(session, clock, video, VideoState.error, code, text)
        facts.note(session, facts.UploadEnded(video.source, code))
        _announce(session, clock, "video.error", video, base_url)


def _announce(session: Session, clock: Clock, event: str, video: Video, base_url: str) -> None:
    """Tell the webhook endpoints, in the same transaction as the change they hear about."""
    session.flush()
    data = {"video": to_schema(video, base_url)}
    webhooks.emit(session, clock, event, data, video_uid=video.uid)


def _set_error(
    session: Session,
    clock: Clock,
    video: Video,
    state: VideoState,
    code: str,
    text: str,
    attempt: int | None = None,
) -> None:
    history.change_state(
        session, clock, video, state, error_code=code, reason=text, attempt=attempt
    )
    video.error_code, video.error_text = code, text


def original_fault(
    store: MediaStore,
    uid: str,
    size: int | None,
    sha256: str | None,
    copy_to: Path | None = None,
) -> str | None:
    """Force a received original to disk and check it is what was received; None if it is.

    Uploads answer before their bytes are synced (a sync per upload on the request path costs
    ~0.5 s per GiB); this is where durability is made sure, before any processing. A crash in
    between shows up as a size or SHA-256 mismatch. `copy_to`: the bytes checked are written
    there too (a local copy of an original in object storage, read once). File work only: no
    transaction is open."""
    store.sync_original(uid)
    with store.open_original(uid) as src, _copy_target(copy_to) as out:
        digest, got = hashlib.sha256(), 0
        while block := src.read(4 * 1024 * 1024):
            digest.update(block)
            got += len(block)
            if out is not None:
                out.write(block)
    if got == size and digest.hexdigest() == sha256:
        return None
    return (
        f"the stored original ({got} bytes) is not what was uploaded ({size} bytes, "
        "sha256 recorded at upload); the server probably lost power before it reached the "
        "disk — upload the video again"
    )


@contextlib.contextmanager
def _copy_target(path: Path | None) -> Iterator[BinaryIO | None]:
    if path is None:
        yield None
        return
    with path.open("wb") as out:
        yield out


def start_processing(
    session: Session, clock: Clock, uid: str, attempt: int | None = None
) -> Video | None:
    """queued → processing at 0 %; None when the video is gone or not waiting for processing.
    `attempt` is the processing job's (processing → processing: an attempt ended unfinished)."""
    video = session.get(Video, uid)
    if video is None or video.state not in (VideoState.queued.value, VideoState.processing.value):
        return None
    reason = "processing started"
    if video.state == VideoState.processing.value:
        reason = "processing started again: the previous attempt ended without an outcome"
    history.change_state(
        session, clock, video, VideoState.processing, reason=reason, attempt=attempt
    )
    video.pct_complete = 0.0
    video.error_code = video.error_text = None
    return video


def wait_for_retry(
    session: Session, clock: Clock, uid: str, text: str, attempt: int | None = None
) -> None:
    """processing → queued, with why on the status (no error code: nothing is wrong with the
    video) until the next attempt starts."""
    video = session.get(Video, uid)
    if video is not None and video.state == VideoState.processing.value:
        history.change_state(session, clock, video, VideoState.queued, reason=text, attempt=attempt)
        video.pct_complete = None
        video.error_text = text


def set_progress(session: Session, clock: Clock, uid: str, pct: float) -> None:
    video = session.get(Video, uid)
    if video is not None and video.state == VideoState.processing.value:
        video.pct_complete = max(video.pct_complete or 0.0, round(pct, 1))
        video.modified_at = clock.now()


def mark_failed(
    session: Session,
    clock: Clock,
    uid: str,
    code: str,
    text: str,
    *,
    base_url: str,
    attempt: int | None = None,
) -> None:
    """Processing could not make the video playable: state error with a code and a reason.
    A failed re-encode keeps the published version playing: the state goes back to ready and
    the error stays on the status for the operator to read."""
    video = session.get(Video, uid)
    if video is None:
        return
    playable = video.version is not None
    state = VideoState.ready if playable else VideoState.error
    _set_error(session, clock, video, state, code, text, attempt)
    facts.note(session, facts.ProcessingEnded(code))
    if playable:
        video.pct_complete = 100.0
    else:
        _announce(session, clock, "video.error", video, base_url)


def retire_version(session: Session, store: MediaStore, uid: str, version: str) -> bool:
    """Delete a replaced version's files, unless the video plays from it again."""
    video = session.get(Video, uid)
    if video is not None and video.version == version:
        return False
    return store.delete_version(uid, version)


def reprocess(
    session: Session,
    clock: Clock,
    store: MediaStore,
    uid: str,
    *,
    who: Actor,
    reason: str | None = None,
) -> Video:
    """Queue a new encode of the original; the current version plays until the new one is out.
    Audited (`video.reprocessed`) as `who`."""
    video = get_video(session, uid)
    if video.state in (
        VideoState.uploading.value,
        VideoState.queued.value,
        VideoState.processing.value,
    ):
        raise Conflict(
            f"the video is {video.state}; re-encode it once that has finished",
            code="VIDEO_BUSY",
        )
    if not store.has_original(uid):
        raise Conflict("the video's original is gone; upload it again", code="ORIGINAL_MISSING")
    patch = audit.patch_of({"state": video.state}, {"state": VideoState.queued.value})
    history.change_state(session, clock, video, VideoState.queued, reason="re-encode requested")
    video.pct_complete = None
    video.error_code = video.error_text = None
    _enqueue_processing(session, clock, uid)
    target = Target("video", uid)
    audit.record(session, clock, who, "video.reprocessed", target, reason=reason, patch=patch)
    return video


def _enqueue_processing(session: Session, clock: Clock, uid: str) -> None:
    jobs.enqueue(
        session,
        clock,
        PROCESS_JOB,
        {"uid": uid},
        dedupe_key=f"{PROCESS_JOB}:{uid}",
        max_attempts=PROCESS_ATTEMPTS,
    )


def mark_ready(
    session: Session,
    clock: Clock,
    uid: str,
    *,
    version: str,
    duration: float,
    width: int,
    height: int,
    renditions: list[dict[str, Any]],
    purge_grace: float,
    base_url: str,
    attempt: int | None = None,
) -> bool:
    """A version is published: the video plays from it. False when the video is gone."""
    video = session.get(Video, uid)
    if video is None:
        return False
    if video.version is not None:  # a re-encode: the old version plays on for a grace period
        jobs.enqueue(
            session,
            clock,
            PURGE_JOB,
            {"uid": uid, "version": video.version},
            run_at=clock.now() + timedelta(seconds=purge_grace),
        )
    reason = f"version {version} published"
    history.change_state(session, clock, video, VideoState.ready, reason=reason, attempt=attempt)
    video.pct_complete, video.version = 100.0, version
    video.duration, video.input_width, video.input_height = duration, width, height
    video.renditions = renditions
    video.error_code = video.error_text = None
    facts.note(session, facts.ProcessingEnded())
    _announce(session, clock, "video.ready", video, base_url)
    return True


@dataclass(frozen=True)
class VideoFilter:
    """What `list_videos` narrows to; None means any. `search` matches a uid (or the start of
    one) or a part of the file name, case-insensitively; `created_from` is inclusive,
    `created_before` exclusive (naive datetimes are UTC)."""

    state: VideoState | None = None
    order_id: str | None = None
    stage: Stage | None = None
    created_from: datetime | None = None
    created_before: datetime | None = None
    search: str | None = None


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _filtered(query: Select[Video], where: VideoFilter) -> Select[Video]:
    if where.state:
        query = query.where(Video.state == where.state.value)
    if where.order_id is not None:
        query = query.where(Video.order_id == where.order_id)
    if where.stage:
        query = query.where(Video.stage == where.stage.value)
    if where.created_from is not None:
        query = query.where(Video.created_at >= _utc(where.created_from))
    if where.created_before is not None:
        query = query.where(Video.created_at < _utc(where.created_before))
    text = (where.search or "").strip()
    if text:
        filename = Video.meta["filename"].as_string()
        query = query.where(
            Video.uid.startswith(text.lower(), autoescape=True)
            | filename.icontains(text, autoescape=True)
        )
    return query


def list_videos(
    session: Session,
    where: VideoFilter = VideoFilter(),
    *,
    limit: int = 50,
    cursor: str | None = None,
    base_url: str = "",
) -> VideoPage:
    """Newest first, keyset-paginated so pages stay stable while videos arrive."""
    query = _filtered(select(Video).order_by(Video.created_at.desc(), Video.uid.desc()), where)
    if cursor:
        created, uid = decode_cursor(cursor)
        query = query.where(
            (Video.created_at < created) | ((Video.created_at == created) & (Video.uid < uid))
        )
    rows = list(session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return VideoPage(
        videos=[to_schema(v, base_url) for v in rows],
        next_cursor=encode_cursor(rows[-1].created_at, rows[-1].uid) if more and rows else None,
    )


def discard_video(session: Session, store: MediaStore, uid: str) -> None:
    """Remove a video and its files (no one's change: e.g. an upload that failed)."""
    video = get_video(session, uid)
    session.delete(video)
    session.flush()
    store.delete_video(uid)


def discard_failed_upload(session: Session, store: MediaStore, uid: str, code: str) -> None:
    """A streamed upload failed mid-body (`code` says why): its video and files go, if it is
    still uploading (the abandoned-upload reaper may have ended it first)."""
    video = session.get(Video, uid)
    if video is None or video.state != VideoState.uploading.value:
        return
    facts.note(session, facts.UploadEnded(video.source, code))
    discard_video(session, store, uid)


def delete_video(
    session: Session,
    clock: Clock,
    store: MediaStore,
    uid: str,
    *,
    who: Actor,
    reason: str | None = None,
) -> None:
    """Delete a video and its files; audited (`video.deleted`) as `who`."""
    video = get_video(session, uid)
    patch = audit.patch_of({"state": video.state, "version": video.version}, {})
    audit.record(
        session, clock, who, "video.deleted", Target("video", uid), reason=reason, patch=patch
    )
    discard_video(session, store, uid)


def media_base(base_url: str, video: Video) -> str:
    """Where a ready video's published files are served from."""
    return f"{base_url}/media/{video.uid}/{video.version}"


def to_schema(video: Video, base_url: str = "") -> VideoOut:
    """The API shape; `base_url` (scheme://host[/prefix]) makes playback URLs absolute."""
    ready = video.version is not None  # a published version plays, even while re-encoding
    files = media_base(base_url, video) if ready else None
    return VideoOut(
        uid=video.uid,
        created=video.created_at,
        modified=video.modified_at,
        size=video.size,
        duration=video.duration,
        input=InputSize(width=video.input_width, height=video.input_height)
        if video.input_width and video.input_height
        else None,
        meta=video.meta,
        order_id=video.order_id,
        stage=Stage(video.stage) if video.stage else None,
        source=video.source,
        status=VideoStatus(
            state=VideoState(video.state),
            pct_complete=video.pct_complete,
            error_code=video.error_code,
            error_text=video.error_text,
        ),
        ready_to_stream=ready,
        playback=Playback(hls=f"{files}/master.m3u8", mp4=f"{files}/video.mp4") if files else None,
        thumbnail=f"{files}/poster.jpg" if files else None,
        renditions=[Rendition.model_validate(r) for r in video.renditions or []],
        allowed_origins=list(video.allowed_origins or []),
        require_signed_urls=bool(video.require_signed_urls),
        original_sha256=video.original_sha256,
    )


def update_video(session: Session, clock: Clock, uid: str, change: VideoUpdate) -> Video:
    video = get_video(session, uid)
    if change.meta is not None:
        video.meta = change.meta
    if change.allowed_origins is not None:
        video.allowed_origins = _origins(change.allowed_origins)
    if change.require_signed_urls is not None:
        video.require_signed_urls = change.require_signed_urls
    video.modified_at = clock.now()
    return video


def _origins(values: list[str]) -> list[str]:
    """Origins as browsers send them: scheme://host[:port], no path; `*` allows any."""
    out = []
    for value in values:
        origin = value.strip().rstrip("/")
        parsed = urlsplit(origin)
        valid = origin == "*" or (parsed.scheme in ("http", "https") and parsed.netloc)
        if not valid or (origin != "*" and (parsed.path or parsed.query)):
            raise BadRequest(
                f"{value!r} is not an origin; write it as https://app.example.com",
                code="INVALID_ORIGIN",
            )
        out.append(origin)
    return out


def _ready(video: Video, base_url: str) -> tuple[VideoOut, Playback, str]:
    """The video's API shape, its playback URLs and poster; 409 before it is ready."""
    out = to_schema(video, base_url)
    if out.playback is None or out.thumbnail is None:
        raise Conflict(
            f"the video is {video.state}; it can be played once it is ready",
            code="VIDEO_NOT_READY",
            details={"state": video.state},
        )
    return out, out.playback, out.thumbnail


def _with_token(url: str, token: str | None) -> str:
    if token is None:
        return url
    return f"{url}{'&' if '?' in url else '?'}token={token}"


def token_ttl(settings: Settings, requested: int | None) -> int:
    """A playback token's lifetime in seconds: the one asked for, else
    REELOUT_PLAYBACK_TOKEN_TTL_SECONDS; longer than REELOUT_PLAYBACK_TOKEN_MAX_TTL_SECONDS is
    refused (400 TOKEN_TTL_TOO_LONG)."""
    ttl = requested or settings.playback_token_ttl_seconds
    longest = settings.playback_token_max_ttl_seconds
    if ttl > longest:
        raise BadRequest(
            f"expires_in is {ttl} s; the longest a token may last is "
            f"{longest} s (REELOUT_PLAYBACK_TOKEN_MAX_TTL_SECONDS)",
            code="TOKEN_TTL_TOO_LONG",
            details={"max_seconds": longest},
        )
    return ttl


def playback_token(
    video: Video, base_url: str, key: bytes, now: datetime, ttl_seconds: int
) -> PlaybackToken:
    """A signed-URL token for a ready video, with the URLs that carry it."""
    _, playback, poster = _ready(video, base_url)
    token, expires = signing.issue(key, video.uid, int(now.timestamp()), ttl_seconds)
    return PlaybackToken(
        token=token,
        expires_at=datetime.fromtimestamp(expires, tz=UTC),
        hls=_with_token(playback.hls, token),
        mp4=_with_token(playback.mp4, token),
        poster=_with_token(poster, token),
    )


def playback_info(
    video: Video,
    base_url: str,
    network: Network | None,
    downlink_kbps: float | None,
    token: str | None = None,
) -> PlaybackInfo:
    """The playback answer for a ready video (409 VIDEO_NOT_READY before that); `token` is
    added to every URL of a video that requires signed URLs."""
    out, playback, poster = _ready(video, base_url)
    options = [Option(min(r.width, r.height), r.bandwidth) for r in out.renditions]
    cap = recommended_max_height(options, network, downlink_kbps)
    capped = f"{playback.hls}?max_height={cap}" if cap is not None else playback.hls
    return PlaybackInfo(
        hls=_with_token(playback.hls, token),
        hls_capped=_with_token(capped, token),
        mp4=_with_token(playback.mp4, token),
        poster=_with_token(poster, token),
        duration=video.duration,
        renditions=out.renditions,
        recommended_max_height=cap,
    )
