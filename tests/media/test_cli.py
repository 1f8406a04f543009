"""`reelout videos` on a real database (SQLite and PostgreSQL): the same answers as the videos API,
re-encode and delete audited as the OS user, a signed playback URL that plays."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.media.clips import Clips
from tests.media.test_pipeline import upload
from tests.support.cli import CLI_USER, Cli, as_json, cli_for, ok, refused
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, live_server_fixture

PUBLIC = "https://media.example.com"
server = live_server_fixture(per_database=True, public_url=PUBLIC)


@pytest.fixture
def cli(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return cli_for(server, monkeypatch)


@pytest.fixture
def videos(server: LiveServer, clips: Clips) -> dict[str, str]:
    """A video that became ready and one that ended in error."""
    with server.client() as api:
        good, bad = upload(api, clips("tiny")), upload(api, clips("truncated"))
    run_jobs(server.runtime)
    return {"ready": good, "error": bad}


def api_get(server: LiveServer, path: str, **params: str) -> Any:
    with server.client() as api:
        reply = api.get(path, params=params)
    assert reply.status_code == 200, reply.text
    return reply.json()


def uids(page: dict[str, Any]) -> list[str]:
    return [video["uid"] for video in page["videos"]]


def trail(server: LiveServer, target: str) -> list[tuple[str, str, str | None]]:
    entries = api_get(server, "/api/v1/audit/all", target=target)["entries"]
    return [(e["action"], e["actor"], e["reason"]) for e in entries]


def test_list_show_and_history_answer_as_the_api(
    cli: Cli, server: LiveServer, videos: dict[str, str]
) -> None:
    good, bad = videos["ready"], videos["error"]
    listing = as_json(cli("videos", "list", "--json"))
    assert listing == api_get(server, "/api/v1/videos")
    assert uids(listing) == [bad, good]
    filters = {
        ("--state", "error"): [bad],
        ("--order", "O-1", "--stage", "inbound", "--search", "TINY"): [good],
        ("--search", good[:6]): [good],
        ("--stage", "work"): [],
        ("--created-before", "2000-01-01"): [],
        ("--created-from", "2000-01-01T00:00:00+02:00"): [bad, good],
    }
    for args, expected in filters.items():
        assert uids(as_json(cli("videos", "list", *args, "--json"))) == expected, args
    first = as_json(cli("videos", "list", "--limit", "1", "--json"))
    assert uids(first) == [bad] and first["next_cursor"]
    rest = as_json(
        cli("videos", "list", "--limit", "1", "--cursor", first["next_cursor"], "--json")
    )
    assert uids(rest) == [good] and rest["next_cursor"] is None
    table = ok(cli("videos", "list")).stdout
    assert good in table and "tiny.mp4" in table and "error ERR_MALFORMED" in table

    shown = as_json(cli("videos", "show", good, "--json"))
    assert shown == api_get(server, f"/api/v1/videos/{good}")
    assert shown["playback"]["hls"].startswith(f"{PUBLIC}/media/{good}/")
    details = ok(cli("videos", "show", good)).stdout
    assert "renditions" in details and shown["renditions"][0]["name"] in details
    assert as_json(cli("videos", "history", bad, "--json")) == api_get(
        server, f"/api/v1/videos/{bad}/history"
    )
    assert "ERR_MALFORMED" in ok(cli("videos", "history", bad)).stdout


def test_bad_input_is_a_usage_error_and_an_unknown_video_is_named(
    cli: Cli, videos: dict[str, str]
) -> None:
    for args in (
        ("--state", "finished"),
        ("--created-from", "yesterday"),
        ("--limit", "0"),
        ("--search", "x" * 201),
    ):
        assert cli("videos", "list", *args).exit_code == 2, args
    refused(cli("videos", "list", "--cursor", "nonsense"), "INVALID_CURSOR", "cursor")
    extra = {"show": "--json", "history": "--json", "reencode": "-r", "delete": "--yes"}
    for command in ("show", "history", "reencode", "delete", "url"):
        given = (extra[command],) if command in extra else ()
        given += ("why",) if command == "reencode" else ()
        missing = cli("videos", command, "f" * 32, *given)
        refused(missing, "VIDEO_NOT_FOUND", f"no video with uid '{'f' * 32}'")
        assert "reelout videos list" in missing.stderr


def test_reencode_and_delete_are_audited_as_the_os_user(
    cli: Cli, server: LiveServer, videos: dict[str, str]
) -> None:
    good, bad = videos["ready"], videos["error"]
    ok(cli("videos", "reencode", good, "--reason", "new ladder"))
    refused(cli("videos", "reencode", good), "VIDEO_BUSY", "once that has finished")
    assert api_get(server, f"/api/v1/videos/{good}")["status"]["state"] == "queued"
    run_jobs(server.runtime)
    assert api_get(server, f"/api/v1/videos/{good}")["status"]["state"] == "ready"

    kept = cli("videos", "delete", good, input="n\n")
    assert kept.exit_code == 1 and "Delete video" in kept.stderr
    assert api_get(server, f"/api/v1/videos/{good}")["uid"] == good
    ok(cli("videos", "delete", good, "--reason", "duplicate", input="y\n"))
    ok(cli("videos", "delete", bad, "--yes"))
    with server.client() as api:
        assert api.get(f"/api/v1/videos/{good}").status_code == 404
        assert api.get(f"/api/v1/videos/{bad}").status_code == 404
    assert trail(server, good) == [
        ("video.deleted", CLI_USER, "duplicate"),
        ("video.reprocessed", CLI_USER, "new ladder"),
    ]
    assert trail(server, bad) == [("video.deleted", CLI_USER, None)]


def test_a_signed_playback_url_plays_and_needs_a_public_url(
    cli: Cli, server: LiveServer, videos: dict[str, str]
) -> None:
    good = videos["ready"]
    signed = ok(cli("videos", "url", good)).stdout.strip()
    assert signed.startswith(f"{PUBLIC}/media/{good}/") and "/master.m3u8?token=" in signed
    assert "valid until" in ok(cli("videos", "url", good)).stderr
    nowhere = cli("videos", "url", good, REELOUT_PUBLIC_URL="")
    refused(nowhere, "PUBLIC_URL_REQUIRED", "set REELOUT_PUBLIC_URL, or pass --base-url")
    local = ok(cli("videos", "url", good, "--base-url", server.url, REELOUT_PUBLIC_URL=""))
    master = httpx.get(local.stdout.strip(), timeout=10)
    assert master.status_code == 200 and master.text.startswith("#EXTM3U")
    long = as_json(cli("videos", "url", good, "--ttl", "3600", "--json"))
    assert set(long) == {"token", "expires_at", "hls", "mp4", "poster"}
    assert cli("videos", "url", good, "--ttl", "59").exit_code == 2
    assert cli("videos", "url", good, "--base-url", "media.example.com").exit_code == 2
    refused(cli("videos", "url", good, "--ttl", "99999999"), "TOKEN_TTL_TOO_LONG", "the longest")
    refused(cli("videos", "url", videos["error"]), "VIDEO_NOT_READY", "once it is ready")
