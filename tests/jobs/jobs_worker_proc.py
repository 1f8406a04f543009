"""A real worker process for the crash, race and signal tests (run as a script, not collected).

usage: jobs_worker_proc.py MODE DATABASE_URL DATA_DIR OUT_DIR LEASE_SECONDS
  crash  run_worker; "test.sleep" touches OUT/started-<id> and then sleeps (to be SIGKILLed)
  serve  run_worker; "test.wait" touches OUT/started-<id> and waits for cancellation (SIGTERM)
  drain  wait for OUT/go, then run_once until the queue stays empty; "test.record" appends ids
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from reelout.config import Settings
from reelout.jobs.registry import JobCancelled, JobContext, Registry
from reelout.jobs.worker import Worker, run_worker
from reelout.runtime import Runtime


def build(out: Path) -> Registry:
    registry = Registry()

    @registry.handler("test.sleep")
    def sleep(ctx: JobContext) -> None:
        (out / f"started-{ctx.job_id}").touch()
        time.sleep(120)

    @registry.handler("test.wait")
    def wait(ctx: JobContext) -> None:
        (out / f"started-{ctx.job_id}").touch()
        if ctx.cancelled.wait(60):
            raise JobCancelled("stopping")

    @registry.handler("test.record")
    def record(ctx: JobContext) -> None:
        with (out / f"ran-{os.getpid()}.txt").open("a") as f:
            f.write(f"{ctx.job_id}\n")
        time.sleep(0.002)

    @registry.handler("test.quick")
    def quick(ctx: JobContext) -> None:
        pass

    return registry


def drain(worker: Worker, out: Path) -> None:
    while not (out / "go").exists():
        time.sleep(0.005)
    idle = 0
    while idle < 3:
        idle = 0 if worker.run_once(tick=False) else idle + 1


def main(mode: str, database_url: str, data_dir: str, out_dir: str, lease: str) -> None:
    logging.basicConfig(level=logging.INFO, format=f"{os.getpid()} %(name)s %(message)s")
    settings = Settings(
        data_dir=Path(data_dir),
        database_url=database_url,
        job_lease_seconds=float(lease),
        job_poll_seconds=0.02,
        embedded_worker=False,
    )
    runtime = Runtime.from_settings(settings)
    out = Path(out_dir)
    registry = build(out)
    if mode == "drain":
        drain(Worker(runtime, registry, concurrency=1), out)
    else:
        run_worker(runtime, concurrency=2 if mode == "serve" else 1, registry=registry)
    runtime.db.dispose()


if __name__ == "__main__":
    main(*sys.argv[1:6])
