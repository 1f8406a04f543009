"""The data folder is its owner's only: 0700 folder, 0600 database (with -wal, -shm) and keys."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.live import StartServer
from tests.support.settings import make_settings, start_runtime


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The usual 022, so files would come out world-readable without the fix."""
    saved = os.umask(0o022)
    yield
    os.umask(saved)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def private_files(data: Path) -> dict[str, int]:
    names = ["reelout.db", "reelout.db-wal", "reelout.db-shm", "secret.key", "admin.key"]
    return {name: mode(data / name) for name in names}


def touch_the_api(url: str, key: str) -> None:
    reply = httpx.get(url + "/api/v1/keys", headers={"Authorization": f"Bearer {key}"})
    assert reply.status_code == 200, reply.text


def test_a_fresh_start_makes_everything_owner_only(start_server: StartServer) -> None:
    server = start_server(env={"REELOUT_ADMIN_TOKEN": ""})  # a random admin key, in admin.key
    data = server.data_dir
    touch_the_api(server.url, (data / "admin.key").read_text().strip())
    assert mode(data) == 0o700
    assert mode(data / "uploads") == 0o700
    assert private_files(data) == dict.fromkeys(private_files(data), 0o600)


def test_a_loose_folder_from_before_is_tightened_at_start(
    start_server: StartServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    start_server(env={"REELOUT_ADMIN_TOKEN": ""}).kill()
    loose = {name: 0o644 for name in private_files(data)} | {"": 0o755, "uploads": 0o755}
    for name, bits in loose.items():
        os.chmod(data / name, bits)
    server = start_server(env={"REELOUT_ADMIN_TOKEN": ""}, log="again.log")
    touch_the_api(server.url, (data / "admin.key").read_text().strip())
    assert (mode(data), mode(data / "uploads")) == (0o700, 0o700)
    assert set(private_files(data).values()) == {0o600}


def test_with_nginx_sending_media_the_folder_can_be_passed_through_but_not_listed(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, media_accel_redirect="/_reelout_media")
    rt = start_runtime(settings)
    data = settings.data_dir
    assert mode(data) == 0o711
    assert mode(data / "uploads") == 0o700
    assert mode(data / "reelout.db") == 0o600
    rt.db.dispose()
