"""PgLocker: per-upload locks shared by every host on one PostgreSQL database.

A lease is a session-level advisory lock on a connection of its own, held while the request
runs; PostgreSQL drops it when that connection ends, so a killed host's uploads resume
elsewhere. A newcomer asks the holder on another host to stop with NOTIFY on `STOP_CHANNEL`;
every serving process LISTENs there (`listening`). Inside a process `LocalLocker` orders
requests, as in `FileLocker`.

The connection pool is hand-written: a lock lives on the connection that took it, so the pool
is a capped list of idle connections, handed out only once their locks are released; a pool
library would bring a dependency and background tasks bound to one event loop for that.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import select
import threading
from collections.abc import AsyncIterator

import psycopg

from reelout.db.notify import Listener, libpq_url
from reelout.errors import Locked
from reelout.uploads.locks import Lease, LocalLocker, Locker

STOP_CHANNEL = "reelout_upload_stop"
"""Where a newcomer asks the holder of an upload's lock to stop (payload: `<id> <sender>`)."""
_NAMESPACE = b"reelout.upload-lock\0"  # the keys of no other advisory lock start from this
ASK_AGAIN_SECONDS = 0.5  # a waiting newcomer repeats its stop request this often
# The server drops a connection whose host vanished (power loss, a partition) after ~25 s.
_KEEPALIVE = (
    "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3"
)


def lock_key(upload_id: str) -> int:
    """The advisory lock key (a signed 64-bit number) of an upload id."""
    digest = hashlib.blake2b(_NAMESPACE + upload_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _locked() -> Locked:
    return Locked(
        "another request is still writing to this upload; retry shortly", code="UPLOAD_LOCKED"
    )


APPLICATION_NAME = "reelout-upload-locks"  # how the lock connections show in pg_stat_activity


async def _connect(url: str) -> psycopg.AsyncConnection:
    conn = await psycopg.AsyncConnection.connect(
        url, autocommit=True, connect_timeout=5, application_name=APPLICATION_NAME
    )
    await conn.execute(_KEEPALIVE)
    return conn


def _ended(conn: psycopg.AsyncConnection) -> bool:
    """Whether an idle connection is gone: broken, closed, or with something to read (the
    server's goodbye, or the end of the stream), since an idle session is sent nothing."""
    if conn.broken or conn.closed:
        return True
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    return bool(readable)


class _Connections:
    """At most `cap` connections for leases; idle ones are reused, a broken one is dropped."""

    def __init__(self, url: str, cap: int) -> None:
        self._url, self._cap = url, cap
        self._idle: list[psycopg.AsyncConnection] = []
        self._open = 0

    async def take(self, deadline: float, poll: float) -> psycopg.AsyncConnection:
        """A connection; waiting for one at the cap counts against `deadline` (then `Locked`)."""
        loop = asyncio.get_running_loop()
        while True:
            while self._idle:
                conn = self._idle.pop()
                if not _ended(conn):
                    return conn
                await self.drop(conn)
            if self._open < self._cap:
                self._open += 1
                try:
                    return await _connect(self._url)
                except BaseException:
                    self._open -= 1
                    raise
            if loop.time() >= deadline:
                raise _locked()
            await asyncio.sleep(min(poll, max(deadline - loop.time(), 0.0)))

    def give(self, conn: psycopg.AsyncConnection) -> None:
        """Take back a connection that holds no lock."""
        if conn.broken or conn.closed:
            self._open -= 1
        else:
            self._idle.append(conn)

    async def drop(self, conn: psycopg.AsyncConnection) -> None:
        """Close a connection in an unknown state: whatever it held is released with it."""
        self._open -= 1
        with contextlib.suppress(psycopg.Error):
            await conn.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await self.drop(conn)


class PgLocker:
    """Per-upload locks across hosts: PostgreSQL advisory locks, stop requests by NOTIFY.

    `connections` caps the connections leases hold at once (one per request holding or
    waiting for a lock); `poll` is how often a waiting request tries the lock again.
    """

    def __init__(self, url: str, connections: int = 32, poll: float = 0.05) -> None:
        self.url, self.poll = url, poll
        self.local = LocalLocker()
        self._pool = _Connections(libpq_url(url), connections)
        self._sender = secrets.token_hex(8)  # this process, in the stop requests it sends
        self._held: dict[str, Lease] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: Listener | None = None
        self._probe: psycopg.Connection | None = None
        self._probe_turn = threading.Lock()

    # -- hearing stop requests ------------------------------------------------------------------
    def start(self) -> None:
        """Hear other hosts' stop requests (call from the event loop the leases run on)."""
        self._loop = asyncio.get_running_loop()
        self._listener = Listener(self.url, STOP_CHANNEL, self._heard)
        self._listener.start()

    async def stop(self) -> None:
        """Stop hearing and close the idle connections (and the `is_held` probe's)."""
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        await self._pool.close()
        with self._probe_turn:
            if self._probe is not None:
                self._probe.close()
                self._probe = None

    def _heard(self, payload: str) -> None:
        """From the listener's thread: another process wants an upload this one may hold."""
        upload_id, _, sender = payload.rpartition(" ")
        loop = self._loop
        if not sender or sender == self._sender or loop is None:
            return  # this process's own requests go through `self.local`
        with contextlib.suppress(RuntimeError):  # the loop has closed: nothing is held
            loop.call_soon_threadsafe(self._ask, upload_id)

    def _ask(self, upload_id: str) -> None:
        lease = self._held.get(upload_id)
        if lease is not None:
            lease.request_stop()

    # -- holding --------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def hold(self, upload_id: str, timeout: float) -> AsyncIterator[Lease]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        key = lock_key(upload_id)
        async with self.local.hold(upload_id, timeout) as lease:
            conn = await self._pool.take(deadline, self.poll)
            try:
                await self._acquire(conn, upload_id, key, deadline)
            except Locked:
                self._pool.give(conn)
                raise
            except BaseException:
                await self._pool.drop(conn)  # the lock may have been taken as it failed
                raise
            self._held[upload_id] = lease
            lost = self._watch(conn, lease)
            try:
                yield lease
            finally:
                if self._held.get(upload_id) is lease:
                    del self._held[upload_id]
                await self._release(conn, key, lost)

    async def _acquire(
        self, conn: psycopg.AsyncConnection, upload_id: str, key: int, deadline: float
    ) -> None:
        loop = asyncio.get_running_loop()
        asked = -ASK_AGAIN_SECONDS
        while True:
            row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))).fetchone()
            if row is not None and row[0]:
                return
            now = loop.time()
            if now - asked >= ASK_AGAIN_SECONDS:  # again: the holder may have just come in
                payload = f"{upload_id} {self._sender}"
                await conn.execute("SELECT pg_notify(%s, %s)", (STOP_CHANNEL, payload))
                asked = now
            if now >= deadline:
                raise _locked()
            await asyncio.sleep(min(self.poll, max(deadline - now, 0.0)))

    def _watch(self, conn: psycopg.AsyncConnection, lease: Lease) -> list[bool]:
        """Stop the holder if its idle connection says anything: it ended, and the lock with it
        (else a rare unprompted message, a harmless early stop). Returns a flag set then, when
        the connection is closed rather than reused."""
        loop, fd, lost = asyncio.get_running_loop(), conn.fileno(), [False]

        def readable() -> None:
            loop.remove_reader(fd)
            lost[0] = True
            lease.request_stop()

        loop.add_reader(fd, readable)
        return lost

    async def _release(self, conn: psycopg.AsyncConnection, key: int, lost: list[bool]) -> None:
        if not lost[0]:
            asyncio.get_running_loop().remove_reader(conn.fileno())
        if lost[0] or conn.broken or conn.closed:
            await self._pool.drop(conn)
            return
        try:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        except psycopg.Error:  # the connection broke: its locks went with it
            await self._pool.drop(conn)
            return
        except BaseException:
            await self._pool.drop(conn)
            raise
        self._pool.give(conn)

    # -- asking ---------------------------------------------------------------------------------
    def is_held(self, upload_id: str) -> bool:
        """Whether a request here or on another host holds the upload's lock (a blocking
        query: call it from a thread)."""
        if self.local.is_held(upload_id):
            return True
        key = lock_key(upload_id)
        with self._probe_turn:
            try:
                return not self._try_probe(key)
            except psycopg.OperationalError:  # an idle probe connection may have been cut
                self._close_probe()
                return not self._try_probe(key)

    def _try_probe(self, key: int) -> bool:
        """Whether the lock was free (taken and released at once)."""
        if self._probe is None or self._probe.closed:
            self._probe = psycopg.connect(
                libpq_url(self.url),
                autocommit=True,
                connect_timeout=5,
                application_name=APPLICATION_NAME,
            )
        row = self._probe.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if row is None or not row[0]:
            return False
        self._probe.execute("SELECT pg_advisory_unlock(%s)", (key,))
        return True

    def _close_probe(self) -> None:
        if self._probe is not None:
            with contextlib.suppress(psycopg.Error):
                self._probe.close()
            self._probe = None

    def forget(self, upload_id: str) -> None:
        """Nothing to clean up: advisory locks vanish with their holder."""


@contextlib.asynccontextmanager
async def listening(locker: Locker) -> AsyncIterator[None]:
    """For the app's lifespan: a `PgLocker` hears other hosts' stop requests (and closes its
    connections at the end); other lockers need nothing."""
    if not isinstance(locker, PgLocker):
        yield
        return
    locker.start()
    try:
        yield
    finally:
        await locker.stop()
