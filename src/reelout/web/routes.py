"""The console's pages under /console: log in with an admin key, upload, watch, play."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Form, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from reelout import __version__
from reelout.auth import service as auth_service
from reelout.auth.deps import session_principal
from reelout.auth.service import Principal
from reelout.auth.session_cookies import (
    COOKIE,
    CSRF_HEADER,
    ConsoleSession,
    SessionCodec,
    cookie_needs_https,
    csrf_matches,
    secure_cookie,
)
from reelout.config import Settings
from reelout.context import Signing
from reelout.deps import SigningDep
from reelout.errors import Forbidden, Unauthorized
from reelout.flags.serving.cache import serving_cache
from reelout.limits import public_limits
from reelout.media.schemas import Stage
from reelout.urls import base_url
from reelout.web.flags import upload_flags

PREFIX = "/console"
HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
UPLOAD_PATHS = {
    "flags": "As the flags say",
    "tus": "tus (resumable)",
    "direct": "direct binary",
    "legacy": "legacy base64 (deprecated)",
}

router = APIRouter(prefix=PREFIX, include_in_schema=False)
templates = Jinja2Templates(directory=HERE / "templates")


@dataclass(frozen=True)
class Library:
    """A browser library the console loads from static/vendor (committed; `make web` refreshes it)."""

    package: str
    file: str
    purpose: str


LIBRARIES = (
    Library("tus-js-client", "tus.min.js", "resumable tus uploads"),
    Library("hls.js", "hls.min.js", "HLS playback with a rendition selector"),
)


def install(app: FastAPI, rt: Signing) -> None:
    """Mount the console: its pages, its static files and the session codec the API reads."""
    settings = rt.settings
    app.state.console_sessions = SessionCodec(
        rt.secret, rt.clock, settings.console_session_seconds, rt.db
    )
    app.state.console_vendor_dir = VENDOR_DIR
    app.include_router(router)
    app.mount(PREFIX + "/static", StaticFiles(directory=STATIC_DIR), name="console-static")


def _codec(request: Request) -> SessionCodec:
    codec: SessionCodec = request.app.state.console_sessions
    return codec


def _session(request: Request) -> ConsoleSession | None:
    return _codec(request).read(request.cookies.get(COOKIE))


def _signed_in(request: Request, rt: Signing) -> tuple[ConsoleSession, Principal] | None:
    session = _session(request)
    if session is None:
        return None
    try:
        return session, session_principal(rt, session)
    except Unauthorized:
        return None


def libraries(vendor_dir: Path) -> tuple[list[Library], list[Library]]:
    """(installed, missing) browser libraries."""
    installed = [lib for lib in LIBRARIES if (vendor_dir / lib.file).is_file()]
    return installed, [lib for lib in LIBRARIES if lib not in installed]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def same_origin(request: Request, settings: Settings) -> bool:
    """False for a request a browser marks as coming from another site (login CSRF)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    return origin is None or origin == _origin(base_url(request, settings))


def _page_headers(request: Request, settings: Settings) -> dict[str, str]:
    own = _origin(base_url(request, settings))
    policy = (
        f"default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' {own} data: blob:; media-src 'self' {own} blob:; "
        f"connect-src 'self' {own}; worker-src 'self' blob:; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    return {
        "Cache-Control": "no-store",
        "Content-Security-Policy": policy,
        "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff",
    }


def _render(
    request: Request, rt: Signing, name: str, context: dict[str, Any], status: int = 200
) -> Response:
    context = {"version": __version__, "prefix": PREFIX, **context}
    headers = _page_headers(request, rt.settings)
    return templates.TemplateResponse(request, name, context, status_code=status, headers=headers)


def _login_page(
    request: Request, rt: Signing, error: str | None = None, status: int = 200
) -> Response:
    notice = "You are logged out." if request.query_params.get("out") else None
    needs_https = cookie_needs_https(base_url(request, rt.settings))
    context = {"error": error, "notice": notice, "needs_https": needs_https}
    return _render(request, rt, "login.html", context, status)


def _set_cookie(response: Response, request: Request, settings: Settings, value: str) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=settings.console_session_seconds,
        path="/",
        secure=secure_cookie(base_url(request, settings)),
        httponly=True,
        samesite="strict",
    )


def _clear_cookie(response: Response, request: Request, settings: Settings) -> None:
    response.delete_cookie(
        COOKIE,
        path="/",
        secure=secure_cookie(base_url(request, settings)),
        httponly=True,
        samesite="strict",
    )


@router.get("")
def console_page(request: Request, rt: SigningDep) -> Response:
    signed_in = _signed_in(request, rt)
    if signed_in is None:
        response: Response = RedirectResponse(PREFIX + "/login", status_code=303)
        if COOKIE in request.cookies:
            _clear_cookie(response, request, rt.settings)
        return response
    session, who = signed_in
    installed, missing = libraries(request.app.state.console_vendor_dir)
    context = {
        "csrf": session.csrf,
        "who": who,
        "stages": [stage.value for stage in Stage],
        "paths": UPLOAD_PATHS,
        "installed": installed,
        "missing": missing,
    }
    return _render(request, rt, "console.html", context)


@router.get("/login")
def login_form(request: Request, rt: SigningDep) -> Response:
    if _signed_in(request, rt) is not None:
        return RedirectResponse(PREFIX, status_code=303)
    return _login_page(request, rt)


@router.post("/login")
def login(request: Request, rt: SigningDep, key: Annotated[str, Form()] = "") -> Response:
    """Check the admin key; on success set the session cookie and go to the console."""
    if not same_origin(request, rt.settings):
        return _login_page(request, rt, "Refused: the login form was sent from another site.", 403)
    if (wait := public_limits(request.app.state).login_wait(request)) is not None:
        busy = f"Too many login attempts from this address; try again in {wait} s."
        refused = _login_page(request, rt, busy, 429)
        refused.headers["Retry-After"] = str(wait)  # REELOUT_CONSOLE_LOGIN_ATTEMPTS_PER_MINUTE
        return refused
    key = key.strip()
    if not key:
        return _login_page(request, rt, "Enter an admin key.", 400)
    try:
        with rt.db.read() as db:
            who = auth_service.authenticate(db, key)
    except Unauthorized:
        return _login_page(request, rt, "That key is unknown or revoked.", 401)
    if not who.is_admin:
        return _login_page(
            request, rt, "That is a client key; the console needs an admin key.", 403
        )
    value, _ = _codec(request).issue(who.key_id)
    response = RedirectResponse(PREFIX, status_code=303)
    _set_cookie(response, request, rt.settings, value)
    return response


@router.post("/logout")
def logout(request: Request, rt: SigningDep, csrf: Annotated[str, Form()] = "") -> Response:
    """End the session for good, in every process (the form carries the page's CSRF token, so
    no other site can)."""
    session = _session(request)
    if session is not None and not csrf_matches(session, csrf):
        raise Forbidden("the logout form's CSRF token does not match", code="CSRF_TOKEN_INVALID")
    if session is not None:
        _codec(request).end(session)
    response = RedirectResponse(PREFIX + "/login?out=1", status_code=303)
    _clear_cookie(response, request, rt.settings)
    return response


def _api_key_id(request: Request, rt: Signing) -> str:
    """The admin key id of a console API call: session cookie plus its X-CSRF-Token header."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        raise Unauthorized(
            "this call takes the console session: log in at /console/login first",
            code="SESSION_REQUIRED",
        )
    session = _codec(request).authorize(cookie, request.headers.get(CSRF_HEADER))
    return session_principal(rt, session).key_id


@router.get("/api/flags")
def console_flags(request: Request, rt: SigningDep) -> JSONResponse:
    """The signed-in admin's upload flags in REELOUT_CONSOLE_FLAGS_ENVIRONMENT (read per upload)."""
    key_id = _api_key_id(request, rt)
    with rt.db.read() as session:
        served = serving_cache(request.app.state).load(
            session, rt.settings.console_flags_environment
        )
    body = upload_flags(served, key_id, rt.clock.now().timestamp())
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
