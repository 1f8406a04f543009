"""A real HTTP hop in front of a server that answers 500 to the requests a test names, as a
struggling server or load balancer would, and forwards every other request as it came (its Host
too, so the links the server makes point back through the hop)."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


@dataclass
class Failure:
    """Answer 500 to the next `times` requests of `method` whose path starts with `prefix`."""

    method: str
    prefix: str
    times: int


@dataclass(frozen=True)
class Seen:
    """A request as the proxy got it, and the status it answered."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    status: int


@dataclass
class FlakyProxy:
    """An ASGI app: run it with `tests.support.live.running(proxy)`."""

    upstream: str
    failures: list[Failure] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def fail(self, method: str, prefix: str, times: int) -> None:
        self.failures.append(Failure(method, prefix, times))

    def recover(self) -> None:
        self.failures.clear()

    def statuses(self, method: str, prefix: str) -> list[int]:
        return [r.status for r in self.requests(method, prefix)]

    def requests(self, method: str, prefix: str) -> list[Seen]:
        return [r for r in self.seen if r.method == method and r.path.startswith(prefix)]

    def _failing(self, request: Request) -> bool:
        for failure in self.failures:
            matches = request.method == failure.method
            if matches and request.url.path.startswith(failure.prefix) and failure.times > 0:
                failure.times -= 1
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        if self._failing(request):
            reply: Response = JSONResponse(
                {"code": "UPSTREAM_DOWN", "message": "the test's proxy fails this request"},
                status_code=500,
                headers={"Access-Control-Allow-Origin": request.headers.get("origin", "*")},
            )
        else:
            reply = await self._forward(request, body)
        path, query, headers = request.url.path, request.url.query, dict(request.headers)
        self.seen.append(Seen(request.method, path, query, headers, reply.status_code))
        await reply(scope, receive, send)

    async def _forward(self, request: Request, body: bytes) -> Response:
        headers = {
            name: value
            for name, value in request.headers.items()
            if name not in HOP_BY_HOP and name != "accept-encoding"
        }
        url = (
            self.upstream
            + request.url.path
            + (f"?{request.url.query}" if request.url.query else "")
        )
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.request(request.method, url, headers=headers, content=body)
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
        return Response(answer.content, status_code=answer.status_code, headers=kept)
