"""Alert logic behind the API and CLI: rules (CRUD, apply a document), routing, silences,
receivers, and reading alerts, their history and the delivery log. No HTTP here."""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from reelout.alerts import delivery, payloads, rules, store
from reelout.alerts.models import (
    AlertDelivery,
    AlertInstance,
    AlertReceiver,
    AlertRoutingRow,
    AlertRuleRow,
    AlertSilence,
    AlertTransition,
)
from reelout.alerts.routing import AlertView, Matcher, MatchOp, SilenceWindow, muting
from reelout.alerts.rules import AnyRule, DigestRule, Routing, RuleDocument, RuleError
from reelout.alerts.schemas import (
    AlertList,
    AlertOut,
    ApplyOut,
    DeliveryOut,
    DeliveryPage,
    DeliveryState,
    HistoryPage,
    MatcherIn,
    ReceiverCreated,
    ReceiverIn,
    ReceiverKind,
    ReceiverOut,
    RuleOut,
    SilenceIn,
    SilenceOut,
    SilenceState,
    TransitionOut,
)
from reelout.audit import service as audit
from reelout.audit.service import Actor, Target
from reelout.clock import Clock
from reelout.db.paging import decode_cursor, encode_cursor
from reelout.errors import BadRequest, Conflict, NotFound
from reelout.webhooks import addresses, policy
from reelout.webhooks.addresses import IPNetwork
from reelout.webhooks.secretbox import SecretBox, SecretUnreadable
from reelout.webhooks.service import new_secret, secret_hint

ROUTING_TARGET = "routing"


class RuleNotFound(NotFound):
    code = "RULE_NOT_FOUND"

    def __init__(self, rule_id: str) -> None:
        super().__init__(f"no alert rule {rule_id!r}; see GET /api/v1/alerts/rules")


# ---- rules -------------------------------------------------------------------------------------


def check_metrics(rule: AnyRule, known: Collection[str]) -> None:
    """Refuse a rule naming a metric the signal source does not have (422 UNKNOWN_METRIC)."""
    named = [rule.signal.metric]
    if isinstance(rule, DigestRule):
        named += rule.report.metrics
    if unknown := [m for m in named if m not in known]:
        listed = ", ".join(sorted(known)) or "none (no telemetry source is configured)"
        raise RuleError(
            f"rule {rule.id!r} names unknown metric(s) {', '.join(unknown)}; known: {listed}",
            code="UNKNOWN_METRIC",
            details={"rule": rule.id, "unknown": unknown, "known": sorted(known)},
        )


def _rule_out(row: AlertRuleRow) -> RuleOut:
    return RuleOut(
        id=row.id,
        kind=row.kind,
        enabled=row.enabled,
        rule=json.loads(row.body),
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        last_eval_at=row.last_eval_at,
        last_error=row.last_error,
        next_run_at=row.next_run_at,
    )


def list_rules(session: Session) -> list[RuleOut]:
    return [
        _rule_out(row) for row in session.scalars(select(AlertRuleRow).order_by(AlertRuleRow.id))
    ]


def _row(session: Session, rule_id: str, *, lock: bool = False) -> AlertRuleRow:
    row = session.get(AlertRuleRow, rule_id, with_for_update=lock)
    if row is None:
        raise RuleNotFound(rule_id)
    return row


def get_rule(session: Session, rule_id: str) -> RuleOut:
    return _rule_out(_row(session, rule_id))


def _check_room(session: Session, adding: int, max_rules: int) -> None:
    count = session.scalar(select(func.count()).select_from(AlertRuleRow)) or 0
    if count + adding > max_rules:
        raise Conflict(
            f"there would be {count + adding} alert rules, more than "
            f"REELOUT_ALERTS_MAX_RULES={max_rules}; delete some first",
            code="TOO_MANY_RULES",
            details={"max_rules": max_rules},
        )


def store_rule(
    session: Session, clock: Clock, who: Actor, rule: AnyRule, *, audited: bool = True
) -> str:
    """Insert or replace one rule; `created`, `updated` or `unchanged`."""
    body = json.dumps(rules.dump(rule), ensure_ascii=False, sort_keys=True)
    row = session.get(AlertRuleRow, rule.id, with_for_update=True)
    now = clock.now()
    before = None if row is None else json.loads(row.body)
    if row is not None and row.body == body:
        return "unchanged"
    if row is None:
        row = AlertRuleRow(id=rule.id, created_at=now)
        session.add(row)
    row.kind, row.enabled, row.body = rule.kind, rule.enabled, body
    row.updated_at, row.updated_by, row.last_error = now, who.name[:200], None
    row.next_run_at = rules.next_run(rule.schedule, now) if isinstance(rule, DigestRule) else None
    session.flush()
    if not audited:
        return "created" if before is None else "updated"
    patch = audit.patch_of(before or {}, rules.dump(rule))
    audit.record(
        session, clock, who, "alerts.rule_saved", Target("alert_rule", rule.id), patch=patch
    )
    return "created" if before is None else "updated"


def save_rule(
    session: Session,
    clock: Clock,
    who: Actor,
    rule: AnyRule,
    *,
    known: Collection[str],
    max_rules: int,
    create_only: bool = False,
) -> tuple[RuleOut, bool]:
    """Create or replace a rule; (the rule, whether it was created)."""
    check_metrics(rule, known)
    exists = session.get(AlertRuleRow, rule.id) is not None
    if exists and create_only:
        raise Conflict(
            f"an alert rule {rule.id!r} exists; PUT /api/v1/alerts/rules/{rule.id} replaces it",
            code="RULE_EXISTS",
        )
    if not exists:
        _check_room(session, 1, max_rules)
    store_rule(session, clock, who, rule)
    return get_rule(session, rule.id), not exists


def apply_document(
    session: Session,
    clock: Clock,
    who: Actor,
    document: RuleDocument,
    *,
    known: Collection[str],
    max_rules: int,
) -> ApplyOut:
    """Create or replace every rule of the document (and its routing), all or nothing."""
    for rule in document.alert_rules:
        check_metrics(rule, known)
    new = [r for r in document.alert_rules if session.get(AlertRuleRow, r.id) is None]
    _check_room(session, len(new), max_rules)
    out = ApplyOut(created=[], updated=[], unchanged=[], routing="absent")
    for rule in document.alert_rules:
        getattr(out, store_rule(session, clock, who, rule)).append(rule.id)
    if document.routing is not None:
        out.routing = save_routing(session, clock, who, document.routing)
    return out


def ensure_rule(session: Session, clock: Clock, who: Actor, rule: AnyRule) -> bool:
    """Store a built-in rule when no rule has its id (True then); one that exists, edited or
    disabled by a person, is left as it is."""
    if session.get(AlertRuleRow, rule.id) is not None:
        return False
    store_rule(session, clock, who, rule)
    return True


def delete_rule(session: Session, clock: Clock, who: Actor, rule_id: str) -> None:
    """Remove a rule and its alerts (their groups report them resolved)."""
    row = _row(session, rule_id, lock=True)
    patch = audit.patch_of(json.loads(row.body), {})
    session.delete(row)
    session.execute(delete(AlertInstance).where(AlertInstance.rule_id == rule_id))
    audit.record(
        session, clock, who, "alerts.rule_deleted", Target("alert_rule", rule_id), patch=patch
    )


def load_rules(session: Session) -> list[AnyRule]:
    """Every stored rule, parsed (what the evaluator runs)."""
    rows = session.scalars(select(AlertRuleRow).order_by(AlertRuleRow.id))
    return [rules.parse_rule(json.loads(row.body)) for row in rows]


# ---- routing -----------------------------------------------------------------------------------


def get_routing(session: Session) -> Routing:
    row = session.get(AlertRoutingRow, 1)
    return Routing() if row is None else Routing.model_validate_json(row.body)


def save_routing(
    session: Session, clock: Clock, who: Actor, routing: Routing, *, audited: bool = True
) -> str:
    """Replace the routing document; `updated` or `unchanged`."""
    body = routing.model_dump_json(by_alias=True)
    row = session.get(AlertRoutingRow, 1, with_for_update=True)
    before = get_routing(session).model_dump(mode="json")
    if row is not None and row.body == body:
        return "unchanged"
    if row is None:
        row = AlertRoutingRow(id=1)
        session.add(row)
    row.body, row.updated_at, row.updated_by = body, clock.now(), who.name[:200]
    if not audited:
        return "updated"
    patch = audit.patch_of(before, routing.model_dump(mode="json"))
    audit.record(
        session,
        clock,
        who,
        "alerts.routing_saved",
        Target("alert_routing", ROUTING_TARGET),
        patch=patch,
    )
    return "updated"


# ---- silences ----------------------------------------------------------------------------------


def _silence_state(row: AlertSilence, now: datetime) -> SilenceState:
    if now >= row.ends_at:
        return SilenceState.expired
    return SilenceState.pending if now < row.starts_at else SilenceState.active


def _silence_out(row: AlertSilence, now: datetime) -> SilenceOut:
    return SilenceOut(
        id=row.id,
        matchers=[MatcherIn.model_validate(m) for m in row.matchers],
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        comment=row.comment,
        created_by=row.created_by,
        created_at=row.created_at,
        state=_silence_state(row, now),
        expired_by=row.expired_by,
    )


def _silence_end(body: SilenceIn, starts: datetime, now: datetime, max_days: float) -> datetime:
    if (body.ends_at is None) == (body.duration is None):
        raise BadRequest(
            "give a silence either `ends_at` or `duration` (e.g. 2h)", code="SILENCE_END_REQUIRED"
        )
    ends = body.ends_at if body.ends_at is not None else starts + (body.duration or timedelta(0))
    ends = store.utc(ends)
    if ends <= max(starts, now):
        raise BadRequest(
            f"the silence would end at {ends.isoformat()}, which is not after its start and now",
            code="SILENCE_ENDS_BEFORE_START",
        )
    if ends - starts > timedelta(days=max_days):
        raise BadRequest(
            f"a silence lasts at most {max_days:g} days (REELOUT_ALERTS_MAX_SILENCE_DAYS)",
            code="SILENCE_TOO_LONG",
            status=422,
        )
    return ends


def create_silence(
    session: Session,
    clock: Clock,
    who: Actor,
    body: SilenceIn,
    *,
    max_silences: int,
    max_days: float,
) -> SilenceOut:
    now = clock.now()
    starts = store.utc(body.starts_at) if body.starts_at is not None else now
    ends = _silence_end(body, starts, now, max_days)
    live = select(func.count()).select_from(AlertSilence).where(AlertSilence.ends_at > now)
    if (session.scalar(live) or 0) >= max_silences:
        raise Conflict(
            f"there are {max_silences} silences not yet ended, the most allowed "
            "(REELOUT_ALERTS_MAX_SILENCES); expire some first",
            code="TOO_MANY_SILENCES",
        )
    row = AlertSilence(
        id="sil_" + secrets.token_hex(10),
        matchers=[m.model_dump(mode="json") for m in body.matchers],
        starts_at=starts,
        ends_at=ends,
        comment=body.comment,
        created_by=(body.created_by or who.name)[:200],
        created_at=now,
    )
    session.add(row)
    session.flush()
    out = _silence_out(row, now)
    patch = audit.patch_of(
        {},
        out.model_dump(
            mode="json", include={"matchers", "starts_at", "ends_at", "comment", "created_by"}
        ),
    )
    audit.record(
        session, clock, who, "alerts.silence_created", Target("silence", row.id), patch=patch
    )
    return out


def list_silences(
    session: Session, clock: Clock, *, include_expired: bool = False
) -> list[SilenceOut]:
    now = clock.now()
    query = select(AlertSilence).order_by(AlertSilence.ends_at.desc(), AlertSilence.id)
    if not include_expired:
        query = query.where(AlertSilence.ends_at > now)
    return [_silence_out(row, now) for row in session.scalars(query)]


def expire_silence(session: Session, clock: Clock, who: Actor, silence_id: str) -> SilenceOut:
    """End a silence now (one already ended is left as it is)."""
    row = session.get(AlertSilence, silence_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no silence {silence_id!r}", code="SILENCE_NOT_FOUND")
    now = clock.now()
    if row.ends_at > now:
        before = row.ends_at.isoformat()
        row.ends_at, row.expired_by = max(now, row.starts_at), who.name[:200]
        patch = audit.patch_of({"ends_at": before}, {"ends_at": row.ends_at.isoformat()})
        audit.record(
            session, clock, who, "alerts.silence_expired", Target("silence", row.id), patch=patch
        )
    return _silence_out(row, now)


def silence_windows(session: Session, now: datetime) -> list[SilenceWindow]:
    query = select(AlertSilence).where(AlertSilence.ends_at > now)
    return [store.silence_window(row) for row in session.scalars(query)]


# ---- receivers ---------------------------------------------------------------------------------


def _checked_url(url: str, allow: Iterable[IPNetwork]) -> str:
    """The webhooks' URL rule: absolute http(s), and no literal internal address (a host name is
    judged at every connect, see webhooks.pinning)."""
    url = url.strip()
    if (problem := policy.url_problem(url)) is not None:
        raise BadRequest(f"{problem}; got {url!r}", code="INVALID_RECEIVER_URL")
    address = addresses.literal(urlsplit(url).hostname or "")
    why = None if address is None else addresses.refusal(address, allow)
    if why is not None:
        raise BadRequest(
            f"{url!r} points at {address}, which is not allowed: {why}. Receivers only get "
            "public addresses unless REELOUT_WEBHOOK_ALLOW_NETWORKS names the network",
            code="WEBHOOK_ADDRESS_NOT_ALLOWED",
        )
    return url


def _hint(row: AlertReceiver, box: SecretBox) -> str | None:
    if row.secret is None:
        return None
    try:
        return secret_hint(box.open(row.secret))
    except SecretUnreadable:
        return None


def _receiver_out(row: AlertReceiver, box: SecretBox) -> ReceiverOut:
    return ReceiverOut(
        id=row.id,
        kind=ReceiverKind(row.kind),
        url=row.url,
        matchers=dict(row.matchers),
        send_resolved=row.send_resolved,
        description=row.description,
        created_at=row.created_at,
        secret_hint=_hint(row, box),
    )


def _audited(row: AlertReceiver) -> dict[str, Any]:
    return {"kind": row.kind, "url": row.url, "matchers": dict(row.matchers)}


def create_receiver(
    session: Session,
    clock: Clock,
    who: Actor,
    body: ReceiverIn,
    *,
    box: SecretBox,
    allow: Iterable[IPNetwork],
    max_receivers: int,
) -> ReceiverCreated:
    """Add a receiver; a webhook receiver's signing secret is in the reply, and only there."""
    url = _checked_url(body.url, allow)
    if session.get(AlertReceiver, body.id) is not None:
        raise Conflict(f"a receiver {body.id!r} exists; delete it first", code="RECEIVER_EXISTS")
    count = session.scalar(select(func.count()).select_from(AlertReceiver)) or 0
    if count >= max_receivers:
        raise Conflict(
            f"there are already {count} receivers (REELOUT_ALERTS_MAX_RECEIVERS)",
            code="TOO_MANY_RECEIVERS",
        )
    secret = new_secret() if body.kind is ReceiverKind.webhook else None
    row = AlertReceiver(
        id=body.id,
        kind=body.kind.value,
        url=url,
        secret=None if secret is None else box.seal(secret),
        matchers=dict(body.matchers),
        send_resolved=body.send_resolved,
        description=body.description,
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        clock,
        who,
        "alerts.receiver_created",
        Target("receiver", row.id),
        patch=audit.patch_of({}, _audited(row)),
    )
    return ReceiverCreated(**_receiver_out(row, box).model_dump(), secret=secret)


def list_receivers(session: Session, box: SecretBox) -> list[ReceiverOut]:
    rows = session.scalars(select(AlertReceiver).order_by(AlertReceiver.id))
    return [_receiver_out(row, box) for row in rows]


def receiver_row(session: Session, receiver_id: str) -> AlertReceiver:
    row = session.get(AlertReceiver, receiver_id)
    if row is None:
        raise NotFound(f"no receiver {receiver_id!r}", code="RECEIVER_NOT_FOUND")
    return row


def get_receiver(session: Session, receiver_id: str, box: SecretBox) -> ReceiverOut:
    return _receiver_out(receiver_row(session, receiver_id), box)


def delete_receiver(session: Session, clock: Clock, who: Actor, receiver_id: str) -> None:
    """Remove a receiver and its groups; its pending deliveries fail at their next attempt."""
    row = receiver_row(session, receiver_id)
    patch = audit.patch_of(_audited(row), {})
    session.delete(row)
    store.forget_groups(session, receiver_id)
    audit.record(
        session, clock, who, "alerts.receiver_deleted", Target("receiver", receiver_id), patch=patch
    )


def send_test(
    session: Session, clock: Clock, receiver_id: str, *, max_attempts: int
) -> DeliveryOut:
    """Queue a test message to one receiver."""
    delivery_id = delivery.queue(
        session,
        clock,
        receiver_row(session, receiver_id),
        payloads.TEST_EVENT,
        "test",
        data={"receiver": receiver_id, "message": "a test message from Reelout alerts"},
        slack=payloads.slack_test(),
        max_attempts=max_attempts,
    )
    row = session.get(AlertDelivery, delivery_id)
    assert row is not None
    return _delivery_out(row)


def send_message(
    session: Session,
    clock: Clock,
    receiver_id: str,
    event: str,
    status: str,
    *,
    data: dict[str, Any],
    slack: dict[str, Any],
    max_attempts: int,
    kind: str | None = None,
) -> str | None:
    """Queue a message that is not an alert (e.g. a rollout's) to one receiver, through the
    same delivery log, signing and retries; its delivery id, or None when there is no receiver
    `receiver_id` (of `kind`, when given)."""
    row = session.get(AlertReceiver, receiver_id)
    if row is None or (kind is not None and row.kind != kind):
        return None
    return delivery.queue(
        session, clock, row, event, status, data=data, slack=slack, max_attempts=max_attempts
    )


# ---- reading alerts ----------------------------------------------------------------------------


def _alert_out(row: AlertInstance, silenced: Sequence[str], inhibited: Sequence[str]) -> AlertOut:
    return AlertOut(
        fingerprint=row.fingerprint,
        rule=row.rule_id,
        state=row.state,
        labels=dict(row.labels),
        annotations=dict(row.annotations),
        value=row.value,
        numerator=row.numerator,
        denominator=row.denominator,
        details=dict(row.details),
        since=row.state_since,
        active_at=row.active_at,
        fired_at=row.fired_at,
        resolved_at=row.resolved_at,
        last_eval_at=row.last_eval_at,
        silenced_by=list(silenced),
        inhibited_by=list(inhibited),
    )


def list_alerts(
    session: Session, clock: Clock, *, state: str | None = None, rule: str | None = None
) -> AlertList:
    """The alerts that are not inactive, with what mutes them now; newest state first."""
    now = clock.now()
    rows = list(session.scalars(select(AlertInstance).order_by(AlertInstance.state_since.desc())))
    views: list[AlertView] = [store.view(row) for row in rows]
    muted = muting(views, silence_windows(session, now), get_routing(session).inhibit, now)
    out = []
    for row in rows:
        if (state is None or row.state == state) and (rule is None or row.rule_id == rule):
            m = muted.get(row.fingerprint)
            out.append(_alert_out(row, m.silenced_by if m else (), m.inhibited_by if m else ()))
    return AlertList(alerts=out)


def history(
    session: Session,
    *,
    rule: str | None = None,
    fingerprint: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> HistoryPage:
    """Every state change, newest first, keyset-paginated."""
    t = AlertTransition
    query = select(t).order_by(t.at.desc(), t.id.desc())
    if rule is not None:
        query = query.where(t.rule_id == rule)
    if fingerprint is not None:
        query = query.where(t.fingerprint == fingerprint)
    if cursor:
        at, key = decode_cursor(cursor)
        if not key.isdigit():
            raise BadRequest("the cursor is not one this server gave out", code="INVALID_CURSOR")
        query = query.where((t.at < at) | ((t.at == at) & (t.id < int(key))))
    rows = list(session.scalars(query.limit(limit + 1)))
    more, rows = len(rows) > limit, rows[:limit]
    return HistoryPage(
        transitions=[
            TransitionOut(
                id=r.id,
                fingerprint=r.fingerprint,
                rule=r.rule_id,
                labels=dict(r.labels),
                from_state=r.from_state,
                to_state=r.to_state,
                at=r.at,
                value=r.value,
                summary=r.summary,
            )
            for r in rows
        ],
        next_cursor=encode_cursor(rows[-1].at, str(rows[-1].id)) if more and rows else None,
    )


def _delivery_out(row: AlertDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        receiver_id=row.receiver_id,
        event=row.event,
        status=row.status,
        rule_id=row.rule_id,
        url=row.url,
        state=DeliveryState(row.state),
        attempts=row.attempts,
        last_status=row.last_status,
        last_error=row.last_error,
        last_error_code=row.last_error_code,
        last_attempt_at=row.last_attempt_at,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


def deliveries(
    session: Session,
    *,
    receiver: str | None = None,
    state: DeliveryState | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> DeliveryPage:
    """The delivery log, newest first, keyset-paginated."""
    d = AlertDelivery
    query = select(d).order_by(d.created_at.desc(), d.id.desc())
    if receiver is not None:
        query = query.where(d.receiver_id == receiver)
    if state is not None:
        query = query.where(d.state == state.value)
    if cursor:
        at, key = decode_cursor(cursor)
        query = query.where((d.created_at < at) | ((d.created_at == at) & (d.id < key)))
    rows = list(session.scalars(query.limit(limit + 1)))
    more, rows = len(rows) > limit, rows[:limit]
    return DeliveryPage(
        deliveries=[_delivery_out(r) for r in rows],
        next_cursor=encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None,
    )


def vetoes(session: Session, *, flag: str, environment: str | None = None) -> list[AlertOut]:
    """The alerts firing now (or held firing) that veto a rollout of `flag`: those of page
    severity and those of rules with the `pause_rollouts` action, whose labels name the flag
    (`flag=<key>`) and, when they name an environment, `environment`. An alert about one
    rollout (a `rollout=<id>` label, such as the rollback page) vetoes no other: a rollout rolled
    back an hour ago must not pause the next try. Silences do not lift a veto: they mute
    notifications, not the evidence. Oldest first."""
    return vetoes_of(rollout_vetoes(session), flag=flag, environment=environment)


def rollout_vetoes(session: Session) -> list[AlertOut]:
    """The alerts firing now (or held firing) that veto the rollouts of the flag they name, every
    flag at once (`vetoes` without its flag and environment: a controller tick reads them once
    and keeps each rollout's with `vetoes_of`). Oldest first."""
    query = (
        select(AlertInstance)
        .where(AlertInstance.state.in_(("firing", "recovering")))
        .order_by(AlertInstance.state_since, AlertInstance.fingerprint)
    )
    firing = list(session.scalars(query))
    if not firing:  # the usual case: no rule to read (a rollout controller asks every tick)
        return []
    pausing = {
        r.id for r in load_rules(session)
        if isinstance(r, rules.AlertRule) and rules.Action.pause_rollouts in r.actions
    }  # fmt: skip
    found = []
    for row in firing:
        labels = row.labels
        paging = labels.get(rules.SEVERITY_LABEL) == rules.Severity.page.value
        if (paging or row.rule_id in pausing) and "flag" in labels and "rollout" not in labels:
            found.append(_alert_out(row, (), ()))
    return found


def vetoes_of(
    found: Iterable[AlertOut], *, flag: str, environment: str | None = None
) -> list[AlertOut]:
    """Those of `rollout_vetoes` that veto a rollout of `flag` in `environment` (see `vetoes`)."""
    return [
        alert
        for alert in found
        if alert.labels.get("flag") == flag
        and (environment is None or alert.labels.get("environment", environment) == environment)
    ]


def matchers_of(raw: Sequence[dict[str, str]]) -> tuple[Matcher, ...]:
    return tuple(Matcher(m["name"], m["value"], MatchOp(m.get("op", "="))) for m in raw)
