"""Who may mint playback tokens: admin and server keys; never a client key (it is public)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.media.clips import make_clip
from tests.media.test_pipeline import upload
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, live_server_fixture
from tests.support.settings import ADMIN_TOKEN

server = live_server_fixture(scope="module", folder="minting")


@pytest.fixture(scope="module")
def signed_uid(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A ready video that plays only with a token."""
    clip = make_clip("tiny", tmp_path_factory.mktemp("clip"))
    with server.client() as admin:
        uid = upload(admin, clip)
        run_jobs(server.runtime)
        reply = admin.patch(f"/api/v1/videos/{uid}", json={"require_signed_urls": True})
        assert reply.status_code == 200, reply.text
    return uid


def key_of(server: LiveServer, scope: str, environment: str | None) -> str:
    if scope == "admin":
        return ADMIN_TOKEN
    with server.client() as admin:
        made = admin.post("/api/v1/keys", json={"scope": scope, "environment": environment})
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key


@pytest.mark.parametrize(
    ("scope", "environment"), [("admin", None), ("server", "production"), ("server", "development")]
)
def test_admin_and_server_keys_mint_tokens_that_play(
    server: LiveServer, signed_uid: str, scope: str, environment: str | None
) -> None:
    with server.client(token=key_of(server, scope, environment)) as api:
        minted = api.post(f"/api/v1/videos/{signed_uid}/token", json={"expires_in": 86400})
        info = api.get(f"/api/v1/videos/{signed_uid}/playback")
    assert minted.status_code == 200, minted.text
    assert info.status_code == 200, info.text
    assert httpx.get(minted.json()["hls"]).status_code == 200
    assert httpx.get(info.json()["hls"]).status_code == 200


@pytest.mark.parametrize("environment", ["production", "development"])
def test_a_client_key_mints_nothing(server: LiveServer, signed_uid: str, environment: str) -> None:
    with server.client(token=key_of(server, "client", environment)) as app:
        minted = app.post(f"/api/v1/videos/{signed_uid}/token", json={"expires_in": 86400})
        info = app.get(f"/api/v1/videos/{signed_uid}/playback")
    for reply in (minted, info):
        assert reply.status_code == 403, reply.text
        assert reply.json()["code"] == "SERVER_KEY_REQUIRED"
        assert "token=" not in reply.text


def test_a_client_key_still_gets_playback_of_an_unsigned_video(
    server: LiveServer, tmp_path: Path
) -> None:
    with server.client() as admin:
        uid = upload(admin, make_clip("tiny", tmp_path))
        run_jobs(server.runtime)
    with server.client(token=key_of(server, "client", "production")) as app:
        info = app.get(f"/api/v1/videos/{uid}/playback")
    assert info.status_code == 200, info.text
    assert httpx.get(info.json()["hls"]).status_code == 200
