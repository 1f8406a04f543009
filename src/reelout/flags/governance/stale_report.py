"""The stale-flag report: flags of an environment that have served one outcome to everyone, unchanged,
for N days, so their code paths can be removed (the analysis itself is in `stale`)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reelout.clock import Clock
from reelout.flags.admin import service
from reelout.flags.admin.models import FlagAuditEntry, FlagAuditKey
from reelout.flags.engine import stale
from reelout.flags.governance.schemas import StaleFlagOut, StaleReport

Touch = tuple[datetime, int]
"""When a revision changed something, and its number."""


def last_touched(session: Session, environment: str) -> dict[str, Touch]:
    """Each flag's latest change in the environment, from the audit log's touched-flags table."""
    query = (
        select(
            FlagAuditKey.flag_key,
            func.max(FlagAuditEntry.at),
            func.max(FlagAuditEntry.revision),
        )
        .join(FlagAuditEntry, FlagAuditKey.audit_id == FlagAuditEntry.id)
        .where(FlagAuditEntry.environment == environment)
        .group_by(FlagAuditKey.flag_key)
    )
    return {key: (at, revision) for key, at, revision in session.execute(query)}


def evaluator_changes(session: Session, environment: str, wanted: set[str]) -> dict[str, Touch]:
    """When each wanted shared evaluator last changed (read from the audit diffs, newest first)."""
    found: dict[str, Touch] = {}
    query = (
        select(FlagAuditEntry.at, FlagAuditEntry.revision, FlagAuditEntry.diff)
        .where(FlagAuditEntry.environment == environment)
        .order_by(FlagAuditEntry.at.desc(), FlagAuditEntry.id.desc())
    )
    for at, revision, diff in session.execute(query):
        changed = stale.evaluators_changed(json.loads(diff))
        names = wanted if stale.ALL_EVALUATORS in changed else changed & wanted
        for name in names:
            found.setdefault(name, (at, revision))
        if wanted <= set(found):
            break
    return found


def _since(names: set[str], touched: Touch, evaluators: dict[str, Touch]) -> Touch | None:
    """The flag's own last change, or a later change of an evaluator it uses (None: unknown)."""
    if not names <= set(evaluators):
        return None
    return max([touched, *(evaluators[name] for name in names)])


def report(session: Session, clock: Clock, environment: str, days: int) -> StaleReport:
    """Flags serving one outcome to everyone whose last change is at least `days` days old."""
    flag_set = service.current(session, environment)
    document = flag_set.document()
    evaluators = document.get("$evaluators", {})
    cutoff = clock.now() - timedelta(days=days)
    touched = last_touched(session, environment)
    candidates = []
    for key, flag in sorted(document.get("flags", {}).items()):
        verdict = stale.one_variant(flag, evaluators)
        if verdict is not None and key in touched:
            candidates.append((key, verdict, stale.refs(flag.get("targeting"))))
    wanted = set().union(*(names for _, _, names in candidates))
    changed = evaluator_changes(session, environment, wanted) if wanted else {}
    out: list[StaleFlagOut] = []
    for key, verdict, names in candidates:
        since = _since(names, touched[key], changed)
        if since is None or since[0] > cutoff:
            continue
        out.append(
            StaleFlagOut(
                key=key,
                variant=verdict.variant,
                value=verdict.value,
                why=verdict.why,
                detail=verdict.detail,
                since=since[0],
                since_revision=since[1],
            )
        )
    return StaleReport(environment=environment, days=days, revision=flag_set.revision, flags=out)
