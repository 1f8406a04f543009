"""`/metrics` across `serve --workers N`: prometheus-client's multiprocess mode, its folder, and
the per-request counters as library metrics whose values live in that folder.

Each worker writes its values to memory-mapped files in `PROMETHEUS_MULTIPROC_DIR` (set before
the workers start, read by prometheus-client when it is first imported), and a scrape, answered
by any worker, adds up the files of all of them. The per-request counters of `hot_counters` keep
their counts in the process's memory, which no other worker can read, so here they are the
library's `Counter` and `Histogram` instead (a few microseconds more per request); the families,
labels and bounds are the same.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import Counter, Histogram, values
from prometheus_client.multiprocess import mark_process_dead

from reelout.telemetry import hot_counters as hot
from reelout.telemetry.metric_labels import OTHER, FirstSeen, status_class

ENV = "PROMETHEUS_MULTIPROC_DIR"
FOLDER = "metrics"  # under the data folder: one sub-folder per running `serve`
PREFIX = "serve-"


def in_use() -> bool:
    """Whether prometheus-client keeps values in shared files (the variable was set when it was
    first imported)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


def share_across_workers(data_dir: Path) -> Path:
    """Make this `serve`'s own empty folder for its workers' values (data/metrics/serve-<pid>),
    remove those of `serve` processes that have ended, and name it in the environment the
    workers inherit. Several `serve` on one data folder each keep their own."""
    parent = data_dir / FOLDER
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    for old in parent.glob(PREFIX + "*"):
        if not _running(old.name.removeprefix(PREFIX)):
            shutil.rmtree(old, ignore_errors=True)
    folder = parent / f"{PREFIX}{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)  # a pid reused since an unclean end
    folder.mkdir(mode=0o700)
    os.environ[ENV] = str(folder)
    return folder


def _running(pid: str) -> bool:
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def stop_sharing(folder: Path) -> None:
    """`serve` ended: its workers' values go with it."""
    os.environ.pop(ENV, None)
    with contextlib.suppress(OSError):
        shutil.rmtree(folder)


def process_exiting() -> None:
    """A worker ends: drop its live gauges' files (prometheus-client's bookkeeping); its
    counters stay in the sums, as counters must."""
    if in_use():
        mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class SharedHttpRequests:
    """`hot_counters.HttpRequests` with its counts in the shared files."""

    def __init__(self) -> None:
        self._requests = Counter(
            hot.HTTP_REQUESTS, hot.HTTP_REQUESTS_HELP, hot.HTTP_REQUESTS_LABELS, registry=None
        )
        self._durations = Histogram(
            hot.HTTP_DURATION,
            hot.HTTP_DURATION_HELP,
            hot.HTTP_DURATION_LABELS,
            buckets=hot.HTTP_BUCKETS,
            registry=None,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self._requests.labels(method, route, status_class(status)).inc()
        self._durations.labels(method, route).observe(seconds)


class SharedFlagEvaluations:
    """`hot_counters.FlagEvaluations` with its counts in the shared files. Each worker names
    its own first `max_series` pairs per environment."""

    def __init__(self, max_series: int) -> None:
        self._pairs: FirstSeen[tuple[str, str]] = FirstSeen(max_series, (OTHER, OTHER))
        self._counter = Counter(
            hot.FLAG_EVALUATIONS,
            hot.FLAG_EVALUATIONS_HELP,
            hot.FLAG_EVALUATIONS_LABELS,
            registry=None,
        )

    def evaluated(self, environment: str, resolved: Sequence[tuple[str, hot.Resolution]]) -> None:
        for key, resolution in resolved:
            flag, variant = hot.flag_series(self._pairs, environment, key, resolution)
            reason = resolution.reason._value_
            self._counter.labels(environment, flag, variant, reason).inc()
