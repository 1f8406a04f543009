"""The console under /console: log in with an admin key, the upload page, and mounting every page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Form, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from reelout.auth import service as auth_service
from reelout.auth.deps import session_principal
from reelout.auth.session_cookies import (
    COOKIE,
    CSRF_HEADER,
    SessionCodec,
    cookie_needs_https,
    csrf_matches,
    secure_cookie,
)
from reelout.config import Settings
from reelout.context import Signing
from reelout.deps import SigningDep
from reelout.errors import Forbidden, NotFound, Unauthorized
from reelout.flags.serving.cache import serving_cache
from reelout.limits import public_limits
from reelout.media.schemas import Stage
from reelout.telemetry import service as telemetry
from reelout.telemetry.batches import items
from reelout.urls import base_url
from reelout.web import (
    alerts_page,
    audit_page,
    flag_history,
    flag_pages,
    keys_page,
    kpi_page,
    rollout_pages,
    rollout_report,
    sdk,
    video_pages,
    webhooks_page,
)
from reelout.web.flags import upload_flags
from reelout.web.pages import (
    PREFIX,
    STATIC_DIR,
    VENDOR_DIR,
    ConsoleRoute,
    NavItem,
    Page,
    PageViewer,
    clear_cookie,
    codec,
    libraries,
    origin_of,
    render,
    signed_in,
    telemetry_config,
)

UPLOAD_PATHS = {
    "flags": "As the flags say",
    "tus": "tus (resumable)",
    "direct": "direct binary",
    "legacy": "legacy base64 (deprecated)",
}

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)
# JSON for the pages' scripts: errors as the API gives them (status, code, message)
api_router = APIRouter(prefix=PREFIX + "/api", include_in_schema=False)


# The navigation's order; the KPI, alert and rollout pages join here.
PAGES = (
    Page(NavItem("upload", "Upload", ""), router),
    Page(NavItem("videos", "Videos", "/videos"), video_pages.router),
    Page(NavItem("flags", "Flags", "/flags"), flag_pages.router),
    Page(NavItem("kpis", "KPIs", "/kpis"), kpi_page.router),
    Page(NavItem("alerts", "Alerts", "/alerts"), alerts_page.router),
    Page(NavItem("rollouts", "Rollouts", "/rollouts"), rollout_pages.router),
    Page(NavItem("keys", "Keys", "/keys"), keys_page.router),
    Page(NavItem("webhooks", "Webhooks", "/webhooks"), webhooks_page.router),
    Page(NavItem("audit", "Audit", "/audit"), audit_page.router),
)


def install(app: FastAPI, rt: Signing) -> None:
    """Mount the console: its pages, its static files and the session codec the API reads."""
    settings = rt.settings
    app.state.console_sessions = SessionCodec(
        rt.secret, rt.clock, settings.console_session_seconds, rt.db
    )
    app.state.console_vendor_dir = VENDOR_DIR
    app.state.console_nav = tuple(page.nav for page in PAGES)
    app.include_router(flag_history.router)  # the flags tabs (no nav entry); before any {key}
    app.include_router(rollout_report.router)  # a rollout's report (no nav entry)
    for page in PAGES:
        app.include_router(page.router)
    app.include_router(api_router)
    app.include_router(sdk.router)  # /sdk/telemetry.js, for any page of any origin
    app.mount(PREFIX + "/static", StaticFiles(directory=STATIC_DIR), name="console-static")


def same_origin(request: Request, settings: Settings) -> bool:
    """False for a request a browser marks as coming from another site (login CSRF)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    return origin is None or origin == origin_of(base_url(request, settings))


def _login_page(
    request: Request, rt: Signing, error: str | None = None, status: int = 200
) -> Response:
    notice = "You are logged out." if request.query_params.get("out") else None
    needs_https = cookie_needs_https(base_url(request, rt.settings))
    context = {"error": error, "notice": notice, "needs_https": needs_https}
    return render(request, rt, "login.html", context, status=status)


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


@router.get("")
def console_page(request: Request, rt: SigningDep, viewer: PageViewer) -> Response:
    """The upload page: upload by any path, watch processing, play the result."""
    installed, missing = libraries(request.app.state.console_vendor_dir)
    context = {
        "stages": [stage.value for stage in Stage],
        "paths": UPLOAD_PATHS,
        "installed": [lib for lib in installed if lib.pages == "upload"],
        "missing": missing,
        "telemetry": telemetry_config(rt, viewer),
    }
    return render(request, rt, "console.html", context, viewer=viewer, section="upload")


@router.get("/login")
def login_form(request: Request, rt: SigningDep) -> Response:
    if signed_in(request, rt) is not None:
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
    value, _ = codec(request).issue(who.key_id)
    response = RedirectResponse(PREFIX, status_code=303)
    _set_cookie(response, request, rt.settings, value)
    return response


@router.post("/logout")
def logout(request: Request, rt: SigningDep, csrf: Annotated[str, Form()] = "") -> Response:
    """End the session for good, in every process (the form carries the page's CSRF token, so
    no other site can)."""
    session = codec(request).read(request.cookies.get(COOKIE))
    if session is not None and not csrf_matches(session, csrf):
        raise Forbidden("the logout form's CSRF token does not match", code="CSRF_TOKEN_INVALID")
    if session is not None:
        codec(request).end(session)
    response = RedirectResponse(PREFIX + "/login?out=1", status_code=303)
    clear_cookie(response, request, rt.settings)
    return response


def _api_key_id(request: Request, rt: Signing) -> str:
    """The admin key id of a console API call: session cookie plus its X-CSRF-Token header."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        raise Unauthorized(
            "this call takes the console session: log in at /console/login first",
            code="SESSION_REQUIRED",
        )
    session = codec(request).authorize(cookie, request.headers.get(CSRF_HEADER))
    return session_principal(rt, session).key_id


@api_router.get("/flags")
def console_flags(request: Request, rt: SigningDep) -> JSONResponse:
    """The signed-in admin's upload flags in REELOUT_CONSOLE_FLAGS_ENVIRONMENT (read per upload)."""
    key_id = _api_key_id(request, rt)
    with rt.db.read() as session:
        served = serving_cache(request.app.state).load(
            session, rt.settings.console_flags_environment
        )
    body = upload_flags(served, key_id, rt.clock.now().timestamp())
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@api_router.post("/telemetry")
async def console_telemetry(request: Request, rt: SigningDep) -> JSONResponse:
    """The console's own events (its uploads and its player, through /sdk/telemetry.js): the
    admin's session and CSRF header stand for a client key; the events go to
    REELOUT_CONSOLE_FLAGS_ENVIRONMENT through the same checks and store as the ingest."""
    await run_in_threadpool(_api_key_id, request, rt)
    settings = rt.settings
    if not settings.console_telemetry:
        raise NotFound(
            "the console reports no telemetry here (REELOUT_CONSOLE_TELEMETRY=false)",
            code="CONSOLE_TELEMETRY_OFF",
        )
    batch = items(await request.body(), ndjson=False)
    environment = settings.console_flags_environment
    outcome = await run_in_threadpool(telemetry.ingest, rt, environment, batch)
    return JSONResponse(outcome.body())
