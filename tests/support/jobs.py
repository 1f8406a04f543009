"""Running a runtime's due jobs in the test's own thread, one after another, until none is due."""

from __future__ import annotations

from reelout.jobs.registry import Registry
from reelout.jobs.worker import Worker
from reelout.runtime import Runtime
from reelout.tasks import build_registry
from reelout.telemetry import jobs as telemetry_jobs


def run_jobs(rt: Runtime, *, registry: Registry | None = None, tick: bool = False) -> int:
    """Run every job due now on `rt` (of the kinds `serve` runs, unless `registry` says); with
    `tick`, the periodic schedules are ticked before each claim. Returns how many ran."""
    worker = Worker(rt, registry or build_registry(), worker_id="test")
    ran = 0
    while worker.run_once(tick=tick):
        ran += 1
    return ran


def telemetry_only() -> Registry[Runtime]:
    """The telemetry jobs alone (facts, rollups, purge): for tests that make a rollout's
    decisions themselves, so the controller's periodic tick adds none of its own."""
    registry: Registry[Runtime] = Registry()
    telemetry_jobs.register(registry)
    return registry
