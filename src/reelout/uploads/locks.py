"""Per-upload locks with tusd's release-the-stale-holder rule, never blocking the event loop.

A new request on a busy upload asks the current holder to stop; the holder saves what it has
and releases, and the newcomer proceeds with a fresh offset. If the holder does not let go
within the lock timeout the newcomer gets `Locked` (423, which tus clients retry).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
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


class LocalLocker:
    """In-process locker: enough for one API process (several replicas need a shared locker)."""

    def __init__(self) -> None:
        self._holders: dict[str, Lease] = {}

    def is_held(self, upload_id: str) -> bool:
        return upload_id in self._holders

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
