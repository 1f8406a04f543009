"""Console sessions: a signed cookie naming the admin key, plus the CSRF token the page must echo.

The cookie is stateless (itsdangerous signs it with the server's secret and a timestamp read
from the injected clock); every request looks the key up again, so revoking the key ends its
sessions at once. The JSON API accepts the cookie only with an `X-CSRF-Token` header equal to
the session's token (the pattern of Django REST framework's SessionAuthentication): a cross-site
form can carry the cookie (if SameSite ever lets it) but never that header.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from reelout.clock import Clock
from reelout.errors import Forbidden, Unauthorized

COOKIE = "reelout_console"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class ConsoleSession:
    key_id: str
    csrf: str


class SessionCodec:
    """Issues and reads console session cookies; checks the CSRF token of API calls."""

    def __init__(self, secret: str, clock: Clock, max_age: int) -> None:
        class ClockSigner(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock.now().timestamp())

        self.max_age = max_age
        self._serializer = URLSafeTimedSerializer(
            secret, salt="reelout.console.session", signer=ClockSigner
        )

    def issue(self, key_id: str) -> tuple[str, ConsoleSession]:
        """A new session for this key: (cookie value, session)."""
        session = ConsoleSession(key_id, secrets.token_urlsafe(32))
        return self._serializer.dumps({"k": key_id, "c": session.csrf}), session

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
        key_id, csrf = data.get("k"), data.get("c")
        if not isinstance(key_id, str) or not isinstance(csrf, str):
            return None
        return ConsoleSession(key_id, csrf)

    def authorize(self, cookie: str, csrf_header: str | None) -> str:
        """The key id of an API call made with the console cookie; raises unless the CSRF matches."""
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
        return session.key_id


def csrf_matches(session: ConsoleSession, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf.encode(), (token or "").encode())
