"""Per-upload locks with tusd's release-the-stale-holder rule, never blocking the event loop.

A new request on a busy upload asks the current holder to stop; the holder saves what it has
and releases, and the newcomer proceeds with a fresh offset. If the holder does not let go
within the lock timeout the newcomer gets `Locked` (423, which tus clients retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

from reelout.errors import Locked


class Lease:
    """Held by one request; `stop_requested` tells it a newer request is waiting."""

    def __init__(self) -> None:
        self.stop_requested = False
        self._released = asyncio.Event()
        self._on_stop: Callable[[], None] | None = None

    def on_stop(self, callback: Callable[[], None] | None) -> None:
        """Register how to interrupt the holder (e.g. fire its read deadline now)."""
        self._on_stop = callback
        if callback is not None and self.stop_requested:
            callback()

    def request_stop(self) -> None:
        self.stop_requested = True
        if self._on_stop is not None:
            self._on_stop()


class Locker(Protocol):
    def hold(
        self, upload_id: str, timeout: float
    ) -> contextlib.AbstractAsyncContextManager[Lease]: ...

    def is_held(self, upload_id: str) -> bool: ...

    def forget(self, upload_id: str) -> None: ...


class LocalLocker:
    """In-process locker: enough for one API process (several replicas need a shared locker)."""

    def __init__(self) -> None:
        self._holders: dict[str, Lease] = {}

    def is_held(self, upload_id: str) -> bool:
        return upload_id in self._holders

    def forget(self, upload_id: str) -> None:
        """Nothing to clean up: in-process locks vanish with their holder."""

    @contextlib.asynccontextmanager
    async def hold(self, upload_id: str, timeout: float) -> AsyncIterator[Lease]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (current := self._holders.get(upload_id)) is not None:
            current.request_stop()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise Locked(
                    "another request is still writing to this upload; retry shortly",
                    code="UPLOAD_LOCKED",
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(current._released.wait(), remaining)
        lease = Lease()
        self._holders[upload_id] = lease
        try:
            yield lease
        finally:
            if self._holders.get(upload_id) is lease:
                del self._holders[upload_id]
            lease._released.set()


class FileLocker:
    """Per-upload locks shared by several processes on one data folder (`REELOUT_WORKERS`).

    Inside a process, `LocalLocker` orders requests as before. Across processes the holder
    takes `flock` on `<root>/<id>.lock` (polled without blocking, so the loop never waits in
    a syscall); a newcomer asks the holder in another process to stop by creating
    `<id>.stop`, which the holder's watcher notices within `poll` seconds.
    """

    def __init__(self, root: Path, poll: float = 0.05) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.poll = poll
        self.local = LocalLocker()

    def _path(self, upload_id: str, suffix: str) -> Path:
        return self.root / f"{upload_id}.{suffix}"

    def is_held(self, upload_id: str) -> bool:
        if self.local.is_held(upload_id):
            return True
        fd = os.open(self._path(upload_id, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops a lock we may have taken
        return False

    @contextlib.asynccontextmanager
    async def hold(self, upload_id: str, timeout: float) -> AsyncIterator[Lease]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self.local.hold(upload_id, timeout) as lease:
            fd = os.open(self._path(upload_id, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                await self._acquire(fd, upload_id, deadline)
                self._path(upload_id, "stop").unlink(missing_ok=True)
                watcher = asyncio.create_task(self._watch(upload_id, lease))
                try:
                    yield lease
                finally:
                    watcher.cancel()
            finally:
                os.close(fd)

    async def _acquire(self, fd: int, upload_id: str, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        asked = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            if not asked:
                self._path(upload_id, "stop").touch()
                asked = True
            if loop.time() >= deadline:
                raise Locked(
                    "another request is still writing to this upload; retry shortly",
                    code="UPLOAD_LOCKED",
                )
            await asyncio.sleep(min(self.poll, max(deadline - loop.time(), 0.0)))

    async def _watch(self, upload_id: str, lease: Lease) -> None:
        stop = self._path(upload_id, "stop")
        while not lease.stop_requested:
            await asyncio.sleep(self.poll)
            if stop.exists():
                lease.request_stop()

    def forget(self, upload_id: str) -> None:
        """Remove an upload's lock files once the upload is gone for good."""
        for suffix in ("lock", "stop"):
            self._path(upload_id, suffix).unlink(missing_ok=True)
