"""The PATCH body pump on its own: batches, room, read timeout, stop requests, digests."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from reelout.uploads import receiving, tus
from reelout.uploads.locks import LocalLocker
from reelout.uploads.receiving import Body
from reelout.uploads.store import FileUploadStore, UploadWriter


async def chunks(*parts: bytes, stall_after: int | None = None) -> AsyncIterator[bytes]:
    for index, part in enumerate(parts):
        if stall_after is not None and index == stall_after:
            await asyncio.sleep(3600)
        yield part


def run(
    store: FileUploadStore,
    body: Body,
    room: int = 10**9,
    timeout: float = 5.0,
    stop_after: float | None = None,
) -> receiving.Received:
    async def go() -> receiving.Received:
        locker = LocalLocker()
        async with locker.hold("u", 1.0) as lease:
            if stop_after is not None:
                asyncio.get_running_loop().call_later(stop_after, lease.request_stop)
            return await receiving.receive(
                store,
                "u",
                body,
                running=hashlib.sha256(),
                room=room,
                lease=lease,
                read_timeout=timeout,
                sync=False,
            )

    return asyncio.run(go())


def new_store(tmp_path: Path) -> FileUploadStore:
    store = FileUploadStore(tmp_path)
    store.create("u")
    return store


def test_everything_arrives_in_order_with_its_digests(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    parts = [bytes([n]) * 300_000 for n in range(8)]  # 2.4 MB: several batches
    data = b"".join(parts)
    checksum = tus.Checksum("md5", hashlib.md5(data).digest())
    got = run(store, Body(chunks(*parts), len(data), checksum))
    assert (got.count, got.stopped, got.overflow) == (len(data), None, False)
    assert store.local_path("u").read_bytes() == data
    assert got.running.hexdigest() == hashlib.sha256(data).hexdigest()
    assert got.digest == checksum.digest


def test_no_more_than_the_room(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    got = run(store, Body(chunks(b"12345", b"678"), None), room=6)
    assert got.overflow
    assert got.count == 5, "the chunk that would overflow is not counted"


def test_a_stalled_body_ends_at_the_read_timeout_keeping_its_bytes(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    got = run(store, Body(chunks(b"hello", b"never", stall_after=1), None), timeout=0.2)
    assert (got.count, got.stopped) == (5, "read timeout")
    assert store.size("u") == 5


def test_a_stop_request_interrupts_a_stalled_body_at_once(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    got = run(
        store, Body(chunks(b"hello", b"never", stall_after=1), None), timeout=60, stop_after=0.1
    )
    assert (got.count, got.stopped) == (5, "a newer request took over")
    assert store.size("u") == 5


class RecordingStore(FileUploadStore):
    """The file store, noting the size of every write; each write takes `delay` seconds."""

    def __init__(self, root: Path, delay: float) -> None:
        super().__init__(root)
        self.delay, self.writes = delay, list[int]()

    def open_append(self, upload_id: str, *, provisional: bool = False) -> UploadWriter:
        store, writer = self, super().open_append(upload_id, provisional=provisional)

        class Noting:
            def write(self, data: bytes) -> None:
                store.writes.append(len(data))
                time.sleep(store.delay)
                writer.write(data)

            def sync(self) -> None:
                writer.sync()

            def close(self) -> None:
                writer.close()

            def discard(self) -> None:
                writer.discard()

        return Noting()


def test_batches_leave_small_while_the_writer_is_idle_and_grow_while_it_is_busy(
    tmp_path: Path,
) -> None:
    store = RecordingStore(tmp_path, delay=0.05)
    store.create("u")
    part = 64 * 1024
    data = bytes(range(256)) * (4 * 1024 * 1024 // 256)
    parts = [data[i : i + part] for i in range(0, len(data), part)]
    got = run(store, Body(chunks(*parts), len(data)))
    assert got.count == len(data) == sum(store.writes)
    assert store.local_path("u").read_bytes() == data
    assert store.writes[0] == receiving.MIN_BATCH_BYTES, "an idle writer gets the first bytes soon"
    assert max(store.writes) == receiving.BATCH_BYTES, "a busy writer lets batches grow"
    assert len(store.writes) < len(parts) // 4


def test_a_writer_that_keeps_up_leaves_little_for_the_end(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path, delay=0.0)
    store.create("u")
    part = 64 * 1024

    async def trickle() -> AsyncIterator[bytes]:
        for n in range(32):
            await asyncio.sleep(0.01)  # the body arrives slower than the writer writes
            yield bytes([n]) * part

    got = run(store, Body(trickle(), 32 * part))
    assert got.count == 32 * part
    assert store.writes[0] == receiving.MIN_BATCH_BYTES
    assert max(store.writes) <= receiving.BATCH_BYTES // 2, "no batch waits for a full MiB"
