"""Videos in S3-compatible object storage: the original and published versions as objects under
`<prefix>media/<uid>/`; processing still works in local scratch folders (ffmpeg needs files).

A version is uploaded file by file to `media/<uid>/v-<random>/...` and becomes visible only when
its marker `media/<uid>/v-<random>.complete` (a small manifest) is written, last; readers treat a
version without its marker as absent, so nobody ever sees half a version.
"""

from __future__ import annotations

import contextlib
import io
import json
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, cast

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from reelout.media import delivery
from reelout.media.storage import SCRATCH_PREFIX, VERSION_PREFIX, StoredObject
from reelout.objectstore import Bucket, is_missing

MARKER_SUFFIX = ".complete"
PUBLISH_THREADS = 8  # segments are many small files: upload several at once
CHUNK = 256 * 1024
KNOWN_LIMIT = 10_000  # entries kept of what is known about published files (they never change)


class S3MediaStore:
    """The `MediaStore` on a bucket; also `ObjectOriginals` and `ObjectMedia`."""

    def __init__(self, bucket: Bucket, scratch_root: Path, part_size: int = 16 * 1024 * 1024):
        self.bucket = bucket
        self.scratch_root = scratch_root
        self.scratch_root.mkdir(parents=True, exist_ok=True, mode=0o700)  # copies of originals
        self._transfer = TransferConfig(
            multipart_threshold=part_size, multipart_chunksize=part_size
        )
        self._known: dict[str, StoredObject] = {}  # published files seen (complete versions)
        self._complete: set[str] = set()  # markers seen
        self._lock = threading.Lock()

    # -- keys -----------------------------------------------------------------------------------
    def _key(self, uid: str, *parts: str) -> str:
        return self.bucket.key("media", uid, *parts)

    def original_key(self, uid: str) -> str:
        return self._key(uid, "original")

    # -- the original ---------------------------------------------------------------------------
    def adopt_original(self, uid: str, source: Path) -> None:
        self._upload(source, self.original_key(uid))
        source.unlink(missing_ok=True)

    def adopt_object(self, uid: str, key: str) -> None:
        self.bucket.copy(key, self.original_key(uid))
        self.bucket.delete([key])

    def write_original(self, uid: str) -> BinaryIO:
        folder = self.scratch_root / uid
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"incoming-{secrets.token_hex(4)}"
        return PendingObject(path, lambda done: self._upload(done, self.original_key(uid)))

    def has_original(self, uid: str) -> bool:
        return self.bucket.size(self.original_key(uid)) is not None

    def open_original(self, uid: str) -> BinaryIO:
        try:
            return cast(BinaryIO, self.bucket.open(self.original_key(uid)))
        except ClientError as exc:
            if is_missing(exc):
                raise FileNotFoundError(f"video {uid} has no original") from exc
            raise

    def original_size(self, uid: str) -> int:
        size = self.bucket.size(self.original_key(uid))
        if size is None:
            raise FileNotFoundError(f"video {uid} has no original")
        return size

    def sync_original(self, uid: str) -> None:
        """Nothing to do: S3 has the bytes durably once it acknowledged the write."""

    def original_object(self, uid: str) -> StoredObject | None:
        return self._head(self.original_key(uid))

    def delete_video(self, uid: str) -> None:
        self.bucket.delete_prefix(self._key(uid) + "/")
        shutil.rmtree(self.scratch_root / uid, ignore_errors=True)
        self._forget(self._key(uid) + "/")

    # -- processing -----------------------------------------------------------------------------
    def scratch(self, uid: str, job: str) -> Path:
        for left in (self.scratch_root / uid).glob(f"{SCRATCH_PREFIX}*"):  # crashed attempts
            shutil.rmtree(left, ignore_errors=True)
        folder = self.scratch_root / uid / f"{SCRATCH_PREFIX}{job}-{secrets.token_hex(4)}"
        folder.mkdir(parents=True)
        return folder

    def discard(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):  # the video's folder, unless something else is in it
            folder.parent.rmdir()

    def publish(self, uid: str, folder: Path) -> str:
        version = VERSION_PREFIX + secrets.token_hex(8)
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        try:
            with ThreadPoolExecutor(PUBLISH_THREADS, thread_name_prefix="publish") as pool:
                list(pool.map(lambda name: self._publish_file(uid, version, folder, name), files))
        except BaseException:
            self.bucket.delete_prefix(self._key(uid, version) + "/")
            raise
        manifest = json.dumps({"files": files}).encode()
        self.bucket.put(self._marker(uid, version), manifest, "application/json")
        shutil.rmtree(folder, ignore_errors=True)
        return version

    def _publish_file(self, uid: str, version: str, folder: Path, name: str) -> None:
        kind = delivery.kind_of(name)
        extra = {"ContentType": kind.media_type if kind else "application/octet-stream"}
        if kind is not None:  # what a CDN in front of the bucket passes on
            extra["CacheControl"] = kind.cache_control
        self._upload(folder / name, self._key(uid, version, name), extra)

    def delete_version(self, uid: str, version: str) -> bool:
        if not _valid(uid, version):
            return False
        marker = self._marker(uid, version)
        found = self.bucket.size(marker) is not None
        self.bucket.delete([marker])  # first: from here on, readers see no version
        self._forget(marker)
        files = [key for key, _ in self.bucket.keys(self._key(uid, version) + "/")]
        self.bucket.delete(files)
        self._forget(self._key(uid, version) + "/")
        return found or bool(files)

    # -- reading published files ----------------------------------------------------------------
    def version_object(self, uid: str, version: str, name: str) -> StoredObject | None:
        parts = name.split("/")
        if not _valid(uid, version) or any(p in ("", ".", "..") for p in parts):
            return None
        if not self._is_complete(uid, version):
            return None
        return self._head(self._key(uid, version, name))

    def open_range(self, key: str, first: int, last: int) -> Iterator[bytes] | None:
        try:
            body = self.bucket.open(key, first, last)
        except ClientError as exc:
            if is_missing(exc):
                self._forget(key)
                return None
            raise
        return _chunks(body)

    def read_text(self, key: str) -> str | None:
        data = self.bucket.get(key)
        return None if data is None else data.decode()

    def presign(self, key: str, expires_in: int) -> str:
        return self.bucket.presign(key, expires_in)

    def check(self) -> str | None:
        """None when the bucket answers, else why not (readiness)."""
        return self.bucket.check()

    # -- helpers --------------------------------------------------------------------------------
    def _marker(self, uid: str, version: str) -> str:
        return self._key(uid, version + MARKER_SUFFIX)

    def _upload(self, path: Path, key: str, extra: dict[str, str] | None = None) -> None:
        client, name = self.bucket.client, self.bucket.name
        if path.stat().st_size < self._transfer.multipart_threshold:  # one PUT, no thread pool
            with path.open("rb") as data:
                client.put_object(Bucket=name, Key=key, Body=data, **cast(Any, extra or {}))
            return
        client.upload_file(str(path), name, key, ExtraArgs=extra, Config=self._transfer)

    def _is_complete(self, uid: str, version: str) -> bool:
        marker = self._marker(uid, version)
        if marker in self._complete:
            return True
        if self.bucket.size(marker) is None:
            return False
        with self._lock:
            if len(self._complete) >= KNOWN_LIMIT:
                self._complete.clear()
            self._complete.add(marker)
        return True

    def _head(self, key: str) -> StoredObject | None:
        known = self._known.get(key)
        if known is not None:
            return known
        try:
            head = self.bucket.client.head_object(Bucket=self.bucket.name, Key=key)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        found = StoredObject(key, int(head["ContentLength"]), str(head["ETag"]))
        with self._lock:
            if len(self._known) >= KNOWN_LIMIT:
                self._known.clear()
            self._known[key] = found
        return found

    def _forget(self, prefix: str) -> None:
        with self._lock:
            self._complete = {k for k in self._complete if not k.startswith(prefix)}
            self._known = {k: v for k, v in self._known.items() if not k.startswith(prefix)}


def _valid(uid: str, version: str) -> bool:
    return uid.isalnum() and version.startswith(VERSION_PREFIX) and version[2:].isalnum()


def _chunks(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK)
    finally:
        body.close()


class PendingObject(io.FileIO):
    """A local file that becomes an object when closed after a whole write (`upload(path)`);
    nothing is uploaded when it is abandoned, when its `with` block fails, or when it is
    garbage-collected unclosed. The local file is removed in every case."""

    def __init__(self, path: Path, upload: Callable[[Path], None]) -> None:
        super().__init__(path, "w+")
        self._path, self._send, self._abandoned = path, upload, False

    def abandon(self) -> None:
        self._abandoned = True
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()
            if not self._abandoned:
                self._send(self._path)
        finally:
            self._abandoned = True
            self._path.unlink(missing_ok=True)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is not None:
            self._abandoned = True
        self.close()

    def __del__(self) -> None:
        self._abandoned = True
        self.close()
