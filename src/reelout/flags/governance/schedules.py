"""Scheduled flag changes: checked when scheduled, applied at their time by a job through the flag
service (so each is a normal revision with an audit entry), cancelable while pending."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from reelout.auth.schemas import Scope
from reelout.auth.service import Principal
from reelout.clock import Clock
from reelout.db.engine import Database
from reelout.errors import BadRequest, Conflict, NotFound, ReeloutError
from reelout.flags.admin import service
from reelout.flags.admin.schemas import WriteOut
from reelout.flags.governance.models import FlagSchedule
from reelout.flags.governance.schemas import (
    ScheduleAction,
    ScheduleError,
    ScheduleIn,
    ScheduleOut,
    SchedulePage,
    ScheduleStatus,
)
from reelout.jobs import service as jobs

APPLY_JOB = "flags.apply_schedule"
PENDING = ScheduleStatus.pending.value
MAX_ERROR_CHARS = 4000
PAYLOAD_FIELD = {ScheduleAction.put: "definition", ScheduleAction.patch: "patch"}


class ScheduleNotFound(NotFound):
    code = "SCHEDULE_NOT_FOUND"

    def __init__(self, environment: str, schedule_id: int) -> None:
        super().__init__(f"{environment} has no scheduled change #{schedule_id}")


@dataclass(frozen=True)
class Change:
    """One flag change, as stored: the payload is the definition or patch as JSON text."""

    environment: str
    flag_key: str
    action: ScheduleAction
    payload: str | None

    def apply(self, session: Session, clock: Clock, edit: service.Edit) -> WriteOut:
        """Make the change through the flag service: a new revision and its audit entry."""
        env, key, body = self.environment, self.flag_key, (self.payload or "").encode()
        if self.action is ScheduleAction.kill:
            return service.kill(session, clock, env, key, edit)[0]
        if self.action is ScheduleAction.put:
            return service.put_flag(session, clock, env, key, body, edit)[0]
        if self.action is ScheduleAction.patch:
            return service.patch_flag(session, clock, env, key, body, edit)[0]
        return service.delete_flag(session, clock, env, key, edit)


class _DryRun(Exception):
    """Raised to roll back a trial run of a change."""


def _try(session: Session, clock: Clock, change: Change, edit: service.Edit) -> None:
    """Run the change on the current set and roll it back: what would fail now is refused now."""
    try:
        with session.begin_nested():
            change.apply(session, clock, edit)
            raise _DryRun
    except _DryRun:
        pass


# ---- scheduling --------------------------------------------------------------------------------


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _payload(body: ScheduleIn) -> str | None:
    """The definition (put) or patch (patch) as JSON text; the other actions take none."""
    wanted = PAYLOAD_FIELD.get(body.action)
    given = {
        name: value for name, value in (("definition", body.definition), ("patch", body.patch))
    }
    for name, value in given.items():
        if value is not None and name != wanted:
            raise BadRequest(
                f"a scheduled {body.action.value} takes no {name!r}"
                + (f"; send {wanted!r}" if wanted else ""),
                code="UNEXPECTED_SCHEDULE_PAYLOAD",
            )
    if wanted is None:
        return None
    if given[wanted] is None:
        raise BadRequest(
            f"a scheduled {body.action.value} needs {wanted!r}: the flag's "
            + ("whole flagd definition" if wanted == "definition" else "JSON Merge Patch"),
            code="SCHEDULE_PAYLOAD_MISSING",
        )
    return json.dumps(given[wanted], ensure_ascii=False)


def _check_when(apply_at: datetime, now: datetime) -> None:
    if apply_at <= now:
        raise BadRequest(
            f"apply_at {apply_at.isoformat()} is not in the future (it is now {now.isoformat()}); "
            "pick a later time, or make the change now",
            code="APPLY_AT_IN_PAST",
            details={"apply_at": apply_at.isoformat(), "now": now.isoformat()},
        )


def _check_room(session: Session, environment: str, most: int) -> None:
    query = select(func.count()).select_from(FlagSchedule)
    query = query.where(FlagSchedule.environment == environment, FlagSchedule.status == PENDING)
    count = session.scalar(query) or 0
    if count >= most:
        raise Conflict(
            f"{environment} already has {count} pending scheduled changes, the most allowed "
            f"(REELOUT_FLAG_MAX_PENDING_SCHEDULES={most}); cancel one or wait for one to apply",
            code="SCHEDULE_LIMIT_REACHED",
            details={"max_pending": most},
        )


def create(
    session: Session,
    clock: Clock,
    environment: str,
    body: ScheduleIn,
    who: Principal,
    *,
    max_pending: int,
) -> ScheduleOut:
    """Check the change against the current set, store it pending and queue its job."""
    reason = service.check_reason(body.reason)
    apply_at, now = _utc(body.apply_at), clock.now()
    _check_when(apply_at, now)
    change = Change(environment, body.flag, body.action, _payload(body))
    service.lock_environment(session, clock, environment)  # one scheduler at a time per env
    _check_room(session, environment, max_pending)
    _try(session, clock, change, service.Edit(who, reason))
    row = FlagSchedule(
        environment=environment,
        flag_key=change.flag_key,
        action=change.action.value,
        payload=change.payload,
        apply_at=apply_at,
        status=PENDING,
        scheduled_by=who.name,
        scheduled_by_key_id=who.key_id,
        reason=reason,
        created_at=now,
    )
    session.add(row)
    session.flush()
    jobs.enqueue(
        session,
        clock,
        APPLY_JOB,
        {"schedule_id": row.id},
        run_at=apply_at,
        dedupe_key=f"flag-schedule:{row.id}",
    )
    return schedule_out(row)


# ---- reading and canceling ---------------------------------------------------------------------


def schedule_out(row: FlagSchedule) -> ScheduleOut:
    payload: Any = json.loads(row.payload) if row.payload is not None else None
    action = ScheduleAction(row.action)
    error = None
    if row.error_code is not None:
        error = ScheduleError(code=row.error_code, message=row.error_message or "")
    return ScheduleOut(
        id=row.id,
        environment=row.environment,
        flag=row.flag_key,
        action=action,
        definition=payload if action is ScheduleAction.put else None,
        patch=payload if action is ScheduleAction.patch else None,
        apply_at=row.apply_at,
        status=ScheduleStatus(row.status),
        scheduled_by=row.scheduled_by,
        scheduled_by_key_id=row.scheduled_by_key_id,
        reason=row.reason,
        created_at=row.created_at,
        applied_at=row.applied_at,
        canceled_at=row.canceled_at,
        canceled_by=row.canceled_by,
        canceled_by_key_id=row.canceled_by_key_id,
        cancel_reason=row.cancel_reason,
        revision=row.revision,
        error=error,
    )


def _row(session: Session, environment: str, schedule_id: int) -> FlagSchedule:
    row = session.get(FlagSchedule, schedule_id)
    if row is None or row.environment != environment:
        raise ScheduleNotFound(environment, schedule_id)
    return row


def get(session: Session, environment: str, schedule_id: int) -> ScheduleOut:
    return schedule_out(_row(session, environment, schedule_id))


def list_schedules(
    session: Session, environment: str, status: ScheduleStatus | None = None, limit: int = 100
) -> SchedulePage:
    """Soonest first (then in the order they were made)."""
    query = select(FlagSchedule).where(FlagSchedule.environment == environment)
    if status is not None:
        query = query.where(FlagSchedule.status == status.value)
    query = query.order_by(FlagSchedule.apply_at, FlagSchedule.id).limit(limit)
    return SchedulePage(schedules=[schedule_out(row) for row in session.scalars(query)])


def _rowcount(session: Session, schedule_id: int, values: dict[str, Any]) -> int:
    """Move a pending schedule on; 0 when it is no longer pending (the guard against twice)."""
    stmt = (
        update(FlagSchedule)
        .where(FlagSchedule.id == schedule_id, FlagSchedule.status == PENDING)
        .values(**values)
    )
    result = cast(
        CursorResult[Any], session.execute(stmt, execution_options={"synchronize_session": False})
    )
    return result.rowcount


def cancel(
    session: Session,
    clock: Clock,
    environment: str,
    schedule_id: int,
    who: Principal,
    reason: str | None = None,
) -> ScheduleOut:
    """Cancel a pending change in the name of `who`, saying why if given; 409
    SCHEDULE_NOT_PENDING once it was applied, failed or canceled."""
    row = _row(session, environment, schedule_id)
    values = {
        "status": ScheduleStatus.canceled.value,
        "canceled_at": clock.now(),
        "canceled_by": who.name,
        "canceled_by_key_id": who.key_id,
        "cancel_reason": service.check_reason(reason),
    }
    if _rowcount(session, schedule_id, values) != 1:
        session.refresh(row)
        raise Conflict(
            f"scheduled change #{schedule_id} is {row.status}, not pending: only a pending change "
            "can be canceled",
            code="SCHEDULE_NOT_PENDING",
            details={"status": row.status},
        )
    session.refresh(row)
    return schedule_out(row)


# ---- applying ----------------------------------------------------------------------------------


def _edit(row: FlagSchedule) -> service.Edit:
    """The change is made in the name of the key that scheduled it."""
    who = Principal(row.scheduled_by_key_id, row.scheduled_by, Scope.admin, None)
    reason = f"scheduled change #{row.id}" + (f": {row.reason}" if row.reason else "")
    return service.Edit(who, reason)


def _change(row: FlagSchedule) -> Change:
    return Change(row.environment, row.flag_key, ScheduleAction(row.action), row.payload)


def apply(db: Database, clock: Clock, schedule_id: int) -> ScheduleStatus | None:
    """Apply a due change once: the status guard and the revision commit together. A change the
    flag service refuses (the flag was deleted meanwhile, ...) is recorded as failed. Returns the
    new status, or None when the schedule was no longer pending (canceled, or done already)."""
    try:
        with db.session() as session:
            now = clock.now()
            if _rowcount(session, schedule_id, {"status": "applied", "applied_at": now}) != 1:
                return None
            row = session.get(FlagSchedule, schedule_id, populate_existing=True)
            assert row is not None
            written = _change(row).apply(session, clock, _edit(row))
            row.revision = written.revision
            return ScheduleStatus.applied
    except ReeloutError as exc:
        mark_failed(db, clock, schedule_id, exc.code, exc.message)
        return ScheduleStatus.failed


def mark_failed(db: Database, clock: Clock, schedule_id: int, code: str, message: str) -> bool:
    """Record why a pending change could not be applied; False if it was not pending."""
    values = {
        "status": ScheduleStatus.failed.value,
        "applied_at": clock.now(),
        "error_code": code[:64],
        "error_message": message[:MAX_ERROR_CHARS],
    }
    with db.session() as session:
        return _rowcount(session, schedule_id, values) == 1
