"""Migrations build the schema the models describe, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from reelout.db.base import Base
from reelout.db.migrate import current_heads, upgrade
from reelout.models import load_all
from reelout.rollouts import service as rollouts
from reelout.runtime import Runtime
from tests.rollouts.conftest import PLAN
from tests.support.settings import make_settings, start_runtime


def test_migrations_match_the_models(tmp_path: Path, database_url: str) -> None:
    rt = start_runtime(make_settings(tmp_path, database_url=database_url))
    upgrade(rt.db)  # idempotent
    assert current_heads(rt.db) == {"0021"}
    load_all()
    with rt.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    rt.db.dispose()


def test_0007_names_the_video_of_existing_webhook_events(tmp_path: Path, database_url: str) -> None:
    rt = Runtime.from_settings(make_settings(tmp_path, blank=True, database_url=database_url))
    upgrade(rt.db, "0006")
    bodies = {
        "evt_a": '{"id":"evt_a","type":"video.ready","data":{"video":{"uid":"' + "a" * 32 + '"}}}',
        "evt_b": '{"id":"evt_b","type":"video.error","data":{}}',
    }
    insert = text(
        "INSERT INTO webhook_events (id, type, created_at, body) VALUES (:id, 'video.ready', :at, :body)"
    )
    with rt.db.engine.begin() as conn:
        for event_id, body in bodies.items():
            conn.execute(insert, {"id": event_id, "at": "2026-12-02 10:00:00", "body": body})
    upgrade(rt.db)
    with rt.db.engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT id, video_uid FROM webhook_events")).all())
    assert rows == {"evt_a": "a" * 32, "evt_b": None}
    rt.db.dispose()


def test_0009_starts_each_existing_video_history_at_its_current_state(
    tmp_path: Path, database_url: str
) -> None:
    rt = Runtime.from_settings(make_settings(tmp_path, blank=True, database_url=database_url))
    upgrade(rt.db, "0008")
    insert = text(
        "INSERT INTO videos (uid, created_at, modified_at, state, source, meta, renditions, "
        "allowed_origins, require_signed_urls, error_code, error_text) VALUES (:uid, "
        "'2026-12-01 10:00:00', :at, :state, 'direct', '{}', '[]', '[]', false, :code, :text)"
    )
    videos = [
        {"uid": "a" * 32, "at": "2026-12-01 11:00:00", "state": "ready", "code": None, "text": None},
        {"uid": "b" * 32, "at": "2026-12-01 12:00:00", "state": "error", "code": "ERR_DECODE",
         "text": "the encoder failed"},
    ]  # fmt: skip
    with rt.db.engine.begin() as conn:
        for video in videos:
            conn.execute(insert, video)
    upgrade(rt.db)
    query = "SELECT video_uid, at, from_state, to_state, error_code, reason, attempt"
    with rt.db.engine.connect() as conn:
        rows = conn.execute(text(query + " FROM video_state_changes ORDER BY id")).all()
    assert [(r[0], str(r[1])[:19], r[2], r[3], r[4], r[6]) for r in rows] == [
        ("a" * 32, "2026-12-01 11:00:00", None, "ready", None, None),
        ("b" * 32, "2026-12-01 12:00:00", None, "error", "ERR_DECODE", None),
    ]
    assert rows[0][5].startswith("the state when the history began")
    assert rows[1][5] == "the encoder failed"
    rt.db.dispose()


def test_0015_adds_up_existing_minute_rollups_per_hour(tmp_path: Path, database_url: str) -> None:
    rt = Runtime.from_settings(make_settings(tmp_path, blank=True, database_url=database_url))
    upgrade(rt.db, "0014")
    insert = text(
        "INSERT INTO telemetry_rollups (environment, metric, flag, minute, variant, platform, "
        "app_version, n, sum_x, sum_x2, sum_d, sum_d2, sum_xd, hist) VALUES ('production', "
        "'video_startup_seconds', 'f', :minute, 'on', :platform, '1.0', :n, :x, :x, :n, :n, :x, "
        ":hist)"
    )
    minutes = [
        {"minute": "2026-12-01 10:00:00", "n": 1.0, "x": 2.0, "hist": '{"14":1.0}'},
        {"minute": "2026-12-01 10:59:00", "n": 2.0, "x": 3.0, "hist": '{"14":1.0,"20":1.0}'},
        {"minute": "2026-12-01 10:59:00", "platform": "web", "n": 1.0, "x": 1.0, "hist": None},
        {"minute": "2026-12-01 11:00:00", "n": 1.0, "x": 1.0, "hist": None},
    ]
    with rt.db.engine.begin() as conn:
        for minute in minutes:
            conn.execute(insert, {"platform": "ios", **minute})
    upgrade(rt.db)  # the hour rows add up every platform and app version
    query = (
        "SELECT hour, n, sum_x, sum_x2, sum_d, sum_d2, sum_xd, hist FROM telemetry_rollups_hourly"
    )
    with rt.db.engine.connect() as conn:
        rows = conn.execute(text(query + " ORDER BY hour")).all()
    assert [(str(r[0])[:19], *r[1:]) for r in rows] == [
        ("2026-12-01 10:00:00", 4.0, 6.0, 6.0, 4.0, 4.0, 6.0, '{"14":2.0,"20":1.0}'),
        ("2026-12-01 11:00:00", 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, None),
    ]
    rt.db.dispose()


def test_0018_adds_up_existing_minute_rollups_over_platforms(
    tmp_path: Path, database_url: str
) -> None:
    rt = Runtime.from_settings(make_settings(tmp_path, blank=True, database_url=database_url))
    upgrade(rt.db, "0017")
    insert = text(
        "INSERT INTO telemetry_rollups (environment, metric, flag, minute, variant, platform, "
        "app_version, n, sum_x, sum_x2, sum_d, sum_d2, sum_xd, hist) VALUES ('production', "
        "'video_startup_seconds', 'f', :minute, :variant, :platform, :version, :n, :x, :x, :n, "
        ":n, :x, :hist)"
    )
    minutes = [
        {"minute": "2026-12-01 10:00:00", "n": 1.0, "x": 2.0, "hist": '{"14":1.0}'},
        {"minute": "2026-12-01 10:00:00", "platform": "web", "n": 2.0, "x": 3.0,
         "hist": '{"14":1.0,"20":1.0}'},
        {"minute": "2026-12-01 10:00:00", "version": "2.0", "n": 1.0, "x": 1.0, "hist": None},
        {"minute": "2026-12-01 10:00:00", "variant": "off", "n": 1.0, "x": 4.0, "hist": None},
        {"minute": "2026-12-01 10:01:00", "n": 0.0, "x": 0.0, "hist": None},
    ]  # fmt: skip
    with rt.db.engine.begin() as conn:
        for minute in minutes:
            conn.execute(insert, {"platform": "ios", "version": "1.0", "variant": "on", **minute})
    upgrade(rt.db)  # a total per minute and variant, wherever a minute row is (empty or not)
    query = (
        "SELECT minute, variant, n, sum_x, sum_x2, sum_d, sum_d2, sum_xd, hist "
        "FROM telemetry_rollups_minutely"
    )
    with rt.db.engine.connect() as conn:
        rows = conn.execute(text(query + " ORDER BY minute, variant")).all()
    assert [(str(r[0])[:19], *r[1:]) for r in rows] == [
        ("2026-12-01 10:00:00", "off", 1.0, 4.0, 4.0, 1.0, 1.0, 4.0, None),
        ("2026-12-01 10:00:00", "on", 4.0, 6.0, 6.0, 4.0, 4.0, 6.0, '{"14":2.0,"20":1.0}'),
        ("2026-12-01 10:01:00", "on", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None),
    ]
    rt.db.dispose()


def test_0020_adds_up_existing_hour_rollups_per_utc_day(tmp_path: Path, database_url: str) -> None:
    rt = Runtime.from_settings(make_settings(tmp_path, blank=True, database_url=database_url))
    upgrade(rt.db, "0019")
    insert = text(
        "INSERT INTO telemetry_rollups_hourly (environment, metric, flag, hour, variant, n, sum_x, "
        "sum_x2, sum_d, sum_d2, sum_xd, hist) VALUES ('production', 'video_startup_seconds', 'f', "
        ":hour, :variant, :n, :x, :x, :n, :n, :x, :hist)"
    )
    hours = [
        {"hour": "2026-12-01 00:00:00", "n": 1.0, "x": 2.0, "hist": '{"14":1.0}'},
        {"hour": "2026-12-01 23:00:00", "n": 2.0, "x": 3.0, "hist": '{"14":1.0,"20":1.0}'},
        {"hour": "2026-12-01 23:00:00", "variant": "off", "n": 1.0, "x": 4.0, "hist": None},
        {"hour": "2026-12-02 00:00:00", "n": 1.0, "x": 1.0, "hist": None},
        {"hour": "2026-12-03 05:00:00", "n": 0.0, "x": 0.0, "hist": None},
    ]  # fmt: skip
    with rt.db.engine.begin() as conn:
        for hour in hours:
            conn.execute(insert, {"variant": "on", **hour})
    upgrade(rt.db)  # a day row per UTC day and variant, wherever an hour row is
    query = (
        "SELECT day, variant, n, sum_x, sum_x2, sum_d, sum_d2, sum_xd, hist "
        "FROM telemetry_rollups_daily"
    )
    with rt.db.engine.connect() as conn:
        rows = conn.execute(text(query + " ORDER BY day, variant")).all()
    assert [(str(r[0])[:19], *r[1:]) for r in rows] == [
        ("2026-12-01 00:00:00", "off", 1.0, 4.0, 4.0, 1.0, 1.0, 4.0, None),
        ("2026-12-01 00:00:00", "on", 3.0, 5.0, 5.0, 3.0, 3.0, 5.0, '{"14":2.0,"20":1.0}'),
        ("2026-12-02 00:00:00", "on", 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, None),
        ("2026-12-03 00:00:00", "on", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None),
    ]


def test_0021_leaves_a_running_rollout_serving_the_plain_variant_names(
    tmp_path: Path, database_url: str
) -> None:
    """A rollout made before the arms had keys of their own goes on serving and reading `on`
    and `off`; a new one gets its own."""
    rt = Runtime.from_settings(make_settings(tmp_path, blank=True, database_url=database_url))
    upgrade(rt.db, "0020")
    insert = text(
        "INSERT INTO rollouts (flag, environment, plan, state, stage, stage_started_at, "
        "created_at, started_at, created_by, approvals, dismissed, version) VALUES "
        "('use_tus_upload', 'production', :plan, 'running', 0, :at, :at, :at, 'alice', '[]', "
        "'{}', 2)"
    )
    with rt.db.engine.begin() as conn:
        conn.execute(insert, {"plan": json.dumps(PLAN), "at": "2026-12-01 10:00:00"})
    upgrade(rt.db)
    with rt.db.read() as session:
        (old,) = rollouts.list_rollouts(session, rollouts.RolloutFilter(), limit=10).rollouts
    assert old.served_as.model_dump() == {
        "treatment": "on", "control": "off", "excluded": "off~excluded"}  # fmt: skip
    rt.db.dispose()
