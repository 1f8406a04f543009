"""Change events for apps (OFREP event streams) and whole flag sets for in-process SDKs (sync)."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.commands import REELOUT, reelout_env
from tests.support.live import LiveServer, StartLive
from tests.support.sse import EventStream
from tests.support.waiting import wait_until

FLAGS = {
    "flags": {
        "use_tus_upload": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on",
        },
        "player": {
            "state": "ENABLED",
            "variants": {"a": "media_kit", "b": "video_player"},
            "defaultVariant": "a",
        },
    }
}


@pytest.fixture
def start(live_servers: StartLive) -> StartLive:
    """`start(folder="", **settings)`: a live server whose change watch comes round every 50 ms."""
    return functools.partial(live_servers, flag_change_poll_seconds=0.05, seed_flags=False)


def new_key(live: LiveServer, scope: str = "client", name: str = "app") -> str:
    with live.client() as admin:
        body = {"scope": scope, "environment": "production", "name": name}
        reply = admin.post("/api/v1/keys", json=body)
        assert reply.status_code == 201, reply.text
        key: str = reply.json()["key"]
        return key


def revoke(live: LiveServer, name: str) -> None:
    with live.client() as admin:
        (key,) = [k for k in admin.get("/api/v1/keys").json() if k["name"] == name]
        assert admin.delete(f"/api/v1/keys/{key['id']}").status_code == 200


def put_flags(live: LiveServer, flags: dict[str, Any] = FLAGS) -> None:
    with live.client() as admin:
        reply = admin.put("/api/v1/environments/production/flagset", json=flags)
        assert reply.status_code in (200, 201), reply.text


def kill(live: LiveServer, key: str = "use_tus_upload") -> int:
    with live.client() as admin:
        reply = admin.post(f"/api/v1/environments/production/flags/{key}/kill")
        assert reply.status_code == 200, reply.text
        assert reply.json()["state"] == "DISABLED"
        return int(reply.headers["etag"].strip('"').rsplit("-r", 1)[1])


@pytest.fixture
def server(start: StartLive, database_url: str) -> LiveServer:
    live = start(database_url=database_url)
    put_flags(live)
    return live


@pytest.fixture
def app(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(token=new_key(server)) as client:
        yield client


def bulk(app: httpx.Client, **headers: str) -> httpx.Response:
    return app.post(
        "/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "u1"}}, headers=headers
    )


def by_key(answer: httpx.Response) -> dict[str, dict[str, Any]]:
    return {flag["key"]: flag for flag in answer.json()["flags"]}


def stream_url(answer: httpx.Response) -> str:
    (stream,) = answer.json()["eventStreams"]
    assert stream["type"] == "sse" and stream["inactivityDelaySec"] == 120
    uri: str = stream["endpoint"]["requestUri"]
    assert uri.startswith("/ofrep/v1/events?since=")
    return uri


def test_a_kill_reaches_a_connected_app_as_a_refetch_event(
    app: httpx.Client, server: LiveServer
) -> None:
    first = bulk(app)
    assert by_key(first)["use_tus_upload"]["value"] is True
    with EventStream(httpx.Client(base_url=str(app.base_url)), stream_url(first)) as events:
        assert events.status == 200
        assert events.response.headers["content-type"].startswith("text/event-stream")
        greeting = events.next()
        assert greeting.retry == 1000 and not greeting.data
        revision = kill(server)
        change = events.next_change()
    assert change.json()["type"] == "refetchEvaluation"
    assert change.json()["etag"] == change.id == f"production-r{revision}"
    assert isinstance(change.json()["lastModified"], int)
    again = bulk(app, **{"If-None-Match": first.headers["etag"]})
    assert again.status_code == 200, "the flag set moved on, so the old ETag no longer matches"
    assert by_key(again)["use_tus_upload"] == {"key": "use_tus_upload", "reason": "DISABLED"}


def test_a_client_that_was_behind_is_told_at_once(app: httpx.Client, server: LiveServer) -> None:
    stale = stream_url(bulk(app))
    kill(server)
    with EventStream(httpx.Client(base_url=server.url), stale) as events:
        assert events.next_change().json()["type"] == "refetchEvaluation"


def test_a_reconnect_resumes_from_last_event_id(app: httpx.Client, server: LiveServer) -> None:
    url = stream_url(bulk(app))
    head = kill(server)
    client = httpx.Client(base_url=server.url)
    with EventStream(client, url, {"Last-Event-ID": f"production-r{head}"}) as events:
        assert events.quiet_for(0.5), "nothing newer than the client's last event"
    with EventStream(client, url, {"Last-Event-ID": f"production-r{head - 1}"}) as events:
        assert events.next_change().id == f"production-r{head}"


def test_an_up_to_date_client_hears_nothing_until_a_change(
    app: httpx.Client, server: LiveServer
) -> None:
    with EventStream(httpx.Client(base_url=server.url), stream_url(bulk(app))) as events:
        assert events.quiet_for(0.5)
        with server.client() as admin:  # another environment's change is not this app's
            admin.put("/api/v1/environments/preview/flagset", json=FLAGS)
        assert events.quiet_for(0.5)


def test_stream_keys_and_tokens(app: httpx.Client, server: LiveServer) -> None:
    url = stream_url(bulk(app))
    plain = httpx.Client(base_url=server.url)
    forged = url.rsplit(".", 1)[0] + ".AAAA"
    reply = plain.get(forged)
    assert (reply.status_code, reply.json()["code"]) == (401, "INVALID_STREAM_TOKEN")
    assert plain.get("/ofrep/v1/events").status_code == 401
    with server.client() as admin:
        assert admin.get("/ofrep/v1/events").json()["code"] == "CLIENT_KEY_REQUIRED"
    with EventStream(plain, "/ofrep/v1/events", {"X-API-Key": new_key(server, name="tv")}) as ok:
        assert ok.status == 200, "apps that can send headers may use their key"
    revoke(server, "app")
    revoked = plain.get(url)
    assert (revoked.status_code, revoked.json()["code"]) == (401, "INVALID_KEY")


def test_the_stream_limit_both_sides(start: StartLive) -> None:
    live = start(ofrep_max_streams=1)
    put_flags(live)
    headers = {"X-API-Key": new_key(live)}
    plain = httpx.Client(base_url=live.url)
    with EventStream(plain, "/ofrep/v1/events", headers) as first:
        assert first.status == 200
        first.next()
        full = plain.get("/ofrep/v1/events", headers=headers)
        assert (full.status_code, full.json()["code"]) == (503, "STREAMS_FULL")
        assert 5 <= int(full.headers["retry-after"]) <= 7, "5 s, jittered"
    with EventStream(plain, "/ofrep/v1/events", headers) as again:
        again.next()  # the closed stream gave its place back
        assert again.status == 200


def test_streams_can_be_switched_off(start: StartLive) -> None:
    live = start(ofrep_streams=False)
    put_flags(live)
    with live.client(token=new_key(live)) as app:
        assert "eventStreams" not in bulk(app).json(), "clients fall back to polling"
        off = app.get("/ofrep/v1/events")
        assert (off.status_code, off.json()["code"]) == (503, "STREAMS_OFF")


@pytest.mark.postgres
def test_a_change_written_through_one_replica_reaches_streams_on_another(
    start: StartLive, pg_server_url: str
) -> None:
    from tests.conftest import reset_pg

    reset_pg(pg_server_url)
    one = start("a", database_url=pg_server_url)
    two = start("b", database_url=pg_server_url)
    put_flags(one)
    with two.client(token=new_key(one)) as app:
        url = stream_url(bulk(app))
        with EventStream(httpx.Client(base_url=two.url), url) as events:
            events.next()
            revision = kill(one)
            assert events.next_change().id == f"production-r{revision}"


@pytest.mark.parametrize("notify", [True, False], ids=["notify", "polling-only"])
def test_on_postgresql_a_kill_reaches_another_replica_without_waiting_for_its_poll(
    start: StartLive, pg_server_url: str, notify: bool
) -> None:
    """Replica B polls only every 60 s here: with LISTEN/NOTIFY (the default) a kill written
    through replica A reaches B's stream and B's answers at once; with it switched off
    (REELOUT_FLAG_CHANGE_NOTIFY=false) B hears nothing until its poll comes round."""
    from tests.conftest import reset_pg

    reset_pg(pg_server_url)
    one = start("a", database_url=pg_server_url)
    two = start("b", database_url=pg_server_url, flag_change_poll_seconds=60,
                flag_change_notify=notify)  # fmt: skip
    put_flags(one)
    key = new_key(one)
    with two.client(token=key) as app:
        wait_until(lambda: bulk(app).status_code == 200, 90, "replica B to know the new key")
        with EventStream(httpx.Client(base_url=two.url), stream_url(bulk(app))) as events:
            events.next()
            revision = kill(one)
            if not notify:
                assert events.quiet_for(2), "polling alone: nothing before the next poll"
                assert by_key(bulk(app))["use_tus_upload"]["value"] is True
                return
            assert events.next_change(wait=5).id == f"production-r{revision}"
            assert by_key(bulk(app))["use_tus_upload"]["reason"] == "DISABLED"
            revoke(one, "app")
            assert events.ends(wait=5), "a key revoked through A ends its streams on B at once"


# ---- sync: whole flag sets for in-process SDKs -------------------------------------------------


def test_a_server_key_reads_the_stored_flag_set_with_an_etag(server: LiveServer) -> None:
    with server.client() as admin:
        stored = admin.get("/api/v1/environments/production/flagset")
    with server.client(token=new_key(server, "server")) as sdk:
        reply = sdk.get("/api/v1/sync/flagset")
        assert reply.status_code == 200
        assert reply.content == stored.content, "byte for byte what the admin API stores"
        assert reply.headers["etag"] == stored.headers["etag"]
        assert reply.headers["reelout-revision"] == "1"
        assert json.loads(reply.content)["flags"]["player"]["defaultVariant"] == "a"
        same = sdk.get("/api/v1/sync/flagset", headers={"If-None-Match": reply.headers["etag"]})
        assert (same.status_code, same.content) == (304, b"")
        kill(server)
        moved = sdk.get("/api/v1/sync/flagset", headers={"If-None-Match": reply.headers["etag"]})
        assert moved.status_code == 200 and moved.headers["reelout-revision"] == "2"
        evaluates = sdk.post("/ofrep/v1/evaluate/flags", json={"context": {}})
        assert evaluates.status_code == 200, "a server key evaluates like a client key"


def test_sync_takes_a_server_key(server: LiveServer, app: httpx.Client) -> None:
    refused = app.get("/api/v1/sync/flagset")
    assert (refused.status_code, refused.json()["code"]) == (403, "SERVER_KEY_REQUIRED")
    assert "--scope server" in refused.json()["message"]
    assert httpx.get(f"{server.url}/api/v1/sync/flagset").status_code == 401
    with server.client() as admin:
        assert admin.get("/api/v1/sync/flagset").json()["code"] == "SERVER_KEY_REQUIRED"


# ---- a real browser-side client: @openfeature/ofrep-web-provider ----------------------------


def test_the_ofrep_web_provider_follows_a_kill_switch_live(server: LiveServer) -> None:
    """The JavaScript web provider reads `eventStreams`, connects, and re-fetches on the event."""
    js = Path(__file__).parents[1] / "js"
    node = shutil.which("node")
    if node is None or not (js / "node_modules/@openfeature/ofrep-web-provider").exists():
        pytest.fail("run `make node` (Node 20 with tests/js's npm packages)")
    options = {"baseUrl": server.url, "key": new_key(server), "flag": "use_tus_upload",
               "targetingKey": "u1"}  # fmt: skip
    app = subprocess.Popen(
        [node, str(js / "ofrep_web_client.mjs"), json.dumps(options)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert app.stdout is not None
        ready = json.loads(app.stdout.readline())
        assert ready == {"event": "ready", "value": True, "reason": "STATIC"}
        kill(server)
        changed = json.loads(app.stdout.readline())
        assert changed["event"] == "changed" and changed["value"] is False, changed
    finally:
        app.kill()
        app.wait(timeout=10)


# ---- answers from memory: how a change and a revocation reach every process --------------------


def test_a_refetch_naming_a_newer_revision_is_answered_from_the_database(start: StartLive) -> None:
    """The server's watch is slow here (60 s) and the kill comes from another process (the
    CLI), yet an app told of the new revision gets its answers."""
    reader = start(flag_change_poll_seconds=60)
    put_flags(reader)
    with reader.client(token=new_key(reader)) as app:
        assert by_key(bulk(app))["use_tus_upload"]["value"] is True
        env = reelout_env(reader.runtime.settings.data_dir)
        killed = subprocess.run(
            [REELOUT, "flags", "kill", "use_tus_upload", "--env", "production"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert killed.returncode == 0, killed.stderr
        stale = by_key(bulk(app))["use_tus_upload"]
        assert stale["value"] is True, "answered from memory until the watch comes round"
        fresh = app.post(
            "/ofrep/v1/evaluate/flags?flagConfigEtag=production-r2",
            json={"context": {"targetingKey": "u1"}},
        )
        assert by_key(fresh)["use_tus_upload"]["reason"] == "DISABLED"
        assert by_key(bulk(app))["use_tus_upload"]["reason"] == "DISABLED", "and keeps it"


def test_a_revoked_key_stops_evaluating_within_one_poll(
    app: httpx.Client, server: LiveServer
) -> None:
    assert bulk(app).status_code == 200
    revoke(server, "app")

    def refused_reply() -> httpx.Response | None:
        reply = bulk(app)
        return reply if reply.status_code != 200 else None

    # the watch polls every 0.05 s here; the timeout only bounds a hang
    refused = wait_until(refused_reply, 10, "the revoked key to be refused")
    assert (refused.status_code, refused.json()["code"]) == (401, "INVALID_KEY")


def test_revoking_a_key_ends_its_open_streams(app: httpx.Client, server: LiveServer) -> None:
    url = stream_url(bulk(app))
    plain = httpx.Client(base_url=server.url)
    with EventStream(plain, url) as events, EventStream(plain, url) as other:
        events.next()
        other.next()
        with EventStream(
            plain, "/ofrep/v1/events", {"X-API-Key": new_key(server, name="tv")}
        ) as tv:
            tv.next()
            revoke(server, "app")
            assert events.ends() and other.ends(), "both streams of the revoked key end"
            kill(server)
            assert tv.next_change().json()["type"] == "refetchEvaluation", "other keys go on"
    again = plain.get(url)
    assert (again.status_code, again.json()["code"]) == (401, "INVALID_KEY")
