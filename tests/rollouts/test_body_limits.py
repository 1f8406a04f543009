"""A rollout's plan body is capped by REELOUT_JSON_MAX_BYTES on every way in (POST
/api/v1/rollouts, its from-template, the console's two create forms): a body of exactly the
limit reaches the plan's validation (and is created), one byte more is 413 BODY_TOO_LARGE and
nothing is stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import urlencode

import httpx
import pytest

from tests.rollouts.conftest import API, ENV, FLAG, FLAGS, PLAN
from tests.support.live import LiveServer, StartLive
from tests.web.test_login import login

JSON_MAX = 4 * 1024  # the tests' REELOUT_JSON_MAX_BYTES
YAML_PLAN = "\n".join(
    [f"flag: {FLAG}", f"environment: {ENV}", 'treatment: "on"', 'control: {variation: "off"}',
     "stages:", "  - {percent: 10, min_duration: 2h}", "  - {percent: 50, min_duration: 1d}",
     "  - {percent: 100, min_duration: 1d, monitor_only: true}",
     "guardrails:", "  - {metric: error_rate, role: guardrail, vs_control: {margin_abs: 0.0}}",
     "# "]
)  # fmt: skip
TEMPLATE = {"flag": FLAG, "environment": ENV, "treatment": "on", "control": "off"}
Send = Callable[[int], httpx.Response]  # a request whose body is exactly that many bytes


@pytest.fixture
def server(live_servers: StartLive) -> LiveServer:
    live = live_servers(seed_flags=False, json_max_bytes=JSON_MAX)
    with live.client() as admin:
        reply = admin.put("/api/v1/environments/production/flagset", json=FLAGS)
        assert reply.status_code in (200, 201), reply.text
    return live


def padded(size: int, body: str, pad: str) -> bytes:
    """`body` followed by `pad` repeated to make exactly `size` bytes (`pad` is one byte as
    sent)."""
    raw = body.encode()
    assert len(raw) <= size, "the limit leaves room for the body itself"
    return raw + pad.encode() * (size - len(raw))


def form(size: int, fields: dict[str, str], padded_field: str) -> bytes:
    """A form of exactly `size` bytes, `padded_field` lengthened by `x`s (one byte encoded)."""
    bare = urlencode(fields).encode()
    grown = dict(fields, **{padded_field: fields[padded_field] + "x" * (size - len(bare))})
    encoded = urlencode(grown).encode()
    assert len(encoded) == size
    return encoded


def stored(api: httpx.Client) -> list[int]:
    reply = api.get(API)
    assert reply.status_code == 200, reply.text
    return [rollout["id"] for rollout in reply.json()["rollouts"]]


def both_sides(api: httpx.Client, send: Send, created: Callable[[httpx.Response], int]) -> None:
    """Over the limit: 413 naming the setting, nothing stored; at the limit: created (then
    aborted, so the flag is free again)."""
    over = send(JSON_MAX + 1)
    assert (over.status_code, over.json()["code"]) == (413, "BODY_TOO_LARGE"), over.text
    assert "REELOUT_JSON_MAX_BYTES" in over.json()["message"]
    assert stored(api) == []
    rollout = created(send(JSON_MAX))
    assert stored(api) == [rollout]
    aborted = api.post(f"{API}/{rollout}/abort")
    assert aborted.status_code == 200, aborted.text


def api_created(reply: httpx.Response) -> int:
    assert reply.status_code == 201, reply.text
    rollout: int = reply.json()["id"]
    return rollout


@pytest.mark.parametrize("kind", ["yaml", "json"])
def test_a_plan_at_the_limit_is_read_and_one_byte_more_is_413(
    server: LiveServer, kind: str
) -> None:
    body, pad = (YAML_PLAN, "x") if kind == "yaml" else (json.dumps(PLAN), " ")
    content_type = f"application/{kind}"
    with server.client() as api:
        send: Send = lambda size: api.post(  # noqa: E731
            API, content=padded(size, body, pad), headers={"Content-Type": content_type}
        )
        both_sides(api, send, api_created)
        invalid = api.post(  # at the limit the plan is validated as any other
            API, content=padded(JSON_MAX, body.replace("error_rate", "nope"), pad),
            headers={"Content-Type": content_type},
        )  # fmt: skip
        assert (invalid.status_code, invalid.json()["code"]) == (400, "INVALID_PLAN")


def test_the_template_body_is_capped_too(server: LiveServer) -> None:
    with server.client() as api:
        send: Send = lambda size: api.post(  # noqa: E731
            f"{API}/from-template", content=padded(size, json.dumps(TEMPLATE), " "),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        both_sides(api, send, api_created)


@pytest.mark.parametrize(
    ("path", "fields", "padded_field"),
    [
        ("/console/rollouts/from-plan", {"plan": YAML_PLAN}, "plan"),
        ("/console/rollouts/from-template", {**TEMPLATE, "pad": ""}, "pad"),
    ],
)
def test_the_consoles_create_forms_are_capped_too(
    server: LiveServer, path: str, fields: dict[str, str], padded_field: str
) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as web, server.client() as api:
        cookie, csrf = login(web)
        headers = {**cookie, "X-CSRF-Token": csrf, "HX-Request": "true",
                   "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
        send: Send = lambda size: web.post(  # noqa: E731
            path, content=form(size, fields, padded_field), headers=headers
        )

        def created(reply: httpx.Response) -> int:
            assert reply.status_code == 204, reply.text
            return int(reply.headers["hx-redirect"].rsplit("/", 1)[1])

        both_sides(api, send, created)
