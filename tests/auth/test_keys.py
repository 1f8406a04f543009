"""API keys over HTTP and the CLI: scopes, environments, revocation, the first-start admin key."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from reelout.startup import prepare
from tests.support.commands import REELOUT, reelout_env
from tests.support.live import LiveServer
from tests.support.settings import ADMIN_TOKEN, make_settings, start_runtime


def test_create_list_revoke(live_server: LiveServer) -> None:
    with live_server.client() as admin:
        created = admin.post(
            "/api/v1/keys",
            json={"scope": "client", "environment": "production", "name": "flutter-app"},
        )
        assert created.status_code == 201
        key = created.json()
        assert key["key"].startswith("rlo_client_")
        listed = admin.get("/api/v1/keys").json()
        assert "key" not in listed[0] and "key_hash" not in listed[0]
        assert {k["name"] for k in listed} == {"bootstrap", "flutter-app"}
        with live_server.client(token=key["key"]) as client:
            refused = client.get("/api/v1/keys")
            assert (refused.status_code, refused.json()["code"]) == (403, "ADMIN_REQUIRED")
        assert admin.delete(f"/api/v1/keys/{key['id']}").json()["revoked_at"]
        with live_server.client(token=key["key"]) as client:
            assert client.get("/api/v1/keys").json()["code"] == "INVALID_KEY"
        assert admin.delete("/api/v1/keys/nope").status_code == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"scope": "client"}, "INVALID_ENVIRONMENT"),
        ({"scope": "client", "environment": "staging"}, "INVALID_ENVIRONMENT"),
        ({"scope": "admin", "environment": "production"}, "INVALID_ENVIRONMENT"),
        ({"scope": "root"}, "INVALID_REQUEST"),
    ],
)
def test_bad_key_requests(live_server: LiveServer, body: dict[str, str], code: str) -> None:
    with live_server.client() as admin:
        reply = admin.post("/api/v1/keys", json=body)
        assert reply.status_code in (400, 422)
        assert reply.json()["code"] == code


def test_missing_key_says_how_to_send_one(live_server: LiveServer) -> None:
    reply = httpx.get(live_server.url + "/api/v1/videos")
    assert reply.status_code == 401
    assert "Authorization: Bearer" in reply.json()["message"]
    assert reply.headers["WWW-Authenticate"] == "Bearer"


def test_first_start_generates_an_admin_key_file(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, admin_token=None, database_url=database_url)
    rt = start_runtime(settings)
    prepare(rt)
    key_file = settings.admin_key_file
    secret = key_file.read_text().strip()
    assert secret.startswith("rlo_admin_")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    prepare(rt)  # a restart keeps the key
    assert key_file.read_text().strip() == secret
    with rt.db.session() as session:
        from reelout.auth import service

        assert service.authenticate(session, secret).is_admin


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = reelout_env(tmp_path / "data", REELOUT_ADMIN_TOKEN=ADMIN_TOKEN)
    return subprocess.run([REELOUT, *args], env=env, capture_output=True, text=True, timeout=60)


def test_cli_keys(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "migrate").returncode == 0
    made = run_cli(
        tmp_path, "keys", "create", "--scope", "client", "--env", "preview", "--name", "web"
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("rlo_client_")
    listing = run_cli(tmp_path, "keys", "list")
    assert "web" in listing.stdout and "preview" in listing.stdout and secret not in listing.stdout
    rows = json.loads(run_cli(tmp_path, "keys", "list", "--json").stdout)
    key_id = next(row["id"] for row in rows if row["name"] == "web")
    assert key_id in listing.stdout, "ids are never cut short in the table"
    assert run_cli(tmp_path, "keys", "revoke", key_id).returncode == 0
    bad = run_cli(tmp_path, "keys", "create", "--scope", "client", "--env", "nowhere")
    assert bad.returncode == 1
    assert "INVALID_ENVIRONMENT" in bad.stderr
