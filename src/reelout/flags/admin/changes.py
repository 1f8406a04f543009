"""Flag-set change fan-out in one process: the head revision of every environment, watched in
the database, and the streams of an environment woken when it moves.

Every process (API replica or `serve --workers` process) runs one watcher: one small query per
interval, whatever the number of connected streams, and a change written by any process, replica
or the CLI is seen by all of them within an interval. Waiting streams share one asyncio event per
environment that is set and replaced on each change, so a change costs one wake-up per stream and
a stream that was busy sending never misses a revision: it asks for anything newer than the last
one it sent. Written by hand because the fan-out is these few lines over asyncio; broadcast
libraries add a broker protocol we don't need when the database already orders the revisions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

log = logging.getLogger("reelout.flags")


@dataclass(frozen=True)
class Head:
    """An environment's latest flag-set revision and when it was written."""

    environment: str
    revision: int
    changed_at: datetime

    @property
    def tag(self) -> str:
        """The flag configuration's validation token, as OFREP change events carry it."""
        return f"{self.environment}-r{self.revision}"


class FeedClosed(Exception):
    """The process is shutting down: streams end so their clients reconnect elsewhere."""


class KeyRevoked(Exception):
    """The stream's key was revoked: the stream ends, and its reconnect is refused."""


@dataclass(frozen=True)
class Reading:
    """One poll of the database: every environment's head, and keys revoked since the last."""

    heads: list[Head]
    revoked: frozenset[str] = frozenset()


class ChangeFeed:
    """environment -> its head revision, with waiters woken when it moves."""

    def __init__(self) -> None:
        self._heads: dict[str, Head] = {}
        self._changed: dict[str, asyncio.Event] = {}
        self._closed = False
        self._revoked: set[str] = set()
        self._poked: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def poke(self, _environment: str = "") -> None:
        """Read again now rather than at the next interval (a write committed in this process);
        safe to call from any thread."""
        loop, poked = self._loop, self._poked
        if loop is not None and poked is not None and not loop.is_closed():
            loop.call_soon_threadsafe(poked.set)

    def publish(self, heads: Iterable[Head], revoked: frozenset[str] = frozenset()) -> None:
        """Record the heads read from the database; wake the waiters of each that moved, and
        every waiter when keys were revoked (each checks its own)."""
        if revoked - self._revoked:
            self._revoked |= revoked
            for environment in list(self._changed):
                self._wake(environment)
        for head in heads:
            known = self._heads.get(head.environment)
            if known is not None and known.revision >= head.revision:
                continue
            self._heads[head.environment] = head
            self._wake(head.environment)

    async def newer_than(self, environment: str, revision: int, key_id: str = "") -> Head:
        """The environment's head once it is past `revision` (at once if it already is);
        KeyRevoked once the waiter's key is."""
        while True:
            if self._closed:
                raise FeedClosed
            if key_id in self._revoked:
                raise KeyRevoked
            head = self._heads.get(environment)
            if head is not None and head.revision > revision:
                return head
            changed = self._changed.setdefault(environment, asyncio.Event())
            await changed.wait()

    def close(self) -> None:
        self._closed = True
        for environment in list(self._changed):
            self._wake(environment)

    def _wake(self, environment: str) -> None:
        changed = self._changed.pop(environment, None)
        if changed is not None:
            changed.set()

    async def watch(self, read: Callable[[], Reading], interval: float) -> None:
        """Poll the heads every `interval` seconds until closed; a failing read is logged once
        per outage and retried, and streams keep their last known state meanwhile."""
        failing = False
        self._loop, self._poked = asyncio.get_running_loop(), asyncio.Event()
        while not self._closed:
            try:
                reading = await asyncio.to_thread(read)
            except Exception as exc:  # the database is away: keep serving what we know
                if not failing:
                    log.warning("flag change watch: cannot read revisions (%s); retrying", exc)
                failing = True
            else:
                if failing:
                    log.info("flag change watch: reading revisions again")
                failing = False
                self.publish(reading.heads, reading.revoked)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), interval)
            self._poked.clear()
