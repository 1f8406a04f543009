"""The tus upload service: create, inspect, write, finish, terminate and expire uploads.

HTTP-free: routes parse headers with `tus`, call `TusService`, and shape replies. Bytes go
through the `UploadStore`; concurrent requests on one upload are serialised by the `Locker`.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager as AsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from reelout.auth import service as auth
from reelout.auth.tokens import KEY_PREFIXES
from reelout.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    PayloadTooLarge,
    ReeloutError,
    ServiceUnavailable,
    Unauthorized,
)
from reelout.media import service as media
from reelout.media.models import Video
from reelout.media.schemas import Stage
from reelout.media.storage import ObjectOriginals
from reelout.uploads import receiving, tus
from reelout.uploads.context import UploadsContext
from reelout.uploads.digests import RunningDigests
from reelout.uploads.locks import Lease
from reelout.uploads.models import Upload
from reelout.uploads.receiving import Body, Received
from reelout.uploads.schemas import Caller, CreateRequest, Credential, Uploader, UploadState
from reelout.uploads.space import DiskSpace, is_no_room, no_room
from reelout.uploads.store import (
    Concatenatable,
    Finishable,
    LocalFiles,
    ObjectFiles,
    StorageFailed,
    SweepsAbandoned,
    Truncatable,
)
from reelout.urls import configured_base_url

T = TypeVar("T")
TOKEN_PREFIX = KEY_PREFIXES["upload"]
LINK_OWNER = "video:"  # `created_by` of uploads made with a creator upload link's token


class ChecksumMismatch(ReeloutError):
    status = 460
    code = "CHECKSUM_MISMATCH"


class UploadInterrupted(ReeloutError):
    """The body stopped arriving (stalled, or a newer request took over); bytes so far are kept."""

    status = 503
    code = "UPLOAD_INTERRUPTED"


class CreatedThenFailed(Exception):
    """Creation-with-upload: the upload was made but its first bytes failed (full disk, a
    stalled body); the client resumes it at `upload_id`, so the answer must name it."""

    def __init__(self, upload_id: str, cause: ReeloutError) -> None:
        super().__init__(cause.message)
        self.upload_id, self.cause = upload_id, cause


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    return await run_in_threadpool(fn, *args)


class TusService:
    def __init__(self, rt: UploadsContext) -> None:
        self.rt = rt
        self.settings = rt.settings
        self.store = rt.upload_store
        self.digests = RunningDigests()
        # uploads take room on the data folder's disk only when they are written there
        local = isinstance(self.store, LocalFiles)
        folder, reserve = rt.settings.data_dir / "uploads", rt.settings.disk_reserve_bytes
        self.space = DiskSpace(folder, reserve) if local else None

    # -- identity -----------------------------------------------------------------------------
    @staticmethod
    def _identify(session: Session, who: Caller) -> Uploader:
        """Resolve a credential inside the request's own unit of work (no extra round trip)."""
        if isinstance(who, Uploader):
            return who
        token = who.token
        if not token:
            raise Unauthorized(
                "send an API key or an upload token as 'Authorization: Bearer …'",
                code="MISSING_KEY",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if token.startswith(TOKEN_PREFIX):
            video = media.video_for_upload_token(session, token)
            if video is None:
                raise Unauthorized("the upload token is unknown", code="INVALID_UPLOAD_TOKEN")
            return Uploader(admin=False, owner=f"video:{video.uid}", token=token)
        principal = auth.authenticate(session, token)
        if not principal.is_admin:
            raise Forbidden("uploads need an admin key or an upload token", code="ADMIN_REQUIRED")
        return Uploader(admin=True, owner=f"key:{principal.key_id}")

    # -- reading state ------------------------------------------------------------------------
    def _row(self, session: Session, upload_id: str, caller: Caller) -> Upload:
        who = self._identify(session, caller)
        row = session.get(Upload, upload_id) if tus.is_upload_id(upload_id) else None
        if row is None or not (who.admin or row.created_by == who.owner):
            raise NotFound("no such upload", code="UPLOAD_NOT_FOUND")
        if row.finished_at is None and row.expires_at <= self.rt.clock.now():
            raise Gone("this upload expired; start a new one", code="UPLOAD_EXPIRED")
        return row

    def _offset(self, row: Upload) -> int:
        if row.finished_at is not None:
            return row.length or 0
        with contextlib.suppress(FileNotFoundError):  # one look at the store, not two
            return self.store.size(row.id)
        if row.video_uid and self.rt.media_store.has_original(row.video_uid):
            return row.length or 0  # finished on disk; the record update did not land
        raise NotFound("the upload's data is gone", code="UPLOAD_NOT_FOUND")

    def _state(self, row: Upload) -> UploadState:
        pairs: tus.Metadata = [(str(k), v) for k, v in row.metadata_pairs]
        return UploadState(
            row.id,
            self._offset(row),
            row.length,
            pairs,
            row.expires_at,
            row.concat,
            list(row.concat_parts),
            row.video_uid,
            row.created_by,
        )

    def _load_state(self, upload_id: str, who: Caller) -> UploadState:
        with self.rt.db.read() as session:
            return self._state(self._row(session, upload_id, who))

    async def _lock(self, who: Caller, upload_id: str) -> tuple[Caller, AsyncContextManager[Lease]]:
        """The upload's lock. Taking it interrupts a busy upload's writer, so on a busy upload
        the caller first proves it owns the upload (otherwise that check rides along later)."""
        if not tus.is_upload_id(upload_id):  # never let a malformed id near the lock files
            raise NotFound("no such upload", code="UPLOAD_NOT_FOUND")
        # is_held may ask the database (PgLocker): off the event loop
        if isinstance(who, Credential) and await _in_thread(self.rt.locker.is_held, upload_id):
            who = await _in_thread(self._resolve, who)
            await _in_thread(self._load_state, upload_id, who)
        return who, self.rt.locker.hold(upload_id, self.settings.tus_lock_timeout_seconds)

    def _resolve(self, who: Caller) -> Uploader:
        with self.rt.db.read() as session:
            return self._identify(session, who)

    async def head(self, who: Caller, upload_id: str) -> UploadState:
        who, lock = await self._lock(who, upload_id)
        async with lock:
            state = await _in_thread(self._load_state, upload_id, who)
            if state.length is not None and state.offset == state.length:
                await _in_thread(self._finish, upload_id, None)
            return state

    # -- creation -----------------------------------------------------------------------------
    def _check_create(self, req: CreateRequest) -> None:
        if req.concat and not req.concat.partial:
            if req.length is not None or req.defer_length:
                raise BadRequest(
                    "a final upload takes its length from its parts", code="INVALID_UPLOAD_LENGTH"
                )
            return
        if req.length is not None and req.defer_length:
            raise BadRequest(
                "send Upload-Length or Upload-Defer-Length, not both", code="INVALID_UPLOAD_LENGTH"
            )
        if req.length is None and not req.defer_length:
            raise BadRequest(
                "Upload-Length (or Upload-Defer-Length: 1) is required",
                code="MISSING_UPLOAD_LENGTH",
            )
        self._check_size(req.length)

    def _check_size(self, length: int | None, max_bytes: int | None = None) -> None:
        limit = self.settings.tus_max_size
        if max_bytes is not None:
            limit = min(limit, max_bytes)
        if length is not None and length > limit:
            raise PayloadTooLarge(
                f"the upload is {length} bytes; the limit is {limit}",
                code="UPLOAD_TOO_LARGE",
                details={"max_bytes": limit},
            )

    def _new_row(self, who: Uploader, req: CreateRequest, length: int | None) -> Upload:
        now = self.rt.clock.now()
        return Upload(
            id=secrets.token_hex(16),
            length=length,
            defer_length=length is None,
            metadata_pairs=[list(p) for p in req.metadata],
            concat=None if req.concat is None else ("partial" if req.concat.partial else "final"),
            concat_parts=list(req.concat.parts) if req.concat else [],
            created_by=who.owner,
            created_at=now,
            expires_at=now + timedelta(seconds=self.settings.tus_expiration_seconds),
        )

    def _attach_video(
        self, session: Session, who: Uploader, row: Upload, meta: dict[str, str]
    ) -> None:
        if who.token is not None:
            video = media.claim_upload_token(session, self.rt.clock, who.token)
            self._check_size(row.length, video.max_bytes)
            if row.length is not None:
                video.size = row.length
            if meta:  # the uploader's metadata joins the link's, as a direct upload's fields do
                video.meta = {**video.meta, **meta}
        else:
            order_id, stage = _order_stage(meta)
            video = media.create_video(
                session,
                self.rt.clock,
                source="tus",
                size=row.length,
                meta=meta,
                order_id=order_id,
                stage=stage,
            )
        row.video_uid = video.uid

    def _create(self, caller: Caller, req: CreateRequest) -> tuple[Uploader, UploadState]:
        self._check_create(req)
        with self.rt.db.session() as session:
            who = self._identify(session, caller)
            length = req.length
            if req.concat and not req.concat.partial:
                length = self._final_length(session, who, req.concat.parts)
            row = self._new_row(who, req, length)
            if not (req.concat and req.concat.partial):
                self._attach_video(session, who, row, tus.decode_metadata(req.metadata))
            elif who.token is not None:
                video = media.claim_upload_token(session, self.rt.clock, who.token, consume=False)
                self._charge_partial(session, who.owner, video, length or 0)
            if self.space is not None:
                self.space.require(length or 0)
            session.add(row)
            self._create_in_store(row)
            return who, self._state(row)

    def _create_in_store(self, row: Upload) -> None:
        """A video's upload on object storage is made where its original goes, so finishing
        it moves no bytes (a copy of gigabytes would hold up the last PATCH's answer)."""
        store, media_store = self.store, self.rt.media_store
        if (
            row.video_uid
            and isinstance(store, ObjectFiles)
            and isinstance(media_store, ObjectOriginals)
        ):
            store.create_at(row.id, media_store.original_key(row.video_uid))
        else:
            self.store.create(row.id)

    # -- a creator link's budget: its max_bytes bounds the sum of its partial uploads ----------
    def _stored(self, upload_id: str) -> int:
        try:
            return self.store.size(upload_id)
        except FileNotFoundError:
            return 0

    def _partials(self, session: Session, owner: str, exclude: str = "") -> tuple[int, int]:
        """How many partial uploads `owner` has, and the bytes they hold or will hold (their
        lengths; for deferred ones the bytes written so far), leaving out `exclude`."""
        rows = session.scalars(
            select(Upload).where(Upload.created_by == owner, Upload.concat == "partial")
        )
        count = used = 0
        for part in rows:
            if part.id != exclude:
                count += 1
                used += part.length if part.length is not None else self._stored(part.id)
        return count, used

    def _link_limit(self, video: Video | None) -> int:
        limit = self.settings.tus_max_size
        if video is not None and video.max_bytes is not None:
            limit = min(limit, video.max_bytes)
        return limit

    def _charge_partial(self, session: Session, owner: str, video: Video, length: int) -> None:
        """A new partial upload of a creator link: within its count and its bytes."""
        count, used = self._partials(session, owner)
        most = self.settings.tus_max_partials
        if count >= most:
            raise Conflict(
                f"this upload link already made {count} partial uploads, the most it may make; "
                "concatenate them or upload in fewer parts",
                code="PARTIAL_LIMIT_REACHED",
                details={"max_partials": most},
            )
        limit = self._link_limit(video)
        if used + length > limit:
            raise PayloadTooLarge(
                f"the link's partial uploads would hold {used + length} bytes; "
                f"the link allows {limit}",
                code="UPLOAD_TOO_LARGE",
                details={"max_bytes": limit, "used_bytes": used},
            )

    def _max_length(self, session: Session, row: Upload) -> int:
        """The most bytes an upload may hold: the size limit, a creator link's max_bytes, and
        for a link's partial upload what its other partial uploads left of it."""
        if not row.created_by.startswith(LINK_OWNER):
            return self.settings.tus_max_size
        video = session.get(Video, row.created_by.removeprefix(LINK_OWNER))
        limit = self._link_limit(video)
        if row.concat == "partial":
            limit -= self._partials(session, row.created_by, exclude=row.id)[1]
        return max(limit, 0)

    @contextlib.asynccontextmanager
    async def _link_lock(self, who: Caller, needed: bool) -> AsyncIterator[Caller]:
        """While a creator link's partial budget may grow (a new partial, a deferred partial
        written to), hold the link's lock: one such change at a time, so the sum stays true."""
        token = who.token
        if not (needed and token and token.startswith(TOKEN_PREFIX)):
            yield who
            return
        who = await _in_thread(self._resolve, who)
        key = link_lock_key(who.owner.removeprefix(LINK_OWNER))
        async with self.rt.locker.hold(key, self.settings.tus_lock_timeout_seconds):
            yield who

    async def _patch_link_lock(self, who: Caller, upload_id: str) -> AsyncContextManager[Caller]:
        """The link lock for a PATCH on a link's partial upload whose length is deferred."""
        token = who.token
        needed = False
        if token and token.startswith(TOKEN_PREFIX):
            state = await _in_thread(self._load_state, upload_id, who)
            needed = state.concat == "partial" and state.length is None
        return self._link_lock(who, needed)

    def _final_length(self, session: Session, who: Uploader, parts: tuple[str, ...]) -> int:
        if len(parts) > self.settings.tus_max_partials:
            raise BadRequest(
                f"a final upload may name at most {self.settings.tus_max_partials} parts",
                code="INVALID_CONCAT",
                details={"max_partials": self.settings.tus_max_partials},
            )
        total = 0
        for part_id in parts:
            part = session.get(Upload, part_id)
            if part is None or not (who.admin or part.created_by == who.owner):
                raise BadRequest(f"part {part_id} is not an upload of yours", code="INVALID_CONCAT")
            if part.concat != "partial" or part.length is None or part.finished_at is None:
                raise BadRequest(
                    f"part {part_id} is not a finished partial upload",
                    code="CONCAT_PART_UNFINISHED",
                )
            total += part.length
        self._check_size(total)
        return total

    async def create(self, caller: Caller, req: CreateRequest, body: Body | None) -> UploadState:
        partial = req.concat is not None and req.concat.partial
        async with self._link_lock(caller, partial) as caller:
            who, state = await _in_thread(self._create, caller, req)
        if req.concat and not req.concat.partial:
            await _in_thread(self._assemble, state)
            state.offset = state.length or 0
        elif body is not None:
            try:
                state = await self.patch(who, state.id, 0, None, body)
            except ReeloutError as exc:
                raise CreatedThenFailed(state.id, exc) from exc
        elif state.length == 0:
            await _in_thread(self._finish, state.id, hashlib.sha256().hexdigest())
        return state

    def _assemble(self, state: UploadState) -> None:
        if not isinstance(self.store, Concatenatable):
            raise BadRequest("this store cannot concatenate uploads", code="CONCAT_UNSUPPORTED")
        try:
            self.store.concatenate(state.id, state.concat_parts)
        except OSError as exc:
            self._undo_final(state)
            if is_no_room(exc):
                raise no_room(exc) from exc
            raise
        self._finish(state.id, None)

    def _undo_final(self, state: UploadState) -> None:
        """A final upload that could not be assembled: gone, and its link usable again."""
        with self.rt.db.session() as session:
            session.execute(delete(Upload).where(Upload.id == state.id))
            if state.video_uid and state.owner.startswith(LINK_OWNER):
                media.release_upload_token(session, state.video_uid)
        self.store.delete(state.id)

    # -- writing ------------------------------------------------------------------------------
    def _prepare_patch(
        self, upload_id: str, who: Caller, offset: int, new_length: int | None
    ) -> UploadState:
        unit = self.rt.db.read() if new_length is None else self.rt.db.session()
        with unit as session:
            row = self._row(session, upload_id, who)
            if row.concat == "final":
                raise Forbidden(
                    "a final concatenated upload cannot be patched", code="CONCAT_FINAL_PATCH"
                )
            state = self._state(row)
            if offset != state.offset:
                raise Conflict(
                    f"Upload-Offset is {offset} but the upload is at {state.offset}",
                    code="OFFSET_MISMATCH",
                    headers={"Upload-Offset": str(state.offset)},
                )
            if row.length is None:
                state.max_length = self._max_length(session, row)
            if new_length is not None:
                self._set_length(session, row, state, new_length)
            return state

    def _set_length(self, session: Session, row: Upload, state: UploadState, length: int) -> None:
        if row.length is not None:
            if length != row.length:
                raise BadRequest(
                    "Upload-Length is already set and cannot change", code="UPLOAD_LENGTH_FIXED"
                )
            return
        if length < state.offset:
            raise BadRequest(
                "Upload-Length is smaller than what was already uploaded",
                code="INVALID_UPLOAD_LENGTH",
            )
        self._check_size(length, state.max_length)
        if self.space is not None:
            self.space.require(length - state.offset)
        row.length = state.length = length
        if row.video_uid:
            media.set_size(session, self.rt.clock, row.video_uid, length)

    async def patch(
        self, who: Caller, upload_id: str, offset: int, new_length: int | None, body: Body
    ) -> UploadState:
        who, lock = await self._lock(who, upload_id)
        async with lock as lease, await self._patch_link_lock(who, upload_id) as who:
            state = await _in_thread(self._prepare_patch, upload_id, who, offset, new_length)
            limit = state.length if state.length is not None else state.max_length
            room = max(limit - state.offset, 0)
            if body.content_length is not None and body.content_length > room:
                raise _past_limit(state, f"the body would go {body.content_length - room} bytes")
            if room == 0 and state.length is not None:
                await _in_thread(self._finish, state.id, None)
                return state
            got = await self._receive(state, body, room, lease)
            return await self._settle(state, body, got)

    async def _settle(self, state: UploadState, body: Body, got: Received) -> UploadState:
        start = state.offset
        if got.failure is not None:
            await self._write_failed(state, body, got, got.failure)
        unverified = body.checksum is not None and (
            got.stopped or got.digest != body.checksum.digest
        )  # receiving kept none of it, as with an overflow
        if got.overflow:
            raise _past_limit(state, "the body went", kept="nothing was kept")
        if unverified and not got.stopped:
            raise ChecksumMismatch(
                "the chunk does not match Upload-Checksum; it was discarded",
                headers={"Upload-Offset": str(start)},
            )
        if not unverified:
            state.offset = start + got.count
            if got.running is not None:
                self.digests.keep(state.id, state.offset, got.running)
        if self._expiry_due(state):
            await _in_thread(self._touch, state)
        if got.stopped:
            raise UploadInterrupted(
                f"the upload was interrupted ({got.stopped}); resume from offset {state.offset}",
                headers={"Upload-Offset": str(state.offset), "Connection": "close"},
            )
        if state.length is not None and state.offset == state.length:
            await _in_thread(self._finish, state.id, None)
        return state

    async def _write_failed(
        self, state: UploadState, body: Body, got: Received, failure: OSError
    ) -> NoReturn:
        """The store refused a write: cut the upload back to the last whole write (to the
        PATCH's start when it carries a checksum), or ask a store that cannot be cut what it
        kept, and say where to resume."""
        if isinstance(self.store, Truncatable):
            keep: int | None = (
                state.offset if body.checksum is not None else state.offset + got.count
            )
            await _in_thread(self._rollback, state.id, keep)
        else:
            keep = await _in_thread(self._stored_offset, state.id)
        if keep is None:  # the store cannot even say what it kept
            raise ServiceUnavailable(
                f"the upload's storage failed ({failure.strerror or failure}); ask HEAD for the "
                "offset to resume from",
                code="STORAGE_UNAVAILABLE",
                headers={"Connection": "close"},
            ) from failure
        if keep > state.offset and keep == state.offset + got.count and got.running is not None:
            self.digests.keep(state.id, keep, got.running)
        state.offset = keep
        if is_no_room(failure):
            raise no_room(failure, keep) from failure
        if isinstance(failure, StorageFailed):
            raise ServiceUnavailable(
                f"the upload's storage failed ({failure.strerror or failure}); the upload is "
                f"kept up to offset {keep}: resume there",
                code="STORAGE_UNAVAILABLE",
                headers={"Upload-Offset": str(keep), "Connection": "close"},
            ) from failure
        raise failure

    def _stored_offset(self, upload_id: str) -> int | None:
        try:
            return self.store.size(upload_id)
        except OSError:  # the store is down altogether
            return None

    def _rollback(self, upload_id: str, size: int) -> None:
        if isinstance(self.store, Truncatable):
            self.store.truncate(upload_id, size)

    def _fresh_expiry(self) -> datetime:
        return self.rt.clock.now() + timedelta(seconds=self.settings.tus_expiration_seconds)

    def _expiry_due(self, state: UploadState) -> bool:
        """Expiry slides forward on activity, written at most once a minute."""
        return self._fresh_expiry() - state.expires_at >= timedelta(seconds=60)

    def _touch(self, state: UploadState) -> None:
        fresh = self._fresh_expiry()
        with self.rt.db.session() as session:
            session.execute(update(Upload).where(Upload.id == state.id).values(expires_at=fresh))
        state.expires_at = fresh

    async def _receive(self, state: UploadState, body: Body, room: int, lease: Lease) -> Received:
        return await receiving.receive(
            self.store,
            state.id,
            body,
            running=self.digests.resume(state.id, state.offset),
            room=room,
            lease=lease,
            read_timeout=self.settings.tus_read_timeout_seconds,
            sync=self.settings.tus_fsync == "patch",
        )

    # -- finishing ----------------------------------------------------------------------------
    def _finish(self, upload_id: str, sha256: str | None) -> None:
        """Runs once per upload: hand the bytes to the video and queue its processing.

        The file work (sync, hash, move) happens before the write transaction, so a large
        upload never holds the database's write lock; it is idempotent if a crash repeats it."""
        with self.rt.db.read() as session:
            row = session.get(Upload, upload_id)
            if row is None or row.finished_at is not None:
                return
            video_uid, length = row.video_uid, row.length or 0
            if video_uid is not None and session.get(Video, video_uid) is None:
                video_uid = None  # the video was deleted mid-upload: keep nothing
        if video_uid is None and row.concat != "partial":
            self.store.delete(upload_id)
        else:
            if isinstance(self.store, Finishable):
                self.store.finish(upload_id)
            if video_uid is not None:
                sha256 = self._deliver(upload_id, video_uid, length, sha256)
        with self.rt.db.session() as session:
            done = session.execute(
                update(Upload)
                .where(Upload.id == upload_id, Upload.finished_at.is_(None))
                .values(finished_at=self.rt.clock.now())
            )
            if getattr(done, "rowcount", 0) and video_uid is not None:
                assert sha256 is not None
                media.original_received(
                    session, self.rt.clock, video_uid, size=length, sha256=sha256
                )

    def _deliver(self, upload_id: str, video_uid: str, length: int, sha256: str | None) -> str:
        """Move the finished bytes in as the video's original; returns their SHA-256."""
        media_store = self.rt.media_store
        sha256 = sha256 or self.digests.take(upload_id, length)
        if self.store.exists(upload_id):
            sha256 = sha256 or _sha256_of(self.store, upload_id)
            if isinstance(self.store, LocalFiles):
                media_store.adopt_original(video_uid, self.store.local_path(upload_id))
            elif isinstance(self.store, ObjectFiles) and isinstance(media_store, ObjectOriginals):
                media_store.adopt_object(video_uid, self.store.object_key(upload_id))
                self.store.delete(upload_id)
            else:
                with (
                    self.store.open_read(upload_id) as src,
                    media_store.write_original(video_uid) as dst,
                ):
                    _copy(src, dst)
                self.store.delete(upload_id)
        elif sha256 is None:
            with media_store.open_original(video_uid) as src:
                sha256 = _hash_stream(src)
        return sha256

    # -- termination and expiry ---------------------------------------------------------------
    def _terminate(self, upload_id: str, who: Caller) -> None:
        with self.rt.db.session() as session:
            row = self._row(session, upload_id, who)
            if row.video_uid:
                media.upload_failed(
                    session,
                    self.rt.clock,
                    row.video_uid,
                    "ERR_UPLOAD_TERMINATED",
                    "the upload was terminated before it finished",
                    base_url=configured_base_url(self.settings),
                )
            session.delete(row)
        self.store.delete(upload_id)

    async def terminate(self, who: Caller, upload_id: str) -> None:
        who, lock = await self._lock(who, upload_id)
        async with lock:
            await _in_thread(self._terminate, upload_id, who)
        self.rt.locker.forget(upload_id)

    def reap_expired(self) -> int:
        """Remove uploads past their expiry: their bytes and records (the periodic reaper)."""
        now = self.rt.clock.now()
        with self.rt.db.session() as session:
            expired = list(session.scalars(select(Upload).where(Upload.expires_at <= now)))
        removed = 0
        for row in expired:
            with self.rt.db.session() as session:
                result = session.execute(
                    delete(Upload).where(Upload.id == row.id, Upload.expires_at <= now)
                )
                gone = bool(getattr(result, "rowcount", 0))
                if gone and row.finished_at is None and row.video_uid:
                    media.upload_failed(
                        session,
                        self.rt.clock,
                        row.video_uid,
                        "ERR_UPLOAD_EXPIRED",
                        "the upload expired before it finished",
                        base_url=configured_base_url(self.settings),
                    )
            if gone:
                self.store.delete(row.id)
                self.rt.locker.forget(row.id)
                removed += 1
        return removed + self._sweep_abandoned()

    def _sweep_abandoned(self) -> int:
        """Storage that no upload record names (a host died between creating an upload in the
        store and recording it), once older than the expiry, is removed too."""
        if not isinstance(self.store, SweepsAbandoned):
            return 0
        with self.rt.db.read() as session:
            live = set(session.scalars(select(Upload.id)))
        expiry = timedelta(seconds=self.settings.tus_expiration_seconds)
        return self.store.abort_abandoned(datetime.now(UTC) - expiry, live)

    # -- downloads ----------------------------------------------------------------------------
    def finished_video_uid(self, who: Caller, upload_id: str) -> str:
        with self.rt.db.session() as session:
            row = self._row(session, upload_id, who)
            if row.finished_at is None or row.video_uid is None:
                raise Conflict("the upload has not finished", code="UPLOAD_NOT_FINISHED")
            return row.video_uid


def link_lock_key(video_uid: str) -> str:
    """The lock a creator link's partial-upload budget is changed under."""
    return "link-" + video_uid


def _past_limit(state: UploadState, what: str, kept: str = "") -> PayloadTooLarge:
    """413 for a body past the upload's length, or past the size limit of a deferred upload."""
    tail = f"; {kept}" if kept else ""
    if state.length is not None:
        return PayloadTooLarge(f"{what} past the upload's length{tail}", code="UPLOAD_OVERFLOW")
    return PayloadTooLarge(
        f"{what} past the upload's limit of {state.max_length} bytes{tail}",
        code="UPLOAD_TOO_LARGE",
        details={"max_bytes": state.max_length},
    )


def _order_stage(meta: dict[str, str]) -> tuple[str | None, Stage | None]:
    """`order_id` and `stage` metadata attach an admin's tus upload to an order stage."""
    order_id, stage = meta.pop("order_id", None), meta.pop("stage", None)
    if order_id is None and stage is None:
        return None, None
    valid = [s.value for s in Stage]
    if not order_id or stage not in valid:
        raise BadRequest(
            "metadata order_id and stage go together; stage is one of " + ", ".join(valid),
            code="INVALID_ORDER_STAGE",
            details={"valid_stages": valid},
        )
    return order_id, Stage(stage)


def _copy(src: Any, dst: Any) -> None:
    while block := src.read(4 * 1024 * 1024):
        dst.write(block)


def _hash_stream(src: Any) -> str:
    digest = hashlib.sha256()
    while block := src.read(4 * 1024 * 1024):
        digest.update(block)
    return digest.hexdigest()


def _sha256_of(store: Any, upload_id: str) -> str:
    with store.open_read(upload_id) as src:
        return _hash_stream(src)
