"""The fleet's split on PostgreSQL: `reelout serve` with `REELOUT_EMBEDDED_WORKER=false` queues
the processing of an upload and runs none of it; a separate `reelout worker` process takes the
job from the shared jobs table and the video becomes ready (deploy/systemd's two units)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import reset_pg
from tests.media.clips import Clips
from tests.media.conftest import clips
from tests.media.test_pipeline import upload
from tests.support.commands import REELOUT, reelout_env
from tests.support.live import ServerProcess, StartServer
from tests.support.settings import ADMIN_TOKEN
from tests.support.waiting import wait_until

__all__ = ["clips"]  # the media tests' generated clips, as a fixture here


@pytest.fixture
def api_host(start_server: StartServer, pg_server_url: str) -> ServerProcess:
    reset_pg(pg_server_url)
    env = {"REELOUT_DATABASE_URL": pg_server_url, "REELOUT_EMBEDDED_WORKER": "false"}
    return start_server(env=env)


@pytest.fixture
def worker_host(
    api_host: ServerProcess, pg_server_url: str, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`reelout worker` on the same database (and, until media go to a bucket, the same data
    folder, where the originals are)."""
    env = reelout_env(
        api_host.data_dir,
        REELOUT_DATABASE_URL=pg_server_url,
        REELOUT_JOB_POLL_SECONDS="0.2",
        REELOUT_LOG_FORMAT="plain",
    )
    with (tmp_path / "worker.log").open("ab") as out:
        proc = subprocess.Popen([REELOUT, "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)
    yield proc
    proc.send_signal(signal.SIGTERM)  # as systemd stops it
    assert proc.wait(timeout=30) == 0, (tmp_path / "worker.log").read_text()


@pytest.mark.postgres
def test_a_separate_worker_processes_what_the_api_queued(
    api_host: ServerProcess, clips: Clips, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=api_host.url, headers=auth, timeout=30) as api:
        uid = upload(api, clips("tiny"))

        def state() -> str:
            found: str = api.get(f"/api/v1/videos/{uid}").json()["status"]["state"]
            return found

        assert state() != "ready"  # the API processes nothing itself
        request.getfixturevalue("worker_host")
        wait_until(lambda: state() == "ready", 120, "the worker to process the upload")
    assert " started (2 threads)" in (tmp_path / "worker.log").read_text()  # its concurrency
