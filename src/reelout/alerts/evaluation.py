"""One evaluation tick, the imperative shell around the pure core: lock, sample every enabled
rule through the SignalSource, step the state machine, store instances and history, run the
digests that are due, route, and queue notifications; all in one transaction.

Ticks run one at a time and in time order: each first locks the evaluator row and does nothing
if a tick at the same or a later time already ran, so two workers never evaluate the same tick
and a late job never moves states backwards.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from reelout.alerts import digest, payloads, routing, rules, service, store
from reelout.alerts.delivery import queue
from reelout.alerts.evaluator import Instance, evaluate, observe
from reelout.alerts.models import AlertEvaluatorLock, AlertReceiver, AlertRuleRow
from reelout.alerts.routing import Route, equals
from reelout.alerts.rules import ALERTNAME, SEVERITY_LABEL, AlertRule, AnyRule, DigestRule
from reelout.alerts.signals import SignalSample, SignalSource
from reelout.clock import Clock
from reelout.config import Settings
from reelout.db.engine import Database
from reelout.jobs import service as jobs

log = logging.getLogger("reelout.alerts")
EVAL_JOB = "alerts.evaluate"
LOCK_NAME = "evaluator"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class TickResult:
    at: datetime
    ran: bool = True
    transitions: int = 0
    notifications: int = 0
    digests: int = 0
    errors: dict[str, str] = field(default_factory=dict)


def _lock(session: Session, now: datetime) -> bool:
    """Take the evaluator row; False when a tick at `now` or later already ran."""
    row = {"name": LOCK_NAME, "last_at": _EPOCH}
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            postgresql.insert(AlertEvaluatorLock).values(**row).on_conflict_do_nothing()
        )
    else:
        session.execute(sqlite.insert(AlertEvaluatorLock).values(**row).on_conflict_do_nothing())
    lock = session.scalar(
        select(AlertEvaluatorLock).where(AlertEvaluatorLock.name == LOCK_NAME).with_for_update()
    )
    assert lock is not None
    if lock.last_at >= now:
        return False
    lock.last_at = now
    return True


def _samples(
    source: SignalSource, rule: AnyRule, windows: Sequence[timedelta], at: datetime
) -> dict[timedelta, Sequence[SignalSample]]:
    scope = rule.signal.scope
    return {w: source.sample(rule.signal.metric, scope, w, at) for w in windows}


def _health(session: Session, rule_id: str, now: datetime, error: str | None) -> None:
    row = session.get(AlertRuleRow, rule_id)
    if row is not None:
        row.last_eval_at, row.last_error = now, error


def _failed(
    session: Session, rule_id: str, now: datetime, exc: Exception, result: TickResult
) -> None:
    """Record a rule's failed evaluation (its alerts keep their states); logged when it is news."""
    error = f"{type(exc).__name__}: {exc}"[:2000]
    row = session.get(AlertRuleRow, rule_id)
    if row is None or row.last_error != error:
        log.warning("alert rule %s: evaluation failed: %s", rule_id, error)
    result.errors[rule_id] = error
    _health(session, rule_id, now, error)


def _evaluate_alerts(
    session: Session,
    source: SignalSource,
    alert_rules: Sequence[AlertRule],
    prior: Sequence[Instance],
    now: datetime,
    result: TickResult,
) -> None:
    for rule in alert_rules:
        try:
            samples = _samples(source, rule, rule.windows(), now)
        except Exception as exc:  # the source is another domain's code: keep the others going
            _failed(session, rule.id, now, exc, result)
            continue
        outcome = evaluate(rule, observe(rule, samples), prior, now)
        store.save_instances(session, rule.id, outcome.instances, outcome.transitions)
        result.transitions += len(outcome.transitions)
        _health(session, rule.id, now, None)


def _receivers(session: Session) -> list[AlertReceiver]:
    return list(session.scalars(select(AlertReceiver).order_by(AlertReceiver.id)))


def _route_of(receiver: AlertReceiver) -> Route:
    return Route(receiver.id, equals(receiver.matchers), receiver.send_resolved)


def _notify(
    session: Session, clock: Clock, settings: Settings, now: datetime, result: TickResult
) -> None:
    receivers = {r.id: r for r in _receivers(session)}
    views = [store.view(inst) for inst in store.load_instances(session)]
    outcome = routing.route(
        views,
        [_route_of(r) for r in receivers.values()],
        service.get_routing(session),
        service.silence_windows(session, now),
        store.load_groups(session),
        now,
    )
    store.save_groups(session, outcome.groups)
    for note in outcome.notifications:
        queue(
            session,
            clock,
            receivers[note.receiver_id],
            payloads.NOTIFICATION_EVENT,
            note.status,
            data=payloads.notification_data(note),
            slack=payloads.slack_notification(note),
            max_attempts=settings.alerts_delivery_attempts,
            group_key=note.group_key,
        )
    result.notifications += len(outcome.notifications)


def digest_labels(rule: DigestRule) -> dict[str, str]:
    return {
        **rule.labels,
        ALERTNAME: rule.id,
        SEVERITY_LABEL: rule.severity.value,
        "kind": "digest",
    }


def _run_digest(
    session: Session,
    clock: Clock,
    settings: Settings,
    source: SignalSource,
    rule: DigestRule,
    slot: datetime,
) -> None:
    assert rule.signal.window is not None
    samples: dict[str, Sequence[SignalSample]] = {
        metric: source.sample(metric, rule.signal.scope, rule.signal.window, slot)
        for metric in digest.metrics_of(rule)
    }
    report = digest.build(rule, samples, slot)
    labels = digest_labels(rule)
    silences = service.silence_windows(session, clock.now())
    if any(s.mutes(labels, clock.now()) for s in silences):
        log.info("digest %s at %s is silenced", rule.id, slot)
        return
    for receiver in _receivers(session):
        if routing.all_match(equals(receiver.matchers), labels):
            queue(
                session,
                clock,
                receiver,
                payloads.DIGEST_EVENT,
                report.status,
                data={
                    "labels": labels,
                    "report": report.to_json(),
                    "text": payloads.digest_text(report),
                },
                slack=payloads.slack_digest(report),
                max_attempts=settings.alerts_delivery_attempts,
                rule_id=rule.id,
            )


def _digests(
    session: Session,
    clock: Clock,
    settings: Settings,
    source: SignalSource,
    digests: Sequence[DigestRule],
    now: datetime,
    result: TickResult,
) -> None:
    for rule in digests:
        row = session.get(AlertRuleRow, rule.id)
        assert row is not None
        if row.next_run_at is None:
            row.next_run_at = rules.next_run(rule.schedule, now)
        if row.next_run_at > now:
            continue
        slot, row.next_run_at = row.next_run_at, rules.next_run(rule.schedule, now)
        try:
            _run_digest(session, clock, settings, source, rule, slot)
        except Exception as exc:  # the source is another domain's code
            _failed(session, rule.id, now, exc, result)
            continue
        _health(session, rule.id, now, None)
        result.digests += 1


def _enabled(session: Session) -> list[AnyRule]:
    found = []
    for row in session.scalars(select(AlertRuleRow).where(AlertRuleRow.enabled.is_(True))):
        try:
            found.append(rules.parse_rule(json.loads(row.body)))
        except (rules.RuleError, ValueError) as exc:  # stored under an older format
            row.last_error = f"the stored rule no longer reads: {exc}"[:2000]
    return found


def evaluate_soon(session: Session, clock: Clock, key: str) -> None:
    """Queue an evaluation now, in the caller's transaction (e.g. after a rollback, so its
    alert fires within seconds rather than at the next scheduled tick); one per `key`."""
    jobs.enqueue(session, clock, EVAL_JOB, {}, dedupe_key=f"{EVAL_JOB}:{key}")


def tick(db: Database, clock: Clock, source: SignalSource, settings: Settings) -> TickResult:
    """Evaluate every enabled rule at `clock.now()`, run due digests and queue notifications."""
    now = clock.now()
    result = TickResult(now)
    with db.session() as session:
        if not _lock(session, now):
            result.ran = False
            return result
        enabled = _enabled(session)
        alert_rules = [r for r in enabled if isinstance(r, AlertRule)]
        store.forget_rules_except(session, [r.id for r in alert_rules])
        prior = store.load_instances(session)
        _evaluate_alerts(session, source, alert_rules, prior, now, result)
        digests = [r for r in enabled if isinstance(r, DigestRule)]
        _digests(session, clock, settings, source, digests, now, result)
        _notify(session, clock, settings, now, result)
    return result
