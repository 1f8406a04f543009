"""HTTP routes for API keys: create, list, revoke (admin only; changes are audited)."""

from __future__ import annotations

from fastapi import APIRouter, status

from reelout.auth import service
from reelout.auth.deps import AdminDep
from reelout.auth.schemas import KeyCreate, KeyCreated, KeyInfo
from reelout.deps import ChangeReason, CoreDep

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_key(body: KeyCreate, rt: CoreDep, who: AdminDep) -> KeyCreated:
    with rt.db.session() as session:
        return service.create_key(
            session,
            rt.clock,
            who,
            scope=body.scope,
            name=body.name,
            environment=body.environment,
            environments=rt.settings.environments,
        )


@router.get("")
def list_keys(rt: CoreDep, _: AdminDep, include_revoked: bool = False) -> list[KeyInfo]:
    with rt.db.session() as session:
        return service.list_keys(session, include_revoked)


@router.delete("/{key_id}")
def revoke_key(key_id: str, rt: CoreDep, who: AdminDep, reason: ChangeReason = None) -> KeyInfo:
    with rt.db.session() as session:
        return service.revoke_key(session, rt.clock, who, key_id, reason)
