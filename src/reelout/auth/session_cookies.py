"""Console sessions: a signed cookie carrying the session's secret, a database row per login, and
the CSRF token the page must echo.

The cookie is signed (itsdangerous, with the server's secret and a timestamp read from the
injected clock) and names a row of `console_sessions` (see auth/sessions.py); every request
looks the row and its key up again, so logging out, and revoking the key, end the session at
once in every process. The JSON API accepts the cookie only with an `X-CSRF-Token` header equal
to the session's token (the pattern of Django REST framework's SessionAuthentication): a
cross-site form can carry the cookie (if SameSite ever lets it) but never that header.

The cookie is `Secure` unless the console is reached over plain http on a loopback address
(127.0.0.0/8, ::1, localhost), where browsers may not keep a Secure cookie; the address is the
public one Reelout answers under (REELOUT_PUBLIC_URL, else the proxy's with
REELOUT_BEHIND_PROXY, else the request's own scheme and Host).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from reelout.auth import sessions
from reelout.clock import Clock
from reelout.db.engine import Database
from reelout.errors import Forbidden, Unauthorized

COOKIE = "reelout_console"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class ConsoleSession:
    secret: str
    csrf: str


class SessionCodec:
    """Issues, reads and ends console sessions; checks the CSRF token of API calls."""

    def __init__(self, secret: str, clock: Clock, max_age: int, db: Database) -> None:
        class ClockSigner(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock.now().timestamp())

        self.max_age = max_age
        self._clock = clock
        self._db = db
        self._serializer = URLSafeTimedSerializer(
            secret, salt="reelout.console.session", signer=ClockSigner
        )

    def issue(self, key_id: str) -> tuple[str, ConsoleSession]:
        """A new session for this key, recorded: (cookie value, session)."""
        session = ConsoleSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        with self._db.session() as db:
            sessions.open_session(db, key_id, session.secret, self._clock.now(), self.max_age)
        return self._serializer.dumps({"s": session.secret, "c": session.csrf}), session

    def end(self, session: ConsoleSession) -> None:
        """Log out: the session's cookie is worthless from now on, everywhere."""
        with self._db.session() as db:
            sessions.end_session(db, session.secret)

    def read(self, value: str | None) -> ConsoleSession | None:
        """The session in a cookie value; None when absent, forged or expired."""
        if not value:
            return None
        try:
            data: Any = self._serializer.loads(value, max_age=self.max_age)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        secret, csrf = data.get("s"), data.get("c")
        if not isinstance(secret, str) or not isinstance(csrf, str):
            return None
        return ConsoleSession(secret, csrf)

    def authorize(self, cookie: str, csrf_header: str | None) -> ConsoleSession:
        """The session of an API call made with the console cookie; raises unless the CSRF
        matches. Whether it is still live is for `auth.deps.session_principal` to say."""
        session = self.read(cookie)
        if session is None:
            raise Unauthorized(
                "the console session has expired or is not valid; log in again at /console/login",
                code="SESSION_EXPIRED",
            )
        if not csrf_header:
            raise Forbidden(
                f"a call with the console session cookie must send the {CSRF_HEADER} header "
                "of the console page (cross-site requests are refused)",
                code="CSRF_TOKEN_MISSING",
            )
        if not csrf_matches(session, csrf_header):
            raise Forbidden(
                f"the {CSRF_HEADER} header does not match this console session",
                code="CSRF_TOKEN_INVALID",
            )
        return session


def csrf_matches(session: ConsoleSession, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf.encode(), (token or "").encode())


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secure_cookie(public_base_url: str) -> bool:
    """Secure, except for plain http on a loopback address (a console on this machine)."""
    parts = urlsplit(public_base_url)
    return parts.scheme != "http" or not is_loopback((parts.hostname or "").lower())


def cookie_needs_https(public_base_url: str) -> bool:
    """True when the console is reached over plain http on an address that is not loopback:
    the cookie is Secure there, so a browser will not keep it until https is in front."""
    return urlsplit(public_base_url).scheme == "http" and secure_cookie(public_base_url)
