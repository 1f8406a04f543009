"""The public endpoints under load from shared app keys: no throttling on default settings,
per-caller limits with a per-key ceiling when turned on, stream slots per key and caller taken
atomically, stream tokens that expire and are renewed, and console login attempts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelout.clock import ManualClock
from tests.flags.test_streams import bulk, new_key, put_flags, stream_url
from tests.support.live import LiveServer, serving
from tests.support.settings import make_settings
from tests.support.sse import EventStream

EVENTS = "/ofrep/v1/events"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()  # stands still: every request of a test falls in the same instant


def serve(tmp_path: Path, clock: ManualClock, **settings: Any) -> Iterator[LiveServer]:
    with serving(make_settings(tmp_path, **settings), clock) as live:
        put_flags(live)
        yield live


@pytest.fixture
def server(tmp_path: Path, clock: ManualClock) -> Iterator[LiveServer]:
    yield from serve(tmp_path, clock)


@pytest.fixture
def limited(tmp_path: Path, clock: ManualClock) -> Iterator[LiveServer]:
    """Limits on, behind a trusted proxy (so X-Forwarded-For names the caller)."""
    yield from serve(
        tmp_path,
        clock,
        behind_proxy=True,
        rate_limit_caller_per_second=1,
        rate_limit_caller_burst=2,
        rate_limit_key_per_second=1,
        rate_limit_key_burst=5,
    )


def test_a_thousand_users_of_one_app_from_one_address_all_get_answers(server: LiveServer) -> None:
    """What Reelout sees behind a proxy it does not trust: one address, one key, a thousand
    users within one second (the clock stands still), through OpenFeature's OFREP provider."""
    from openfeature import api
    from openfeature.contrib.provider.ofrep import OFREPProvider
    from openfeature.evaluation_context import EvaluationContext

    key = new_key(server)
    api.set_provider(
        OFREPProvider(server.url, headers_factory=lambda: {"Authorization": f"Bearer {key}"}),
        "one-app",
    )
    client = api.get_client("one-app")
    answers = [
        client.get_string_details("player", "code-default", EvaluationContext(f"user-{n}"))
        for n in range(1000)
    ]
    assert [a.value for a in answers] == ["media_kit"] * 1000, "nobody lives on code defaults"
    assert all(a.error_code is None for a in answers)


def evaluate(app: httpx.Client, address: str, **headers: str) -> httpx.Response:
    return app.post(
        "/ofrep/v1/evaluate/flags/player",
        json={"context": {"targetingKey": "u"}},
        headers={"X-Forwarded-For": f"203.0.113.9, {address}", **headers},
    )


def test_limits_apply_per_caller_with_a_ceiling_per_key(limited: LiveServer) -> None:
    with limited.client(token=new_key(limited)) as app:
        first = [evaluate(app, "10.0.0.1").status_code for _ in range(3)]
        assert first == [200, 200, 429], "the caller's burst of 2"
        refused = evaluate(app, "10.0.0.1")
        assert refused.json()["code"] == "RATE_LIMITED"
        assert refused.headers["retry-after"] in ("1", "2")
        assert evaluate(app, "10.0.0.2").status_code == 200, "another user's address goes on"
        spoofed = app.post(  # the address the proxy appended counts, not what the client sent
            "/ofrep/v1/evaluate/flags/player",
            json={"context": {}},
            headers={"X-Forwarded-For": "10.0.0.77, 10.0.0.1"},
        )
        assert spoofed.status_code == 429
        more = [evaluate(app, f"10.0.1.{n}").status_code for n in range(3)]
        assert more == [200, 200, 429], "the key's ceiling (5) holds over all addresses"
    with limited.client(token=new_key(limited, name="other")) as other:
        assert evaluate(other, "10.0.0.1").status_code == 200, "other keys are not touched"


def test_without_a_trusted_proxy_forwarded_addresses_are_ignored(
    tmp_path: Path, clock: ManualClock
) -> None:
    settings = make_settings(tmp_path, rate_limit_caller_per_second=1, rate_limit_caller_burst=2)
    # as `reelout serve` runs it: uvicorn's own proxy headers off
    with serving(settings, clock, proxy_headers=False) as live:
        put_flags(live)
        with live.client(token=new_key(live)) as client:
            statuses = [evaluate(client, f"10.0.0.{n}").status_code for n in range(3)]
    assert statuses == [200, 200, 429], "every request is the loopback peer's"


def test_revalidations_are_free_and_exposures_share_the_limiter(limited: LiveServer) -> None:
    key = new_key(limited)
    with limited.client(token=key) as app:
        app.headers["X-Forwarded-For"] = "10.0.0.5"
        etag = bulk(app).headers["etag"]
        for _ in range(20):
            assert bulk(app, **{"If-None-Match": etag}).status_code == 304
        batch = {"exposures": [{"flag": "player", "variant": "a", "targetingKey": "u"}]}
        assert app.post("/api/v1/exposures", json=batch).status_code == 202
        refused = app.post("/api/v1/exposures", json=batch)
        assert (refused.status_code, refused.json()["code"]) == (429, "RATE_LIMITED")
        assert bulk(app).status_code == 429, "one budget per caller for every public endpoint"


def connect_together(live: LiveServer, headers: list[dict[str, str]]) -> list[int]:
    """Open one stream per header set at the same instant; statuses once all have answered
    (the accepted streams stay open until then)."""
    ready, done = threading.Barrier(len(headers)), threading.Event()
    answered = threading.Barrier(len(headers) + 1)
    statuses: list[int] = [0] * len(headers)

    def connect(n: int) -> None:
        with httpx.Client(base_url=live.url, timeout=10) as plain:
            ready.wait()
            with plain.stream("GET", EVENTS, headers=headers[n]) as reply:
                statuses[n] = reply.status_code
                answered.wait()
                done.wait(10)

    threads = [threading.Thread(target=connect, args=(n,)) for n in range(len(headers))]
    for thread in threads:
        thread.start()
    answered.wait()
    done.set()
    for thread in threads:
        thread.join()
    return statuses


def test_concurrent_connects_never_overshoot_a_keys_share(
    tmp_path: Path, clock: ManualClock
) -> None:
    for live in serve(tmp_path, clock, ofrep_max_streams=6, ofrep_max_streams_per_key=3):
        one, two = {"X-API-Key": new_key(live)}, {"X-API-Key": new_key(live, name="two")}
        statuses = connect_together(live, [one] * 12)
        assert sorted(statuses) == [200] * 3 + [503] * 9, "never more than the key's share"
        plain = httpx.Client(base_url=live.url)
        with ExitStack() as held:
            for _ in range(3):
                held.enter_context(EventStream(plain, EVENTS, one)).next()
            refused = plain.get(EVENTS, headers=one)
            assert (refused.status_code, refused.json()["code"]) == (503, "KEY_STREAMS_FULL")
            assert 5 <= int(refused.headers["retry-after"]) <= 7, "5 s, jittered"
            with EventStream(plain, EVENTS, two) as other:
                assert other.status == 200, "one key at its share leaves room for another"
        with EventStream(plain, EVENTS, one) as again:
            assert again.status == 200, "closed streams gave their slots back"


def test_streams_per_caller(tmp_path: Path, clock: ManualClock) -> None:
    for live in serve(tmp_path, clock, behind_proxy=True, ofrep_max_streams_per_caller=2):
        key = new_key(live)
        here = {"X-API-Key": key, "X-Forwarded-For": "10.0.0.1"}
        there = {"X-API-Key": key, "X-Forwarded-For": "10.0.0.2"}
        statuses = connect_together(live, [here] * 5 + [there])
        assert sorted(statuses[:5]) == [200] * 2 + [503] * 3 and statuses[5] == 200
        with EventStream(httpx.Client(base_url=live.url), EVENTS, here) as a:
            a.next()
            with EventStream(httpx.Client(base_url=live.url), EVENTS, here) as b:
                b.next()
                third = httpx.get(f"{live.url}{EVENTS}", headers=here)
        assert (third.status_code, third.json()["code"]) == (503, "CALLER_STREAMS_FULL")


def test_stream_tokens_expire_and_a_revalidation_renews_them(
    tmp_path: Path, clock: ManualClock
) -> None:
    for live in serve(tmp_path, clock, ofrep_stream_token_seconds=600):
        plain = httpx.Client(base_url=live.url)
        with live.client(token=new_key(live)) as app:
            first = bulk(app)
            url = stream_url(first)
            clock.advance(299)
            same = bulk(app, **{"If-None-Match": first.headers["etag"]})
            assert same.status_code == 304, "within the renewal period nothing changes"
            clock.advance(301)  # 600 s: the token's last second
            with EventStream(plain, url) as events:
                assert events.status == 200
            clock.advance(1)
            expired = plain.get(url)
            assert (expired.status_code, expired.json()["code"]) == (401, "STREAM_TOKEN_EXPIRED")
            assert "fetch the bulk evaluation again" in expired.json()["message"]
            renewed = bulk(app, **{"If-None-Match": first.headers["etag"]})
            assert renewed.status_code == 200, "a renewal changes the ETag: the app gets a 200"
            fresh = stream_url(renewed)
            assert fresh != url
            with EventStream(plain, fresh) as events:
                assert events.status == 200
                events.next()


def test_console_logins_are_limited_per_address(tmp_path: Path, clock: ManualClock) -> None:
    settings = {"behind_proxy": True, "console_login_attempts_per_minute": 3}
    for live in serve(tmp_path, clock, **settings):
        url = f"{live.url}/console/login"
        assert [login(url, "10.0.0.1").status_code for _ in range(3)] == [401] * 3
        refused = login(url, "10.0.0.1")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 20
        assert "Too many login attempts" in refused.text
        assert login(url, "10.0.0.2").status_code == 401, "another address is not held back"
        clock.advance(20)
        assert login(url, "10.0.0.1").status_code == 401, "one attempt back every 20 s"
        assert login(url, "10.0.0.1").status_code == 429


def login(url: str, address: str) -> httpx.Response:
    wrong = {"key": "rlo_admin_wrong"}
    return httpx.post(url, data=wrong, headers={"X-Forwarded-For": address})
