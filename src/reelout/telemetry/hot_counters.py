"""The counts made on every request: HTTP requests (count and duration) and OFREP evaluations,
as prometheus-client custom collectors.

Hand-written: the library's `Counter.inc` takes a lock per value and `Histogram.observe` walks
its buckets in Python with two locked increments, about 3 µs a request together, and an OFREP
bulk answer would add a locked increment per flag (about 17 µs for 20 flags, measured on the
benchmark machine). Here a request is one bisect and a few list increments under one lock, an
answer one dict increment per flag; the library's metric families shape them at scrape time.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from reelout.telemetry.metric_labels import OTHER, FirstSeen, status_class

# Request durations: OFREP answers take milliseconds, uploads and event streams minutes.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120)
HttpKey = tuple[str, str, int]  # method label, route template, status // 100
Evaluated = tuple[str, str | None, str]  # flag key, variant, reason
FlagLabels = tuple[str, str, str, str]  # environment, flag, variant, reason


FLAG_NOT_FOUND = "FLAG_NOT_FOUND"  # OpenFeature's code (flags' ErrorCode is a StrEnum of it)

# the families' names, help and labels (shared with `multiprocess`, which counts the same series)
HTTP_REQUESTS = "reelout_http_requests"
HTTP_REQUESTS_HELP = "HTTP requests answered, by method, route template and status class."
HTTP_REQUESTS_LABELS = ("method", "route", "status_class")
HTTP_DURATION = "reelout_http_request_duration_seconds"
HTTP_DURATION_HELP = (
    "From a request's arrival to the end of its answer, by method and route template."
)
HTTP_DURATION_LABELS = ("method", "route")
FLAG_EVALUATIONS = "reelout_flag_evaluations"
FLAG_EVALUATIONS_HELP = "Flag evaluations OFREP answered, by environment, flag, variant and reason."
FLAG_EVALUATIONS_LABELS = ("environment", "flag", "variant", "reason")


class _Reason(Protocol):
    _value_: str


class Resolution(Protocol):
    """What the counters read of a flag's resolution (flags.engine.evaluator.Resolution), named
    structurally so that telemetry does not import the flags, which record into telemetry."""

    @property
    def variant(self) -> str | None: ...

    @property
    def reason(self) -> _Reason: ...

    @property
    def error_code(self) -> str | None: ...


class HttpRequests:
    """Requests by method, route and status class, with their durations in HTTP_BUCKETS."""

    def __init__(self) -> None:
        # per key: the count of each bucket (not cumulative; the last is +Inf), then the sum
        self._rows: dict[HttpKey, list[float]] = {}
        self._lock = threading.Lock()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """One answered request (`method` already a label: see `metric_labels.http_method`)."""
        bucket = bisect_left(HTTP_BUCKETS, seconds)
        key = (method, route, status // 100)
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                row = self._rows[key] = [0.0] * (len(HTTP_BUCKETS) + 2)
            row[bucket] += 1
            row[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            rows = {key: list(row) for key, row in self._rows.items()}
        requests = CounterMetricFamily(
            HTTP_REQUESTS, HTTP_REQUESTS_HELP, labels=HTTP_REQUESTS_LABELS
        )
        timed: dict[tuple[str, str], list[float]] = {}
        for (method, route, hundreds), row in rows.items():
            requests.add_metric([method, route, status_class(hundreds * 100)], sum(row[:-1]))
            total = timed.setdefault((method, route), [0.0] * len(row))
            for index, value in enumerate(row):
                total[index] += value
        yield requests
        yield _durations(timed)


def _durations(timed: dict[tuple[str, str], list[float]]) -> Metric:
    family = HistogramMetricFamily(HTTP_DURATION, HTTP_DURATION_HELP, labels=HTTP_DURATION_LABELS)
    bounds = [*(str(float(b)) for b in HTTP_BUCKETS), "+Inf"]
    for (method, route), row in timed.items():
        cumulative, buckets = 0.0, []
        for bound, count in zip(bounds, row[:-1], strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        family.add_metric([method, route], buckets, row[-1])
    return family


def flag_series(
    pairs: FirstSeen[tuple[str, str]], environment: str, key: str, resolution: Resolution
) -> tuple[str, str]:
    """The (flag, variant) labels an evaluation counts under: its own while `pairs` names it."""
    if resolution.error_code == FLAG_NOT_FOUND:
        return OTHER, ""  # any key could come here: never remembered by name
    return pairs.label((key, resolution.variant or ""), environment)


class FlagEvaluations:
    """OFREP evaluations by environment, flag, variant and reason.

    At most `max_series` (flag, variant) pairs per environment keep their names; every later
    pair is counted as flag `other`, variant `other`. A key the environment has no flag for is
    counted as flag `other`, variant `""` and never takes a pair's place."""

    def __init__(self, max_series: int) -> None:
        self._pairs: FirstSeen[tuple[str, str]] = FirstSeen(max_series, (OTHER, OTHER))
        self._series: dict[FlagLabels, list[int]] = {}  # labels -> [count]
        # per environment, what evaluations of a named pair count into (one cell per series)
        self._named: dict[str, dict[Evaluated, list[int]]] = {}
        self._lock = threading.Lock()

    def evaluated(self, environment: str, resolved: Sequence[tuple[str, Resolution]]) -> None:
        """What one OFREP answer served (on the request path: one dict increment per flag)."""
        with self._lock:
            named = self._named.get(environment)
            if named is None:
                named = self._named[environment] = {}
            for key, resolution in resolved:
                evaluated = (key, resolution.variant, resolution.reason._value_)
                try:
                    named[evaluated][0] += 1
                except KeyError:
                    self._count_first(environment, named, evaluated, resolution)

    def _count_first(
        self,
        environment: str,
        named: dict[Evaluated, list[int]],
        evaluated: Evaluated,
        resolution: Resolution,
    ) -> None:
        key, _, reason = evaluated
        flag, shown = flag_series(self._pairs, environment, key, resolution)
        cell = self._series.setdefault((environment, flag, shown, reason), [0])
        cell[0] += 1
        if flag != OTHER:
            named[evaluated] = cell  # its later evaluations take the fast path

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            FLAG_EVALUATIONS, FLAG_EVALUATIONS_HELP, labels=FLAG_EVALUATIONS_LABELS
        )
        with self._lock:
            counted = [(labels, cell[0]) for labels, cell in self._series.items()]
        for labels, value in counted:
            family.add_metric(list(labels), value)
        yield family
