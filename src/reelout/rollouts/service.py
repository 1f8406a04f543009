"""Rollouts: create one from a plan, apply commands (state machine, flag writes, log), record the
controller's decisions, notice manual edits of the flag, and read rollouts and their log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from reelout.auth.schemas import Scope
from reelout.auth.service import Principal
from reelout.clock import Clock
from reelout.db.paging import decode_cursor, encode_cursor
from reelout.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from reelout.flags.admin import arms
from reelout.flags.admin import service as flags
from reelout.rollouts import effects, history
from reelout.rollouts.models import Rollout, RolloutLogEntry
from reelout.rollouts.plan import Plan, stored_plan
from reelout.rollouts.reasons import COMMAND, MANUAL_EDIT, classify
from reelout.rollouts.schemas import LogEntryOut, LogPage, RolloutOut, RolloutPage
from reelout.rollouts.served import arms_of, served_as
from reelout.rollouts.states import (
    FINAL,
    OPERATOR_COMMANDS,
    Command,
    Effect,
    Position,
    State,
    allowed,
    transition,
)

CONTROLLER = Principal(
    key_id="rollouts", name="rollout-controller", scope=Scope.admin, environment=None
)
"""Who the controller's own commands and decisions are logged as (and its flag writes made by)."""

LIVE = (State.pending.value, State.running.value, State.paused.value)
MAX_REASON_CHARS = flags.MAX_REASON_CHARS


class RolloutNotFound(NotFound):
    code = "ROLLOUT_NOT_FOUND"


# ---- reading -----------------------------------------------------------------------------------


def _row(session: Session, rollout_id: int, *, lock: bool = False) -> Rollout:
    row = session.get(Rollout, rollout_id, with_for_update=lock, populate_existing=lock)
    if row is None:
        raise RolloutNotFound(f"no rollout {rollout_id}")
    return row


def _position(row: Rollout, plan: Plan | None = None) -> Position:
    stages = len((plan or stored_plan(row.plan)).percents)
    return Position(State(row.state), row.stage, stages)


def _out(row: Rollout) -> RolloutOut:
    plan = stored_plan(row.plan)
    return RolloutOut(
        id=row.id,
        flag=row.flag,
        environment=row.environment,
        plan=row.plan,
        state=row.state,
        stage=row.stage,
        percent=plan.percents[row.stage],
        stage_started_at=row.stage_started_at,
        created_at=row.created_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        created_by=row.created_by,
        approvals=row.approvals,
        dismissed=row.dismissed,
        extended_until=row.extended_until,
        last_decision=row.last_decision,
        frozen_evidence=row.frozen_evidence,
        served_as=served_as(arms_of(row)),
        allowed=[c.value for c in allowed(_position(row, plan)) if c in OPERATOR_COMMANDS],
        version=row.version,
    )


def get(session: Session, rollout_id: int) -> RolloutOut:
    return _out(_row(session, rollout_id))


@dataclass(frozen=True)
class RolloutFilter:
    """What `list_rollouts` narrows to; None means any."""

    environment: str | None = None
    flag: str | None = None
    states: tuple[str, ...] | None = None


def _list_query(where: RolloutFilter) -> Select[Rollout]:
    query = select(Rollout).order_by(Rollout.created_at.desc(), Rollout.id.desc())
    if where.environment is not None:
        query = query.where(Rollout.environment == where.environment)
    if where.flag is not None:
        query = query.where(Rollout.flag == where.flag)
    if where.states is not None:
        query = query.where(Rollout.state.in_(where.states))
    return query


def _cursor_id(cursor: str) -> tuple[datetime, int]:
    at, key = decode_cursor(cursor)
    if not key.isdigit():
        raise BadRequest("the cursor is not one this server gave out", code="INVALID_CURSOR")
    return at, int(key)


def list_rollouts(
    session: Session,
    where: RolloutFilter = RolloutFilter(),
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> RolloutPage:
    """Newest first, keyset-paginated."""
    query = _list_query(where)
    if cursor:
        at, after = _cursor_id(cursor)
        query = query.where(
            (Rollout.created_at < at) | ((Rollout.created_at == at) & (Rollout.id < after))
        )
    rows = list(session.scalars(query.limit(limit + 1)))
    more, rows = len(rows) > limit, rows[:limit]
    last = rows[-1] if more and rows else None
    return RolloutPage(
        rollouts=[_out(row) for row in rows],
        next_cursor=encode_cursor(last.created_at, str(last.id)) if last else None,
    )


def running(session: Session) -> list[RolloutOut]:
    """Every running rollout, oldest first: what the controller ticks."""
    query = select(Rollout).where(Rollout.state == State.running.value).order_by(Rollout.id)
    return [_out(row) for row in session.scalars(query)]


def _entry_out(row: RolloutLogEntry) -> LogEntryOut:
    return LogEntryOut(
        id=row.id,
        rollout_id=row.rollout_id,
        at=row.at,
        kind=row.kind,  # written only as command or decision
        who=row.who,
        what=row.what,
        reason=row.reason,
        body=row.body,
    )


def log_page(
    session: Session,
    rollout_id: int,
    *,
    limit: int = 50,
    cursor: str | None = None,
    kind: str | None = None,
    newest_first: bool = False,
) -> LogPage:
    """The rollout's log, oldest first from `cursor` on; the next cursor continues after the
    last entry given (the same cursor again when there was none), so a reader can follow it.
    `newest_first` reads it backwards: the newest entries first, and the cursor continues
    with those before the last one given."""
    _row(session, rollout_id)
    order = RolloutLogEntry.id.desc() if newest_first else RolloutLogEntry.id
    query = select(RolloutLogEntry).where(RolloutLogEntry.rollout_id == rollout_id).order_by(order)
    if kind is not None:
        query = query.where(RolloutLogEntry.kind == kind)
    if cursor:
        after = _cursor_id(cursor)[1]
        query = query.where(
            RolloutLogEntry.id < after if newest_first else RolloutLogEntry.id > after
        )
    rows = list(session.scalars(query.limit(limit + 1)))
    more, rows = len(rows) > limit, rows[:limit]
    next_cursor = encode_cursor(rows[-1].at, str(rows[-1].id)) if rows else cursor
    return LogPage(entries=[_entry_out(row) for row in rows], more=more, next_cursor=next_cursor)


# ---- writing -----------------------------------------------------------------------------------


def _log(
    session: Session,
    clock: Clock,
    row: Rollout,
    kind: str,
    who: str,
    what: str,
    reason: str | None,
    body: Mapping[str, Any],
) -> RolloutLogEntry:
    entry = RolloutLogEntry(
        rollout_id=row.id,
        at=clock.now(),
        kind=kind,
        who=who,
        what=what,
        reason=reason,
        body=dict(body),
    )
    session.add(entry)
    return entry


def _reason(reason: str | None) -> str | None:
    return flags.check_reason(reason)


def create(
    session: Session,
    clock: Clock,
    plan: Mapping[str, Any],
    who: Principal,
    *,
    environments: Sequence[str],
) -> RolloutOut:
    """A pending rollout of `plan` (stored exactly as given once `rollouts.plan` validates it):
    its environment must be one of `environments`, its flag must exist there with both arms'
    variants, and no other rollout of that flag may be pending, running or paused."""
    checked = stored_plan(plan)
    flags.check_environment(checked.environment, list(environments))
    flags.lock_environment(session, clock, checked.environment)  # creates go one at a time
    _, flag = flags.get_flag(session, checked.environment, checked.flag)
    _refuse_second(session, checked)
    now = clock.now()
    row = Rollout(
        flag=checked.flag,
        environment=checked.environment,
        plan=dict(plan),
        state=State.pending.value,
        stage=0,
        created_at=now,
        created_by=who.name,
        approvals=[],
        dismissed={},
        own_arm_keys=True,
    )
    session.add(row)
    session.flush()
    scratch = dict(flag, variants=dict(flag.get("variants", {})))
    arms.set_rollout_arms(scratch, checked.flag, arms_of(row))  # refuses arms the flag lacks
    _log(session, clock, row, "command", who.name, "create", None, {"plan": dict(plan)})
    session.flush()
    return _out(row)


def _refuse_second(session: Session, checked: Plan) -> None:
    query = select(Rollout.id).where(
        Rollout.environment == checked.environment,
        Rollout.flag == checked.flag,
        Rollout.state.in_(LIVE),
    )
    other = session.scalars(query.limit(1)).first()
    if other is not None:
        raise Conflict(
            f"rollout {other} of {checked.flag} in {checked.environment} is not finished; "
            "abort it (or let it end) before creating another",
            code="ROLLOUT_EXISTS",
            details={"rollout": other},
        )


@dataclass(frozen=True)
class CommandArgs:
    """A command and what it carries: promote, dismiss (and a rollback by a person) say why,
    dismiss names a guardrail metric, approve may name the stage index it approves (default:
    the next stage)."""

    command: Command
    reason: str | None = None
    metric: str | None = None
    stage: int | None = None


def _check_args(args: CommandArgs, plan: Plan, row: Rollout) -> None:
    if args.command in (Command.promote, Command.dismiss) and _reason(args.reason) is None:
        raise BadRequest(f"{args.command.value} needs a reason", code="REASON_REQUIRED")
    if args.command is Command.dismiss and args.metric not in plan.metrics:
        raise BadRequest(
            f"dismiss names a guardrail metric of the plan ({', '.join(plan.metrics)}), "
            f"not {args.metric!r}",
            code="UNKNOWN_GUARDRAIL",
        )
    stage, last = args.stage, len(plan.percents) - 1
    if args.command is Command.approve and stage is not None and not row.stage <= stage <= last:
        raise BadRequest(
            f"approve a stage from {row.stage} to {last} (an index into the plan's stages), "
            f"not {stage}",
            code="INVALID_STAGE",
        )


def command(
    session: Session,
    clock: Clock,
    rollout_id: int,
    args: CommandArgs,
    who: Principal,
    *,
    if_version: int | None = None,
) -> RolloutOut:
    """An operator's command: refused in words when the state does not allow it (409
    `ROLLOUT_STATE_CONFLICT`) or when the rollout changed since the caller read version
    `if_version` (412 `STALE_ROLLOUT`); else the step, its flag write and a log row."""
    if args.command not in OPERATOR_COMMANDS:
        raise BadRequest(
            f"{args.command.value} is the controller's; the operator's commands are "
            + ", ".join(c.value for c in Command if c in OPERATOR_COMMANDS),
            code="NOT_AN_OPERATOR_COMMAND",
        )
    row = _row(session, rollout_id, lock=True)
    if if_version is not None and row.version != if_version:
        raise PreconditionFailed(
            f"rollout {rollout_id} changed since you read it (version {if_version}, now "
            f"{row.version}); read it again",
            code="STALE_ROLLOUT",
            details={"version": row.version},
        )
    _check_args(args, stored_plan(row.plan), row)
    _apply(session, clock, row, args, who)
    effects.count(session, args.command.value, COMMAND)
    return _out(row)


def _apply(
    session: Session,
    clock: Clock,
    row: Rollout,
    args: CommandArgs,
    who: Principal,
    decision: Mapping[str, Any] | None = None,
) -> Rollout:
    """One step of the state machine: its flag write, the rollout's new position (and frozen
    evidence, for a rollback), its log row, then the step's effects (`effects.after_step`).
    `decision` is the controller's decision body that caused the step, if one did."""
    before = _position(row)
    step = transition(before, args.command)
    reason = _reason(args.reason)
    body: dict[str, Any] = {
        "from": {"state": before.state.value, "stage": before.stage},
        "to": {"state": step.position.state.value, "stage": step.position.stage},
    }
    written = _write_flag(session, clock, row, step.effect, step.position.stage, who, reason)
    if written is not None:
        body["flag_revision"] = written
    body.update(_note(row, args))
    _move(row, clock, step.position)
    if step.position.state is State.rolled_back:
        effects.freeze(row, clock.now(), who, reason, decision)
    entry = _log(session, clock, row, "command", who.name, args.command.value, reason, body)
    _flush(session, row)
    effects.after_step(session, clock, row, entry, decision)
    return row


def _note(row: Rollout, args: CommandArgs) -> dict[str, Any]:
    """What approve and dismiss leave on the rollout, and what their log rows say of it."""
    if args.command is Command.approve:
        stage = args.stage if args.stage is not None else min(row.stage + 1, _last(row))
        row.approvals = sorted({*row.approvals, stage})
        return {"approved_stage": stage}
    if args.command is Command.dismiss and args.metric is not None:
        row.dismissed = {**row.dismissed, args.metric: _reason(args.reason) or ""}
        return {"metric": args.metric}
    return {}


def _last(row: Rollout) -> int:
    return len(stored_plan(row.plan).percents) - 1


def _move(row: Rollout, clock: Clock, to: Position) -> None:
    now = clock.now()
    if row.started_at is None and to.state is State.running:
        row.started_at = now
    if to.stage != row.stage or (row.state == State.pending.value and to.state is State.running):
        row.stage_started_at, row.extended_until = now, None
    if to.state in FINAL:
        row.ended_at = now
    row.state, row.stage = to.state.value, to.stage


def _flush(session: Session, row: Rollout) -> None:
    try:
        session.flush()
    except StaleDataError:
        raise Conflict(
            f"rollout {row.id} was changed by someone else at the same moment; try again",
            code="ROLLOUT_CHANGED",
        ) from None


def _write_flag(
    session: Session,
    clock: Clock,
    row: Rollout,
    effect: Effect,
    stage: int,
    who: Principal,
    reason: str | None,
) -> int | None:
    """The flag write a step needs, as `who`, with the rollout named in the reason; the new
    flag revision (None when nothing was written)."""
    plan = stored_plan(row.plan)
    if effect is Effect.none:
        return None
    split = arms_of(row, plan.percents[stage])
    where = (session, clock, row.environment, row.flag, split)
    if effect is Effect.write_stage:
        why = f"rollout {row.id}: stage {stage + 1} of {len(plan.percents)}, {split.percent}%"
        written, _ = flags.rollout_arms(*where, flags.Edit(who, _join(why, reason)))
    elif effect is Effect.treatment_for_everyone:
        why = f"rollout {row.id}: completed, {split.treatment!r} for everyone"
        written, _ = flags.complete_with_treatment(*where, flags.Edit(who, _join(why, reason)))
    else:
        why = f"rollout {row.id}: rolled back to {split.control!r} for everyone"
        written, _ = flags.rollback_to_control(*where, flags.Edit(who, _join(why, reason)))
    latest = flags.latest_audit_of(session, row.environment, row.flag)
    row.flag_audit_id = latest.id if latest is not None else None  # the flag is as we left it
    return written.revision if written.changed else None


def _join(why: str, reason: str | None) -> str:
    text = f"{why}: {reason}" if reason else why
    return text[:MAX_REASON_CHARS]


def stage_starts(session: Session, rollout_id: int) -> dict[int, datetime]:
    """stage index -> when the rollout entered it, read from its log."""
    entries: list[LogEntryOut] = []
    cursor: str | None = None
    while True:
        page = log_page(session, rollout_id, limit=500, cursor=cursor, kind="command")
        entries += page.entries
        if not page.more:
            return history.entries_of_stages(entries)
        cursor = page.next_cursor


# ---- the controller ------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """What `record_decision` did: whether the decision applied (False: the rollout had moved
    on, e.g. another worker's tick got there first) and the rollout after it."""

    applied: bool
    rollout: RolloutOut


_DECISION_COMMANDS = {
    "rollback": Command.rollback,
    "pause": Command.pause,
    "complete": Command.complete,
}


def record_decision(
    session: Session,
    clock: Clock,
    rollout_id: int,
    decision: str,
    reasons: Sequence[str],
    body: Mapping[str, Any],
    *,
    stage: int,
    extend_until: datetime | None = None,
    slot: datetime | None = None,
) -> Recorded:
    """Log a tick's decision (`decide.decision_body` as `body`) and act on it: advance (or
    complete from the last stage), complete, rollback and pause move the state machine with
    their flag writes; extend sets `extended_until`; hold only logs. A decision made for
    another stage than the rollout's, or for a rollout that is not running, is not applied
    and not logged, so ticks are idempotent and safe with several workers; so is one for a
    schedule `slot` the rollout was already decided for (or a later one: the body keeps its
    `slot`), so a slot's tick run twice logs one decision. When the flag was
    edited by someone else since the rollout wrote it, the rollout pauses (as
    `check_manual_edit` does) and the decision is not applied either."""
    row = _row(session, rollout_id, lock=True)
    if row.state != State.running.value or row.stage != stage or _decided(row, slot):
        return Recorded(False, _out(row))
    edited = _edited(session, row)
    if edited is not None:  # decided on a flag the rollout no longer holds: pause instead
        _apply(session, clock, row, CommandArgs(Command.pause, edited), CONTROLLER)
        effects.count(session, Command.pause.value, MANUAL_EDIT)
        return Recorded(False, _out(row))
    reason = "; ".join(reasons) or None
    logged = {**body, **({"slot": slot.isoformat()} if slot is not None else {})}
    row.last_decision = logged
    _log(session, clock, row, "decision", CONTROLLER.name, decision, reason, logged)
    effects.count(session, decision, classify(reasons))
    follow = _DECISION_COMMANDS.get(decision)
    if decision == "advance":
        follow = Command.complete if row.stage == _last(row) else Command.advance
    if follow is not None:
        args = CommandArgs(follow, _join_reasons(reasons))
        _apply(session, clock, row, args, CONTROLLER, decision=logged)
    elif decision == "extend" and extend_until is not None:
        row.extended_until = extend_until
    _flush(session, row)
    return Recorded(True, _out(row))


def _decided(row: Rollout, slot: datetime | None) -> bool:
    """Whether the rollout's last decision was made for `slot` or a later one."""
    last = (row.last_decision or {}).get("slot")
    return slot is not None and isinstance(last, str) and datetime.fromisoformat(last) >= slot


def _join_reasons(reasons: Sequence[str]) -> str | None:
    return "; ".join(reasons)[:MAX_REASON_CHARS] or None


def _edited(session: Session, row: Rollout) -> str | None:
    """Why the flag is no longer as the rollout left it (None when it is)."""
    latest = flags.latest_audit_of(session, row.environment, row.flag)
    if latest is None or latest.id == row.flag_audit_id:
        return None
    what = f"{latest.action}, revision {latest.revision}"
    why = f": {latest.reason}" if latest.reason else ""
    reason = f"the flag {row.flag} was edited by {latest.actor} ({what}) during the rollout{why}"
    return reason[:MAX_REASON_CHARS]


def check_manual_edit(session: Session, clock: Clock, rollout_id: int) -> str | None:
    """Pause a running rollout whose flag someone else changed since the rollout last wrote it
    (the flag's newest audit entry is not the rollout's); the pause's reason, else None."""
    row = _row(session, rollout_id, lock=True)
    if row.state != State.running.value:
        return None
    reason = _edited(session, row)
    if reason is not None:
        _apply(session, clock, row, CommandArgs(Command.pause, reason), CONTROLLER)
        effects.count(session, Command.pause.value, MANUAL_EDIT)
    return reason
