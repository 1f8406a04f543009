"""Flag-set admin logic: revisions per environment, per-flag edits, kill, rollout percentage,
promote, revert, the template and its first-start seed, audit."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import jsonpatch
from sqlalchemy import Select, bindparam, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reelout.auth.schemas import Scope
from reelout.auth.service import Principal
from reelout.clock import Clock
from reelout.config import Settings
from reelout.db.paging import decode_cursor, encode_cursor
from reelout.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from reelout.flags.admin import arms, writes
from reelout.flags.admin.changes import Head
from reelout.flags.admin.models import (
    FlagAuditEntry,
    FlagAuditKey,
    FlagEnvironment,
    FlagSetRevision,
)
from reelout.flags.admin.schemas import (
    AuditAction,
    AuditEntryOut,
    AuditPage,
    DiffSummary,
    EnvironmentOut,
    InitEnvironment,
    InitOut,
    PromotionOut,
    RevisionOut,
    RevisionPage,
    WriteOut,
)
from reelout.flags.engine import fractional, templates, validation

MAX_REASON_CHARS = 2000


# ---- documents ---------------------------------------------------------------------------------


def render(document: dict[str, Any]) -> str:
    """How a flag set edited by the server is stored: two-space indented JSON, keys in order."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


EMPTY = render({"flags": {}})


def etag(environment: str, revision: int) -> str:
    return f'"{environment}-r{revision}"'


@dataclass(frozen=True)
class StoredFlagSet:
    """An environment's current flag set: the stored text and its revision (0: none yet)."""

    environment: str
    revision: int
    text: str
    updated_at: datetime | None = None

    @property
    def etag(self) -> str:
        return etag(self.environment, self.revision)

    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.text)
        return parsed


@dataclass(frozen=True)
class Edit:
    """Who makes a change, why, and the ETag (If-Match) it was based on, if given."""

    who: Principal
    reason: str | None = None
    if_match: str | None = None


class UnknownEnvironment(NotFound):
    code = "UNKNOWN_ENVIRONMENT"

    def __init__(self, environment: str, environments: list[str]) -> None:
        super().__init__(
            f"no environment {environment!r}; the environments are {', '.join(environments)}",
            details={"environments": environments},
        )


def check_environment(environment: str, environments: list[str]) -> str:
    if environment not in environments:
        raise UnknownEnvironment(environment, environments)
    return environment


def check_reason(reason: str | None) -> str | None:
    if reason is None or not reason.strip():
        return None
    if len(reason) > MAX_REASON_CHARS:
        raise BadRequest(
            f"the change reason is {len(reason)} characters; at most {MAX_REASON_CHARS}",
            code="REASON_TOO_LONG",
        )
    return reason.strip()


# ---- reading -----------------------------------------------------------------------------------


def _latest(session: Session, environment: str) -> FlagSetRevision | None:
    query = (
        select(FlagSetRevision)
        .where(FlagSetRevision.environment == environment)
        .order_by(FlagSetRevision.revision.desc())
        .limit(1)
    )
    return session.scalars(query).first()


# The head revision as one column, not an ORM row: read on every slow-path OFREP request.
_HEAD_REVISION = select(FlagEnvironment.revision).where(
    FlagEnvironment.name == bindparam("environment")
)


def head_revision(session: Session, environment: str) -> int:
    """The environment's latest revision number (0: none yet), read without the flag set."""
    return session.scalar(_HEAD_REVISION, {"environment": environment}) or 0


def heads(session: Session) -> list[Head]:
    """Every written environment's head revision: what the change feed watches."""
    rows = session.execute(
        select(FlagEnvironment.name, FlagEnvironment.revision, FlagEnvironment.updated_at)
    )
    return [Head(name, revision, changed_at) for name, revision, changed_at in rows]


def current(session: Session, environment: str) -> StoredFlagSet:
    row = _latest(session, environment)
    if row is None:
        return StoredFlagSet(environment, 0, EMPTY)
    return StoredFlagSet(environment, row.revision, row.document, row.created_at)


def environments(session: Session, names: list[str]) -> list[EnvironmentOut]:
    out = []
    for name in names:
        flag_set = current(session, name)
        out.append(
            EnvironmentOut(
                name=name,
                revision=flag_set.revision,
                etag=flag_set.etag,
                flags=len(flag_set.document().get("flags", {})),
                updated_at=flag_set.updated_at,
            )
        )
    return out


def get_flag(session: Session, environment: str, key: str) -> tuple[StoredFlagSet, dict[str, Any]]:
    flag_set = current(session, environment)
    return flag_set, _flag(flag_set.document(), environment, key)


def _flag(document: dict[str, Any], environment: str, key: str) -> dict[str, Any]:
    flag = document.get("flags", {}).get(key)
    if not isinstance(flag, dict):
        raise NotFound(f"no flag {key!r} in {environment}", code="FLAG_NOT_FOUND")
    return flag


def list_revisions(session: Session, environment: str, limit: int = 50) -> RevisionPage:
    query = (
        select(FlagSetRevision)
        .where(FlagSetRevision.environment == environment)
        .order_by(FlagSetRevision.revision.desc())
        .limit(limit)
    )
    return RevisionPage(revisions=[_revision_out(row) for row in session.scalars(query)])


def _revision_out(row: FlagSetRevision) -> RevisionOut:
    return RevisionOut(
        environment=row.environment,
        revision=row.revision,
        created_at=row.created_at,
        author=row.author_name,
        author_key_id=row.author_key_id,
        reason=row.reason,
    )


def get_revision(session: Session, environment: str, revision: int) -> FlagSetRevision:
    query = select(FlagSetRevision).where(
        FlagSetRevision.environment == environment, FlagSetRevision.revision == revision
    )
    row = session.scalars(query).first()
    if row is None:
        raise NotFound(f"{environment} has no revision {revision}", code="REVISION_NOT_FOUND")
    return row


# ---- writing -----------------------------------------------------------------------------------


def _head(session: Session, clock: Clock, environment: str) -> FlagEnvironment:
    """The environment's head row, locked: writers to one environment go one at a time."""
    head = session.get(FlagEnvironment, environment, with_for_update=True)
    if head is not None:
        return head
    try:
        with session.begin_nested():
            session.add(FlagEnvironment(name=environment, revision=0, updated_at=clock.now()))
    except IntegrityError:
        pass  # another writer created it first
    head = session.get(FlagEnvironment, environment, with_for_update=True, populate_existing=True)
    assert head is not None
    return head


def lock_environment(session: Session, clock: Clock, environment: str) -> None:
    """Hold the environment's head row until the transaction ends: its writers wait behind it."""
    _head(session, clock, environment)


def matches(if_match: str, current_etag: str) -> bool:
    """Whether an If-Match / If-None-Match header names the current ETag (or is `*`)."""
    tags = [tag.strip().removeprefix("W/") for tag in if_match.split(",")]
    return "*" in tags or current_etag in tags


def _begin(session: Session, clock: Clock, environment: str, edit: Edit) -> StoredFlagSet:
    _head(session, clock, environment)
    flag_set = current(session, environment)
    if edit.if_match is not None and not matches(edit.if_match, flag_set.etag):
        raise PreconditionFailed(
            f"the flag set of {environment} changed since you read it (it is now "
            f"{flag_set.etag}); read it again and re-apply your change",
            code="STALE_FLAG_SET",
            headers={"ETag": flag_set.etag},
            details={"etag": flag_set.etag, "if_match": edit.if_match},
        )
    return flag_set


def _touched(patch: list[dict[str, Any]], old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys: set[str] = set()
    for op in patch:
        parts = op["path"].split("/")
        if parts[1:2] == ["flags"] and len(parts) > 2:
            keys.add(parts[2].replace("~1", "/").replace("~0", "~"))
        elif parts[1:2] in (["flags"], [""]):
            keys |= set(old.get("flags", {})) | set(new.get("flags", {}))
    return sorted(keys)


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """RFC 6902 JSON Patch that turns `old` into `new`."""
    patch: list[dict[str, Any]] = jsonpatch.make_patch(old, new).patch
    return patch


@dataclass(frozen=True)
class Record:
    """What one write stores in the audit log besides who and why."""

    action: AuditAction
    flag_key: str | None = None
    source_environment: str | None = None
    source_revision: int | None = None


def _unchanged(before: StoredFlagSet) -> WriteOut:
    return WriteOut(
        environment=before.environment, revision=before.revision, etag=before.etag, changed=False
    )


def _audit(
    session: Session, edit: Edit, record: Record, revision: FlagSetRevision, patch: list[Any]
) -> FlagAuditEntry:
    entry = FlagAuditEntry(
        environment=revision.environment,
        revision=revision.revision,
        actor=edit.who.name,
        actor_key_id=edit.who.key_id,
        at=revision.created_at,
        action=record.action.value,
        flag_key=record.flag_key,
        diff=json.dumps(patch, ensure_ascii=False),
        reason=edit.reason,
        source_environment=record.source_environment,
        source_revision=record.source_revision,
    )
    session.add(entry)
    session.flush()
    return entry


def _store(
    session: Session, clock: Clock, before: StoredFlagSet, text: str, edit: Edit, record: Record
) -> WriteOut:
    """A new revision with `text` (unless it is the current one) and its audit entry."""
    if text == before.text:
        return _unchanged(before)
    old, new = before.document(), json.loads(text)
    head = session.get(FlagEnvironment, before.environment)  # locked by _begin
    assert head is not None
    head.revision, head.updated_at = before.revision + 1, clock.now()
    revision = FlagSetRevision(
        environment=before.environment,
        revision=head.revision,
        document=text,
        created_at=head.updated_at,
        author_key_id=edit.who.key_id,
        author_name=edit.who.name,
        reason=edit.reason,
    )
    session.add(revision)
    writes.mark(session, before.environment)
    patch = diff(old, new)
    entry = _audit(session, edit, record, revision, patch)
    for key in _touched(patch, old, new):
        session.add(FlagAuditKey(audit_id=entry.id, flag_key=key))
    return WriteOut(
        environment=before.environment,
        revision=head.revision,
        etag=etag(before.environment, head.revision),
        changed=True,
    )


def put_flag_set(
    session: Session, clock: Clock, environment: str, body: bytes, edit: Edit
) -> WriteOut:
    """Replace the whole set with `body`, stored byte for byte once it is valid."""
    validation.check(validation.parse(body))
    text = body.decode("utf-8")
    before = _begin(session, clock, environment, edit)
    return _store(session, clock, before, text, edit, Record(AuditAction.put))


Change = Callable[[dict[str, Any]], None]


def _edit_flags(
    session: Session, clock: Clock, environment: str, edit: Edit, record: Record, change: Change
) -> tuple[WriteOut, dict[str, Any]]:
    """Apply `change(document)` in place, validate the result and store it."""
    before = _begin(session, clock, environment, edit)
    document = before.document()
    change(document)
    if document == before.document():  # e.g. killing a disabled flag: no new revision
        return _unchanged(before), document
    validation.check(document)
    return _store(session, clock, before, render(document), edit, record), document


def _object(body: bytes) -> dict[str, Any]:
    value = validation.parse(body)
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object", code="INVALID_JSON")
    return value


def put_flag(
    session: Session, clock: Clock, environment: str, key: str, body: bytes, edit: Edit
) -> tuple[WriteOut, dict[str, Any]]:
    """Create or replace one flag."""
    flag = _object(body)

    def change(document: dict[str, Any]) -> None:
        document.setdefault("flags", {})[key] = flag

    written, _ = _edit_flags(
        session, clock, environment, edit, Record(AuditAction.put, key), change
    )
    return written, flag


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch: members of `patch` replace, null removes, objects merge."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = merge_patch(out.get(name), value)
    return out


def merge_diff(old: Any, new: Any) -> Any:
    """The RFC 7396 merge patch that turns `old` into `new` (`merge_patch(old, it) == new`):
    objects member by member, removed members as null, anything else replaced whole. A patch
    cannot set a member to null, so `new` holds none inside objects."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    out: dict[str, Any] = {name: None for name in old if name not in new}
    for name, value in new.items():
        if name not in old or old[name] != value:
            out[name] = merge_diff(old.get(name), value)
    return out


def patch_flag(
    session: Session, clock: Clock, environment: str, key: str, body: bytes, edit: Edit
) -> tuple[WriteOut, dict[str, Any]]:
    """Merge-patch one existing flag, e.g. `{"state": "DISABLED"}` or `{"defaultVariant": "on"}`."""
    patch = _object(body)

    def change(document: dict[str, Any]) -> None:
        document["flags"][key] = merge_patch(_flag(document, environment, key), patch)

    record = Record(AuditAction.patch, key)
    written, document = _edit_flags(session, clock, environment, edit, record, change)
    return written, document["flags"][key]


def delete_flag(session: Session, clock: Clock, environment: str, key: str, edit: Edit) -> WriteOut:
    def change(document: dict[str, Any]) -> None:
        _flag(document, environment, key)
        del document["flags"][key]

    record = Record(AuditAction.delete, key)
    return _edit_flags(session, clock, environment, edit, record, change)[0]


def kill(
    session: Session, clock: Clock, environment: str, key: str, edit: Edit
) -> tuple[WriteOut, dict[str, Any]]:
    """The kill switch: the flag's state becomes DISABLED (a no-op when it already is)."""

    def change(document: dict[str, Any]) -> None:
        _flag(document, environment, key)["state"] = "DISABLED"

    record = Record(AuditAction.kill, key)
    written, document = _edit_flags(session, clock, environment, edit, record, change)
    return written, document["flags"][key]


# ---- rollout percentage ------------------------------------------------------------------------

ROLLOUT_TOTAL = 100  # the weights a rollout writes: percent and 100 - percent


def _rollout_variant(flag: dict[str, Any], key: str, variant: str | None) -> str:
    """The variant a rollout gives its share: the one named, else the only non-default one."""
    variants = flag.get("variants", {})
    if variant is not None:
        if variant not in variants:
            raise BadRequest(
                f"{key} has no variant {variant!r}; its variants are {', '.join(variants)}",
                code="UNKNOWN_VARIANT",
            )
        return variant
    others: list[str] = [name for name in variants if name != flag.get("defaultVariant")]
    if len(others) != 1:
        raise BadRequest(
            f"{key} has {len(others)} variants besides its default; name the one to roll out",
            code="ROLLOUT_VARIANT_REQUIRED",
        )
    return others[0]


def _open_else(rule: Any) -> list[Any] | None:
    """The branches of a rule `{"if": [condition, variant, ..., variant]}` whose last branch
    (everyone the conditions leave) is a plain variant name, so a rollout can split those users
    and keep the rule's earlier branches (the template's "beta users get it"); else None."""
    if not isinstance(rule, dict) or list(rule) != ["if"]:
        return None
    branches = rule["if"]
    if isinstance(branches, list) and len(branches) % 2 == 1 and isinstance(branches[-1], str):
        return branches
    return None


def _two_way(flag: dict[str, Any], key: str) -> tuple[list[Any], int] | None:
    """The flag's one two-way `fractional` split and where its buckets start; None without
    targeting or with a rule whose last branch can take one (`_open_else`); refused when the
    rule has no split, several, or one of more than two buckets."""
    if not flag.get("targeting"):
        return None
    splits = fractional.splits(flag["targeting"])
    if not splits and _open_else(flag["targeting"]) is not None:
        return None
    start = 0 if splits and isinstance(splits[0][0], list) else 1
    buckets = splits[0][start:] if len(splits) == 1 else []
    names = [b[0] for b in buckets if isinstance(b, list) and b and isinstance(b[0], str)]
    if len(buckets) != 2 or len(set(names)) != 2:
        raise Conflict(
            f"{key}'s targeting is not a single two-way fractional split; a percentage only "
            "sets one of those (or a flag without targeting): edit the flag's JSON instead",
            code="NOT_A_TWO_WAY_SPLIT",
        )
    return splits[0], start


def set_rollout_split(flag: dict[str, Any], key: str, percent: int, variant: str | None) -> None:
    """Give `percent`% of users the rollout variant through a two-way `fractional` split (made
    when the flag has no targeting). Bucket order, bucketing value and flag key are kept, so a
    user's bucket never moves: raising the percentage only adds users, lowering only removes."""
    if not 0 <= percent <= ROLLOUT_TOTAL:
        raise BadRequest(f"the percentage is {percent}; give 0 to 100", code="INVALID_PERCENT")
    found = _two_way(flag, key)
    if found is None:
        rule = flag.get("targeting")
        branches = _open_else(rule) if rule else None
        target = _rollout_variant(flag, key, variant)
        rest = branches[-1] if branches else flag.get("defaultVariant")
        if not isinstance(rest, str) or rest == target:
            raise BadRequest(
                f"{key} gives {rest!r} to the users a rollout would split; roll out another "
                "variant",
                code="ROLLOUT_VARIANT_IS_DEFAULT",
            )
        split = {"fractional": [[target, percent], [rest, ROLLOUT_TOTAL - percent]]}
        if branches:
            branches[-1] = split
        else:
            flag["targeting"] = split
        return
    args, start = found
    names = [bucket[0] for bucket in args[start:]]
    target = _rollout_variant(flag, key, variant) if variant else _split_variant(flag, names)
    if target not in names:
        raise BadRequest(
            f"{key}'s split is between {' and '.join(names)}, not {target!r}",
            code="UNKNOWN_VARIANT",
        )
    for offset, name in enumerate(names):
        share = percent if name == target else ROLLOUT_TOTAL - percent
        args[start + offset] = [name, share]


def _split_variant(flag: dict[str, Any], names: list[str]) -> str:
    """Which side of a split is the rollout: the one that is not the default, else the first."""
    others = [name for name in names if name != flag.get("defaultVariant")]
    return others[0] if len(others) == 1 else names[0]


def rollout_share(flag: dict[str, Any]) -> tuple[str, float] | None:
    """The variant a percentage would roll out and its share now (percent), or None when the
    flag's targeting is not one a percentage can set."""
    try:
        found = _two_way(flag, "")
        if found is None:
            return _rollout_variant(flag, "", None), 0.0
    except (BadRequest, Conflict):
        return None
    args, start = found
    weights = [fractional.weight_of(b[1]) if len(b) > 1 else 1 for b in args[start:]]
    names = [bucket[0] for bucket in args[start:]]
    target, total = _split_variant(flag, names), sum(w or 0 for w in weights)
    return target, 100 * (weights[names.index(target)] or 0) / total if total else 0.0


def rollout(
    session: Session,
    clock: Clock,
    environment: str,
    key: str,
    percent: int,
    edit: Edit,
    variant: str | None = None,
) -> tuple[WriteOut, dict[str, Any]]:
    """Set the share of users a flag's rollout variant gets (see `set_rollout_split`)."""

    def change(document: dict[str, Any]) -> None:
        set_rollout_split(_flag(document, environment, key), key, percent, variant)

    record = Record(AuditAction.rollout, key)
    written, document = _edit_flags(session, clock, environment, edit, record, change)
    return written, document["flags"][key]


# ---- a staged rollout's arms ---------------------------------------------------------------


def rollout_arms(
    session: Session,
    clock: Clock,
    environment: str,
    key: str,
    split: arms.Arms,
    edit: Edit,
) -> tuple[WriteOut, FlagAuditEntry | None]:
    """Write a staged rollout's arms split (`arms.set_rollout_arms`) as one audited revision
    (action `rollout_arms`); the audit entry is None when the flag already had that split."""

    def change(document: dict[str, Any]) -> None:
        arms.set_rollout_arms(_flag(document, environment, key), key, split)

    record = Record(AuditAction.rollout_arms, key)
    written, _ = _edit_flags(session, clock, environment, edit, record, change)
    return written, _written_entry(session, written)


def rollback_to_control(
    session: Session, clock: Clock, environment: str, key: str, split: arms.Arms, edit: Edit
) -> tuple[WriteOut, FlagAuditEntry | None]:
    """Everyone gets the plain control and the rollout's own variants go
    (`arms.set_variant_for_everyone`), as one audited revision (action `rollback`). Like `kill`,
    it is a flag-set write: once committed, the app's `FlagWrites` pokes the change feed and
    every connected OFREP event stream gets a `refetchEvaluation` at once."""
    return _end_rollout(session, clock, environment, key, split, edit, split.control)


def complete_with_treatment(
    session: Session, clock: Clock, environment: str, key: str, split: arms.Arms, edit: Edit
) -> tuple[WriteOut, FlagAuditEntry | None]:
    """Everyone gets the plain treatment and the rollout's own variants go, as one audited
    revision (action `rollout_complete`), heard by the event streams like the rollback."""
    return _end_rollout(session, clock, environment, key, split, edit, split.treatment)


def _end_rollout(
    session: Session,
    clock: Clock,
    environment: str,
    key: str,
    split: arms.Arms,
    edit: Edit,
    variant: str,
) -> tuple[WriteOut, FlagAuditEntry | None]:
    def change(document: dict[str, Any]) -> None:
        arms.set_variant_for_everyone(_flag(document, environment, key), key, variant, split)

    action = AuditAction.rollback if variant == split.control else AuditAction.rollout_complete
    written, _ = _edit_flags(session, clock, environment, edit, Record(action, key), change)
    return written, _written_entry(session, written)


def _written_entry(session: Session, written: WriteOut) -> FlagAuditEntry | None:
    if not written.changed:
        return None
    query = select(FlagAuditEntry).where(
        FlagAuditEntry.environment == written.environment,
        FlagAuditEntry.revision == written.revision,
    )
    return session.scalars(query).one()


def latest_audit_of(session: Session, environment: str, key: str) -> FlagAuditEntry | None:
    """The newest audit entry that changed flag `key` in `environment` (whole-set writes that
    touched it included)."""
    query = _audit_query(AuditFilter(environment=environment, flag=key)).limit(1)
    return session.scalars(query).first()


def summary(old: dict[str, Any], new: dict[str, Any]) -> DiffSummary:
    """Which flags a change adds, removes and changes."""
    before, after = old.get("flags", {}), new.get("flags", {})
    return DiffSummary(
        added=sorted(set(after) - set(before)),
        removed=sorted(set(before) - set(after)),
        changed=sorted(key for key in set(before) & set(after) if before[key] != after[key]),
    )


def promote(
    session: Session,
    clock: Clock,
    source: str,
    target: str,
    edit: Edit,
    *,
    dry_run: bool,
) -> PromotionOut:
    """Make the target's set equal to the source's; a dry run only shows the difference."""
    if source == target:
        raise BadRequest("promote from one environment to another", code="SAME_ENVIRONMENT")
    origin = current(session, source)
    before = _begin(session, clock, target, edit) if not dry_run else current(session, target)
    old, new = before.document(), origin.document()
    out = PromotionOut(
        source=source,
        target=target,
        source_revision=origin.revision,
        target_revision=before.revision,
        applied=False,
        patch=diff(old, new),
        summary=summary(old, new),
    )
    if dry_run:
        return out
    record = Record(AuditAction.promote, None, source, origin.revision)
    written = _store(session, clock, before, origin.text, edit, record)
    return out.model_copy(update={"target_revision": written.revision, "applied": written.changed})


def promote_as_previewed(
    session: Session,
    clock: Clock,
    source: str,
    target: str,
    edit: Edit,
    *,
    source_revision: int,
    target_revision: int,
) -> PromotionOut:
    """Apply a promotion exactly as a dry run showed it (the source and target revisions it
    answered): 412 `STALE_FLAG_SET` when either moved since, and nothing is written once the
    caller's transaction rolls back."""
    guarded = replace(edit, if_match=etag(target, target_revision))
    done = promote(session, clock, source, target, guarded, dry_run=False)
    if done.source_revision != source_revision:
        raise PreconditionFailed(
            f"{source} changed while you were deciding (it is now at revision "
            f"{done.source_revision}); promote again to see the new difference",
            code="STALE_FLAG_SET",
        )
    return done


def revert(session: Session, clock: Clock, environment: str, revision: int, edit: Edit) -> WriteOut:
    """A new revision equal to an earlier one."""
    old = get_revision(session, environment, revision)
    before = _begin(session, clock, environment, edit)
    record = Record(AuditAction.revert, None, environment, revision)
    return _store(session, clock, before, old.document, edit, record)


def _template(name: str, environment: str) -> dict[str, Any]:
    document = templates.template(name, environment)
    if document is None:
        raise NotFound(
            f"no template {name!r}; the templates are {', '.join(templates.TEMPLATES)}",
            code="UNKNOWN_TEMPLATE",
            details={"templates": list(templates.TEMPLATES)},
        )
    return document


def _write_template(
    session: Session, clock: Clock, environment: str, document: dict[str, Any], edit: Edit
) -> InitEnvironment:
    before = _begin(session, clock, environment, edit)
    if before.revision and before.document() == document:
        written = _unchanged(before)
    else:
        written = _store(session, clock, before, render(document), edit, Record(AuditAction.init))
    return InitEnvironment(
        environment=environment, revision=written.revision, changed=written.changed
    )


def init_template(
    session: Session,
    clock: Clock,
    name: str,
    environments: list[str],
    edit: Edit,
    *,
    force: bool = False,
) -> InitOut:
    """Write a template's flag set in every environment. Idempotent: a set that already is the
    template stays as it is; other flags are refused unless forced."""
    documents = {env: _template(name, env) for env in environments}
    occupied = [
        env
        for env in environments
        if (found := current(session, env).document()).get("flags") and found != documents[env]
    ]
    if occupied and not force:
        raise Conflict(
            f"{', '.join(occupied)} already ha{'s' if len(occupied) == 1 else 've'} flags; "
            "pass force=true to replace them (the old sets stay as revisions)",
            code="FLAGS_EXIST",
            details={"environments": occupied},
        )
    done = [_write_template(session, clock, env, documents[env], edit) for env in environments]
    return InitOut(template=name, environments=done)


SYSTEM = Principal(key_id="system", name="system", scope=Scope.admin, environment=None)
SEED_REASON = "first start: the video-rollout template (REELOUT_SEED_FLAGS)"


def seed(session: Session, clock: Clock, environments: list[str]) -> list[str]:
    """First start: the video-rollout template, written by `system`, in every environment that
    has no revision yet; an environment with any revision (even an emptied set) is left alone.
    Safe when processes start together: each environment is checked under its lock."""
    edit, seeded = Edit(SYSTEM, SEED_REASON), []
    for env in environments:
        if head_revision(session, env):
            continue
        if _begin(session, clock, env, edit).revision:  # another process seeded it meanwhile
            continue
        _write_template(session, clock, env, _template(templates.VIDEO_ROLLOUT, env), edit)
        seeded.append(env)
    return seeded


def seed_on_start(session: Session, clock: Clock, settings: Settings) -> None:
    """The first-start step of `reelout.startup.prepare`: `seed`, unless REELOUT_SEED_FLAGS=false."""
    if settings.seed_flags:
        seed(session, clock, settings.environments)


# ---- the audit log -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    """What `list_audit` narrows to; None means any."""

    environment: str | None = None
    flag: str | None = None
    actor: str | None = None
    action: AuditAction | None = None
    since: datetime | None = None
    until: datetime | None = None


def _audit_out(row: FlagAuditEntry, flags: list[str]) -> AuditEntryOut:
    return AuditEntryOut(
        id=row.id,
        environment=row.environment,
        revision=row.revision,
        actor=row.actor,
        actor_key_id=row.actor_key_id,
        at=row.at,
        action=AuditAction(row.action),
        flag=row.flag_key,
        flags=flags,
        diff=json.loads(row.diff),
        reason=row.reason,
        source_environment=row.source_environment,
        source_revision=row.source_revision,
    )


def _audit_query(where: AuditFilter) -> Select[FlagAuditEntry]:
    query = select(FlagAuditEntry).order_by(FlagAuditEntry.at.desc(), FlagAuditEntry.id.desc())
    if where.environment is not None:
        query = query.where(FlagAuditEntry.environment == where.environment)
    if where.flag is not None:
        touched = exists().where(
            FlagAuditKey.audit_id == FlagAuditEntry.id, FlagAuditKey.flag_key == where.flag
        )
        query = query.where((FlagAuditEntry.flag_key == where.flag) | touched)
    if where.actor is not None:
        query = query.where(FlagAuditEntry.actor == where.actor)
    if where.action is not None:
        query = query.where(FlagAuditEntry.action == where.action.value)
    if where.since is not None:
        query = query.where(FlagAuditEntry.at >= where.since)
    if where.until is not None:
        query = query.where(FlagAuditEntry.at < where.until)
    return query


def _after(query: Select[FlagAuditEntry], cursor: str) -> Select[FlagAuditEntry]:
    at, key = decode_cursor(cursor)
    if not key.isdigit():
        raise BadRequest("the cursor is not one this server gave out", code="INVALID_CURSOR")
    entry_id = int(key)
    return query.where(
        (FlagAuditEntry.at < at) | ((FlagAuditEntry.at == at) & (FlagAuditEntry.id < entry_id))
    )


def _flags_of(session: Session, ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {entry_id: [] for entry_id in ids}
    query = (
        select(FlagAuditKey).where(FlagAuditKey.audit_id.in_(ids)).order_by(FlagAuditKey.flag_key)
    )
    for row in session.scalars(query):
        out[row.audit_id].append(row.flag_key)
    return out


def list_audit(
    session: Session,
    where: AuditFilter = AuditFilter(),
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> AuditPage:
    """Newest first, keyset-paginated so pages stay stable while changes arrive."""
    query = _audit_query(where)
    if cursor:
        query = _after(query, cursor)
    rows: list[FlagAuditEntry] = list(session.scalars(query.limit(limit + 1)))
    more, rows = len(rows) > limit, rows[:limit]
    flags = _flags_of(session, [row.id for row in rows])
    return AuditPage(
        entries=[_audit_out(row, flags[row.id]) for row in rows],
        next_cursor=encode_cursor(rows[-1].at, str(rows[-1].id)) if more and rows else None,
    )
