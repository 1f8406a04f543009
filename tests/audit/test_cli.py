"""`reelout audit` on a real database (SQLite and PostgreSQL): the same changes, filters and pages
as GET /api/v1/audit/all, flag changes and the trail's together."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cli import CLI_USER, Cli, as_json, cli_for, ok, refused
from tests.support.live import LiveServer, live_server_fixture

ALL = "/api/v1/audit/all"
server = live_server_fixture(per_database=True)


@pytest.fixture
def cli(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return cli_for(server, monkeypatch)


def api_get(server: LiveServer, **params: str) -> Any:
    with server.client() as api:
        reply = api.get(ALL, params=params)
    assert reply.status_code == 200, reply.text
    return reply.json()


def actions(page: dict[str, Any]) -> list[str]:
    return [entry["action"] for entry in page["entries"]]


@pytest.fixture
def changes(server: LiveServer, cli: Cli) -> str:
    """A key made through the API, one made and revoked on the command line, a flag killed through
    the API; returns the revoked key's id."""
    with server.client() as api:
        made = api.post("/api/v1/keys", json={"scope": "admin", "name": "ci"})
        assert made.status_code == 201, made.text
        kill = api.post(
            "/api/v1/environments/production/flags/use_tus_upload/kill",
            params={"reason": "uploads stall"},
        )
        assert kill.status_code == 200, kill.text
    ok(cli("keys", "create", "--scope", "client", "--env", "preview", "--name", "app"))
    key_id = next(k["id"] for k in as_json(cli("keys", "list", "--json")) if k["name"] == "app")
    ok(cli("keys", "revoke", key_id, "--reason", "leaked"))
    return key_id


def test_the_trail_filters_and_pages_as_the_api(cli: Cli, server: LiveServer, changes: str) -> None:
    everything = as_json(cli("audit", "--json"))
    assert everything == api_get(server)
    assert actions(everything)[:4] == ["key.revoked", "key.created", "flag.kill", "key.created"]
    filters: dict[tuple[str, ...], dict[str, str]] = {
        ("--actor", CLI_USER): {"actor": CLI_USER},
        ("--area", "flags", "--env", "production"): {"area": "flags", "env": "production"},
        ("--target", changes): {"target": changes},
        ("--action", "key.created"): {"action": "key.created"},
        ("--since", "2000-01-01T01:00:00+01:00"): {"since": "2000-01-01T00:00:00Z"},
        ("--until", "2000-01-02"): {"until": "2000-01-02T00:00:00Z"},
    }
    for args, query in filters.items():
        assert as_json(cli("audit", *args, "--json")) == api_get(server, **query), args
    mine = as_json(cli("audit", "--actor", CLI_USER, "--json"))["entries"]
    assert [(e["action"], e["reason"]) for e in mine] == [
        ("key.revoked", "leaked"),
        ("key.created", None),
    ]
    assert as_json(cli("audit", "--since", "2000-01-01", "--until", "2000-01-02", "--json")) == {
        "entries": [],
        "next_cursor": None,
    }

    first = as_json(cli("audit", "--limit", "2", "--json"))
    assert actions(first) == actions(everything)[:2] and first["next_cursor"]
    after = as_json(cli("audit", "--limit", "2", "--cursor", first["next_cursor"], "--json"))
    assert actions(after) == actions(everything)[2:4]
    table = ok(cli("audit", "--area", "keys")).stdout
    assert CLI_USER in table and "leaked" in table and "key.revoked" in table
    assert "flag.kill" not in table


def test_bad_input_is_a_usage_error_and_a_bad_cursor_is_named(cli: Cli) -> None:
    assert cli("audit", "--area", "nope").exit_code == 2
    assert cli("audit", "--since", "last week").exit_code == 2
    assert cli("audit", "--limit", "0").exit_code == 2
    bad = cli("audit", "--cursor", "nonsense")
    refused(bad, "INVALID_CURSOR", "not one this server gave out")
