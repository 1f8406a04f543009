"""Where the telemetry client keeps events until the server has them: on disk (`DiskSpool`) or,
without a spool folder, in memory (`MemorySpool`), both bounded, the oldest dropped first.

Hand-written: the queue libraries on PyPI (persist-queue, diskcache) keep SQLite databases or
pickles, and none bounds its size by dropping the oldest. What is needed is small: events are
already one JSON line each, and the server is idempotent by event_id, so a spool only has to
lose nothing it confirmed and may send a line twice.

The disk format: a folder of append-only segment files, `<number>.ndjson`, each line one event
as sent (the NDJSON body of a batch is those lines verbatim). A new segment starts when the
current one passes `segment_bytes`; the oldest segment is deleted when all its lines are
delivered, or as a whole when the folder grows past `max_bytes`. Delivery progress inside the
oldest segment is kept in memory only: after a crash that segment is sent again from its start,
which the server answers as duplicates. A line cut short by a crash (no newline at the end of a
segment) is skipped. A process never appends to a segment an earlier process left, and one
process at a time holds the folder (an `flock` on `.lock`).

Durability (`fsync`): lines are written by the client's thread in groups, never by the app's
thread. Written lines survive the app being killed (they are in the OS's page cache); with
`fsync=True` each group is also flushed to the device before the thread goes on, so they survive
a power loss or an OS crash too, at one fsync per group (per batch or per flush interval).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

if sys.platform != "win32":
    import fcntl

SUFFIX = ".ndjson"
LOCK_NAME = ".lock"


class SpoolBusy(OSError):
    """Another client (in this or another process) holds the spool folder."""


class Spool(Protocol):
    """Events waiting for the server, oldest first: add at the end, read and confirm at the
    front. `append` returns how many of the oldest it dropped to stay within its bound."""

    @property
    def pending(self) -> int: ...

    def append(self, lines: list[bytes]) -> int: ...

    def peek(self, limit: int) -> list[bytes]: ...

    def ack(self, count: int) -> None: ...

    def close(self) -> None: ...


class MemorySpool:
    """At most `max_events` lines in memory (no spool folder: unsent events end with the app)."""

    def __init__(self, max_events: int) -> None:
        self._lines: collections.deque[bytes] = collections.deque(maxlen=max_events)

    @property
    def pending(self) -> int:
        return len(self._lines)

    def append(self, lines: list[bytes]) -> int:
        room = self._lines.maxlen or 0
        dropped = max(0, len(self._lines) + len(lines) - room)
        self._lines.extend(lines)
        return dropped

    def peek(self, limit: int) -> list[bytes]:
        return list(itertools.islice(self._lines, limit))

    def ack(self, count: int) -> None:
        for _ in range(min(count, len(self._lines))):
            self._lines.popleft()

    def close(self) -> None:
        self._lines.clear()


@dataclass
class _Segment:
    number: int
    path: Path
    size: int  # bytes of complete lines
    lines: int  # complete lines in it
    torn: int = 0  # a last line cut short by a crash (not counted in size or lines)


class DiskSpool:
    """Segment files in `folder`, about `max_bytes` in all (at most one segment more)."""

    def __init__(
        self, folder: Path, max_bytes: int, *, fsync: bool = True, segment_bytes: int = 0
    ) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or max(1, max_bytes // 8)
        self.fsync = fsync
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = _hold_lock(folder / LOCK_NAME)
        self._segments = [_loaded(path) for path in _segment_paths(folder)]
        self.torn = sum(s.torn for s in self._segments)  # lines cut short by a crash, skipped
        self._next = self._segments[-1].number + 1 if self._segments else 1
        self._writer: IO[bytes] | None = None  # the segment this process appends to (the last)
        self._cursor = 0  # bytes of the first segment already delivered
        self._delivered = 0  # its lines already delivered
        self._ends: list[int] = []  # where each line of the last peek ends

    @property
    def pending(self) -> int:
        return sum(s.lines for s in self._segments) - self._delivered

    @property
    def size(self) -> int:
        return sum(s.size for s in self._segments)

    def append(self, lines: list[bytes]) -> int:
        """Write the lines (each ending in a newline) after the last; drop the oldest segments
        while the folder is over its bound. Raises OSError when the disk refuses."""
        touched: set[IO[bytes]] = set()
        for line in lines:
            writer = self._current()
            writer.write(line)
            segment = self._segments[-1]
            segment.size += len(line)
            segment.lines += 1
            touched.add(writer)
            if segment.size >= self.segment_bytes:
                self._seal(writer)
        for writer in touched:
            if not writer.closed:
                self._sync(writer)
        return self._trim()

    def peek(self, limit: int) -> list[bytes]:
        """Up to `limit` undelivered lines from the front (skipping lines cut by a crash)."""
        self._ends = []
        while self._segments:
            segment = self._segments[0]
            lines = self._read(segment, limit)
            if lines or self._cursor < segment.size:
                return lines
            self._retire()
        return []

    def ack(self, count: int) -> None:
        """The first `count` lines of the last peek are delivered (or given up)."""
        if not count or not self._segments:
            return
        self._cursor = self._ends[count - 1]
        self._delivered += count
        self._ends = []
        if self._cursor >= self._segments[0].size:
            self._retire()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._lock.close()  # releases the flock

    # ---- inside ---------------------------------------------------------------------------

    def _current(self) -> IO[bytes]:
        if self._writer is None:
            path = self.folder / f"{self._next:012d}{SUFFIX}"
            self._writer = path.open("ab")
            self._segments.append(_Segment(self._next, path, 0, 0))
            self._next += 1
            if self.fsync:
                _sync_folder(self.folder)
        return self._writer

    def _seal(self, writer: IO[bytes]) -> None:
        self._sync(writer)
        writer.close()
        self._writer = None

    def _sync(self, writer: IO[bytes]) -> None:
        writer.flush()
        if self.fsync:
            os.fsync(writer.fileno())

    def _read(self, segment: _Segment, limit: int) -> list[bytes]:
        if self._writer is not None and segment is self._segments[-1]:
            self._writer.flush()
        lines: list[bytes] = []
        with segment.path.open("rb") as source:
            source.seek(self._cursor)
            at = self._cursor
            while len(lines) < limit and at < segment.size:
                line = source.readline()
                if not line.endswith(b"\n"):
                    break
                at += len(line)
                lines.append(line)
                self._ends.append(at)
        return lines

    def _retire(self) -> None:
        """The first segment is done with: delete it (and stop appending to it)."""
        segment = self._segments.pop(0)
        if self._writer is not None and not self._segments:
            self._writer.close()
            self._writer = None
        with contextlib.suppress(FileNotFoundError):
            segment.path.unlink()
        self._cursor = self._delivered = 0

    def _trim(self) -> int:
        dropped = 0
        while len(self._segments) > 1 and self.size > self.max_bytes:
            dropped += self._segments[0].lines - self._delivered
            self._retire()
        return dropped


def _segment_paths(folder: Path) -> list[Path]:
    found = [p for p in folder.iterdir() if p.suffix == SUFFIX and p.stem.isdigit()]
    return sorted(found, key=lambda p: int(p.stem))


def _loaded(path: Path) -> _Segment:
    """A segment an earlier process left; a last line without its newline was cut short."""
    data = path.read_bytes()
    size = data.rfind(b"\n") + 1
    return _Segment(int(path.stem), path, size, data.count(b"\n"), int(size < len(data)))


def _hold_lock(path: Path) -> IO[bytes]:
    lock = path.open("ab")
    if sys.platform != "win32":
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise SpoolBusy(f"another telemetry client is using {path.parent}") from None
    return lock


def _sync_folder(folder: Path) -> None:
    """Make a new file's name durable (POSIX: fsync the directory)."""
    if sys.platform == "win32":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
