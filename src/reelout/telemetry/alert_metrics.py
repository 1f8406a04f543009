"""The alerts on `/metrics`, as a prometheus-client custom collector that reads the database at
scrape time: the evaluator and the notifiers run wherever a worker runs, so an in-process count
would show only what this process did. Labels fed by operators (rule ids, receiver ids) keep
their names for as many as the settings allow to exist at once (REELOUT_ALERTS_MAX_RULES,
REELOUT_ALERTS_MAX_RECEIVERS) per process; more (deleted ones' counts stay) count as `other`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy.exc import SQLAlchemyError

from reelout.alerts import counters
from reelout.alerts.payloads import DIGEST_EVENT, NOTIFICATION_EVENT, TEST_EVENT
from reelout.alerts.rules import Severity
from reelout.context import Core
from reelout.telemetry.metric_labels import OTHER, FirstSeen

log = logging.getLogger(__name__)
MAX_STATUSES = 16  # notification statuses (firing, resolved, test, a digest's verdicts)
SEVERITIES = frozenset(severity.value for severity in Severity)
STATES = frozenset(state.value for state in counters.COUNTED_STATES)
EVENTS = frozenset({NOTIFICATION_EVENT, DIGEST_EVENT, TEST_EVENT})
ROLLOUT_EVENT = "rollout."  # the rollouts' messages to their plans' targets: rollout.paused, …
Labels = tuple[str, ...]


def _fixed(allowed: frozenset[str]) -> Callable[[str], str]:
    return lambda value: value if value in allowed else OTHER


class AlertMetrics:
    """`reelout_alert_transitions_total`, `reelout_alert_notifications_total` and
    `reelout_alerts_firing`, read from the alerts' tables at each scrape."""

    def __init__(self, core: Core) -> None:
        self.core = core
        settings = core.settings
        self._rules: FirstSeen[str] = FirstSeen(settings.alerts_max_rules, OTHER)
        self._receivers: FirstSeen[str] = FirstSeen(settings.alerts_max_receivers, OTHER)
        self._statuses: FirstSeen[str] = FirstSeen(MAX_STATUSES, OTHER)

    def collect(self) -> Iterator[Metric]:
        try:
            with self.core.db.read() as session:
                found = counters.read(session)
        except SQLAlchemyError:  # the rest of the scrape still answers
            log.warning("alert metrics: the database could not be read", exc_info=True)
            return
        transitions = CounterMetricFamily(
            "reelout_alert_transitions",
            "Alerts that entered a state (firing, resolved, nodata), by rule and severity; an "
            "alert back to firing from recovering never stopped, so it is not counted again.",
            labels=("rule", "severity", "state"),
        )
        relabel = (self._rules.label, _fixed(SEVERITIES), _fixed(STATES))
        for labels, count in _summed(found.counters[counters.TRANSITIONS], relabel):
            transitions.add_metric(labels, count)
        yield transitions
        notifications = CounterMetricFamily(
            "reelout_alert_notifications",
            "Messages queued to alert receivers, by receiver, event (alert.notification, "
            "alert.digest, alert.test, a rollout's rollout.paused, rollout.rolled_back, "
            "rollout.completed, rollout.aborted) and status (firing, resolved, a digest's "
            "verdict, test, a rollout's state).",
            labels=("receiver", "event", "status"),
        )
        relabel = (self._receivers.label, _event, self._statuses.label)
        for labels, count in _summed(found.counters[counters.NOTIFICATIONS], relabel):
            notifications.add_metric(labels, count)
        yield notifications
        firing = GaugeMetricFamily(
            "reelout_alerts_firing",
            "Alerts firing now (recovering ones included: still held firing), by severity; a "
            "silenced alert still fires, only its notifications stop.",
            labels=("severity",),
        )
        by_severity: dict[Labels, int] = {(s,): count for s, count in found.firing.items()}
        for labels, count in _summed(by_severity, (_fixed(SEVERITIES),)):
            firing.add_metric(labels, count)
        yield firing

    def describe(self) -> Iterator[Metric]:
        return iter(())  # read at scrape time: nothing to collect when registering


def _event(value: str) -> str:
    """A notification's event: the alerts' fixed set, and the rollouts' four `rollout.*`
    events (named in code, never by an operator)."""
    return value if value in EVENTS or value.startswith(ROLLOUT_EVENT) else OTHER


def _summed(
    counts: dict[Labels, int], relabel: Sequence[Callable[[str], str]]
) -> list[tuple[Labels, int]]:
    """The counts under their bounded labels (those beyond a cap add up under `other`), with
    the label values met in sorted order so that the first ones named are the same each time."""
    out: dict[Labels, int] = {}
    for labels, count in sorted(counts.items()):
        if len(labels) != len(relabel):
            continue  # a row this version does not know how to read
        shown = tuple(fn(value) for fn, value in zip(relabel, labels, strict=True))
        out[shown] = out.get(shown, 0) + count
    return sorted(out.items())
