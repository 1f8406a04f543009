"""Where a video's files live (original, published versions), behind a small store interface.

Processing works in a local scratch folder (ffmpeg needs files) and hands the finished folder to
`publish`, which makes it a new version atomically; readers only ever see whole versions.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable


class MediaStore(Protocol):
    def adopt_original(self, uid: str, source: Path) -> None:
        """Move a finished upload's file in as the video's original (atomic on one filesystem)."""
        ...

    def write_original(self, uid: str) -> BinaryIO:
        """A file to stream a direct upload into; it replaces the original when closed."""
        ...

    def has_original(self, uid: str) -> bool: ...

    def open_original(self, uid: str) -> BinaryIO: ...

    def original_size(self, uid: str) -> int: ...

    def sync_original(self, uid: str) -> None:
        """Force the original's bytes to stable storage."""
        ...

    def delete_video(self, uid: str) -> None: ...

    def scratch(self, uid: str, job: str) -> Path:
        """A new, empty local folder for one attempt at processing a video (gone after publish
        or discard); folders earlier attempts left behind are removed."""
        ...

    def discard(self, folder: Path) -> None: ...

    def publish(self, uid: str, folder: Path) -> str:
        """Make a finished scratch folder a new version of the video; returns its name."""
        ...

    def delete_version(self, uid: str, version: str) -> bool:
        """Remove one published version; False if it was not there."""
        ...


@runtime_checkable
class LocalOriginals(Protocol):
    """Optional capability: the original is a local file (served with sendfile and Range)."""

    def original_path(self, uid: str) -> Path: ...


@runtime_checkable
class LocalVersions(Protocol):
    """Optional capability: published files are local (served with sendfile and Range)."""

    def version_file(self, uid: str, version: str, name: str) -> Path | None: ...


@runtime_checkable
class ObjectOriginals(Protocol):
    """Optional capability: originals are objects in a bucket the upload store shares."""

    def original_key(self, uid: str) -> str:
        """The key of the video's original: an upload created there needs no adopting."""
        ...

    def adopt_object(self, uid: str, key: str) -> None:
        """Copy an object of the same bucket in as the video's original (server-side), then
        delete the source."""
        ...


@dataclass(frozen=True)
class StoredObject:
    """A published file in object storage: its key, size and entity tag (quoted)."""

    key: str
    size: int
    etag: str


@runtime_checkable
class ObjectMedia(Protocol):
    """Optional capability: published files and originals are objects, streamed through or
    redirected to (media/streaming.py)."""

    def version_object(self, uid: str, version: str, name: str) -> StoredObject | None:
        """The file `name` of a complete published version, if it exists."""
        ...

    def original_object(self, uid: str) -> StoredObject | None: ...

    def open_range(self, key: str, first: int, last: int) -> Iterator[bytes] | None:
        """The bytes first..last (inclusive) of an object, in chunks; None when it is gone.
        The request is made before this returns, so a missing object shows here."""
        ...

    def read_text(self, key: str) -> str | None: ...

    def presign(self, key: str, expires_in: int) -> str: ...


VERSION_PREFIX = "v-"
SCRATCH_PREFIX = "work-"


class FileMediaStore:
    """Videos under `<root>/<uid>/`: `original`, published versions `v-<random>/`, and scratch
    folders `work-<job>-<random>/` while processing runs (one per attempt, so a retry never
    shares a folder with what a crashed attempt may still be writing)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _dir(self, uid: str) -> Path:
        return self.root / uid

    def original_path(self, uid: str) -> Path:
        return self._dir(uid) / "original"

    def adopt_original(self, uid: str, source: Path) -> None:
        self._dir(uid).mkdir(parents=True, exist_ok=True)
        os.replace(source, self.original_path(uid))

    def write_original(self, uid: str) -> BinaryIO:
        self._dir(uid).mkdir(parents=True, exist_ok=True)
        return self.original_path(uid).open("wb")

    def has_original(self, uid: str) -> bool:
        return self.original_path(uid).is_file()

    def open_original(self, uid: str) -> BinaryIO:
        return self.original_path(uid).open("rb")

    def original_size(self, uid: str) -> int:
        return self.original_path(uid).stat().st_size

    def sync_original(self, uid: str) -> None:
        fd = os.open(self.original_path(uid), os.O_RDONLY)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)

    def delete_video(self, uid: str) -> None:
        shutil.rmtree(self._dir(uid), ignore_errors=True)

    def scratch(self, uid: str, job: str) -> Path:
        for left in self._dir(uid).glob(f"{SCRATCH_PREFIX}*"):  # left over by crashed attempts
            shutil.rmtree(left, ignore_errors=True)
        folder = self._dir(uid) / f"{SCRATCH_PREFIX}{job}-{secrets.token_hex(4)}"
        folder.mkdir(parents=True)
        return folder

    def discard(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    def publish(self, uid: str, folder: Path) -> str:
        version = VERSION_PREFIX + secrets.token_hex(8)
        _sync_tree(folder)
        os.replace(folder, self._dir(uid) / version)
        _sync_dir(self._dir(uid))
        return version

    def delete_version(self, uid: str, version: str) -> bool:
        folder = self._version_dir(uid, version)
        if folder is None or not folder.is_dir():
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True

    def version_file(self, uid: str, version: str, name: str) -> Path | None:
        """The file `name` (e.g. `720p/seg_00001.m4s`) of a published version, if it exists."""
        folder = self._version_dir(uid, version)
        if folder is None or ".." in name.split("/"):
            return None
        path = folder / name
        return path if path.is_file() else None

    def _version_dir(self, uid: str, version: str) -> Path | None:
        if not (uid.isalnum() and version.startswith(VERSION_PREFIX) and "/" not in version):
            return None
        return self._dir(uid) / version


def _sync_tree(folder: Path) -> None:
    """fdatasync every file and folder under `folder`, so a published version survives a crash."""
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)
        else:
            _sync_dir(path)
    _sync_dir(folder)


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
