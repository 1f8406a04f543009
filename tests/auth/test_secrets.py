"""Chosen secrets (REELOUT_ADMIN_TOKEN, REELOUT_SECRET_KEY) must be strong; listings show little."""

from __future__ import annotations

import secrets
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from reelout.app import create_app
from reelout.auth.models import ApiKey
from reelout.auth.secret import AdminTokenError, SecretKeyError
from reelout.auth.strength import HOW_TO_MAKE_ONE, weakness
from reelout.auth.tokens import new_secret, shown_prefix
from reelout.db.migrate import upgrade
from reelout.runtime import Runtime
from tests.support.commands import REELOUT, reelout_env
from tests.support.live import LiveServer, free_port
from tests.support.settings import ADMIN_TOKEN, make_settings

STRONG_32 = "Vq7cN2xLr9TzKm4WbYp8HdJs6FgEa3Uu"  # 32 random characters


@pytest.mark.parametrize(
    "secret",
    [
        "abc",
        "x" * 40,
        "rlo_admin_" + "x" * 40,  # the known prefix counts for nothing
        "rlo_admin_test-" + "x" * 32,  # the suite's old token
        "password123password123password123",
        "correct horse battery staple staple",
        "abcdefghijklmnopqrstuvwxyz0123456789",
        "qwertyuiopasdfghjklzxcvbnm1234567890",
        STRONG_32[:31],  # random, one character short
    ],
)
def test_a_secret_a_person_could_guess_is_weak(secret: str) -> None:
    assert weakness(secret, 32) is not None


@pytest.mark.parametrize(
    "secret",
    [
        STRONG_32,
        "rlo_admin_" + STRONG_32,
        ADMIN_TOKEN,
        "9f86d081884c7d659a2feaa0c55ad015",
        "A" * 10 + STRONG_32,
    ],
)
def test_a_long_random_secret_is_strong(secret: str) -> None:
    assert weakness(secret, 32) is None


@pytest.mark.parametrize("kind", ["admin", "client", "server"])
def test_every_generated_key_and_random_string_passes(kind: str) -> None:
    for _ in range(30):
        assert weakness(new_secret(kind), 32) is None
        assert weakness(secrets.token_urlsafe(24), 32) is None  # 32 characters
        assert weakness(secrets.token_hex(16), 32) is None  # 32 characters


def test_the_minimum_length_is_a_setting() -> None:
    short = STRONG_32[:28]
    assert weakness(short, 32) is not None
    assert weakness(short, 28) is None
    assert weakness(short, 29) is not None


def test_a_weak_admin_token_or_secret_key_stops_the_app(tmp_path: Path) -> None:
    with pytest.raises(AdminTokenError, match="REELOUT_ADMIN_TOKEN is too weak"):
        create_app(make_settings(tmp_path, admin_token="abc"))
    with pytest.raises(SecretKeyError, match="REELOUT_SECRET_KEY is too weak"):
        create_app(make_settings(tmp_path / "2", secret_key="s" * 40))
    create_app(make_settings(tmp_path / "3", admin_token=STRONG_32, secret_key=STRONG_32[::-1]))
    relaxed = make_settings(tmp_path / "4", admin_token=STRONG_32[:28], min_secret_chars=28)
    create_app(relaxed)


def serve_once(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    child = reelout_env(tmp_path / "data", **env)
    command = [REELOUT, "serve", "--port", str(free_port())]
    return subprocess.run(command, env=child, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("variable", "code"),
    [
        ("REELOUT_ADMIN_TOKEN", "WEAK_ADMIN_TOKEN"),
        ("REELOUT_SECRET_KEY", "INVALID_SECRET_KEY"),
        ("REELOUT_METRICS_TOKEN", "WEAK_METRICS_TOKEN"),
    ],
)
def test_serve_refuses_a_weak_chosen_secret_and_says_how_to_make_one(
    tmp_path: Path, variable: str, code: str
) -> None:
    run = serve_once(tmp_path, **{variable: "abc"})
    assert run.returncode == 1, run.stdout + run.stderr
    assert code in run.stderr and HOW_TO_MAKE_ONE in run.stderr.replace("\n", "")
    assert "Traceback" not in run.stderr


def test_listings_show_the_type_prefix_and_at_most_four_characters(
    live_server: LiveServer,
) -> None:
    with live_server.client() as admin:
        made = admin.post("/api/v1/keys", json={"scope": "client", "environment": "production"})
        secret = made.json()["key"]
        listed = {k["name"]: k["prefix"] for k in admin.get("/api/v1/keys").json()}
    assert made.json()["prefix"] == secret[: len("rlo_client_") + 4]
    assert listed == {"bootstrap": ADMIN_TOKEN[:14], "client-production": secret[:15]}


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        ("rlo_client_Ab12xyz", "rlo_client_Ab12"),
        ("rlo_admin_Ab12xyz", "rlo_admin_Ab12"),
        ("rlo_server_Ab12xyz", "rlo_server_Ab12"),
        (STRONG_32, STRONG_32[:4]),  # a chosen token without a type prefix: 4 characters
        ("ab", "ab"),
    ],
)
def test_what_a_listing_shows_of_a_key(secret: str, shown: str) -> None:
    assert shown_prefix(secret) == shown


def test_the_upgrade_cuts_the_prefixes_stored_before(tmp_path: Path, database_url: str) -> None:
    rt = Runtime.from_settings(make_settings(tmp_path, blank=True, database_url=database_url))
    upgrade(rt.db, "0003")
    before = {"a": "mysecretpasswo", "b": "rlo_client_Abc", "c": "rlo_admin_Abcd", "d": "abc"}
    rows = [
        {
            "id": key_id,
            "name": key_id,
            "scope": "admin",
            "prefix": prefix,
            "key_hash": key_id * 64,
            "created_at": datetime.now(UTC),
        }
        for key_id, prefix in before.items()
    ]
    with rt.db.engine.begin() as conn:
        conn.execute(ApiKey.__table__.insert(), rows)
    upgrade(rt.db)
    with rt.db.read() as session:
        after = {row.id: row.prefix for row in session.execute(select(ApiKey.id, ApiKey.prefix))}
    assert after == {"a": "myse", "b": "rlo_client_Abc", "c": "rlo_admin_Abcd", "d": "abc"}
    rt.db.dispose()
