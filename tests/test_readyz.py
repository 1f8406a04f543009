"""/readyz for load balancers: 200 while the database and the stores answer, 503 naming the part
that does not (a real PostgreSQL database that stops taking connections, a database server that
never answers, an object store that reports a reason)."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from reelout.db.engine import Database
from reelout.health import Checkable, DatabaseProbe
from reelout.media.storage import FileMediaStore
from reelout.objectstore import make_client
from tests.conftest import PG_ADMIN_URL
from tests.support.live import LiveServer, serving
from tests.support.settings import make_settings
from tests.support.waiting import wait_until


def test_ready_on_sqlite(live_server: LiveServer) -> None:
    with live_server.client() as api:
        reply = api.get("/readyz")
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "ready"


# -- a real PostgreSQL database that stops taking connections while the server runs ---------
@pytest.fixture
def own_database() -> Iterator[tuple[str, psycopg.Connection]]:
    """A PostgreSQL database of this test's own (it will be closed to connections), and an
    admin connection to the server's `test` database to close it with."""
    name = f"reelout_readyz_{secrets.token_hex(4)}"
    admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, admin
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def close_database(admin: psycopg.Connection, name: str) -> None:
    """No new connections to `name`, and every open one ended (as a failover or an outage
    would)."""
    admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
    )


@pytest.mark.postgres
def test_a_database_that_stops_answering_makes_the_server_unready(
    tmp_path: Path, own_database: tuple[str, psycopg.Connection]
) -> None:
    url, admin = own_database
    name = url.rsplit("/", 1)[1]
    with serving(make_settings(tmp_path, database_url=url)) as live, live.client() as api:
        assert api.get("/readyz").status_code == 200
        close_database(admin, name)
        started = time.monotonic()
        down = api.get("/readyz")
        assert time.monotonic() - started < 10
        assert down.status_code == 503, down.text
        assert down.json()["status"] == "not_ready"
        (reason,) = down.json()["reasons"]
        assert (reason["part"], reason["code"]) == ("database", "DATABASE_UNREACHABLE")
        assert "REELOUT_DATABASE_URL" in reason["message"]
        assert api.get("/healthz").status_code == 200  # liveness does not ask the database
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert api.get("/readyz").status_code == 200  # back without a restart


# -- a database server that accepts the connection and never says a word ---------------------
@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung database host)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_a_hung_database_is_reported_in_time(silent_server: int) -> None:
    probe = DatabaseProbe(Database(f"postgresql://reelout@127.0.0.1:{silent_server}/x"), 0.5)
    try:
        for _ in range(3):  # a probe still hanging is waited on, not stacked
            started = time.monotonic()
            reason = probe.check()
            assert time.monotonic() - started < 3
            assert reason is not None and reason.startswith("database:")
    finally:
        probe.close()


# -- an object store that says it cannot be reached -----------------------------------------
class ReportingStore(FileMediaStore):
    """A stand-in for an object store (a bucket): local files, and a `check` that reports
    `reason` (None: reachable)."""

    reason: str | None = None

    def check(self) -> str | None:
        return self.reason


def test_a_store_that_reports_a_reason_makes_the_server_unready(live_server: LiveServer) -> None:
    store = ReportingStore(live_server.runtime.settings.data_dir / "media")
    assert isinstance(store, Checkable)
    assert not isinstance(live_server.runtime.upload_store, Checkable)  # local folders: no check
    live_server.runtime.media_store = store
    with live_server.client() as api:
        assert api.get("/readyz").status_code == 200
        store.reason = "the bucket answers 403 AccessDenied: give the key s3:ListBucket"
        reply = api.get("/readyz")
    assert reply.status_code == 503
    (reason,) = reply.json()["reasons"]
    assert (reason["part"], reason["code"]) == ("storage", "STORAGE_UNREACHABLE")
    assert reason["message"] == f"storage (media): {store.reason}"
    assert reason["store"] == "media"


class HangingStore(FileMediaStore):
    """A stand-in for an object store whose endpoint stopped answering: `check` blocks."""

    released = threading.Event()

    def check(self) -> str | None:
        self.released.wait(30)
        return None


def test_a_store_that_hangs_is_reported_in_time(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, readyz_timeout_seconds=0.5)
    with serving(settings) as live, live.client() as api:
        store = HangingStore(settings.data_dir / "media")
        live.runtime.media_store = store
        try:
            for _ in range(3):  # the hung check is waited on, not started again
                started = time.monotonic()
                reply = api.get("/readyz")
                assert time.monotonic() - started < 5
                assert reply.status_code == 503
                (reason,) = reply.json()["reasons"]
                assert reason["part"] == "storage"
                assert "no answer within 0.5 s" in reason["message"]
        finally:
            store.released.set()
        wait_until(lambda: api.get("/readyz").status_code == 200, 10, "ready again")


# -- a real S3 server (moto) whose bucket goes away ----------------------------------------------
@pytest.mark.s3
def test_a_bucket_that_goes_away_makes_the_server_unready(tmp_path: Path, s3_storage: str) -> None:
    bucket = s3_storage.removeprefix("s3://").split("/")[0]
    with serving(make_settings(tmp_path, storage_url=s3_storage)) as live, live.client() as api:
        assert api.get("/readyz").status_code == 200
        client = make_client()
        client.delete_bucket(Bucket=bucket)
        try:
            down = api.get("/readyz")
        finally:
            client.create_bucket(Bucket=bucket)
        assert down.status_code == 503, down.text
        (reason,) = down.json()["reasons"]
        assert (reason["part"], reason["store"]) == ("storage", "bucket")  # once for both stores
        assert bucket in reason["message"] and "REELOUT_STORAGE_URL" in reason["message"]
        assert api.get("/readyz").status_code == 200
