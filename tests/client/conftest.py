"""Fixtures for the uploader tests: random source files, a private URL store, server-side checks."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.live import LiveServer

MiB = 1024 * 1024


@dataclass
class Source:
    path: Path
    size: int
    sha256: str


MakeSource = Callable[..., Source]


def write_source(path: Path, size: int) -> Source:
    data = os.urandom(size)
    path.write_bytes(data)
    return Source(path, size, hashlib.sha256(data).hexdigest())


@pytest.fixture
def make_source(tmp_path: Path) -> MakeSource:
    """Random bytes in a file (the server does not check they are a video yet)."""

    def make(name: str = "clip.mp4", size: int = 3 * MiB + 12_345) -> Source:
        return write_source(tmp_path / name, size)

    return make


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the uploader remembers URLs (never the real home folder); exported for subprocesses."""
    path = tmp_path / "client-state" / "uploads.json"
    monkeypatch.setenv("REELOUT_CLIENT_STATE", str(path))
    return path


def video(server: LiveServer, uid: str) -> dict[str, object]:
    with server.client() as api:
        resp = api.get(f"/api/v1/videos/{uid}")
        assert resp.status_code == 200, resp.text
        body: dict[str, object] = resp.json()
        return body


def downloaded_sha256(server: LiveServer, upload_url: str) -> str:
    """sha256 of `GET /files/{id}` (the stored original), fetched with the admin key."""
    with server.client() as api:
        resp = api.get(upload_url)
        assert resp.status_code == 200, resp.text
        return hashlib.sha256(resp.content).hexdigest()


def assert_stored(server: LiveServer, uid: str | None, upload_url: str | None, src: Source) -> None:
    """The server's record and its bytes both match the local file."""
    assert uid is not None
    assert upload_url is not None
    body = video(server, uid)
    assert body["original_sha256"] == src.sha256
    assert body["size"] == src.size
    status = body["status"]
    assert isinstance(status, dict)
    assert status["state"] == "queued"
    assert downloaded_sha256(server, upload_url) == src.sha256
