"""Fixtures for the flag admin tests: a live Reelout (SQLite and PostgreSQL) and small helpers."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from reelout.clock import ManualClock
from reelout.flags.engine.validation import schema_text
from tests.support.live import LiveServer, StartLive, live_server_fixture

FLAG_SET = """{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "flags": {
    "use_tus_upload": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "targeting": {"if": [{"$ref": "is_beta"}, "on", "off"]}
    },
    "player": {"state": "ENABLED", "variants": {"a": "media_kit", "b": "video_player"},
               "defaultVariant": "a"}
  },
  "$evaluators": {"is_beta": {"in": [{"var": "cohort"}, ["beta"]]}},
  "metadata": {"flagSetId": "test"}
}
"""


# A live server on SQLite and on PostgreSQL. These tests build their sets from nothing, so the
# server starts as an install with REELOUT_SEED_FLAGS=false does (test_templates seeds).
server = live_server_fixture(per_database=True, seed_flags=False)


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


StartClocked = Callable[..., tuple[LiveServer, httpx.Client]]


@pytest.fixture
def start_clocked(
    live_servers: StartLive, database_url: str, clock: ManualClock
) -> Iterator[StartClocked]:
    """`start_clocked(**settings)`: a live server on the test's database and `clock` (time moves
    when the test says), with an admin client of it; all closed at the end."""
    with contextlib.ExitStack() as clients:

        def start(**settings: object) -> tuple[LiveServer, httpx.Client]:
            server = live_servers(
                clock=clock, database_url=database_url, seed_flags=False, **settings
            )
            return server, clients.enter_context(server.client())

        yield start


def put_set(api: httpx.Client, env: str, text: str = FLAG_SET, **headers: str) -> httpx.Response:
    return api.put(f"/api/v1/environments/{env}/flagset", content=text.encode(), headers=headers)


def audit(api: httpx.Client, **query: Any) -> list[dict[str, Any]]:
    reply = api.get("/api/v1/audit", params=query)
    assert reply.status_code == 200, reply.text
    entries: list[dict[str, Any]] = reply.json()["entries"]
    return entries


def validate_with_schema(document: Any) -> None:
    """Validate against the published flagd schema (a second, independent registry)."""
    from jsonschema import Draft7Validator
    from referencing import Registry, Resource

    schemas = [json.loads(schema_text(name)) for name in ("flags.json", "targeting.json")]
    registry: Registry[Any] = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas
    )
    validator = Draft7Validator({"$ref": schemas[0]["$id"]}, registry=registry)
    validator.validate(document)
