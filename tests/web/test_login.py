"""Console login, the session cookie, CSRF on the JSON API, logout, and the session secret."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reelout.app import create_app
from reelout.auth.secret import SecretKeyError
from reelout.auth.session_cookies import COOKIE
from reelout.clock import ManualClock
from reelout.config import Settings
from tests.support.live import LiveServer, live_server_fixture, serving
from tests.support.settings import ADMIN_TOKEN, make_settings

ORDERS = "/api/v1/orders/CS-1/inbound/videos"
SECRET_S = "Zr4kV9pWq2NcX7bLm3TfHy8JdGs6Ea5U"
SECRET_T = "Pw8bT3nKz6QrY2mVx9LcJf4HgDs7Ua5E"


server = live_server_fixture(scope="module", folder="login")


@pytest.fixture
def web(server: LiveServer) -> Iterator[httpx.Client]:
    """A client with no key and no cookie jar: every cookie is sent by hand."""
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as client:
        yield client


def session_cookie(reply: httpx.Response) -> str:
    header = reply.headers.get("set-cookie", "")
    match = re.match(rf"{COOKIE}=([^;]*)", header)
    assert match, f"no session cookie in {header!r}"
    return match.group(1)


def csrf_of(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(web: httpx.Client, key: str = ADMIN_TOKEN) -> tuple[dict[str, str], str]:
    """Log in through the form: (the Cookie header to send, the page's CSRF token)."""
    reply = web.post("/console/login", data={"key": key})
    assert reply.status_code == 303, reply.text
    cookie = {"Cookie": f"{COOKIE}={session_cookie(reply)}"}
    page = web.get("/console", headers=cookie)
    assert page.status_code == 200
    return cookie, csrf_of(page.text)


def new_key(server: LiveServer, scope: str) -> tuple[str, str]:
    body = {"scope": scope, "name": f"{scope}-console-test"}
    if scope == "client":
        body["environment"] = "production"
    with server.client() as api:
        reply = api.post("/api/v1/keys", json=body)
    assert reply.status_code == 201, reply.text
    return reply.json()["id"], reply.json()["key"]


def test_console_sends_a_visitor_without_session_to_the_login_form(web: httpx.Client) -> None:
    reply = web.get("/console")
    assert reply.status_code == 303
    assert reply.headers["location"] == "/console/login"
    form = web.get("/console/login")
    assert form.status_code == 200
    assert 'name="key"' in form.text and 'type="password"' in form.text
    assert form.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in form.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("key", "status", "message"),
    [
        ("rlo_admin_wrong-" + "y" * 32, 401, "That key is unknown or revoked."),
        ("   ", 400, "Enter an admin key."),
    ],
)
def test_a_bad_key_gets_a_clear_error_and_no_session(
    web: httpx.Client, key: str, status: int, message: str
) -> None:
    reply = web.post("/console/login", data={"key": key})
    assert reply.status_code == status
    assert message in reply.text
    assert 'id="login-error"' in reply.text
    assert "set-cookie" not in reply.headers


def test_a_client_key_cannot_open_the_console(web: httpx.Client, server: LiveServer) -> None:
    _, key = new_key(server, "client")
    reply = web.post("/console/login", data={"key": key})
    assert reply.status_code == 403
    assert "the console needs an admin key" in reply.text
    assert "set-cookie" not in reply.headers


def test_login_sets_a_signed_http_only_same_site_strict_cookie(web: httpx.Client) -> None:
    reply = web.post("/console/login", data={"key": ADMIN_TOKEN})
    assert reply.status_code == 303
    assert reply.headers["location"] == "/console"
    attributes = [part.strip().lower() for part in reply.headers["set-cookie"].split(";")]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "path=/" in attributes
    assert "secure" not in attributes  # plain http: a Secure cookie would never come back
    assert f"max-age={12 * 3600}" in attributes
    assert ADMIN_TOKEN not in reply.headers["set-cookie"]
    page = web.get("/console", headers={"Cookie": f"{COOKIE}={session_cookie(reply)}"})
    assert "Signed in with <strong>bootstrap</strong>" in page.text
    assert len(csrf_of(page.text)) >= 32


def test_the_cookie_is_secure_over_https(tmp_path: Path) -> None:
    with serving(make_settings(tmp_path, behind_proxy=True)) as live:
        headers = {"X-Forwarded-Proto": "https", "Origin": "https" + live.url[4:]}
        reply = httpx.post(live.url + "/console/login", data={"key": ADMIN_TOKEN}, headers=headers)
    assert reply.status_code == 303
    assert "secure" in [p.strip().lower() for p in reply.headers["set-cookie"].split(";")]


@pytest.mark.parametrize(
    "headers", [{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}]
)
def test_a_login_form_posted_from_another_site_is_refused(
    web: httpx.Client, headers: dict[str, str]
) -> None:
    reply = web.post("/console/login", data={"key": ADMIN_TOKEN}, headers=headers)
    assert reply.status_code == 403
    assert "sent from another site" in reply.text
    assert "set-cookie" not in reply.headers


def test_the_same_origin_login_form_is_accepted(web: httpx.Client, server: LiveServer) -> None:
    headers = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
    reply = web.post("/console/login", data={"key": ADMIN_TOKEN}, headers=headers)
    assert reply.status_code == 303


def test_the_api_accepts_the_session_only_with_its_csrf_header(web: httpx.Client) -> None:
    cookie, csrf = login(web)
    assert web.get(ORDERS, headers={**cookie, "X-CSRF-Token": csrf}).status_code == 200
    created = web.post(ORDERS, json={"upload": "tus"}, headers={**cookie, "X-CSRF-Token": csrf})
    assert created.status_code == 201, created.text
    assert created.json()["upload"]["token"].startswith("rlo_upload_")

    missing = web.get(ORDERS, headers=cookie)
    assert missing.status_code == 403
    assert missing.json()["code"] == "CSRF_TOKEN_MISSING"
    wrong = web.get(ORDERS, headers={**cookie, "X-CSRF-Token": csrf[:-2] + "xx"})
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "CSRF_TOKEN_INVALID"


def test_a_cross_site_form_post_with_only_the_cookie_is_refused_and_changes_nothing(
    web: httpx.Client,
) -> None:
    cookie, csrf = login(web)
    before = web.get(ORDERS, headers={**cookie, "X-CSRF-Token": csrf}).json()["videos"]
    forged = web.post(
        ORDERS,
        content=b'{"filename": "x.mp4", "file_base64": "AAAA"}',
        headers={
            **cookie,
            "Content-Type": "application/json",
            "Origin": "http://evil.example",
            "Sec-Fetch-Site": "cross-site",
        },
    )
    assert forged.status_code == 403
    assert forged.json()["code"] == "CSRF_TOKEN_MISSING"
    form = web.post(ORDERS, data={"upload": "tus"}, headers=cookie)
    assert form.status_code == 403
    after = web.get(ORDERS, headers={**cookie, "X-CSRF-Token": csrf}).json()["videos"]
    assert after == before


def test_a_forged_or_missing_session_is_not_an_admin(web: httpx.Client) -> None:
    forged = web.get(ORDERS, headers={"Cookie": f"{COOKIE}=eyJrIjoiMSJ9.x.y", "X-CSRF-Token": "a"})
    assert forged.status_code == 401
    assert forged.json()["code"] == "SESSION_EXPIRED"
    assert web.get(ORDERS).json()["code"] == "MISSING_KEY"
    assert web.get("/console", headers={"Cookie": f"{COOKIE}=forged"}).status_code == 303


def test_bearer_keys_work_as_before_next_to_a_session(web: httpx.Client) -> None:
    cookie, _ = login(web)
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert web.get(ORDERS, headers=bearer).status_code == 200
    assert web.get(ORDERS, headers={**bearer, **cookie}).status_code == 200
    wrong = {"Authorization": "Bearer rlo_admin_nope"}
    assert web.get(ORDERS, headers={**wrong, **cookie}).json()["code"] == "INVALID_KEY"


def test_logout_clears_the_session(web: httpx.Client) -> None:
    cookie, csrf = login(web)
    refused = web.post("/console/logout", data={"csrf": "not-it"}, headers=cookie)
    assert refused.status_code == 403  # a page that says why, in words
    assert "CSRF_TOKEN_INVALID" in refused.text and "text/html" in refused.headers["content-type"]

    reply = web.post("/console/logout", data={"csrf": csrf}, headers=cookie)
    assert reply.status_code == 303
    assert reply.headers["location"] == "/console/login?out=1"
    cleared = reply.headers["set-cookie"].lower()
    assert cleared.startswith(f'{COOKIE}="";') and "max-age=0" in cleared
    page = web.get(reply.headers["location"])
    assert "You are logged out." in page.text


def test_revoking_the_key_ends_its_sessions(web: httpx.Client, server: LiveServer) -> None:
    key_id, key = new_key(server, "admin")
    cookie, csrf = login(web, key)
    assert web.get(ORDERS, headers={**cookie, "X-CSRF-Token": csrf}).status_code == 200
    with server.client() as api:
        assert api.delete(f"/api/v1/keys/{key_id}").status_code == 200
    gone = web.get(ORDERS, headers={**cookie, "X-CSRF-Token": csrf})
    assert gone.status_code == 401
    assert gone.json()["code"] == "SESSION_REVOKED"
    assert web.get("/console", headers=cookie).headers["location"] == "/console/login"


def test_a_session_expires_after_its_lifetime(tmp_path: Path) -> None:
    clock = ManualClock()
    with (
        serving(make_settings(tmp_path, console_session_seconds=600), clock=clock) as live,
        httpx.Client(base_url=live.url, timeout=10) as web,
    ):
        cookie, csrf = login(web)
        clock.advance(590)
        assert web.get(ORDERS, headers={**cookie, "X-CSRF-Token": csrf}).status_code == 200
        clock.advance(20)
        late = web.get(ORDERS, headers={**cookie, "X-CSRF-Token": csrf})
        assert late.status_code == 401
        assert late.json()["code"] == "SESSION_EXPIRED"


def login_cookie(settings: Settings) -> dict[str, str]:
    with serving(settings) as live:
        reply = httpx.post(live.url + "/console/login", data={"key": ADMIN_TOKEN})
    return {"Cookie": f"{COOKIE}={session_cookie(reply)}"}


def console_status(settings: Settings, cookie: dict[str, str]) -> int:
    with serving(settings) as live:
        return httpx.get(live.url + "/console", headers=cookie).status_code


def test_the_secret_is_made_once_with_mode_0600_and_survives_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    cookie = login_cookie(settings)
    secret = settings.secret_key_file
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(secret.read_text().strip()) >= 32
    assert console_status(settings, cookie) == 200  # a restart keeps the sessions
    assert list(secret.parent.glob(".secret.key.*")) == []
    secret.unlink()  # a new secret: the old cookies are worthless
    assert console_status(settings, cookie) == 303


def test_reelout_secret_key_is_used_instead_of_a_file(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, secret_key=SECRET_S)
    cookie = login_cookie(settings)
    assert not settings.secret_key_file.exists()
    assert console_status(settings, cookie) == 200
    assert console_status(make_settings(tmp_path, secret_key=SECRET_T), cookie) == 303
    with pytest.raises(SecretKeyError, match="too weak"):
        create_app(make_settings(tmp_path, secret_key="short"))


def test_logout_ends_the_session_for_good(web: httpx.Client) -> None:
    cookie, csrf = login(web)
    assert web.post("/console/logout", data={"csrf": csrf}, headers=cookie).status_code == 303
    replayed = web.get(ORDERS, headers={**cookie, "X-CSRF-Token": csrf})
    assert replayed.status_code == 401
    assert replayed.json()["code"] == "SESSION_EXPIRED"
    assert "logged out" in replayed.json()["message"]
    page = web.get("/console", headers=cookie)
    assert (page.status_code, page.headers["location"]) == (303, "/console/login")
    again = web.post("/console/logout", data={"csrf": csrf}, headers=cookie)
    assert again.status_code == 303, "logging out twice is harmless"


def test_logging_out_ends_only_that_session(web: httpx.Client) -> None:
    """Several people share an admin key: one logging out leaves the others signed in."""
    mine, my_csrf = login(web)
    theirs, their_csrf = login(web)
    assert web.post("/console/logout", data={"csrf": my_csrf}, headers=mine).status_code == 303
    assert web.get(ORDERS, headers={**theirs, "X-CSRF-Token": their_csrf}).status_code == 200
    assert web.get(ORDERS, headers={**mine, "X-CSRF-Token": my_csrf}).status_code == 401


def test_a_logout_holds_in_every_process_on_the_database(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url)
    with (
        serving(settings) as first,
        serving(settings) as second,
        httpx.Client(base_url=first.url, timeout=10) as one,
        httpx.Client(base_url=second.url, timeout=10) as two,
    ):
        cookie, csrf = login(one)
        api = {**cookie, "X-CSRF-Token": csrf}
        assert two.get(ORDERS, headers=api).status_code == 200
        assert two.post("/console/logout", data={"csrf": csrf}, headers=cookie).is_redirect
        assert one.get(ORDERS, headers=api).json()["code"] == "SESSION_EXPIRED"
        assert one.get("/console", headers=cookie).headers["location"] == "/console/login"


def cookie_attributes(reply: httpx.Response) -> list[str]:
    assert reply.status_code == 303, reply.text
    return [part.strip().lower() for part in reply.headers["set-cookie"].split(";")]


@pytest.mark.parametrize(
    ("host", "secure"),
    [
        ("127.0.0.1:8000", False),
        ("localhost:8000", False),
        ("[::1]:8000", False),
        ("127.0.0.2", False),
        ("console.example:8000", True),
        ("10.0.0.5:8000", True),
        ("localhost.example.com", True),
    ],
)
def test_the_cookie_is_secure_unless_the_console_is_on_loopback(
    web: httpx.Client, host: str, secure: bool
) -> None:
    reply = web.post("/console/login", data={"key": ADMIN_TOKEN}, headers={"Host": host})
    assert ("secure" in cookie_attributes(reply)) is secure
    cookie = {"Cookie": f"{COOKIE}={session_cookie(reply)}", "Host": host}
    csrf = csrf_of(web.get("/console", headers=cookie).text)
    out = web.post("/console/logout", data={"csrf": csrf}, headers=cookie)
    assert ("secure" in cookie_attributes(out)) is secure, "cleared the way it was set"


@pytest.mark.parametrize(
    ("public_url", "secure"),
    [("http://127.0.0.1:8000", False), ("https://videos.example", True)],
)
def test_reelout_public_url_decides_the_cookie(
    tmp_path: Path, public_url: str, secure: bool
) -> None:
    with serving(make_settings(tmp_path, public_url=public_url)) as live:
        headers = {"Origin": public_url}
        reply = httpx.post(live.url + "/console/login", data={"key": ADMIN_TOKEN}, headers=headers)
    assert ("secure" in cookie_attributes(reply)) is secure


@pytest.mark.parametrize(("host", "warned"), [("console.example", True), ("127.0.0.1", False)])
def test_the_login_form_says_when_only_https_can_keep_the_login(
    web: httpx.Client, host: str, warned: bool
) -> None:
    form = web.get("/console/login", headers={"Host": host})
    assert ('id="needs-https"' in form.text) is warned
