"""Where a video's files live (original now; renditions later), behind a small store interface."""

from __future__ import annotations

import os
import shutil
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


@runtime_checkable
class LocalOriginals(Protocol):
    """Optional capability: the original is a local file (served with sendfile and Range)."""

    def original_path(self, uid: str) -> Path: ...


class FileMediaStore:
    """Videos under `<root>/<uid>/`; the original is `<root>/<uid>/original`."""

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
