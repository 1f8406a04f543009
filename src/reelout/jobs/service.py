"""Job queue logic on the jobs tables: enqueue, claim with a lease, heartbeat, complete/fail, schedules.

Written by hand on purpose: no maintained library gives lease + heartbeat + retry + periodic
schedules on BOTH SQLite and PostgreSQL (procrastinate is PostgreSQL-only, huey has no PostgreSQL
backend, Celery/RQ/Dramatiq need a broker). So it is kept small and tested hard. PostgreSQL claims
with `SELECT ... FOR UPDATE SKIP LOCKED`; SQLite runs every transaction as BEGIN IMMEDIATE, which
serialises claimers. Every state change by a worker is conditional on it still holding the lease,
so a worker that lost its lease (paused, presumed dead) changes nothing.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Select, and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Update

from reelout.clock import Clock
from reelout.db.engine import Database
from reelout.jobs.models import Job, JobState, Schedule
from reelout.jobs.timing import RETRY_BASE_SECONDS, RETRY_CAP_SECONDS, next_slot_after, retry_delay

QUEUED, RUNNING, DONE, DEAD = JobState.queued, JobState.running, JobState.done, JobState.dead
STATES = tuple(JobState)
ACTIVE_STATES = (QUEUED, RUNNING)
MAX_ERROR_CHARS = 8000
_NAME_MAX = 100


@dataclass(frozen=True)
class ClaimedJob:
    """A job this worker now holds the lease on; `attempts` counts this try."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


@dataclass(frozen=True)
class JobInfo:
    """A read-only snapshot of one job row."""

    id: int
    kind: str
    payload: dict[str, Any]
    state: str
    attempts: int
    max_attempts: int
    run_at: datetime
    created_at: datetime
    dedupe_key: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    finished_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class ScheduleInfo:
    """A read-only snapshot of one periodic schedule."""

    name: str
    kind: str
    interval_seconds: int
    next_run_at: datetime


# ---- enqueue ---------------------------------------------------------------------------------


def _check_name(label: str, value: str) -> None:
    if not value or len(value) > _NAME_MAX:
        raise ValueError(f"{label} must be 1..{_NAME_MAX} characters, got {value!r}")


def _by_dedupe_key(session: Session, key: str) -> Job | None:
    return session.scalar(select(Job).where(Job.dedupe_key == key).with_for_update())


def enqueue(
    session: Session,
    clock: Clock,
    kind: str,
    payload: dict[str, Any],
    *,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = 5,
) -> int:
    """Add a job in the caller's transaction; a queued/running job with the same dedupe_key wins."""
    _check_name("kind", kind)
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if dedupe_key is not None:
        existing = _by_dedupe_key(session, dedupe_key)
        if existing is not None and existing.state in ACTIVE_STATES:
            return existing.id
        if existing is not None:  # finished: the key is free again, the old row keeps its history
            existing.dedupe_key = None
            session.flush()
    now = clock.now()
    job = Job(
        kind=kind,
        payload=dict(payload),
        state=QUEUED,
        dedupe_key=dedupe_key,
        attempts=0,
        max_attempts=max_attempts,
        run_at=run_at or now,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        if dedupe_key is None:
            raise
        raced = _by_dedupe_key(session, dedupe_key)  # a concurrent enqueue committed it first
        if raced is None:
            raise
        return raced.id
    return job.id


# ---- claim / heartbeat / complete / fail -------------------------------------------------------


def _claimable(now: datetime, kinds: Collection[str] | None) -> Select[Job]:
    due = or_(
        and_(Job.state == QUEUED, Job.run_at <= now),
        and_(Job.state == RUNNING, Job.lease_expires_at <= now),
    )
    stmt = select(Job).where(due)
    if kinds is not None:
        stmt = stmt.where(Job.kind.in_(list(kinds)))
    # SKIP LOCKED on PostgreSQL; SQLite ignores FOR UPDATE and is serialised by BEGIN IMMEDIATE.
    return stmt.order_by(Job.run_at, Job.id).limit(1).with_for_update(skip_locked=True)


def _bury_lost(job: Job, now: datetime) -> None:
    job.state = DEAD
    job.finished_at = now
    job.lease_expires_at = None
    job.last_error = (
        f"worker {job.lease_owner} lost the lease on attempt {job.attempts}/{job.max_attempts}"
        " (crashed or stalled); no attempts left"
    )


@dataclass(frozen=True)
class DeadJob:
    """A job that will never run again, for the kind's on-dead hook."""

    id: int
    kind: str
    payload: dict[str, Any]
    error: str
    attempts: int | None = None  # how many it had, when known


BuriedFn = Callable[[DeadJob], None]


def claim(
    db: Database,
    clock: Clock,
    worker_id: str,
    lease_seconds: float,
    kinds: Collection[str] | None = None,
    on_buried: BuriedFn | None = None,
) -> ClaimedJob | None:
    """Take the oldest due job (queued, or running with an expired lease) and lease it.

    A running job whose lease expired on its last attempt is buried (dead) on the way, and
    reported to `on_buried` once the claim has committed."""
    _check_name("worker_id", worker_id)
    if kinds is not None and not kinds:
        return None
    now, buried = clock.now(), list[DeadJob]()
    claimed: ClaimedJob | None = None
    with db.session() as session:
        while (job := session.scalar(_claimable(now, kinds))) is not None:
            if job.state == RUNNING and job.attempts >= job.max_attempts:
                _bury_lost(job, now)  # its last try died with its worker
                error = job.last_error or ""
                buried.append(DeadJob(job.id, job.kind, dict(job.payload), error, job.attempts))
                session.flush()
                continue
            job.state = RUNNING
            job.attempts += 1
            job.lease_owner = worker_id
            job.lease_expires_at = now + timedelta(seconds=lease_seconds)
            claimed = ClaimedJob(
                job.id, job.kind, dict(job.payload), job.attempts, job.max_attempts
            )
            break
    if on_buried is not None:
        for dead in buried:
            on_buried(dead)
    return claimed


def _rowcount(session: Session, stmt: Update) -> int:
    result = cast(
        CursorResult[Any], session.execute(stmt, execution_options={"synchronize_session": False})
    )
    return result.rowcount


def _leased(job_id: int, worker_id: str) -> Update:
    return update(Job).where(Job.id == job_id, Job.state == RUNNING, Job.lease_owner == worker_id)


def heartbeat(
    db: Database, clock: Clock, job_id: int, worker_id: str, lease_seconds: float
) -> bool:
    """Extend the lease; False when this worker no longer holds it (another worker took over)."""
    expires = clock.now() + timedelta(seconds=lease_seconds)
    with db.session() as session:
        return _rowcount(session, _leased(job_id, worker_id).values(lease_expires_at=expires)) == 1


def complete(db: Database, clock: Clock, job_id: int, worker_id: str) -> bool:
    """Mark the job done; changes nothing (False) if this worker lost the lease."""
    stmt = _leased(job_id, worker_id).values(
        state=DONE, finished_at=clock.now(), lease_expires_at=None, last_error=None
    )
    with db.session() as session:
        return _rowcount(session, stmt) == 1


def release(db: Database, clock: Clock, job_id: int, worker_id: str) -> bool:
    """Give a running job back untried (graceful stop): queued now, this attempt not counted."""
    stmt = _leased(job_id, worker_id).values(
        state=QUEUED,
        run_at=clock.now(),
        attempts=Job.attempts - 1,
        lease_owner=None,
        lease_expires_at=None,
    )
    with db.session() as session:
        return _rowcount(session, stmt) == 1


def fail(
    db: Database,
    clock: Clock,
    job_id: int,
    worker_id: str,
    error: str,
    *,
    base_seconds: float = RETRY_BASE_SECONDS,
    cap_seconds: float = RETRY_CAP_SECONDS,
    rng: random.Random | None = None,
) -> str | None:
    """Record a failed try: re-queue after backoff, or 'dead' when out of attempts.

    Returns the new state, or None (and changes nothing) if this worker lost the lease.
    """
    now = clock.now()
    with db.session() as session:
        job = session.scalar(
            select(Job)
            .where(
                Job.id == job_id,
                Job.state == RUNNING,
                Job.lease_owner == worker_id,
            )
            .with_for_update()
        )
        if job is None:
            return None
        job.last_error = error.replace("\x00", "\\0")[
            :MAX_ERROR_CHARS
        ]  # PostgreSQL text has no NUL
        job.lease_owner = None
        job.lease_expires_at = None
        if job.attempts >= job.max_attempts:
            job.state, job.finished_at = DEAD, now
            return DEAD
        jitter = (rng or random).random()
        delay = retry_delay(job.attempts, jitter, base=base_seconds, cap=cap_seconds)
        job.state, job.run_at = QUEUED, now + timedelta(seconds=delay)
        return QUEUED


# ---- reading -----------------------------------------------------------------------------------


def _info(job: Job) -> JobInfo:
    return JobInfo(
        id=job.id,
        kind=job.kind,
        payload=dict(job.payload),
        state=job.state,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        run_at=job.run_at,
        created_at=job.created_at,
        dedupe_key=job.dedupe_key,
        lease_owner=job.lease_owner,
        lease_expires_at=job.lease_expires_at,
        finished_at=job.finished_at,
        last_error=job.last_error,
    )


def get_job(session: Session, job_id: int) -> JobInfo | None:
    job = session.get(Job, job_id)
    return _info(job) if job is not None else None


def list_jobs(
    session: Session, *, state: str | None = None, kind: str | None = None, limit: int = 100
) -> list[JobInfo]:
    """Jobs in id order, optionally filtered by state and kind."""
    stmt = select(Job).order_by(Job.id).limit(limit)
    if state is not None:
        stmt = stmt.where(Job.state == state)
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    return [_info(job) for job in session.scalars(stmt)]


# ---- periodic schedules ------------------------------------------------------------------------


def _insert_schedule_if_missing(session: Session, row: dict[str, Any]) -> None:
    if session.get_bind().dialect.name == "postgresql":
        pg_stmt = postgresql.insert(Schedule).values(**row)
        session.execute(pg_stmt.on_conflict_do_nothing(index_elements=["name"]))
    else:
        lite_stmt = sqlite.insert(Schedule).values(**row)
        session.execute(lite_stmt.on_conflict_do_nothing(index_elements=["name"]))


def ensure_schedule(
    session: Session, clock: Clock, name: str, kind: str, interval_seconds: int
) -> None:
    """Create the schedule (first run now) or update its kind and interval; safe to race."""
    _check_name("schedule name", name)
    _check_name("kind", kind)
    if interval_seconds < 1:
        raise ValueError("interval_seconds must be at least 1")
    now = clock.now()
    _insert_schedule_if_missing(
        session,
        {"name": name, "kind": kind, "interval_seconds": interval_seconds, "next_run_at": now},
    )
    schedule = session.scalar(select(Schedule).where(Schedule.name == name).with_for_update())
    assert schedule is not None
    schedule.kind = kind
    if schedule.interval_seconds != interval_seconds:
        schedule.interval_seconds = interval_seconds
        # a shorter interval takes effect now rather than after the old, longer wait
        schedule.next_run_at = min(schedule.next_run_at, now + timedelta(seconds=interval_seconds))


def list_schedules(session: Session) -> list[ScheduleInfo]:
    rows = session.scalars(select(Schedule).order_by(Schedule.name))
    return [ScheduleInfo(s.name, s.kind, s.interval_seconds, s.next_run_at) for s in rows]


def schedule_dedupe_key(name: str, slot: datetime) -> str:
    return f"schedule:{name}:{slot.isoformat()}"


def _tick_one(db: Database, clock: Clock, schedule: ScheduleInfo, now: datetime) -> int:
    """Move a due schedule to its next slot; only the worker whose UPDATE matched enqueues."""
    step = timedelta(seconds=schedule.interval_seconds)
    new_next = next_slot_after(schedule.next_run_at, step, now)
    with db.session() as session:
        moved = _rowcount(
            session,
            update(Schedule)
            .where(
                Schedule.name == schedule.name,
                Schedule.next_run_at == schedule.next_run_at,
            )
            .values(next_run_at=new_next),
        )
        if moved != 1:
            return 0  # another worker took this tick
        slot = new_next - step  # the latest slot at or before now: one job however late we are
        enqueue(
            session,
            clock,
            schedule.kind,
            {"schedule": schedule.name, "slot": slot.isoformat()},
            dedupe_key=schedule_dedupe_key(schedule.name, slot),
        )
        return 1


def tick_schedules(db: Database, clock: Clock) -> int:
    """Enqueue one job for every schedule that came due; returns how many this call enqueued.

    next_run_at only ever moves forward, to the first slot strictly after now: a clock jump
    forward fires once (not once per missed slot), and after a jump backwards nothing fires until
    the clock reaches next_run_at again, so no slot ever runs twice.
    """
    now = clock.now()
    with db.session() as session:
        rows = session.scalars(select(Schedule).where(Schedule.next_run_at <= now))
        schedules = [ScheduleInfo(s.name, s.kind, s.interval_seconds, s.next_run_at) for s in rows]
    return sum(_tick_one(db, clock, schedule, now) for schedule in schedules)


def prune_finished(db: Database, clock: Clock, older_than_seconds: float) -> int:
    """Delete done and dead jobs that finished longer ago than the retention period."""
    cutoff = clock.now() - timedelta(seconds=older_than_seconds)
    stmt = delete(Job).where(Job.state.in_((DONE, DEAD)), Job.finished_at < cutoff)
    with db.session() as session:
        return int(getattr(session.execute(stmt), "rowcount", 0) or 0)
