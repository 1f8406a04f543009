"""Shared fixtures: settings on a temporary data folder, SQLite or PostgreSQL, live servers."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import event
from sqlalchemy.orm import Session

from reelout.clock import ManualClock
from reelout.config import Settings
from reelout.media.history import unrecorded
from tests.support.live import (
    LiveServer,
    ServerProcess,
    StartLive,
    StartServer,
    live_servers,
    serving,
)
from tests.support.s3 import moto_server, new_bucket, use_endpoint
from tests.support.settings import make_settings

# No deadline per example: a timing assertion, and on a loaded 2-core machine a false failure.
hypothesis_settings.register_profile("reelout", deadline=None)
hypothesis_settings.load_profile("reelout")

PG_ADMIN_URL = os.environ.get("REELOUT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


class UnrecordedStateChange(AssertionError):
    """A video's state changed without its row in the state history."""


def _refuse_unrecorded(session: Session, *_: object) -> None:
    missing = unrecorded(session)
    if missing:
        raise UnrecordedStateChange(
            f"video state changed outside media.history.change_state: {missing}"
        )


@pytest.fixture(scope="session", autouse=True)
def every_video_state_change_is_recorded() -> Iterator[None]:
    """In every test (the app runs in this process), a flush that changes a video's state
    without recording it in the history fails the transaction."""
    event.listen(Session, "before_flush", _refuse_unrecorded)
    yield
    event.remove(Session, "before_flush", _refuse_unrecorded)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test process, dropped at the end."""
    name = f"reelout_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required at {PG_ADMIN_URL}: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def reset_pg(url: str) -> None:
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'reelout.db'}"
    url: str = request.getfixturevalue("pg_server_url")
    reset_pg(url)
    return url


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server for this test process; AWS_* point at it from then on."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        use_endpoint(server.endpoint)
        yield server.endpoint


@pytest.fixture
def s3_storage(s3_endpoint: str) -> str:
    """A storage URL (`s3://bucket/prefix`) on a bucket of this test's own."""
    return new_bucket(s3_endpoint)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `both_stores` run on the local data folder and on object storage."""
    if metafunc.definition.get_closest_marker("both_stores") and "storage" in metafunc.fixturenames:
        stores = ["local", pytest.param("s3", marks=pytest.mark.s3)]
        metafunc.parametrize("storage", stores, indirect=True)


@pytest.fixture
def storage(request: pytest.FixtureRequest) -> str | None:
    """REELOUT_STORAGE_URL for this test: unset (the data folder) unless marked `both_stores`."""
    if getattr(request, "param", "local") == "local":
        return None
    url: str = request.getfixturevalue("s3_storage")
    return url


@pytest.fixture
def settings(tmp_path: Path, storage: str | None) -> Settings:
    return make_settings(tmp_path, storage_url=storage)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    with serving(settings) as server:
        yield server


@pytest.fixture(name="live_servers")
def live_servers_fixture(tmp_path: Path) -> Iterator[StartLive]:
    """Starts live servers in this process as the test goes; all stopped at the end.

    `live_servers(folder="", *, clock=None, state=None, **settings)`: on
    `make_settings(tmp_path / folder, **settings)` (tests/support/live.py `live_servers`)."""
    with live_servers(tmp_path) as start:
        yield start


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Starts `reelout serve` processes on one data folder (tmp_path/data); all killed at the end.

    `start_server(*serve_args, log="server.log", env={"REELOUT_…": "…"})`."""
    started: list[ServerProcess] = []

    def start(
        *args: str, log: str = "server.log", env: dict[str, str] | None = None
    ) -> ServerProcess:
        data_dir = tmp_path / "data"
        data_dir.mkdir(exist_ok=True)
        server = ServerProcess(data_dir, tmp_path / log, *args, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()
