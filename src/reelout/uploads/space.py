"""Free disk space: what an upload may still use on a folder's disk after the configured reserve."""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from reelout.errors import InsufficientStorage

# a write failing with one of these means "no room", not a broken disk: answer 507, keep the rest
NO_ROOM = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})


def is_no_room(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in NO_ROOM


@dataclass(frozen=True)
class DiskSpace:
    """The disk holding `folder`, with `reserve` bytes that uploads must leave free."""

    folder: Path
    reserve: int

    def free(self) -> int:
        """Bytes an unprivileged writer can still use (statvfs f_bavail)."""
        return shutil.disk_usage(self.folder).free

    def room(self) -> int:
        """Bytes uploads may still take: free space minus the reserve (negative when short)."""
        return self.free() - self.reserve

    def require(self, needed: int) -> None:
        """Refuse (507) unless `needed` more bytes fit and the reserve stays free."""
        room = self.room()
        if needed > room:
            raise InsufficientStorage(
                f"the server's disk has room for {max(room, 0)} more bytes (keeping "
                f"{self.reserve} free); this needs {needed}: try again later or a smaller file",
                details={"needed_bytes": needed, "available_bytes": max(room, 0)},
            )


def no_room(exc: OSError, offset: int | None = None) -> InsufficientStorage:
    """The 507 for a write the disk refused; with a tus offset, where to resume."""
    headers = {"Connection": "close"}
    if offset is not None:
        headers["Upload-Offset"] = str(offset)
    then = (
        "nothing was kept; send it again once space is back"
        if offset is None
        else f"the upload is kept up to offset {offset}; resume there once space is back"
    )
    return InsufficientStorage(
        f"the server's disk is full ({exc.strerror or exc}): {then}", headers=headers
    )


def low_disk(folders: list[Path], reserve: int) -> list[dict[str, object]]:
    """/readyz's disk check: each disk (named by its first folder) with less free space than
    the reserve."""
    reasons: list[dict[str, object]] = []
    disks: set[int] = set()
    for folder in folders:
        disk = os.stat(folder).st_dev
        if disk in disks:
            continue
        disks.add(disk)
        free = DiskSpace(folder, reserve).free()
        if free < reserve:
            reasons.append(
                {
                    "part": "disk",
                    "code": "LOW_DISK",
                    "message": f"{folder} has {free} bytes free, below the reserve of {reserve} "
                    "(REELOUT_DISK_RESERVE_BYTES): uploads are refused until space is freed",
                    "folder": str(folder),
                    "free_bytes": free,
                    "reserve_bytes": reserve,
                }
            )
    return reasons
