"""tus uploads on S3-compatible object storage, laid out the way tusd's S3 store lays them out.

Each upload is one S3 multipart upload of the object `uploads/<id>`. A PATCH body is cut into
parts of `REELOUT_S3_PART_SIZE`; a tail shorter than a part waits in a small incomplete-part
object `uploads/<id>.tail.<n>` until the next PATCH takes it up again. Finishing uploads the tail
as the last part and completes the multipart upload; termination and expiry abort it;
concatenation copies the finished partial uploads in as parts, server-side (UploadPartCopy).

The commit point is a small record, `uploads/<id>.info` (JSON: the multipart upload's id, each
part's size and ETag, the incomplete part). The offset is what that record says, so any host
answers HEAD alike. tusd lists the parts instead (ListParts); a record is used here because a part
once uploaded cannot be taken out of a multipart upload, while the record can leave it out: a
PATCH whose checksum does not match, or that runs past the upload's length, is undone by not
committing it (its parts are overwritten by the next PATCH, which reuses their numbers). Plain
PATCHes commit after every part, so a host killed mid-PATCH loses at most one part's worth.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from botocore.exceptions import ClientError

from reelout.config import MAX_PARTS, MiB
from reelout.objectstore import Bucket, StorageFailed, is_missing, storage_errors

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MIN_PART = 5 * MiB  # S3's smallest part (but the last)
MAX_COPY = 5 * 1024 * MiB  # S3's largest UploadPartCopy range


@dataclass(frozen=True)
class Part:
    """One uploaded part: its size, and the ETag that completing the upload names it by."""

    size: int
    etag: str


@dataclass(frozen=True)
class Record:
    """The committed state of an upload in progress: parts 1..n, then the incomplete tail."""

    multipart: str
    parts: tuple[Part, ...] = ()
    tail: int = 0  # bytes in the incomplete-part object `.tail.<generation>`
    generation: int = 0
    key: str = ""  # where the upload becomes one object: "" is `uploads/<id>`

    @property
    def size(self) -> int:
        return sum(part.size for part in self.parts) + self.tail

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Record:
        data = json.loads(raw)
        parts = tuple(Part(int(p["size"]), str(p["etag"])) for p in data["parts"])
        tail, generation = int(data["tail"]), int(data["generation"])
        return cls(str(data["multipart"]), parts, tail, generation, str(data.get("key", "")))


class S3UploadStore:
    """The `UploadStore` on a bucket; also `Finishable`, `Concatenatable` and `ObjectFiles`."""

    def __init__(self, bucket: Bucket, part_size: int = 16 * MiB) -> None:
        if part_size < MIN_PART:
            raise ValueError(f"parts must be at least {MIN_PART} bytes")
        self.bucket = bucket
        self.part_size = part_size

    # -- keys and the record ------------------------------------------------------------------
    def object_key(self, upload_id: str) -> str:
        """The object an upload created with `create` becomes when finished."""
        return self.bucket.key("uploads", upload_id)

    def _target(self, upload_id: str, record: Record) -> str:
        return record.key or self.object_key(upload_id)

    def _info_key(self, upload_id: str) -> str:
        return self.object_key(upload_id) + ".info"

    def _tail_key(self, upload_id: str, generation: int) -> str:
        return f"{self.object_key(upload_id)}.tail.{generation}"

    def record(self, upload_id: str) -> Record | None:
        raw = self.bucket.get(self._info_key(upload_id))
        return None if raw is None else Record.from_json(raw)

    def commit(self, upload_id: str, record: Record) -> None:
        self.bucket.put(self._info_key(upload_id), record.to_json(), "application/json")

    def tail(self, upload_id: str, record: Record) -> bytes:
        if record.tail == 0:
            return b""
        data = self.bucket.get(self._tail_key(upload_id, record.generation), 0, record.tail - 1)
        if data is None or len(data) != record.tail:
            raise StorageFailed(errno.EIO, f"upload {upload_id}: its incomplete part is missing")
        return data

    # -- UploadStore --------------------------------------------------------------------------
    def create(self, upload_id: str) -> None:
        self.create_at(upload_id, self.object_key(upload_id))

    @storage_errors
    def create_at(self, upload_id: str, key: str) -> None:
        """An upload that becomes the object `key` when finished (e.g. a video's original, so
        finishing moves no bytes); its record stays under `uploads/`."""
        client, name = self.bucket.client, self.bucket.name
        reply = client.create_multipart_upload(Bucket=name, Key=key)
        own = "" if key == self.object_key(upload_id) else key
        self.commit(upload_id, Record(reply["UploadId"], key=own))

    @storage_errors
    def exists(self, upload_id: str) -> bool:
        if self.bucket.size(self._info_key(upload_id)) is not None:
            return True
        return self.bucket.size(self.object_key(upload_id)) is not None

    @storage_errors
    def size(self, upload_id: str) -> int:
        record = self.record(upload_id)
        if record is not None:
            return record.size
        size = self.bucket.size(self.object_key(upload_id))
        if size is None:
            raise FileNotFoundError(errno.ENOENT, "no such upload", upload_id)
        return size

    @storage_errors
    def open_append(self, upload_id: str, *, provisional: bool = False) -> PartWriter:
        record = self.record(upload_id)
        if record is None:
            raise FileNotFoundError(errno.ENOENT, "no upload in progress", upload_id)
        return PartWriter(self, upload_id, record, provisional)

    @storage_errors
    def open_read(self, upload_id: str) -> BinaryIO:
        """The finished upload's bytes, streamed."""
        return cast(BinaryIO, _Reader(self.bucket.open(self.object_key(upload_id))))

    @storage_errors
    def delete(self, upload_id: str) -> None:
        record = self.record(upload_id)
        if record is not None:
            self._abort(upload_id, record)
        keys = [key for key, _ in self.bucket.keys(self.object_key(upload_id) + ".")]
        self.bucket.delete([self.object_key(upload_id), *keys])

    def _abort(self, upload_id: str, record: Record) -> None:
        try:
            self.bucket.client.abort_multipart_upload(
                Bucket=self.bucket.name,
                Key=self._target(upload_id, record),
                UploadId=record.multipart,
            )
        except ClientError as exc:
            if not is_missing(exc):
                raise

    # -- Finishable ---------------------------------------------------------------------------
    @storage_errors
    def finish(self, upload_id: str) -> None:
        """Make the upload one object: the tail becomes the last part. Idempotent."""
        record = self.record(upload_id)
        if record is None:
            return
        tail = self.tail(upload_id, record)
        if not record.parts:  # small: one plain object, no multipart needed
            self.bucket.put(self._target(upload_id, record), tail)
            self._abort(upload_id, record)
        else:
            if tail:
                record = _with_part(record, self._upload_part(upload_id, record, tail))
            self._complete(upload_id, record)
        keys = [key for key, _ in self.bucket.keys(self.object_key(upload_id) + ".")]
        self.bucket.delete(keys)

    def _complete(self, upload_id: str, record: Record) -> None:
        parts: list[CompletedPartTypeDef] = [
            {"PartNumber": number, "ETag": part.etag}
            for number, part in enumerate(record.parts, start=1)
        ]
        try:
            self.bucket.client.complete_multipart_upload(
                Bucket=self.bucket.name,
                Key=self._target(upload_id, record),
                UploadId=record.multipart,
                MultipartUpload={"Parts": parts},
            )
        except ClientError as exc:  # completed before (a crash came between it and the cleanup)
            done = self.bucket.size(self._target(upload_id, record))
            if not (is_missing(exc) and done == record.size):
                raise

    def _upload_part(self, upload_id: str, record: Record, data: bytes) -> Part:
        number = len(record.parts) + 1
        if number > MAX_PARTS:
            raise StorageFailed(errno.EFBIG, f"an upload has at most {MAX_PARTS} parts")
        reply = self.bucket.client.upload_part(
            Bucket=self.bucket.name,
            Key=self._target(upload_id, record),
            UploadId=record.multipart,
            PartNumber=number,
            Body=data,
        )
        return Part(len(data), reply["ETag"])

    # -- Concatenatable -----------------------------------------------------------------------
    @storage_errors
    def concatenate(self, upload_id: str, part_ids: list[str]) -> None:
        """Assemble finished partial uploads: copied server-side when every one but the last
        is at least S3's smallest part; otherwise streamed through this host."""
        sizes = [self.size(part_id) for part_id in part_ids]
        record = self.record(upload_id)
        if record is None:
            raise FileNotFoundError(errno.ENOENT, "no upload in progress", upload_id)
        if all(size >= MIN_PART for size in sizes[:-1]) and sizes and sizes[-1] > 0:
            for part_id, size in zip(part_ids, sizes, strict=True):
                for first, last in _copy_ranges(size):
                    part = self._copy_part(upload_id, record, part_id, first, last)
                    record = _with_part(record, part)
            self.commit(upload_id, record)
            return
        writer = PartWriter(self, upload_id, record, provisional=True)
        for part_id in part_ids:
            with self.open_read(part_id) as src:
                while block := src.read(self.part_size):
                    writer.write(block)
        writer.close()

    def _copy_part(
        self, upload_id: str, record: Record, source_id: str, first: int, last: int
    ) -> Part:
        reply = self.bucket.client.upload_part_copy(
            Bucket=self.bucket.name,
            Key=self._target(upload_id, record),
            UploadId=record.multipart,
            PartNumber=len(record.parts) + 1,
            CopySource={"Bucket": self.bucket.name, "Key": self.object_key(source_id)},
            CopySourceRange=f"bytes={first}-{last}",
        )
        return Part(last - first + 1, reply["CopyPartResult"]["ETag"])

    # -- expiry -------------------------------------------------------------------------------
    @storage_errors
    def abort_abandoned(self, started_before: datetime, live: set[str]) -> int:
        """Abort what uploads not in `live` (e.g. a host died between creating one and
        recording it) left from before the cut-off: multipart uploads under `uploads/`, and
        records of uploads made at another key (a video's original)."""
        aborted = 0
        for key, multipart, started in self._multipart_uploads():
            upload_id = key.rsplit("/", 1)[-1]
            if started < started_before and upload_id not in live:
                self.bucket.client.abort_multipart_upload(
                    Bucket=self.bucket.name, Key=key, UploadId=multipart
                )
                self.bucket.delete_prefix(key + ".")
                aborted += 1
        for upload_id in self._records_before(started_before, live):
            self.delete(upload_id)  # aborts the multipart upload at the record's key
            aborted += 1
        return aborted

    def _records_before(self, cut_off: datetime, live: set[str]) -> list[str]:
        """Upload ids of records written before the cut-off, not live, made at another key."""
        prefix = self.bucket.key("uploads/")
        found = []
        for key, _, modified in self.bucket.objects(prefix):
            upload_id = key[len(prefix) :].removesuffix(".info")
            if key.endswith(".info") and upload_id not in live and modified < cut_off:
                record = self.record(upload_id)
                if record is not None and record.key:
                    found.append(upload_id)
        return found

    def _multipart_uploads(self) -> Iterator[tuple[str, str, datetime]]:
        pages = self.bucket.client.get_paginator("list_multipart_uploads")
        prefix = self.bucket.key("uploads/")
        for page in pages.paginate(Bucket=self.bucket.name, Prefix=prefix):
            for item in page.get("Uploads", []):
                yield item["Key"], item["UploadId"], item["Initiated"]

    def check(self) -> str | None:
        """/readyz: does the bucket answer?"""
        return self.bucket.check()


def _with_part(record: Record, part: Part) -> Record:
    return replace(record, parts=(*record.parts, part))


def _copy_ranges(size: int) -> list[tuple[int, int]]:
    """Split an object into the fewest equal ranges S3 copies as parts (≤ 5 GiB each)."""
    count = max(1, -(-size // MAX_COPY))
    step = -(-size // count)
    return [(start, min(start + step, size) - 1) for start in range(0, size, step)]


@dataclass
class PartWriter:
    """Appends to one upload: whole parts go up while the body still arrives (one at a time,
    in a background thread); `close` keeps the rest as the incomplete part and commits.

    `provisional`: commit nothing before `close` (a PATCH with a checksum is kept only once it
    matches); `discard` then leaves the record as it was."""

    store: S3UploadStore
    upload_id: str
    start: Record
    provisional: bool
    record: Record = field(init=False)
    pending: bytearray = field(init=False)
    _sending: Future[None] | None = field(default=None, init=False)
    _pool: ThreadPoolExecutor | None = field(default=None, init=False)  # made for a first part
    _committed: bool = field(default=False, init=False)
    _broken: bool = field(default=False, init=False)  # a part failed: `pending` has a gap

    def __post_init__(self) -> None:
        self.record = self.start
        self.pending = bytearray(self.store.tail(self.upload_id, self.start))

    @storage_errors
    def write(self, data: bytes) -> None:
        self.pending += data
        size = self.store.part_size
        while len(self.pending) >= size:
            self._wait()
            with memoryview(self.pending) as view:
                chunk = bytes(view[:size])  # one copy (a slice of a bytearray would be two)
            del self.pending[:size]
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="reelout-s3-part")
            self._sending = self._pool.submit(self._send, chunk)

    def _send(self, chunk: bytes) -> None:
        part = self.store._upload_part(self.upload_id, self.record, chunk)
        self.record = replace(_with_part(self.record, part), tail=0)
        if not self.provisional:
            self.store.commit(self.upload_id, self.record)
            self._committed = True

    def _wait(self) -> None:
        if self._sending is not None:
            sending, self._sending = self._sending, None
            try:
                sending.result()
            except BaseException:
                self._broken = True
                raise

    def sync(self) -> None:
        """Nothing to do: what object storage acknowledged is durable."""

    @storage_errors
    def close(self) -> None:
        """Keep everything written: the rest becomes the incomplete part; then commit. After a
        failed part only what was committed part by part stands (the rest is not contiguous)."""
        try:
            if self._broken:
                return
            self._wait()
            record = self.record
            if self.pending:
                generation = max(record.generation, self.start.generation) + 1
                tail_key = self.store._tail_key(self.upload_id, generation)
                self.store.bucket.put(tail_key, bytes(self.pending))
                record = replace(record, tail=len(self.pending), generation=generation)
            self.store.commit(self.upload_id, record)
            if self.start.tail and (record.tail == 0 or record.generation != self.start.generation):
                old = self.store._tail_key(self.upload_id, self.start.generation)
                self.store.bucket.delete([old])
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()

    @storage_errors
    def discard(self) -> None:
        """Keep nothing of this writer's bytes: the record is put back as it was."""
        try:
            self._sending, sending = None, self._sending
            if sending is not None:
                sending.exception()  # wait; a failed send committed nothing
            if self._committed:
                self.store.commit(self.upload_id, self.start)
        finally:
            self._shutdown()


class _Reader:
    """A botocore streaming body as a closeable binary file (`read`, `with`)."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._body.read(None if size < 0 else size)
        return data

    def close(self) -> None:
        self._body.close()

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
