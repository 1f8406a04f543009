"""Where upload bytes live while an upload is in progress, behind a small store interface.

The protocol code talks only to `UploadStore`; optional capabilities (`Truncatable`,
`Concatenatable`, `Finishable`, `LocalFiles`, `ObjectFiles`, `SweepsAbandoned`) are discovered
with isinstance checks, as tusd does. Two stores: `FileUploadStore` here (the data folder) and
`reelout.uploads.s3store.S3UploadStore` (object storage).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from reelout.errors import StorageFailed

__all__ = ["StorageFailed"]  # what a store raises when its storage fails (not a full disk)


class UploadWriter(Protocol):
    """Appends to one upload. `close()` keeps what was written; `discard()` keeps none of it
    (a PATCH whose checksum does not match); `sync()` makes what was written durable."""

    def write(self, data: bytes) -> None: ...

    def sync(self) -> None: ...

    def close(self) -> None: ...

    def discard(self) -> None: ...


class UploadStore(Protocol):
    def create(self, upload_id: str) -> None: ...

    def exists(self, upload_id: str) -> bool: ...

    def size(self, upload_id: str) -> int:
        """Bytes durably stored: this is the upload's offset (FileNotFoundError: no such upload)."""
        ...

    def open_append(self, upload_id: str, *, provisional: bool = False) -> UploadWriter:
        """`provisional`: the bytes may yet be discarded, so a store that commits as it goes
        waits for `close()`."""
        ...

    def open_read(self, upload_id: str) -> BinaryIO: ...

    def delete(self, upload_id: str) -> None: ...


@runtime_checkable
class Truncatable(Protocol):
    def truncate(self, upload_id: str, size: int) -> None: ...


@runtime_checkable
class Concatenatable(Protocol):
    def concatenate(self, upload_id: str, part_ids: list[str]) -> None: ...


@runtime_checkable
class Finishable(Protocol):
    def finish(self, upload_id: str) -> None:
        """Make a complete upload whole for reading (idempotent)."""
        ...


@runtime_checkable
class LocalFiles(Protocol):
    def local_path(self, upload_id: str) -> Path: ...


@runtime_checkable
class ObjectFiles(Protocol):
    def object_key(self, upload_id: str) -> str:
        """The key of a finished upload's object in the bucket (made with `create`)."""
        ...

    def create_at(self, upload_id: str, key: str) -> None:
        """Create an upload that becomes the object `key` of the bucket when finished."""
        ...


@runtime_checkable
class SweepsAbandoned(Protocol):
    def abort_abandoned(self, started_before: datetime, live: set[str]) -> int:
        """Remove storage of uploads that have no record (`live` holds those that do)."""
        ...


WRITEBACK_EVERY = 16 * 1024 * 1024


class _FileWriter:
    """Appends with os.write; every 16 MiB it asks the kernel to start writing back what it
    has (POSIX_FADV_DONTNEED), so uploads do not pile up dirty pages and the sync at the end
    of an upload has little left to do."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._start = os.lseek(self._fd, 0, os.SEEK_END)
        self._unflushed = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._unflushed += len(data)
        if self._unflushed >= WRITEBACK_EVERY:
            end = os.lseek(self._fd, 0, os.SEEK_CUR)
            os.posix_fadvise(
                self._fd, end - self._unflushed, self._unflushed, os.POSIX_FADV_DONTNEED
            )
            self._unflushed = 0

    def sync(self) -> None:
        os.fdatasync(self._fd)

    def close(self) -> None:
        os.close(self._fd)

    def discard(self) -> None:
        try:
            os.ftruncate(self._fd, self._start)
        finally:
            os.close(self._fd)


class FileUploadStore:
    """One file per upload under a folder; the file size is the offset."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def local_path(self, upload_id: str) -> Path:
        return self.root / upload_id

    def create(self, upload_id: str) -> None:
        fd = os.open(self.local_path(upload_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        os.close(fd)

    def exists(self, upload_id: str) -> bool:
        return self.local_path(upload_id).exists()

    def size(self, upload_id: str) -> int:
        return self.local_path(upload_id).stat().st_size

    def open_append(self, upload_id: str, *, provisional: bool = False) -> UploadWriter:
        return _FileWriter(self.local_path(upload_id))

    def open_read(self, upload_id: str) -> BinaryIO:
        return self.local_path(upload_id).open("rb")

    def delete(self, upload_id: str) -> None:
        self.local_path(upload_id).unlink(missing_ok=True)

    def truncate(self, upload_id: str, size: int) -> None:
        os.truncate(self.local_path(upload_id), size)

    def concatenate(self, upload_id: str, part_ids: list[str]) -> None:
        with self.local_path(upload_id).open("ab") as out:
            for part in part_ids:
                with self.open_read(part) as src:
                    shutil.copyfileobj(src, out, 4 * 1024 * 1024)
            out.flush()
            os.fdatasync(out.fileno())

    def ids(self) -> Iterator[str]:
        return (p.name for p in self.root.iterdir() if p.is_file())
