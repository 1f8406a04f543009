"""Upload locks across hosts on PostgreSQL: two `PgLocker`s stand for two hosts, each hearing
stop requests on a listener of its own; and two live servers on one database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import psycopg
import pytest

from reelout.errors import Locked
from reelout.uploads.locks import Lease
from reelout.uploads.pglocks import APPLICATION_NAME, PgLocker, listening, lock_key
from tests.support.live import StartLive, StartServer
from tests.support.waiting import wait_until
from tests.uploads.test_tus_crash import (
    MiB,
    T,
    assert_stored,
    assert_told_to_stop,
    create_upload,
    finish_from,
    raw_patch,
    upload_file,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(pg_server_url: str) -> str:
    from tests.conftest import reset_pg

    reset_pg(pg_server_url)
    return pg_server_url


def new_id() -> str:
    return secrets.token_hex(16)


@contextlib.asynccontextmanager
async def hosts(url: str) -> AsyncIterator[tuple[PgLocker, PgLocker]]:
    """Two lockers on one database, each hearing stop requests, as two hosts would."""
    one, two = PgLocker(url, poll=0.01), PgLocker(url, poll=0.01)
    async with listening(one), listening(two):
        await asyncio.sleep(0.3)  # both listeners are connected before anyone asks
        yield one, two


def holder_pids(url: str, upload_id: str) -> list[int]:
    """The server processes holding an upload's advisory lock (a bigint key shows as its high
    and low 32 bits)."""
    key = lock_key(upload_id) & 0xFFFFFFFFFFFFFFFF
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s AND objid = %s AND objsubid = 1"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (key >> 32, key & 0xFFFFFFFF),
        ).fetchall()
    return [row[0] for row in rows]


async def held_until_asked(locker: PgLocker, upload_id: str, held: asyncio.Event) -> Lease:
    async with locker.hold(upload_id, 1.0) as lease:
        asked = asyncio.Event()
        lease.on_stop(asked.set)
        held.set()
        await asyncio.wait_for(asked.wait(), 10)
        return lease


def test_a_newcomer_on_another_host_asks_the_holder_to_stop_and_takes_over(pg: str) -> None:
    async def scenario() -> None:
        async with hosts(pg) as (one, two):
            held = asyncio.Event()
            first = asyncio.create_task(held_until_asked(one, "u1", held))
            await held.wait()
            async with two.hold("u1", 5.0) as lease:
                assert (await first).stop_requested, "the holder on host one was asked"
                assert not lease.stop_requested
                assert one.is_held("u1") and two.is_held("u1")

    asyncio.run(scenario())


def test_a_holder_that_ignores_the_request_gets_the_newcomer_a_423(pg: str) -> None:
    async def scenario() -> None:
        async with hosts(pg) as (one, two):
            async with one.hold("u2", 1.0) as lease:
                started = time.monotonic()
                with pytest.raises(Locked) as refused:
                    async with two.hold("u2", 0.5):
                        pass
                assert refused.value.code == "UPLOAD_LOCKED"
                assert 0.5 <= time.monotonic() - started < 3
                assert lease.stop_requested, "the request reached the holder on the other host"
            async with two.hold("u2", 1.0):
                pass  # once let go, the lock is free

    asyncio.run(scenario())


def test_is_held_is_seen_from_both_hosts(pg: str) -> None:
    async def scenario() -> None:
        async with hosts(pg) as (one, two):
            upload_id = new_id()
            assert not one.is_held(upload_id) and not two.is_held(upload_id)
            async with one.hold(upload_id, 1.0):
                assert one.is_held(upload_id) and two.is_held(upload_id)
                assert holder_pids(pg, upload_id), "held in the database, not only here"
                assert not two.is_held(new_id()), "other uploads are free"
            assert not one.is_held(upload_id) and not two.is_held(upload_id)
            assert holder_pids(pg, upload_id) == [], "the probe let go of what it tried"
            one.forget(upload_id)  # nothing to clean up

    asyncio.run(scenario())


def test_a_killed_holder_connection_frees_the_lock_and_stops_the_holder(pg: str) -> None:
    """pg_terminate_backend stands for a host SIGKILLed mid-upload: PostgreSQL ends its
    session's locks, and the other host takes the upload over."""

    async def scenario() -> None:
        async with hosts(pg) as (one, two):
            async with one.hold("u3", 1.0) as lease:
                (pid,) = holder_pids(pg, "u3")
                with psycopg.connect(pg, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                async with two.hold("u3", 5.0):
                    assert holder_pids(pg, "u3") != [pid]
                for _ in range(100):  # the holder hears its connection end
                    if lease.stop_requested:
                        break
                    await asyncio.sleep(0.05)
                assert lease.stop_requested, "a holder whose lock is gone is told to stop"
            async with one.hold("u3", 1.0):  # a broken connection is not reused
                assert holder_pids(pg, "u3")

    asyncio.run(scenario())


def test_idle_connections_the_server_ended_are_not_handed_out(pg: str) -> None:
    """A database restart (here: every lock connection terminated) between two requests: the
    next request opens a fresh connection instead of failing on a dead one."""

    async def scenario() -> None:
        locker = PgLocker(pg, poll=0.01)
        async with listening(locker):
            async with locker.hold("u4", 1.0):
                pass
            assert locker.is_held("u4") is False
            with psycopg.connect(pg, autocommit=True) as admin:
                ended = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = %s AND datname = current_database()",
                    (APPLICATION_NAME,),
                ).fetchall()
            assert len(ended) == 2, "the idle lock connection and the is_held probe's"
            await asyncio.sleep(0.2)  # the server's goodbye reaches the idle connections
            async with locker.hold("u4", 1.0):
                assert holder_pids(pg, "u4")
            assert locker.is_held("u4") is False

    asyncio.run(scenario())


def test_waiting_for_a_connection_at_the_cap_counts_against_the_timeout(pg: str) -> None:
    async def scenario() -> None:
        locker = PgLocker(pg, connections=1, poll=0.01)
        async with listening(locker), locker.hold("a", 1.0):
            with pytest.raises(Locked):
                async with locker.hold("b", 0.2):
                    pass
        async with listening(locker), locker.hold("b", 1.0):
            pass  # the connection came back to the pool

    asyncio.run(scenario())


# -- two live servers on one database ------------------------------------------------------------
@pytest.fixture
def two_hosts(
    live_servers: StartLive, pg: str, storage: str | None
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Hosts A and B on one PostgreSQL, and one data folder or (on object storage) a folder
    each and one bucket, as a fleet runs. A request that waited out B's lock timeout would get
    423, and A's stalled body would last 30 s."""
    options = {
        "database_url": pg,
        "storage_url": storage,
        "secret_key": secrets.token_urlsafe(32),  # one for the fleet
        "tus_lock_timeout_seconds": 5.0,
    }
    a, b = (live_servers("" if storage is None else name, **options) for name in "ab")
    assert isinstance(a.runtime.locker, PgLocker) and isinstance(b.runtime.locker, PgLocker)
    with a.client() as one, b.client() as two:
        yield one, two


@pytest.mark.both_stores
def test_a_request_on_host_b_interrupts_a_stalled_patch_on_host_a(
    two_hosts: tuple[httpx.Client, httpx.Client], pg: str
) -> None:
    one, two = two_hosts
    data = os.urandom(4 * MiB)
    path = create_upload(one, len(data))
    stalled = raw_patch(str(one.base_url), path, 0, len(data))
    stalled.send(data[: MiB + 4321])
    stalled.wait_until_read()
    upload_id = path.rsplit("/", 1)[-1]
    wait_until(lambda: bool(holder_pids(pg, upload_id)), 10, "host A to hold the upload's lock")

    started = time.monotonic()
    reply = two.head(path, headers=T, timeout=10)
    assert reply.status_code == 200, f"HEAD on B -> {reply.status_code} {reply.text}"
    assert time.monotonic() - started < 4, "B asked A to stop instead of waiting it out"
    assert int(reply.headers["Upload-Offset"]) == stalled.sent

    assert_told_to_stop(stalled.response(timeout=5), stalled.sent)
    stalled.close()
    finish_from(two, path, data)
    assert_stored(two, path, data)  # B finished it: the original is in its media store


def test_a_sigkilled_host_frees_its_uploads_for_another_host(
    live_servers: StartLive, start_server: StartServer, pg: str
) -> None:
    """`reelout serve` (host A) is killed mid-PATCH: PostgreSQL ends its session and its lock,
    and host B takes the upload over at once instead of answering 423."""
    b = live_servers(database_url=pg, tus_lock_timeout_seconds=5.0)  # migrates the database
    a = start_server(env={"REELOUT_DATABASE_URL": pg})
    data = os.urandom(4 * MiB)
    with b.client() as two:
        path = create_upload(two, len(data))
        stalled = raw_patch(a.url, path, 0, len(data))
        stalled.send(data[: MiB + 999])
        stalled.wait_until_read()
        upload_id = path.rsplit("/", 1)[-1]
        wait_until(lambda: bool(holder_pids(pg, upload_id)), 10, "host A to hold the lock")
        file = upload_file(b, path)  # the folder both hosts share
        wait_until(lambda: file.stat().st_size > 0, 10, "host A to write some bytes")
        a.kill()
        stalled.close()
        kept = file.stat().st_size  # what A wrote before it died (the rest was in its memory)

        started = time.monotonic()
        reply = two.head(path, headers=T, timeout=10)
        assert reply.status_code == 200, f"HEAD on B -> {reply.status_code} {reply.text}"
        assert time.monotonic() - started < 4, "B did not wait out A's lock"
        assert int(reply.headers["Upload-Offset"]) == kept
        finish_from(two, path, data)
        assert_stored(two, path, data)
