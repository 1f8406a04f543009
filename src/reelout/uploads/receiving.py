"""Receiving one PATCH body into the upload store: batching, hashing, timeouts, interruption.

No database and no HTTP: the service hands in the body stream, where to write, the room left
and the lock's lease; this module answers how many bytes were kept and why it stopped.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect

from reelout.iothreads import run_io
from reelout.uploads import tus
from reelout.uploads.locks import Lease
from reelout.uploads.store import UploadStore, UploadWriter

BATCH_BYTES = 1024 * 1024
MIN_BATCH_BYTES = 128 * 1024


@dataclass
class Body:
    """A request body as an async stream, with what the headers promised about it."""

    chunks: AsyncIterator[bytes]
    content_length: int | None
    checksum: tus.Checksum | None = None


@dataclass
class Received:
    """What a PATCH body left behind: bytes kept, digests, and why it ended early (if it did)."""

    count: int = 0
    running: Any = None  # the upload's running SHA-256, advanced by this body
    digest: bytes | None = None  # the Upload-Checksum digest of this body
    stopped: str | None = None
    overflow: bool = False
    failure: OSError | None = None  # a write failed (e.g. disk full); `count` bytes were written


class BatchWriter:
    """Writes batches of body chunks to one upload from the I/O pool: opened on first use,
    one join, one write and one hash per batch (so the pool thread lets go of the GIL a few
    times per MiB, not per 64 KiB), and at the end kept (optionally synced) or discarded."""

    def __init__(
        self,
        store: UploadStore,
        upload_id: str,
        hashers: list[Any],
        *,
        sync: bool,
        provisional: bool,
    ) -> None:
        self.store, self.upload_id, self.hashers = store, upload_id, hashers
        self.sync, self.provisional = sync, provisional
        self._writer: UploadWriter | None = None
        self.written = 0  # bytes of whole batches written (a failed batch may leave a part)

    def write(self, batch: list[bytes]) -> None:
        if not batch:
            return
        if self._writer is None:
            self._writer = self.store.open_append(self.upload_id, provisional=self.provisional)
        data = b"".join(batch)
        self._writer.write(data)
        self.written += len(data)
        for hasher in self.hashers:
            hasher.update(data)

    def end(self, keep: bool) -> None:
        """Keep what was written (synced if asked), or discard all of it."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if not keep:
            writer.discard()
            return
        try:
            if self.sync:
                writer.sync()
        finally:
            writer.close()


async def receive(
    store: UploadStore,
    upload_id: str,
    body: Body,
    *,
    running: Any,
    room: int,
    lease: Lease,
    read_timeout: float,
    sync: bool,
) -> Received:
    """Append `body` to the upload, at most `room` bytes, until it ends, stalls or is stopped."""
    got = Received(running=running)
    hashers = [running] if running is not None else []
    if body.checksum is not None:
        hashers.append(hashlib.new(body.checksum.algorithm))
    provisional = body.checksum is not None
    sink = BatchWriter(store, upload_id, hashers, sync=sync, provisional=provisional)
    try:
        await _pump(body.chunks, sink, room, lease, read_timeout, got)
    except OSError as exc:  # the store refused a write: report how far whole batches got
        got.failure = exc
    finally:
        if body.checksum is not None:
            got.digest = hashers[-1].digest()
        try:
            await run_io(sink.end, _kept(got, body))
        except OSError as exc:
            got.failure = got.failure or exc
    if got.failure is not None:
        got.count = sink.written
    return got


def _kept(got: Received, body: Body) -> bool:
    """A body is kept unless it ran past the room or fails its checksum (or, carrying one,
    stopped early or failed to write: a checksum covers the whole body or nothing)."""
    if got.overflow:
        return False
    if body.checksum is None:
        return True
    return got.failure is None and not got.stopped and got.digest == body.checksum.digest


async def _pump(
    chunks: AsyncIterator[bytes],
    sink: BatchWriter,
    room: int,
    lease: Lease,
    read_timeout: float,
    got: Received,
) -> None:
    """Copy the body in adaptive batches: one batch is written while the next one arrives.

    A batch leaves as soon as the writer is idle and MIN_BATCH_BYTES have arrived, and grows up
    to BATCH_BYTES while a write is in flight; so little is left to write when the body ends
    (a short PATCH pays little latency) and a fast body still costs few thread hand-offs.
    A stop request fires the read deadline at once, so a stalled body lets go."""
    pending: list[bytes] = []
    pending_size = 0
    deadline: list[asyncio.Timeout] = []
    in_flight: asyncio.Future[None] | None = None
    lease.on_stop(lambda: deadline[0].reschedule(-1.0) if deadline else None)
    try:
        while not lease.stop_requested:
            chunk = await _next_chunk(chunks, read_timeout, deadline, lease, got)
            if chunk is None:
                break
            if got.count + len(chunk) > room:
                got.overflow = True
                break
            got.count += len(chunk)
            pending.append(chunk)
            pending_size += len(chunk)
            writer_idle = in_flight is None or in_flight.done()
            if pending_size >= BATCH_BYTES or (writer_idle and pending_size >= MIN_BATCH_BYTES):
                if in_flight is not None:
                    await in_flight
                in_flight = asyncio.ensure_future(run_io(sink.write, pending))
                pending, pending_size = [], 0
    finally:
        lease.on_stop(None)
        if in_flight is not None:
            await in_flight
    if lease.stop_requested and got.stopped is None:
        got.stopped = "a newer request took over"
    if not got.overflow:
        await run_io(sink.write, pending)


async def _next_chunk(
    chunks: AsyncIterator[bytes],
    timeout: float,
    deadline: list[asyncio.Timeout],
    lease: Lease,
    got: Received,
) -> bytes | None:
    try:
        async with asyncio.timeout(timeout) as cm:
            deadline[:] = [cm]
            return await anext(chunks)
    except StopAsyncIteration:
        return None
    except TimeoutError:
        got.stopped = "a newer request took over" if lease.stop_requested else "read timeout"
        return None
    except ClientDisconnect:
        got.stopped = "client disconnected"
        return None
    finally:
        deadline.clear()
