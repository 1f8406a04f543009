"""Helpers shared by the jobs tests: job rows and a real worker subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reelout.jobs import service
from reelout.runtime import Runtime

RuntimeFactory = Callable[..., Runtime]  # the `new_runtime` fixture: (clock, **settings) -> Runtime

HERE = Path(__file__).resolve().parent
WORKER_SCRIPT = HERE / "jobs_worker_proc.py"


def job(rt: Runtime, job_id: int) -> service.JobInfo:
    with rt.db.session() as session:
        info = service.get_job(session, job_id)
    assert info is not None
    return info


def add_job(rt: Runtime, kind: str, payload: dict[str, Any] | None = None, **kwargs: Any) -> int:
    with rt.db.session() as session:
        return service.enqueue(session, rt.clock, kind, payload or {}, **kwargs)


def spawn_worker(
    mode: str, database_url: str, tmp_path: Path, out: Path, *extra: str, lease: float = 10.0
) -> subprocess.Popen[bytes]:
    """A real worker process (see jobs_worker_proc.py); its log goes to out/<mode>-<n>.log."""
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / f"{mode}-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            [
                sys.executable,
                str(WORKER_SCRIPT),
                mode,
                database_url,
                str(tmp_path / "data"),
                str(out),
                str(lease),
                *extra,
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def logs(out: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(out.glob("*.log")))
