"""What every console page shares: the signed-in admin, the navigation, rendering, in-place errors.

Pages are server-rendered Jinja; actions are htmx requests that carry the page's CSRF token in
`X-CSRF-Token` and get an HTML fragment back. A `ReeloutError` raised by an action is shown in
words where the action was taken: the answer is retargeted (`HX-Retarget`) to the element
`#<id of the triggering element>-error`, which every action form provides.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import escape

from reelout import __version__
from reelout.auth.deps import session_principal
from reelout.auth.service import Principal
from reelout.auth.session_cookies import (
    COOKIE,
    CSRF_HEADER,
    ConsoleSession,
    SessionCodec,
    secure_cookie,
)
from reelout.config import Settings
from reelout.context import Signing
from reelout.deps import SigningDep
from reelout.errors import BadRequest, ReeloutError, Unauthorized
from reelout.jsondepth import too_deep, too_deep_message
from reelout.urls import base_url

PREFIX = "/console"
HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
templates = Jinja2Templates(directory=HERE / "templates")


@dataclass(frozen=True)
class Library:
    """A browser library the console loads from static/vendor (committed; `make web` refreshes it)."""

    package: str
    file: str
    purpose: str
    pages: Literal["upload", "every", "charts"]  # which pages load it


PAGE_KINDS = ("upload", "every", "charts")
LIBRARIES = (
    Library("tus-js-client", "tus.min.js", "resumable tus uploads", "upload"),
    Library("hls.js", "hls.min.js", "HLS playback with a rendition selector", "upload"),
    Library("htmx.org", "htmx.min.js", "the actions of every page", "every"),
    Library("uplot", "uPlot.iife.min.js", "charts", "charts"),
)


def libraries(vendor_dir: Path) -> tuple[list[Library], list[Library]]:
    """(installed, missing) browser libraries."""
    installed = [lib for lib in LIBRARIES if (vendor_dir / lib.file).is_file()]
    return installed, [lib for lib in LIBRARIES if lib not in installed]


@dataclass(frozen=True)
class NavItem:
    """One entry of the console's navigation (`section` marks the page that is open)."""

    section: str
    label: str
    path: str


@dataclass(frozen=True)
class Page:
    """A console page (or set of pages) in the navigation: its entry and its routes."""

    nav: NavItem
    router: APIRouter


@dataclass(frozen=True)
class Viewer:
    """The signed-in admin of a console request: their session (CSRF token) and their key."""

    session: ConsoleSession
    who: Principal

    @property
    def csrf(self) -> str:
        return self.session.csrf


class LoginRequired(Exception):
    """No valid console session: a page goes to the login form, an htmx action too."""


def codec(request: Request) -> SessionCodec:
    found: SessionCodec = request.app.state.console_sessions
    return found


def signed_in(request: Request, rt: Signing) -> Viewer | None:
    """The viewer of a valid session cookie, or None (no cookie, ended, expired, key revoked)."""
    session = codec(request).read(request.cookies.get(COOKIE))
    if session is None:
        return None
    try:
        return Viewer(session, session_principal(rt, session))
    except Unauthorized:
        return None


def page_viewer(request: Request, rt: SigningDep) -> Viewer:
    """Dependency of a page (GET): the signed-in admin, else off to the login form."""
    viewer = signed_in(request, rt)
    if viewer is None:
        raise LoginRequired
    return viewer


def action_viewer(request: Request, rt: SigningDep) -> Viewer:
    """Dependency of an action: the signed-in admin whose request carries the session's CSRF
    token in X-CSRF-Token (403 `CSRF_TOKEN_INVALID` otherwise)."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        raise LoginRequired
    session = codec(request).authorize(cookie, request.headers.get(CSRF_HEADER))
    return Viewer(session, session_principal(rt, session))


def refuse_deep_json(text: str, max_depth: int) -> None:
    """The depth limit for JSON sent in a form field (BodyLimits checks JSON bodies only):
    400 `JSON_TOO_DEEP` past REELOUT_JSON_MAX_DEPTH."""
    if too_deep(text.encode(), max_depth):
        raise BadRequest(too_deep_message(max_depth), code="JSON_TOO_DEEP")


def prompt_answer(request: Request) -> str | None:
    """What the person typed into an action's `hx-prompt` (htmx's `HX-Prompt` header), blank
    as None. A browser cannot send characters outside Latin-1 in a header, so htmx sends such an
    answer percent-encoded and says so in `HX-Prompt-URI-AutoEncoded`."""
    answer = request.headers.get("hx-prompt")
    if answer is None:
        return None
    if request.headers.get("hx-prompt-uri-autoencoded") == "true":
        answer = unquote(answer)
    return answer.strip() or None


PromptAnswer = Annotated[str | None, Depends(prompt_answer)]
PageViewer = Annotated[Viewer, Depends(page_viewer)]
ActionViewer = Annotated[Viewer, Depends(action_viewer)]


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def telemetry_config(rt: Signing, viewer: Viewer) -> dict[str, str] | None:
    """What a page's telemetry SDK needs to report as this admin: the console's own ingest path
    (session and CSRF header, no key) and the viewer, the admin key's id, which is also the
    targeting key of the console's flags. None when REELOUT_CONSOLE_TELEMETRY is off."""
    if not rt.settings.console_telemetry:
        return None
    return {
        "eventsPath": PREFIX + "/api/telemetry",
        "viewerId": viewer.who.key_id,
        "platform": "web",
        "appVersion": f"console-{__version__}",
    }


def page_headers(request: Request, settings: Settings) -> dict[str, str]:
    """No caching, a strict Content-Security-Policy (no inline script or style), no sniffing."""
    own = origin_of(base_url(request, settings))
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


def render(
    request: Request,
    rt: Signing,
    name: str,
    context: dict[str, Any],
    *,
    viewer: Viewer | None = None,
    section: str = "",
    status: int = 200,
) -> Response:
    """A page (its template with the layout's context: navigation, libraries, the viewer)."""
    installed, _ = libraries(request.app.state.console_vendor_dir)
    base: dict[str, Any] = {
        "version": __version__,
        "prefix": PREFIX,
        "nav": request.app.state.console_nav,
        "section": section,
        "libraries": {kind: [lib for lib in installed if lib.pages == kind] for kind in PAGE_KINDS},
    }
    if viewer is not None:
        base |= {"who": viewer.who, "csrf": viewer.csrf}
    headers = page_headers(request, rt.settings)
    return templates.TemplateResponse(
        request, name, base | context, status_code=status, headers=headers
    )


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def error_fragment(request: Request, exc: ReeloutError) -> HTMLResponse:
    """An API error in words, put where the action was taken."""
    body = f"<strong>{escape(exc.code)}</strong>: {escape(exc.message)}"
    headers = {"Cache-Control": "no-store"}
    trigger = request.headers.get("hx-trigger")
    if trigger:
        headers |= {"HX-Retarget": f"#{trigger}-error", "HX-Reswap": "innerHTML"}
    return HTMLResponse(body, status_code=exc.status, headers=headers)


def clear_cookie(response: Response, request: Request, settings: Settings) -> None:
    response.delete_cookie(
        COOKIE,
        path="/",
        secure=secure_cookie(base_url(request, settings)),
        httponly=True,
        samesite="strict",
    )


def _to_login(request: Request) -> Response:
    login = PREFIX + "/login"
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": login})
    response = RedirectResponse(login, status_code=303)
    if COOKIE in request.cookies:
        clear_cookie(response, request, request.app.state.runtime.settings)
    return response


class ConsoleRoute(APIRoute):
    """Console routes answer errors as people read them: a missing session goes to the login
    form; an error of an htmx action is a fragment in place, of a page a page that says it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handle(request)
            except LoginRequired:
                return _to_login(request)
            except ReeloutError as exc:
                if is_htmx(request):
                    return error_fragment(request, exc)
                rt = request.app.state.runtime
                return render(request, rt, "error.html", {"error": exc}, status=exc.status)

        return console_handler
