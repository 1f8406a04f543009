"""The browser SDK at /sdk/telemetry.js: an ES module any origin may import (CORS), revalidated
by its ETag, served from the package (static/sdk/), so a wheel carries it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response

from reelout.web.pages import STATIC_DIR

PREFIX = "/sdk"
SDK_DIR = STATIC_DIR / "sdk"
MAX_AGE_SECONDS = 300  # how long a browser uses its copy before asking again (an upgrade shows)

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@dataclass(frozen=True)
class Module:
    """A module's bytes and their strong ETag."""

    body: bytes
    etag: str


@cache
def load(path: Path) -> Module:
    """Read once per process: the package's files do not change while it runs."""
    body = path.read_bytes()
    return Module(body, f'"{hashlib.sha256(body).hexdigest()[:32]}"')


def headers(module: Module) -> dict[str, str]:
    """A JavaScript MIME type (RFC 9239), cacheable by anyone, importable from any origin: the
    module is public code; the ingest it talks to keeps its own CORS and key."""
    return {
        "Content-Type": "text/javascript; charset=utf-8",
        "Cache-Control": f"public, max-age={MAX_AGE_SECONDS}",
        "ETag": module.etag,
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "ETag",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: `*`, or one of the listed tags (weak comparison)."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


@router.api_route("/telemetry.js", methods=["GET", "HEAD"], summary="The browser telemetry SDK")
def telemetry_module(request: Request) -> Response:
    module = load(SDK_DIR / "telemetry.js")
    if matches(request.headers.get("if-none-match"), module.etag):
        unchanged = {
            name: value for name, value in headers(module).items() if name != "Content-Type"
        }
        return Response(status_code=304, headers=unchanged)
    body = b"" if request.method == "HEAD" else module.body
    reply = Response(body, headers=headers(module))
    reply.headers["Content-Length"] = str(len(module.body))
    return reply
