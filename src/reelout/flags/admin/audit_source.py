"""The flag audit log as a source of the audit trail's one list of every change."""

from __future__ import annotations

from sqlalchemy import case, exists, func, select

from reelout.audit.service import ChangeFilter, Changes, text
from reelout.flags.admin.models import FlagAuditEntry, FlagAuditKey

SOURCE = "flags"


def flag_changes(where: ChangeFilter) -> Changes:
    """Flag audit entries labelled as `audit.service.COLUMNS`: action `flag.<action>`, target the
    flag a per-flag call addressed, else the environment; `target` also finds every change that
    touched that flag."""
    e = FlagAuditEntry
    query: Changes = select(
        text(SOURCE).label("source"), e.id.label("id"), e.at.label("at"),
        text("flags").label("area"), (text("flag.") + e.action).label("action"),
        e.actor.label("actor"), e.actor_key_id.label("actor_key_id"),
        e.environment.label("environment"),
        case((e.flag_key.is_not(None), text("flag")), else_=text("environment")).label(
            "target_kind"
        ),
        func.coalesce(e.flag_key, e.environment).label("target_id"),
        e.reason.label("reason"), e.diff.label("patch"),
    )  # fmt: skip
    if where.target is not None:
        touched = exists().where(
            FlagAuditKey.audit_id == e.id, FlagAuditKey.flag_key == where.target
        )
        whole_set = e.flag_key.is_(None) & (e.environment == where.target)
        query = query.where((e.flag_key == where.target) | touched | whole_set)
    return query
