"""Console sessions kept in the database: open at login, end at logout, check on each request.

A table rather than a per-key epoch: an admin key is often shared by several people, and one
of them logging out must not log out the others. The database is what every process and host
share, so a logout holds everywhere at once; the key is read with the row, so revoking it ends
its sessions at once too. Rows of expired sessions are deleted at the next login.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from reelout.auth.models import ApiKey, ConsoleSessionRecord
from reelout.auth.schemas import Scope
from reelout.auth.service import Principal
from reelout.auth.tokens import hash_secret
from reelout.errors import Unauthorized


def open_session(
    session: Session, key_id: str, secret: str, now: datetime, lifetime_seconds: int
) -> None:
    """Record a new login (and forget the logins that have expired)."""
    session.execute(delete(ConsoleSessionRecord).where(ConsoleSessionRecord.expires_at <= now))
    expires_at = now + timedelta(seconds=lifetime_seconds)
    record = ConsoleSessionRecord(
        id=hash_secret(secret), key_id=key_id, created_at=now, expires_at=expires_at
    )
    session.add(record)


def end_session(session: Session, secret: str) -> None:
    """Log out: the session's cookie opens nothing from now on."""
    session.execute(
        delete(ConsoleSessionRecord).where(ConsoleSessionRecord.id == hash_secret(secret))
    )


def session_owner(session: Session, secret: str, now: datetime) -> Principal:
    """The admin key of a live session; 401 SESSION_EXPIRED when logged out or expired, 401
    SESSION_REVOKED when its key has been revoked since."""
    record = session.get(ConsoleSessionRecord, hash_secret(secret))
    if record is None or record.expires_at <= now:
        raise Unauthorized(
            "the console session has ended (logged out or expired); log in again at /console/login",
            code="SESSION_EXPIRED",
        )
    key = session.get(ApiKey, record.key_id)
    if key is None or key.revoked_at is not None or key.scope != Scope.admin:
        raise Unauthorized(
            "the key this console session was opened with is revoked; log in again",
            code="SESSION_REVOKED",
        )
    return Principal(key.id, key.name, Scope(key.scope), key.environment)
