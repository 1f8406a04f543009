"""Request-body limits on every JSON route: size (413, refused before the body is read) and
nesting depth (400), with the uploads and the flag admin keeping their own, larger limits."""

from __future__ import annotations

import base64
import json
import socket
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout.jsondepth import too_deep
from tests.support.live import LiveServer, live_server_fixture

KiB = 1024
JSON_MAX = 4 * KiB  # the tests' REELOUT_JSON_MAX_BYTES
DEPTH = 16  # the tests' REELOUT_JSON_MAX_DEPTH


def nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:'),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=30,
)


@given(json_values, st.integers(0, 8))
def test_the_depth_scan_agrees_with_the_parsed_document(value: Any, limit: int) -> None:
    raw = json.dumps(value).encode()
    assert too_deep(raw, limit) == (depth_of(value) > limit)


def test_brackets_inside_strings_do_not_count() -> None:
    raw = json.dumps({"text": "[[[[{{{{" * 50, "escaped": '\\"[[[['}).encode()
    assert not too_deep(raw, 2)
    assert too_deep(json.dumps(nested(3)).encode(), 2)


server = live_server_fixture(
    json_max_bytes=JSON_MAX, json_max_depth=DEPTH, flag_set_max_bytes=64 * KiB
)


@pytest.fixture
def app_key(server: LiveServer) -> str:
    with server.client() as admin:
        body = {"scope": "client", "environment": "production", "name": "app"}
        key: str = admin.post("/api/v1/keys", json=body).json()["key"]
        return key


def padded(size: int) -> bytes:
    """An OFREP body of exactly `size` bytes."""
    empty = json.dumps({"context": {"targetingKey": "u", "pad": ""}}).encode()
    return json.dumps({"context": {"targetingKey": "u", "pad": "x" * (size - len(empty))}}).encode()


def test_ofrep_bodies_up_to_the_limit_pass_and_larger_get_413(
    server: LiveServer, app_key: str
) -> None:
    with server.client(token=app_key) as app:
        for path in ("/ofrep/v1/evaluate/flags", "/ofrep/v1/evaluate/flags/nope"):
            at_limit = app.post(path, content=padded(JSON_MAX))
            assert at_limit.status_code in (200, 404), at_limit.text
            over = app.post(path, content=padded(JSON_MAX + 1))
            assert (over.status_code, over.json()["code"]) == (413, "BODY_TOO_LARGE")
            assert "REELOUT_JSON_MAX_BYTES" in over.json()["message"]


def raw_request(server: LiveServer, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send a request's head (and some of its body) on a socket, then read the answer."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            part = sock.recv(65536)
            if not part:
                break
            answer += part
    return int(answer.split(b" ", 2)[1]), answer


def test_a_declared_length_over_the_limit_is_refused_before_any_body(
    server: LiveServer, app_key: str
) -> None:
    head = (
        "POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {app_key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {50 * 1024 * 1024}\r\n\r\n"
    )
    status, answer = raw_request(server, head)  # not one byte of the 50 MB is sent
    assert status == 413 and b"BODY_TOO_LARGE" in answer


def test_a_chunked_body_is_refused_once_it_passes_the_limit(
    server: LiveServer, app_key: str
) -> None:
    head = (
        "POST /api/v1/exposures HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {app_key}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"[" * (2 * 1024 * 1024)  # past the exposures' limit; the body never ends
    status, answer = raw_request(server, head, b"%x\r\n" % len(chunk) + chunk + b"\r\n")
    assert status == 413 and b"EXPOSURE_BATCH_TOO_LARGE" in answer


@pytest.mark.parametrize("depth", [DEPTH, DEPTH + 1, 2000])  # 2000: past Python's recursion
def test_deep_json_gets_400_on_every_json_route(
    server: LiveServer, app_key: str, depth: int
) -> None:
    routes = [
        (app_key, "/ofrep/v1/evaluate/flags", json.dumps({"context": {"deep": "@"}})),
        (app_key, "/ofrep/v1/evaluate/flags/x", json.dumps({"context": {"deep": "@"}})),
        (app_key, "/api/v1/exposures", json.dumps({"exposures": ["@"]})),
        (None, "/api/v1/keys", json.dumps({"scope": "client", "name": "@"})),
        (None, "/api/v1/webhooks", json.dumps({"url": "http://h.example", "events": ["@"]})),
        (None, "/api/v1/environments/production/flagset", json.dumps({"flags": "@"})),
        (None, "/api/v1/orders/A-1/inbound/videos", json.dumps({"file_base64": "QUJD", "x": "@"})),
    ]
    for token, path, template in routes:
        inner = depth - depth_of(json.loads(template.replace('"@"', "1")))  # the whole: `depth`
        document = "[" * inner + "]" * inner if depth > 1000 else json.dumps(nested(inner))
        body = template.replace('"@"', document).encode()
        with server.client(**({"token": token} if token else {})) as client:
            method = "PUT" if path.endswith("flagset") else "POST"
            json_body = {"Content-Type": "application/json"}
            reply = client.request(method, path, content=body, headers=json_body)
        if depth > DEPTH:
            assert reply.status_code == 400, (path, reply.text)
            assert reply.json()["code"] == "JSON_TOO_DEEP"
        else:
            assert reply.status_code < 500, (path, reply.text)
            assert reply.json().get("code") != "JSON_TOO_DEEP"


def test_routes_with_their_own_limits_keep_them(server: LiveServer) -> None:
    flags = {
        "flags": {
            f"flag_{n}": {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on"}
            for n in range(200)
        }
    }
    assert len(json.dumps(flags)) > JSON_MAX
    with server.client() as admin:
        put = admin.put("/api/v1/environments/production/flagset", json=flags)
        assert put.status_code in (200, 201), "a flag set takes REELOUT_FLAG_SET_MAX_BYTES"
        huge = {"flags": {"x": {"state": "ENABLED", "variants": {"on": "y" * 70 * KiB}}}}
        over = admin.put("/api/v1/environments/production/flagset", json=huge)
        assert (over.status_code, over.json()["code"]) == (413, "FLAG_SET_TOO_LARGE")
        small_route = admin.post("/api/v1/keys", json={"scope": "client", "name": "y" * JSON_MAX})
        assert (small_route.status_code, small_route.json()["code"]) == (413, "BODY_TOO_LARGE")
        legacy = admin.post(
            "/api/v1/orders/A-1/inbound/videos",
            json={"filename": "old.mp4", "file_base64": base64.b64encode(b"v" * 50 * KiB).decode()},
        )
        assert legacy.status_code == 201, "the legacy path streams under its own limit"
        tus = admin.post(
            "/files/",
            headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(10 * KiB),
                     "Content-Type": "application/offset+octet-stream"},
            content=b"z" * 10 * KiB,
        )  # fmt: skip
        assert tus.status_code == 201, tus.text


def test_the_console_login_form_is_capped_too(server: LiveServer) -> None:
    over = httpx.post(f"{server.url}/console/login", data={"key": "k" * JSON_MAX})
    assert (over.status_code, over.json()["code"]) == (413, "BODY_TOO_LARGE")
