"""Retries: a reverse proxy in front of the live server fails chosen requests with 503."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from reelout.client import UploadResult, upload
from reelout.client.state import UrlStore
from tests.client.conftest import MakeSource, MiB, assert_stored
from tests.support.live import LiveServer, running
from tests.support.settings import ADMIN_TOKEN

CHUNK = 256 * 1024
HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "content-encoding"}
ServeProxy = Callable[["FlakyProxy"], str]


@dataclass
class FlakyProxy:
    """Forwards to `target`; the first `fail` requests with `method` get a 503 instead.

    `swallow` forwards those requests first and only then answers 503: the server did the
    work but the client never heard, like a reply lost on the network.
    """

    target: str
    method: str = "PATCH"
    fail: int = 2
    swallow: bool = False
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = await _body(receive)
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"]]
        self.seen.append((scope["method"], dict(headers)))
        failing = scope["method"] == self.method and self.fail > 0
        if failing and not self.swallow:
            self.fail -= 1
            await _reply(send, 503, [], b'{"code":"UNAVAILABLE","message":"try later"}')
            return
        resp = await self._forward(scope, headers, body)
        if failing:
            self.fail -= 1
            await _reply(send, 503, [], b'{"code":"UNAVAILABLE","message":"reply lost"}')
            return
        await _reply(send, resp.status_code, list(resp.headers.multi_items()), resp.content)

    async def _forward(
        self, scope: Scope, headers: list[tuple[str, str]], body: bytes
    ) -> httpx.Response:
        url = self.target + scope["raw_path"].decode()
        kept = [(k, v) for k, v in headers if k.lower() not in HOP_HEADERS]
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.request(scope["method"], url, headers=kept, content=body)

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.seen if m == method)


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _reply(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    raw = [(k.encode(), v.encode()) for k, v in headers if k.lower() not in HOP_HEADERS]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def serve_proxy() -> Iterator[ServeProxy]:
    """Runs a proxy on a loopback port with uvicorn; returns its base URL."""
    with contextlib.ExitStack() as servers:

        def start(app: FlakyProxy) -> str:
            return servers.enter_context(running(app, lifespan="off"))

        yield start


def send_via(url: str, path: Path, retries: int = 5) -> UploadResult:
    [res] = upload(
        [path], server=url, key=ADMIN_TOKEN, chunk_size=CHUNK, retries=retries, retry_delay=0.01
    )
    return res


@pytest.mark.parametrize(
    ("method", "swallow"), [("PATCH", False), ("PATCH", True), ("POST", False)]
)
def test_503_twice_then_success(
    live_server: LiveServer,
    make_source: MakeSource,
    state: Path,
    serve_proxy: ServeProxy,
    method: str,
    swallow: bool,
) -> None:
    src = make_source(size=MiB + 99)
    proxy = FlakyProxy(live_server.url, method, fail=2, swallow=swallow)
    res = send_via(serve_proxy(proxy), src.path)
    assert res.ok, res.error
    assert res.retries == 2
    assert_stored(live_server, res.video_uid, res.upload_url, src)
    chunks = -(-src.size // CHUNK)
    if method == "PATCH":
        # after each failure the offset is read again (HEAD) before the next PATCH
        assert proxy.count("HEAD") == 2
        assert proxy.count("PATCH") == chunks + (0 if swallow else 2)
        patches = [h for m, h in proxy.seen if m == "PATCH"]
        assert all(h["upload-checksum"].startswith("sha1 ") for h in patches)
        assert {int(h["content-length"]) for h in patches} == {CHUNK, src.size % CHUNK}
    else:
        assert proxy.count("POST") == 3


def test_a_server_that_keeps_failing_leaves_a_resumable_upload(
    live_server: LiveServer, make_source: MakeSource, state: Path, serve_proxy: ServeProxy
) -> None:
    src = make_source(size=MiB)
    proxy = FlakyProxy(live_server.url, "PATCH", fail=1000)
    res = send_via(serve_proxy(proxy), src.path, retries=3)
    assert not res.ok
    assert (res.status, res.retries) == (503, 3)
    assert "UNAVAILABLE" in (res.error or "")
    assert "run the same command again later to resume" in (res.hint or "")
    assert proxy.count("PATCH") == 4
    [stored] = UrlStore(state).items().values()
    assert stored == res.upload_url
