"""Shared fixtures: settings on a temporary data folder, SQLite or PostgreSQL, a live server."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from starlette.types import ASGIApp

from reelout.app import create_app
from reelout.clock import Clock, ManualClock
from reelout.config import Settings
from reelout.db.migrate import upgrade
from reelout.runtime import Runtime

PG_ADMIN_URL = os.environ.get("REELOUT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN_TOKEN = "rlo_admin_f4T9cUmpwEG2BeHCs3xf8oGEMI4uowUhl9-6B3z3UBA"  # strong: passes start-up


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "admin_token": ADMIN_TOKEN,
        "embedded_worker": False,
        # the suite logs in to shared servers far more often than a person would; the tests of
        # the login limit set their own
        "console_login_attempts_per_minute": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def start_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    rt = Runtime.from_settings(settings, clock)
    upgrade(rt.db)
    return rt


@dataclass
class LiveServer:
    """A real uvicorn server on a loopback port, running the app in a thread."""

    url: str
    runtime: Runtime
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def files_url(self) -> str:
        return self.url + "/files/"

    def client(self, token: str | None = ADMIN_TOKEN, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_uvicorn(app: ASGIApp) -> tuple[uvicorn.Server, threading.Thread, int]:
    """Run an ASGI app on a free loopback port in a thread; returns once it accepts requests."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return server, thread, port


def serve_in_thread(settings: Settings, clock: Clock | None = None) -> LiveServer:
    app = create_app(settings, clock=clock)
    server, thread, port = start_uvicorn(app)
    return LiveServer(f"http://127.0.0.1:{port}", app.state.runtime, server, thread)


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    server = serve_in_thread(settings)
    yield server
    server.stop()


class ServerProcess:
    """`reelout serve` in a child process on a data folder, so the test can SIGKILL it."""

    def __init__(
        self, data_dir: Path, log: Path, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        child_env = {
            **os.environ,
            "REELOUT_DATA_DIR": str(data_dir),
            "REELOUT_ADMIN_TOKEN": ADMIN_TOKEN,
            "REELOUT_EMBEDDED_WORKER": "false",
        }
        child_env.pop("REELOUT_DATABASE_URL", None)
        child_env.update(env or {})
        command = [
            str(Path(sys.executable).parent / "reelout"),
            "serve",
            "--port",
            str(self.port),
            *args,
        ]
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                command,
                env=child_env,
                cwd=data_dir.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() takes every worker too
            )
        self.log = log
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"reelout serve exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        pytest.fail(f"reelout serve did not start within 20 s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL the server and every process it started (uvicorn workers)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


StartServer = Callable[..., ServerProcess]


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
