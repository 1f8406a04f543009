"""Live servers for tests: the app (or any ASGI app) in a uvicorn thread, or `reelout serve` in a
child process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

from reelout.app import create_app
from reelout.clock import Clock
from reelout.config import Settings
from reelout.runtime import Runtime
from tests.support.commands import REELOUT, reelout_env
from tests.support.s3 import new_bucket
from tests.support.settings import ADMIN_TOKEN, make_settings
from tests.support.waiting import wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A real uvicorn server on a loopback port, running the app in a thread."""

    url: str
    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    @property
    def files_url(self) -> str:
        return self.url + "/files/"

    def client(self, token: str | None = ADMIN_TOKEN, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        stop_uvicorn(self.server, self.thread)


def start_uvicorn(
    app: ASGIApp, port: int | None = None, **options: Any
) -> tuple[uvicorn.Server, threading.Thread, int]:
    """Run an ASGI app on a loopback port (`port`, else a free one) in a thread; returns once it
    accepts requests.

    `options` go to uvicorn.Config (e.g. `proxy_headers=False`, `lifespan="off"`)."""
    sockets = [] if port else [_bound_socket()]  # held from the start: no other test takes it
    port = port or sockets[0].getsockname()[1]
    options = {"log_level": "warning", "lifespan": "on", **options}
    config = uvicorn.Config(app, host="127.0.0.1", port=port, **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets or None}, daemon=True)
    thread.start()

    def started() -> bool:
        if not thread.is_alive():
            raise RuntimeError("the test server did not start")
        return server.started

    wait_until(started, timeout=15, message="the test server to start")
    return server, thread, port


def _bound_socket() -> socket.socket:
    """A listening-ready socket on a free loopback port, for uvicorn to serve on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def stop_uvicorn(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(timeout=10)


@contextlib.contextmanager
def running(app: ASGIApp, **options: Any) -> Iterator[str]:
    """Any ASGI app (a fake server, a proxy) on a loopback port for the length of a `with`
    block; yields its URL (`options` as for `start_uvicorn`)."""
    server, thread, port = start_uvicorn(app, **options)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_uvicorn(server, thread)


def serve_in_thread(
    settings: Settings,
    clock: Clock | None = None,
    *,
    state: Mapping[str, object] | None = None,
    **options: Any,
) -> LiveServer:
    """The app on `settings` (and `clock`) in a uvicorn thread; `state` is set on `app.state`
    before it starts (e.g. `console_vendor_dir`), `options` go to uvicorn.Config."""
    app = create_app(settings, clock=clock)
    for name, value in (state or {}).items():
        setattr(app.state, name, value)
    server, thread, port = start_uvicorn(app, **options)
    return LiveServer(f"http://127.0.0.1:{port}", app, server, thread)


@contextlib.contextmanager
def serving(settings: Settings, clock: Clock | None = None, **options: Any) -> Iterator[LiveServer]:
    """A live server for the length of a `with` block (`options` as for `serve_in_thread`)."""
    live = serve_in_thread(settings, clock, **options)
    try:
        yield live
    finally:
        live.stop()


StartLive = Callable[..., LiveServer]


@contextlib.contextmanager
def live_servers(tmp_path: Path) -> Iterator[StartLive]:
    """`start(folder="", *, clock=None, state=None, **overrides)` serves the app on
    `make_settings(tmp_path / folder, **overrides)` as a test goes; every server it started
    stops at the end of the block (the `live_servers` fixture of tests/conftest.py)."""
    with contextlib.ExitStack() as servers:

        def start(
            folder: str = "",
            *,
            clock: Clock | None = None,
            state: Mapping[str, object] | None = None,
            **overrides: object,
        ) -> LiveServer:
            settings = make_settings(tmp_path / folder, **overrides)
            return servers.enter_context(serving(settings, clock, state=state))

        yield start


def live_server_fixture(
    *,
    name: str = "server",
    scope: Literal["function", "module"] = "function",
    folder: str = "live",
    per_database: bool = False,
    per_store: bool = False,
    manual_clock: bool = False,
    **overrides: object,
) -> Any:
    """A fixture serving the app with `make_settings(folder, **overrides)`; stopped at the end.

    `scope="module"` shares one server (on a `folder` of its own) by a module's tests;
    `per_database` runs each test on SQLite and on PostgreSQL (the `database_url` fixture);
    `per_store` runs each test on the data folder and on object storage (a bucket of its own on
    moto's S3 server; with `per_database`, object storage runs on PostgreSQL, as a fleet does);
    without either, a function-scoped server takes the `storage` fixture, so a test marked
    `@pytest.mark.both_stores` runs on both stores and the others on the data folder;
    `manual_clock` runs it on the test's `clock` fixture. In a test module:
    `server = live_server_fixture(scope="module", folder="login")`."""

    def serve(
        request: pytest.FixtureRequest, database_url: str | None, storage_url: str | None = None
    ) -> Iterator[LiveServer]:
        if scope == "module":
            data = request.getfixturevalue("tmp_path_factory").mktemp(folder)
        else:
            data = request.getfixturevalue("tmp_path")
        values = {**overrides, **({"database_url": database_url} if database_url else {})}
        if storage_url:
            values["storage_url"] = storage_url
        clock = request.getfixturevalue("clock") if manual_clock else None
        with serving(make_settings(data, **values), clock) as live:
            yield live

    if per_database or per_store:
        variants = _variants(per_database, per_store)

        @pytest.fixture(scope=scope, name=name, params=variants)
        def on_each(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
            database, store = request.param
            url = _database_url(request) if database == "postgres" else None
            bucket = new_bucket(request.getfixturevalue("s3_endpoint")) if store == "s3" else None
            yield from serve(request, url, bucket)

        return on_each

    if scope == "function":  # `@pytest.mark.both_stores` runs it on the data folder and S3

        def on_each_store(
            request: pytest.FixtureRequest, storage: str | None
        ) -> Iterator[LiveServer]:
            yield from serve(request, None, storage)

        return pytest.fixture(scope=scope, name=name)(on_each_store)

    def on_settings(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
        yield from serve(request, None)

    return pytest.fixture(scope=scope, name=name)(on_settings)


def _variants(per_database: bool, per_store: bool) -> list[Any]:
    """(database, store) pairs, each a pytest param with its id and marks."""
    pairs = [("sqlite", "local")]
    if per_database:
        pairs.append(("postgres", "local"))
    if per_store:
        pairs.append(("postgres" if per_database else "sqlite", "s3"))
    marks = {"postgres": [pytest.mark.postgres], "sqlite": []}
    return [
        pytest.param(
            (db, store),
            id=db if not per_store else (db if store == "local" else f"{db}-s3"),
            marks=[*marks[db], *([pytest.mark.s3] if store == "s3" else [])],
        )
        for db, store in pairs
    ]


def _database_url(request: pytest.FixtureRequest) -> str:
    """The test process's PostgreSQL database, emptied (tests/conftest.py `pg_server_url`)."""
    from tests.conftest import reset_pg

    url: str = request.getfixturevalue("pg_server_url")
    reset_pg(url)
    return url


# A start that takes longer fails the test; generous, for a 2-core machine under a full suite.
START_SECONDS = 90


class ServerProcess:
    """`reelout serve` in a child process on a data folder, so the test can SIGKILL it."""

    def __init__(
        self,
        data_dir: Path,
        log: Path,
        *args: str,
        env: dict[str, str] | None = None,
        reelout: Path | None = None,
    ) -> None:
        """`reelout` is the command to run (default: this Python's `reelout`)."""
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        defaults = {"REELOUT_ADMIN_TOKEN": ADMIN_TOKEN, "REELOUT_EMBEDDED_WORKER": "false"}
        child_env = reelout_env(data_dir, **{**defaults, **(env or {})})
        command = [str(reelout or REELOUT), "serve", "--port", str(self.port), *args]
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

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"reelout serve exited early:\n{self.log.read_text()}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def _wait_ready(self) -> None:
        try:
            wait_until(
                self._healthy, timeout=START_SECONDS, message="reelout serve to start", interval=0.1
            )
        except AssertionError:
            self.kill()
            pytest.fail(
                f"reelout serve did not start within {START_SECONDS} s:\n{self.log.read_text()}"
            )

    client = LiveServer.client  # the same client, on this server's URL

    def kill(self) -> None:
        """SIGKILL the server and every process it started (uvicorn workers)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


StartServer = Callable[..., ServerProcess]
