"""The alerts on `/metrics`, read from the database at scrape time: alerts entering firing and
resolved by rule and severity, notifications queued per receiver, and alerts firing now per
severity; the counts outlive the pruned history, and operator-named labels stay bounded."""

from __future__ import annotations

from reelout.alerts import counters
from reelout.clock import ManualClock
from tests.alerts.conftest import SeriesSource
from tests.alerts.test_end_to_end import add_receiver
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, StartLive
from tests.telemetry.test_prometheus import Samples, scrape, value
from tests.webhooks.receiver import Receiver

RULE = "error-rate-critical"  # the seed's: > 5 % over 5 minutes, at once, page
WHERE = {"environment": "production", "flag": "new-player", "variant": "on"}
TRANSITIONS = "reelout_alert_transitions_total"
NOTIFICATIONS = "reelout_alert_notifications_total"


def minute(server: LiveServer, clock: ManualClock, signals: SeriesSource, bad: float) -> None:
    clock.advance(60)
    signals.add("error_rate", clock.now(), bad * 300, 300, **WHERE)
    run_jobs(server.runtime, tick=True)


def firing(found: Samples) -> dict[str, float]:
    return {labels["severity"]: v for labels, v in found["reelout_alerts_firing"]}


def test_a_firing_alert_and_its_notifications_show_until_it_resolves(
    start_live: StartLive, clock: ManualClock, signals: SeriesSource, receiver: Receiver
) -> None:
    server = start_live(alerts_history_days=1)
    with server.client() as api:
        add_receiver(api, "on-call", "webhook", receiver.url("/hook"))
        api.put("/api/v1/alerts/routing", json={"group_wait": "0s", "group_interval": "1m"})
    minute(server, clock, signals, bad=0.10)
    minute(server, clock, signals, bad=0.10)
    found = scrape(server)
    assert value(found, TRANSITIONS, rule=RULE, severity="page", state="firing") == 1
    assert value(found, TRANSITIONS, state="resolved") == 0
    assert firing(found) == {"page": 1, "warning": 0, "info": 0}
    assert value(found, NOTIFICATIONS, receiver="on-call", event="alert.notification",
                 status="firing") == 1  # fmt: skip

    for _ in range(20):  # the window forgets the errors, keep_firing_for (10 m) runs out
        minute(server, clock, signals, bad=0.0)
    found = scrape(server)
    assert value(found, TRANSITIONS, rule=RULE, severity="page", state="firing") == 1
    assert value(found, TRANSITIONS, rule=RULE, severity="page", state="resolved") == 1
    assert firing(found)["page"] == 0
    assert value(found, NOTIFICATIONS, receiver="on-call", status="resolved") == 1

    clock.advance(2 * 86400)  # past REELOUT_ALERTS_HISTORY_DAYS: the hourly prune runs
    run_jobs(server.runtime, tick=True)
    with server.client() as api:
        history = api.get("/api/v1/alerts/history", params={"rule": RULE}).json()
    assert history["transitions"] == []
    found = scrape(server)
    assert value(found, TRANSITIONS, rule=RULE, state="firing") == 1  # a counter never drops
    assert value(found, NOTIFICATIONS, receiver="on-call", event="alert.notification") == 2
    assert value(found, NOTIFICATIONS, receiver="on-call", event="alert.digest") >= 1  # 09:00


def test_rule_labels_beyond_the_rule_limit_add_up_as_other(start_live: StartLive) -> None:
    """Counts of more rules than REELOUT_ALERTS_MAX_RULES (deleted rules' counts stay) keep
    that many names; the rest add up under `other`, so the series stay bounded."""
    server = start_live(alerts_max_rules=3, seed_alerts=False)
    with server.runtime.db.session() as session:
        for i in range(5):
            counters.bump(session, counters.TRANSITIONS, (f"rule-{i}", "page", "firing"), i + 1)
        counters.bump(session, counters.TRANSITIONS, ("rule-0", "loud", "firing"))
    found = scrape(server)
    named = {labels["rule"]: v for labels, v in found[TRANSITIONS] if labels["severity"] == "page"}
    assert named == {"rule-0": 1, "rule-1": 2, "rule-2": 3, "other": 4 + 5}
    assert value(found, TRANSITIONS, rule="rule-0", severity="other") == 1
    assert scrape(server)[TRANSITIONS] == found[TRANSITIONS]  # the same names every scrape


def test_the_alert_metrics_are_off_with_the_rest(start_live: StartLive) -> None:
    server = start_live(metrics_enabled=False)
    with server.client() as api:
        assert api.get("/metrics").status_code == 404


def test_counts_go_up_in_the_transaction_that_records_them(
    start_live: StartLive, database_url: str
) -> None:
    server = start_live(seed_alerts=False, database_url=database_url)
    try:
        with server.runtime.db.session() as session:
            counters.bump(session, counters.NOTIFICATIONS, ("r", "alert.test", "test"))
            raise RuntimeError("the unit of work fails")
    except RuntimeError:
        pass
    assert NOTIFICATIONS not in scrape(server)
    with server.runtime.db.session() as session:
        counters.bump(session, counters.NOTIFICATIONS, ("r", "alert.test", "test"))
        counters.bump(session, counters.NOTIFICATIONS, ("r", "alert.test", "test"), 2)
    assert value(scrape(server), NOTIFICATIONS, receiver="r", status="test") == 3


def test_a_silenced_alert_still_fires(
    server: LiveServer, clock: ManualClock, signals: SeriesSource
) -> None:
    with server.client() as api:
        reply = api.post(
            "/api/v1/alerts/silences",
            json={"matchers": [{"name": "alertname", "value": RULE}], "duration": "1h",
                  "comment": "known"},
        )  # fmt: skip
        assert reply.status_code == 201, reply.text
    minute(server, clock, signals, bad=0.10)
    assert firing(scrape(server))["page"] == 1
