"""The in-process OpenFeature provider (`reelout.client.flags`): same answers as OFREP, kept live
by the change stream or by polling, started from its cache file, and never raising into the app."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode

from reelout.client.flags import ReeloutProvider
from tests.flags.test_ofrep import FLAGS
from tests.support.live import LiveServer, StartLive, free_port

WAIT = 15.0  # hang guard for events, not a figure


@pytest.fixture
def start(live_servers: StartLive) -> StartLive:
    """`start(**settings)`: a live server with the flag set, its change watch every 50 ms."""

    def start_with_flags(**settings: object) -> LiveServer:
        live = live_servers(flag_change_poll_seconds=0.05, seed_flags=False, **settings)
        with live.client() as admin:
            assert admin.put("/api/v1/environments/production/flagset", json=FLAGS).is_success
        return live

    return start_with_flags


def new_key(live: LiveServer, scope: str = "server") -> str:
    with live.client() as admin:
        reply = admin.post("/api/v1/keys", json={"scope": scope, "environment": "production"})
        key: str = reply.json()["key"]
        return key


def kill(live: LiveServer, flag: str) -> None:
    with live.client() as admin:
        assert admin.post(f"/api/v1/environments/production/flags/{flag}/kill").is_success


@pytest.fixture
def server(start: StartLive) -> LiveServer:
    return start()


class App:
    """An app using the provider through the OpenFeature SDK, as apps do."""

    def __init__(self, provider: ReeloutProvider) -> None:
        self.domain = f"app-{secrets.token_hex(4)}"
        self.provider = provider
        self.changed = threading.Event()
        api.set_provider_and_wait(provider, self.domain)
        self.client: OpenFeatureClient = api.get_client(self.domain)
        self.client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, self._on_change)

    def _on_change(self, _: EventDetails) -> None:
        self.changed.set()

    def flag(self, key: str, default: Any, user: str = "u1", **attributes: Any) -> Any:
        context = EvaluationContext(user, attributes)
        if isinstance(default, bool):
            return self.client.get_boolean_details(key, default, context)
        if isinstance(default, str):
            return self.client.get_string_details(key, default, context)
        return self.client.get_integer_details(key, default, context)

    def close(self) -> None:
        self.provider.shutdown()


@pytest.fixture
def apps() -> Iterator[list[App]]:
    made: list[App] = []
    yield made
    for app in made:
        app.close()


def connect(apps: list[App], url: str, key: str, **options: Any) -> App:
    app = App(ReeloutProvider(url, key, **options))
    apps.append(app)
    return app


def test_answers_match_the_servers_ofrep_answers(server: LiveServer, apps: list[App]) -> None:
    app = connect(apps, server.url, new_key(server))
    with server.client(token=new_key(server, "client")) as ofrep:
        for n in range(60):
            context = {"targetingKey": f"user-{n}", "cohort": "beta" if n % 3 == 0 else "x"}
            remote = ofrep.post("/ofrep/v1/evaluate/flags", json={"context": context}).json()
            for answer in remote["flags"]:
                default = "z" if answer["key"] == "player" else False
                local = app.flag(answer["key"], default, context["targetingKey"],
                                 cohort=context["cohort"])  # fmt: skip
                served = (answer.get("value", default), answer.get("variant"), answer["reason"])
                assert (local.value, local.variant, local.reason) == served, answer["key"]
                assert local.flag_metadata == {"flagSetId": "app"}


def test_a_kill_switch_reaches_the_app_through_the_stream(
    server: LiveServer, apps: list[App]
) -> None:
    app = connect(apps, server.url, new_key(server), poll_interval=3600)
    assert app.flag("use_tus_upload", False, cohort="beta").value is True
    kill(server, "use_tus_upload")
    assert app.changed.wait(WAIT), "a configuration-changed event within the hang guard"
    killed = app.flag("use_tus_upload", False, cohort="beta")
    assert (killed.value, killed.reason) == (False, "DISABLED")


def test_without_a_stream_it_polls(start: StartLive, apps: list[App]) -> None:
    live = start(ofrep_streams=False)
    app = connect(apps, live.url, new_key(live), poll_interval=0.1)
    assert app.flag("player", "z").value == "media_kit"
    kill(live, "player")
    assert app.changed.wait(WAIT)
    assert app.flag("player", "z").value == "z", "killed: the code default"


def test_it_starts_from_its_cache_when_the_server_is_down(
    tmp_path: Path, server: LiveServer, apps: list[App]
) -> None:
    cache = tmp_path / "cache" / "flags.json"
    first = connect(apps, server.url, new_key(server), cache_path=cache)
    assert first.flag("use_tus_upload", False, cohort="beta").value is True
    saved = json.loads(cache.read_text())
    assert (saved["environment"], saved["revision"]) == ("production", 1)
    nowhere = f"http://127.0.0.1:{free_port()}"
    offline = connect(apps, nowhere, "rlo_server_gone", cache_path=cache, timeout=0.5)
    answer = offline.flag("use_tus_upload", False, cohort="beta")
    assert (answer.value, answer.reason, answer.error_code) == (True, "TARGETING_MATCH", None)
    assert offline.provider.revision == 1


def test_with_no_server_and_no_cache_the_app_gets_code_defaults(
    tmp_path: Path, apps: list[App]
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    app = connect(apps, nowhere, "rlo_server_x", cache_path=tmp_path / "none.json", timeout=0.5)
    answer = app.flag("use_tus_upload", True)
    assert (answer.value, answer.error_code) == (True, ErrorCode.PROVIDER_NOT_READY)


def test_a_broken_cache_file_is_ignored(
    tmp_path: Path, server: LiveServer, apps: list[App]
) -> None:
    cache = tmp_path / "flags.json"
    cache.write_text('{"environment": "production", "revision": 9, "flagset": "{not json')
    app = connect(apps, server.url, new_key(server), cache_path=cache)
    assert app.provider.revision == 1, "the server's set replaced the unreadable cache"
    assert json.loads(cache.read_text())["revision"] == 1


def test_wrong_types_and_unknown_flags_give_code_defaults(
    server: LiveServer, apps: list[App]
) -> None:
    app = connect(apps, server.url, new_key(server))
    wrong = app.flag("player", False)
    assert (wrong.value, wrong.error_code) == (False, ErrorCode.TYPE_MISMATCH)
    missing = app.flag("nope", 7)
    assert (missing.value, missing.error_code) == (7, ErrorCode.FLAG_NOT_FOUND)


def test_a_client_key_cannot_sync_and_the_app_keeps_its_defaults(
    server: LiveServer, apps: list[App], caplog: pytest.LogCaptureFixture
) -> None:
    app = connect(apps, server.url, new_key(server, "client"), poll_interval=3600)
    answer = app.flag("player", "z")
    assert (answer.value, answer.error_code) == ("z", ErrorCode.PROVIDER_NOT_READY)
    assert "SERVER_KEY_REQUIRED" in caplog.text
    assert httpx.get(f"{server.url}/healthz").status_code == 200
