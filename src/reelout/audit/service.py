"""Recording a change into the audit trail (in the caller's transaction) and the one read of
every change: this trail's records together with the sources other areas provide (the flag
audit log), newest first, filtered, keyset-paginated."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import jsonpatch
from sqlalchemy import ColumnElement, Select, String, and_, literal_column, or_, select, union_all
from sqlalchemy.orm import Session

from reelout.audit.models import AuditRecord
from reelout.audit.schemas import Area, ChangeOut, ChangePage
from reelout.clock import Clock
from reelout.db.paging import decode_cursor, encode_cursor
from reelout.errors import BadRequest

# The columns, in this order and with these labels, of every source's select.
COLUMNS = (
    "source", "id", "at", "area", "action", "actor", "actor_key_id", "environment",
    "target_kind", "target_id", "reason", "patch",
)  # fmt: skip
OWN_SOURCE = "audit"
AREA_OF_ACTION = {
    "key": Area.keys,
    "webhook": Area.webhooks,
    "video": Area.videos,
    "alerts": Area.alerts,
}


class Actor(Protocol):
    """Who made a change: an API key (`auth.service.Principal`), or the CLI's OS user."""

    @property
    def key_id(self) -> str: ...

    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class Target:
    """What a change was made to: `kind` (key, webhook, delivery, video) and its id."""

    kind: str
    id: str


def patch_of(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """RFC 6902 JSON Patch that turns `before` into `after` (both JSON values)."""
    patch: list[dict[str, Any]] = jsonpatch.make_patch(dict(before), dict(after)).patch
    return patch


def record(
    session: Session,
    clock: Clock,
    who: Actor,
    action: str,
    target: Target,
    *,
    environment: str | None = None,
    reason: str | None = None,
    patch: list[dict[str, Any]] | None = None,
) -> None:
    """Add one record in the caller's transaction: it exists if and only if the change commits."""
    area = AREA_OF_ACTION.get(action.partition(".")[0])
    if area is None:
        raise ValueError(f"no audit area for action {action!r}; known: {sorted(AREA_OF_ACTION)}")
    session.add(
        AuditRecord(
            at=clock.now(),
            actor=who.name[:200],
            actor_key_id=who.key_id[:32],
            area=area.value,
            action=action,
            environment=environment,
            target_kind=target.kind,
            target_id=target.id,
            reason=reason or None,
            patch=None if patch is None else json.dumps(patch, ensure_ascii=False),
        )
    )
    session.flush()


# ---- reading every change ----------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeFilter:
    """What `list_changes` narrows to; None means any. `actor` matches a key's name or id;
    `target` an id (for flags: the flag, or an environment's whole-set changes)."""

    actor: str | None = None
    area: Area | None = None
    environment: str | None = None
    target: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


Changes = Select[*tuple[Any, ...]]  # a select of COLUMNS
# A source: the select of one area's changes, labelled as COLUMNS; it applies `target` itself.
Source = Callable[[ChangeFilter], Changes]


def text(value: str) -> ColumnElement[str]:
    """A constant string column (inline, so a UNION types it the same on every database)."""
    return literal_column(f"'{value}'", String)


def own_changes(where: ChangeFilter) -> Changes:
    """This trail's records, as a source."""
    r = AuditRecord
    query: Changes = select(
        text(OWN_SOURCE).label("source"), r.id.label("id"), r.at.label("at"),
        r.area.label("area"), r.action.label("action"), r.actor.label("actor"),
        r.actor_key_id.label("actor_key_id"), r.environment.label("environment"),
        r.target_kind.label("target_kind"), r.target_id.label("target_id"),
        r.reason.label("reason"), r.patch.label("patch"),
    )  # fmt: skip
    if where.target is not None:
        query = query.where(r.target_id == where.target)
    return query


def _filtered(query: Select[Any], c: Any, where: ChangeFilter) -> Select[Any]:
    if where.actor is not None:
        query = query.where((c.actor == where.actor) | (c.actor_key_id == where.actor))
    if where.area is not None:
        query = query.where(c.area == where.area.value)
    if where.environment is not None:
        query = query.where(c.environment == where.environment)
    if where.action is not None:
        query = query.where(c.action == where.action)
    if where.since is not None:
        query = query.where(c.at >= where.since)
    if where.until is not None:
        query = query.where(c.at < where.until)
    return query


def _after(query: Select[Any], c: Any, cursor: str) -> Select[Any]:
    at, key = decode_cursor(cursor)
    source, _, number = key.rpartition("-")
    if not source or not number.isdigit():
        raise BadRequest("the cursor is not one this server gave out", code="INVALID_CURSOR")
    same_at_older = and_(
        c.at == at, or_(c.source < source, and_(c.source == source, c.id < int(number)))
    )
    return query.where(or_(c.at < at, same_at_older))


def _change(row: Any) -> ChangeOut:
    return ChangeOut(
        id=f"{row.source}-{row.id}",
        at=row.at,
        area=Area(row.area),
        action=row.action,
        actor=row.actor,
        actor_key_id=row.actor_key_id,
        environment=row.environment,
        target_kind=row.target_kind,
        target_id=row.target_id,
        reason=row.reason,
        patch=None if row.patch is None else json.loads(row.patch),
    )


def list_changes(
    session: Session,
    sources: Sequence[Source],
    where: ChangeFilter = ChangeFilter(),
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> ChangePage:
    """Every change of every source, newest first; pages stay stable while changes arrive."""
    changes = union_all(*(source(where) for source in sources)).subquery("changes")
    c = changes.c
    query = _filtered(select(changes), c, where)
    if cursor:
        query = _after(query, c, cursor)
    query = query.order_by(c.at.desc(), c.source.desc(), c.id.desc()).limit(limit + 1)
    rows = list(session.execute(query).all())
    more, rows = len(rows) > limit, rows[:limit]
    last = rows[-1] if more and rows else None
    return ChangePage(
        entries=[_change(row) for row in rows],
        next_cursor=None if last is None else encode_cursor(last.at, f"{last.source}-{last.id}"),
    )
