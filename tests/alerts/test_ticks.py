"""The evaluation tick on SQLite and PostgreSQL: one tick per time, never backwards; two workers
racing for the same slot evaluate it once."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from reelout.alerts import defaults, evaluation
from reelout.alerts.models import AlertTransition
from reelout.clock import ManualClock
from tests.alerts.conftest import SeriesSource
from tests.support.settings import make_settings, start_runtime

WHERE = {"environment": "production", "flag": "f", "variant": "on"}


def test_a_tick_runs_once_per_time_and_never_backwards(
    tmp_path: Path, database_url: str, clock: ManualClock
) -> None:
    settings = make_settings(tmp_path, database_url=database_url)
    rt = start_runtime(settings, clock)
    with rt.db.session() as session:
        defaults.seed_on_start(session, clock, settings)
    source = SeriesSource()
    source.add("error_rate", clock.now(), 50, 500, **WHERE)
    first = evaluation.tick(rt.db, clock, source, settings)
    assert first.ran and first.transitions == 1 and first.errors == {}
    assert not evaluation.tick(rt.db, clock, source, settings).ran, "the same time again"
    clock.set(clock.now() - timedelta(minutes=1))
    assert not evaluation.tick(rt.db, clock, source, settings).ran, "an earlier time"
    clock.advance(120)
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(evaluation.tick(rt.db, clock, source, settings))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.ran for r in results) == [False, False, False, True]
    with rt.db.read() as session:
        assert session.query(AlertTransition).count() == 1, "firing once, nothing twice"
    rt.db.dispose()


def test_a_failing_source_is_the_rules_error_and_keeps_its_alerts(
    tmp_path: Path, clock: ManualClock
) -> None:
    settings = make_settings(tmp_path)
    rt = start_runtime(settings, clock)
    with rt.db.session() as session:
        defaults.seed_on_start(session, clock, settings)
    source = SeriesSource(metrics=("upload_failure_rate", "upload_success_rate"))
    result = evaluation.tick(rt.db, clock, source, settings)
    assert set(result.errors) == {"error-rate-critical"}
    assert "UnknownMetric" in result.errors["error-rate-critical"]
    rt.db.dispose()
