"""Request-body limits for every route that parses its body whole: size (413) and JSON depth (400).

Hand-written ASGI middleware: the size must be refused before the body is read (Content-Length,
then counting while it streams, chunked too) and the depth before any parser recurses; routes
that stream uploads are left to their own limits. The depth is measured by `jsondepth`, before
any parser runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelout.errors import BadRequest, PayloadTooLarge, ReeloutError
from reelout.jsondepth import too_deep, too_deep_message

_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})
_FORMS = (b"application/x-www-form-urlencoded", b"multipart/form-data")


@dataclass(frozen=True)
class Limit:
    """At most `max_bytes` (413 `code`, naming `setting`); `None` for a route with its own."""

    max_bytes: int
    setting: str
    code: str = "BODY_TOO_LARGE"


class BodyLimits:
    """ASGI middleware: the first rule whose path prefix matches a request decides its Limit
    (`None`: the route streams and checks its own); other requests take `default`."""

    def __init__(
        self,
        app: ASGIApp,
        default: Limit,
        max_depth: int,
        rules: Sequence[tuple[str, Limit | None]] = (),
    ) -> None:
        self.app, self.default, self.max_depth = app, default, max_depth
        self.rules = tuple(rules)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _NO_BODY:
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        if limit is None:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit.max_bytes:
            await _too_large(limit)(scope, receive, send)
            return
        try:
            body = await _read(receive, limit.max_bytes)
        except _Gone:  # the client went away mid-body: nobody to answer
            return
        if body is None:
            await _too_large(limit)(scope, receive, send)
            return
        content_type = headers.get(b"content-type", b"")
        if not content_type.startswith(_FORMS) and too_deep(body, self.max_depth):
            await _too_deep(self.max_depth)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _limit(self, scope: Scope) -> Limit | None:
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        for prefix, limit in self.rules:
            if path.startswith(prefix):
                return limit
        return self.default


class _Gone(Exception):
    """The client disconnected before its body was whole."""


async def _read(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it passes `limit` (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Gone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # after the body: wait for the disconnect, as ASGI says
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def error_response(exc: ReeloutError) -> JSONResponse:
    """A ReeloutError as the JSON answer every route gives (here: before any route runs)."""
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def _too_large(limit: Limit) -> JSONResponse:
    message = (
        f"the request body is over {limit.max_bytes} bytes ({limit.setting}); send a smaller one"
    )
    return error_response(
        PayloadTooLarge(message, code=limit.code, headers={"Connection": "close"})
    )


def _too_deep(max_depth: int) -> JSONResponse:
    return error_response(BadRequest(too_deep_message(max_depth), code="JSON_TOO_DEEP"))
