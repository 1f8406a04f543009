"""The exposure log: what OFREP served (and SDKs report) is recorded once per user, variant and
day, counted per variant for cohort metrics, bounded in memory and purged after retention."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from reelout.clock import ManualClock
from reelout.flags.exposures import service as exposures
from reelout.flags.exposures.models import FlagExposure
from reelout.flags.exposures.service import ExposureRecorder
from tests.support.live import LiveServer, StartLive

DAY = 86400
FLAGS = {
    "flags": {
        "player": {
            "state": "ENABLED",
            "variants": {"a": "media_kit", "b": "video_player"},
            "defaultVariant": "a",
        },
        "use_tus_upload": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [{"in": [{"var": "cohort"}, ["beta"]]}, "on", "off"]},
        },
        "rollout": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"fractional": [["on", 30], ["off", 70]]},
        },
        "old_player": {
            "state": "DISABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
        },
    }
}
Row = tuple[str, str, str, str, str]  # environment, day, flag, targeting key, variant


@dataclass
class Reelout:
    """A live server whose exposure recorder the test flushes itself."""

    live: LiveServer
    recorder: ExposureRecorder
    clock: ManualClock
    client_key: str

    def admin(self) -> httpx.Client:
        return self.live.client()

    def app(self) -> httpx.Client:
        return self.live.client(token=self.client_key)

    def rows(self) -> list[Row]:
        """The exposure log as stored, after writing what is queued."""
        self.recorder.flush()
        with self.live.runtime.db.read() as session:
            stored = session.scalars(select(FlagExposure)).all()
            return sorted(
                (e.environment, e.day.isoformat(), e.flag_key, e.targeting_key, e.variant)
                for e in stored
            )


Start = Callable[..., Reelout]


@pytest.fixture
def start(live_servers: StartLive, database_url: str) -> Start:
    """Starts servers on one database (flushing only when the test says: a 1 h interval)."""
    servers: list[LiveServer] = []
    clock = ManualClock()

    def start_one(**overrides: object) -> Reelout:
        live = live_servers(
            f"server{len(servers)}",
            clock=clock,
            database_url=database_url,
            exposure_flush_seconds=3600,
            **overrides,
        )
        servers.append(live)
        with live.client() as admin:
            if not servers[1:]:
                reply = admin.put("/api/v1/environments/production/flagset", json=FLAGS)
                assert reply.status_code in (200, 201), reply.text
            key = admin.post(
                "/api/v1/keys", json={"scope": "client", "environment": "production", "name": "a"}
            ).json()["key"]
        return Reelout(live, live.app.state.exposures, clock, key)

    return start_one


@pytest.fixture
def reelout(start: Start) -> Reelout:
    return start()


def bulk(app: httpx.Client, **context: object) -> httpx.Response:
    reply = app.post("/ofrep/v1/evaluate/flags", json={"context": context})
    assert reply.status_code == 200, reply.text
    return reply


def one(app: httpx.Client, key: str, **context: object) -> dict[str, Any]:
    reply = app.post(f"/ofrep/v1/evaluate/flags/{key}", json={"context": context})
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def report(app: httpx.Client, items: list[dict[str, str]]) -> httpx.Response:
    return app.post("/api/v1/exposures", json={"exposures": items})


def seen(user: str, day: str = "2026-01-01", **variants: str) -> list[Row]:
    return [("production", day, flag, user, variant) for flag, variant in variants.items()]


def test_bulk_evaluation_records_each_flag_with_a_variant_once_a_day(reelout: Reelout) -> None:
    with reelout.app() as app:
        served = {f["key"]: f.get("variant") for f in bulk(app, targetingKey="u1").json()["flags"]}
        rollout = served["rollout"]
        assert served["old_player"] is None  # DISABLED: no variant, nothing recorded
        first_day = seen("u1", player="a", rollout=rollout, use_tus_upload="off")
        assert reelout.rows() == sorted(first_day)

        bulk(app, targetingKey="u1")
        assert reelout.rows() == sorted(first_day), "the same day adds nothing"

        reelout.clock.advance(DAY)
        bulk(app, targetingKey="u1")
        next_day = seen("u1", "2026-01-02", player="a", rollout=rollout, use_tus_upload="off")
        assert reelout.rows() == sorted(first_day + next_day)


def test_a_new_variant_the_same_day_is_a_new_row(reelout: Reelout) -> None:
    with reelout.app() as app:
        bulk(app, targetingKey="u1")
        bulk(app, targetingKey="u1", cohort="beta")
    tus = [row for row in reelout.rows() if row[2] == "use_tus_upload"]
    assert tus == seen("u1", use_tus_upload="off") + seen("u1", use_tus_upload="on")


def test_single_flag_evaluation_records_that_flag(reelout: Reelout) -> None:
    with reelout.app() as app:
        assert one(app, "use_tus_upload", targetingKey="u7", cohort="beta")["variant"] == "on"
    assert reelout.rows() == seen("u7", use_tus_upload="on")


def test_nothing_is_recorded_without_a_targeting_key_or_a_variant(reelout: Reelout) -> None:
    with reelout.app() as app:
        bulk(app)  # no targetingKey
        bulk(app, cohort="beta")
        assert one(app, "player")["variant"] == "a"
        assert "variant" not in one(app, "old_player", targetingKey="u1")  # DISABLED
        missing = app.post(
            "/ofrep/v1/evaluate/flags/nope", json={"context": {"targetingKey": "u1"}}
        )
        assert missing.status_code == 404
    assert reelout.rows() == []


def test_counts_are_distinct_users_per_variant_per_day(reelout: Reelout) -> None:
    users = [f"user-{n}" for n in range(150)]
    with reelout.app() as app:
        served = Counter(one(app, "rollout", targetingKey=u)["variant"] for u in users)
        for user in users[:40]:  # the same users again the same day count once
            one(app, "rollout", targetingKey=user)
        reelout.clock.advance(DAY)
        next_day = Counter(one(app, "rollout", targetingKey=u)["variant"] for u in users[:10])
    reelout.recorder.flush()
    assert served["on"] and served["off"], "a 30/70 split of 150 users has both variants"

    with reelout.admin() as admin:
        reply = admin.get(
            "/api/v1/environments/production/exposures",
            params={"flag": "rollout", "since": "2026-01-01", "until": "2026-01-02"},
        )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "environment": "production", "flag": "rollout",
        "since": "2026-01-01", "until": "2026-01-02",
        "days": [
            {"day": "2026-01-01", "variants": dict(served)},
            {"day": "2026-01-02", "variants": dict(next_day)},
        ],
    }  # fmt: skip


def test_the_service_tells_which_variant_a_user_saw(reelout: Reelout) -> None:
    with reelout.app() as app:
        bulk(app, targetingKey="u1")
        bulk(app, targetingKey="u1", cohort="beta")
    reelout.recorder.flush()
    with reelout.live.runtime.db.read() as session:
        saw = exposures.variant_of(session, "production", "use_tus_upload", "u1", date(2026, 1, 1))
        other_day = exposures.variant_of(
            session, "production", "use_tus_upload", "u1", date(2026, 1, 2)
        )
        counts = exposures.variant_counts(
            session, "production", "use_tus_upload", date(2026, 1, 1), date(2026, 1, 1)
        )
    assert saw == ["off", "on"]
    assert other_day == []
    assert counts == [exposures.DayCounts(date(2026, 1, 1), {"off": 1, "on": 1})]


def test_counts_default_to_the_last_30_days_and_check_their_input(reelout: Reelout) -> None:
    with reelout.admin() as admin:
        url = "/api/v1/environments/production/exposures"
        default = admin.get(url, params={"flag": "rollout"}).json()
        assert (default["since"], default["until"], default["days"]) == (
            "2025-12-03", "2026-01-01", []
        )  # fmt: skip
        backwards = admin.get(
            url, params={"flag": "x", "since": "2026-01-02", "until": "2026-01-01"}
        )
        assert (backwards.status_code, backwards.json()["code"]) == (400, "INVALID_RANGE")
        unknown = admin.get("/api/v1/environments/moon/exposures", params={"flag": "rollout"})
        assert (unknown.status_code, unknown.json()["code"]) == (404, "UNKNOWN_ENVIRONMENT")
        no_flag = admin.get(url)
        assert (no_flag.status_code, no_flag.json()["code"]) == (422, "INVALID_REQUEST")
    with reelout.app() as app:
        assert app.get(url, params={"flag": "rollout"}).status_code == 403


def test_sdks_report_exposures_in_batches_up_to_the_limit(start: Start) -> None:
    reelout = start(exposure_max_batch=3)
    batch = [
        {"flag": "rollout", "variant": "on", "targetingKey": "sdk-1"},
        {"flag": "rollout", "variant": "off", "targetingKey": "sdk-2"},
        {"flag": "rollout", "variant": "on", "targetingKey": "sdk-1"},  # a repeat
    ]
    with reelout.app() as app:
        accepted = report(app, batch)
        assert (accepted.status_code, accepted.json()) == (202, {"received": 3, "dropped": 0})
        too_many = report(app, [*batch, {"flag": "f", "variant": "v", "targetingKey": "sdk-3"}])
        assert (too_many.status_code, too_many.json()["code"]) == (413, "EXPOSURE_BATCH_TOO_LARGE")
        assert "REELOUT_EXPOSURE_MAX_BATCH" in too_many.json()["message"]
    assert reelout.rows() == seen("sdk-1", rollout="on") + seen("sdk-2", rollout="off")


def test_bad_exposure_batches_get_clear_errors(reelout: Reelout) -> None:
    with reelout.app() as app:
        not_json = app.post("/api/v1/exposures", content=b"{nope")
        assert (not_json.status_code, not_json.json()["code"]) == (400, "INVALID_JSON")
        no_key = report(app, [{"flag": "rollout", "variant": "on"}])
        assert (no_key.status_code, no_key.json()["code"]) == (422, "INVALID_EXPOSURES")
        assert no_key.json()["details"]["errors"][0]["loc"] == ["exposures", 0, "targetingKey"]
        wrong_shape = app.post("/api/v1/exposures", json=[{"flag": "rollout"}])
        assert (wrong_shape.status_code, wrong_shape.json()["code"]) == (422, "INVALID_EXPOSURES")
    with reelout.admin() as admin:
        admin_key = report(admin, [{"flag": "f", "variant": "v", "targetingKey": "u"}])
        assert (admin_key.status_code, admin_key.json()["code"]) == (403, "CLIENT_KEY_REQUIRED")
    with reelout.live.client(token=None) as anonymous:
        assert report(anonymous, []).status_code == 401
    assert reelout.rows() == []


def test_past_the_pending_limit_new_exposures_are_dropped_and_counted(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    reelout = start(exposure_max_pending=3)
    with reelout.app() as app:
        bulk(app, targetingKey="u1")  # three exposures: exactly the limit
        assert (reelout.recorder.pending, reelout.recorder.dropped) == (3, 0)
        bulk(app, targetingKey="u2")  # three more: dropped
        assert (reelout.recorder.pending, reelout.recorder.dropped) == (3, 3)
        item = {"flag": "rollout", "variant": "on", "targetingKey": "sdk"}
        assert report(app, [item]).json() == {"received": 1, "dropped": 1}
        with caplog.at_level(logging.WARNING, logger="reelout.flags.exposures"):
            assert [row[3] for row in reelout.rows()] == ["u1", "u1", "u1"]
        assert "dropped 4 exposures" in caplog.text
        assert "REELOUT_EXPOSURE_MAX_PENDING" in caplog.text

        bulk(app, targetingKey="u2")  # dropped ones were not remembered: recorded now
    assert sorted(row[3] for row in reelout.rows()) == ["u1"] * 3 + ["u2"] * 3


def test_the_in_memory_dedup_is_bounded(start: Start) -> None:
    reelout = start(exposure_dedup_max=3)
    with reelout.app() as app:
        bulk(app, targetingKey="u1")
        bulk(app, targetingKey="u1")  # within the bound: known, not queued again
        assert reelout.recorder.pending == 3
        bulk(app, targetingKey="u2")  # u2's three push u1's out of memory
        bulk(app, targetingKey="u1")  # so u1 is queued again...
        assert reelout.recorder.pending == 9
    assert len(reelout.rows()) == 6  # ...and the database dedups it


def test_exposures_past_retention_are_purged(start: Start) -> None:
    reelout = start(exposure_retention_days=2)
    with reelout.app() as app:
        bulk(app, targetingKey="u1")  # 2026-01-01
        reelout.clock.advance(2 * DAY)
        bulk(app, targetingKey="u2")  # 2026-01-03: 01-01 is 2 days old, kept
        assert {row[1] for row in reelout.rows()} == {"2026-01-01", "2026-01-03"}
        reelout.clock.advance(DAY)  # 2026-01-04: 01-01 is past retention
        assert {row[1] for row in reelout.rows()} == {"2026-01-03"}


def test_two_servers_on_one_database_dedup_in_the_database(start: Start) -> None:
    first, second = start(), start()
    for server in (first, second):
        with server.app() as app:
            bulk(app, targetingKey="u1")
    assert first.recorder.flush() == 3
    assert second.recorder.flush() == 3  # sent, and left out by ON CONFLICT DO NOTHING
    assert len(first.rows()) == 3
    assert second.rows() == first.rows()


def test_what_is_queued_is_written_on_shutdown(reelout: Reelout) -> None:
    with reelout.app() as app:
        bulk(app, targetingKey="u1")
    assert reelout.recorder.pending == 3
    reelout.live.stop()
    with reelout.live.runtime.db.read() as session:
        assert len(session.scalars(select(FlagExposure)).all()) == 3


def test_the_exposure_log_can_be_turned_off(start: Start) -> None:
    reelout = start(exposure_log=False)
    with reelout.app() as app:
        bulk(app, targetingKey="u1")
        item = {"flag": "rollout", "variant": "on", "targetingKey": "sdk"}
        assert report(app, [item]).json() == {"received": 1, "dropped": 0}
    assert reelout.recorder.pending == 0
    assert reelout.rows() == []
