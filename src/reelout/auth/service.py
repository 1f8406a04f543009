"""API key lifecycle: create, list, revoke, authenticate, and the first-start admin key."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reelout.audit import service as audit
from reelout.audit.service import Actor, Target
from reelout.auth.models import ApiKey
from reelout.auth.schemas import KeyCreated, KeyInfo, Scope
from reelout.auth.tokens import hash_secret, new_id, new_secret, shown_prefix
from reelout.clock import Clock
from reelout.db import notify
from reelout.errors import BadRequest, Forbidden, NotFound, Unauthorized


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key's identity and what it may do."""

    key_id: str
    name: str
    scope: Scope
    environment: str | None

    @property
    def is_admin(self) -> bool:
        return self.scope is Scope.admin

    @property
    def may_sign_playback(self) -> bool:
        """Admin and server keys mint playback tokens; a client key ships inside every install
        of an app, so a token it could mint would protect a video from no one."""
        return self.scope in (Scope.admin, Scope.server)


def require_playback_signer(who: Principal) -> Principal:
    if not who.may_sign_playback:
        raise Forbidden(
            "playback tokens are minted with an admin or server key (a client key is public): "
            "let your backend ask POST /api/v1/videos/{uid}/token and hand the URLs to the app",
            code="SERVER_KEY_REQUIRED",
        )
    return who


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        name=row.name,
        scope=Scope(row.scope),
        environment=row.environment,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _audited(info: KeyInfo) -> dict[str, object]:
    """What the audit trail's JSON Patch shows of a key (never its secret)."""
    return info.model_dump(mode="json", exclude={"last_used_at"})


def create_key(
    session: Session,
    clock: Clock,
    who: Actor,
    *,
    scope: Scope,
    name: str = "",
    environment: str | None = None,
    environments: list[str],
    secret: str | None = None,
) -> KeyCreated:
    if scope is not Scope.admin and environment not in environments:
        raise BadRequest(
            f"a {scope.value} key belongs to one environment; choose one of: "
            f"{', '.join(environments)}",
            code="INVALID_ENVIRONMENT",
        )
    if scope is Scope.admin and environment is not None:
        raise BadRequest("admin keys are not tied to an environment", code="INVALID_ENVIRONMENT")
    secret = secret or new_secret(scope.value)
    row = ApiKey(
        id=new_id(),
        name=name or f"{scope.value}-{environment or 'all'}",
        scope=scope.value,
        environment=environment,
        prefix=shown_prefix(secret),
        key_hash=hash_secret(secret),
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    info = _info(row)
    audit.record(
        session,
        clock,
        who,
        "key.created",
        Target("key", row.id),
        environment=environment,
        patch=audit.patch_of({}, {k: v for k, v in _audited(info).items() if v is not None}),
    )
    return KeyCreated(**info.model_dump(), key=secret)


def list_keys(session: Session, include_revoked: bool = False) -> list[KeyInfo]:
    query = select(ApiKey).order_by(ApiKey.created_at)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return [_info(row) for row in session.scalars(query)]


def revoke_key(
    session: Session, clock: Clock, who: Actor, key_id: str, reason: str | None = None
) -> KeyInfo:
    """Revoke a key (audited; revoking a revoked key changes and records nothing)."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"no API key with id {key_id!r}", code="KEY_NOT_FOUND")
    if row.revoked_at is not None:
        return _info(row)
    before = _audited(_info(row))
    row.revoked_at = clock.now()
    notify.signal(session, notify.CHANGES)  # every host's serving cache forgets the key now
    after = _info(row)
    patch = audit.patch_of(before, _audited(after))
    target = Target("key", row.id)
    audit.record(
        session, clock, who, "key.revoked", target, environment=row.environment,
        reason=reason, patch=patch,
    )  # fmt: skip
    return after


def authenticate(session: Session, secret: str) -> Principal:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_secret(secret)))
    return _live(row)


def revocations(session: Session) -> tuple[int, datetime | None]:
    """How many keys are revoked and the latest revocation: changes whenever a key is revoked,
    so caches of keys know when to forget them."""
    query = select(func.count(), func.max(ApiKey.revoked_at)).where(ApiKey.revoked_at.is_not(None))
    count, latest = session.execute(query).one()
    return int(count), latest


def revoked_after(session: Session, when: datetime | None) -> frozenset[str]:
    """The ids of keys revoked at or after `when` (all revoked keys for None)."""
    query = select(ApiKey.id).where(ApiKey.revoked_at.is_not(None))
    if when is not None:
        query = query.where(ApiKey.revoked_at >= when)
    return frozenset(session.scalars(query))


def principal_by_id(session: Session, key_id: str) -> Principal:
    """The key a signed token names (the token proved it; the key must still be live)."""
    return _live(session.get(ApiKey, key_id))


def _live(row: ApiKey | None) -> Principal:
    if row is None or row.revoked_at is not None:
        raise Unauthorized("the API key is unknown or revoked", code="INVALID_KEY")
    return Principal(row.id, row.name, Scope(row.scope), row.environment)


def has_admin_key(session: Session) -> bool:
    query = select(ApiKey.id).where(ApiKey.scope == "admin", ApiKey.revoked_at.is_(None))
    return session.scalar(query.limit(1)) is not None


# Who the first start's admin key is recorded as created by.
FIRST_START = Principal(
    key_id="first-start", name="first start", scope=Scope.admin, environment=None
)


def bootstrap_admin(
    session: Session, clock: Clock, *, token: str | None, key_file: Path, environments: list[str]
) -> str | None:
    """On first start make an admin key; returns a newly generated secret (to print once)."""
    if has_admin_key(session):
        return None
    if token:
        create_key(
            session,
            clock,
            FIRST_START,
            scope=Scope.admin,
            name="bootstrap",
            secret=token,
            environments=environments,
        )
        return None
    created = create_key(
        session, clock, FIRST_START, scope=Scope.admin, name="bootstrap", environments=environments
    )
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(created.key + "\n")
    os.chmod(key_file, 0o600)
    return created.key
