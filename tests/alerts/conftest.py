"""The alerts tests' data feed and fixtures: a SignalSource serving fixed series keyed by time
(swap in the telemetry domain's KPI source here), live servers using it, a receiver."""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from reelout.alerts.signals import WILDCARD, SignalSample, UnknownMetric
from reelout.clock import ManualClock
from tests.support.live import LiveServer, StartLive
from tests.webhooks.receiver import Receiver

LOOPBACK = "127.0.0.0/8"  # REELOUT_WEBHOOK_ALLOW_NETWORKS for receivers on this machine
METRICS = ("error_rate", "upload_failure_rate", "upload_success_rate")


@dataclass(frozen=True)
class Point:
    at: datetime
    labels: Mapping[str, str]
    numerator: float
    denominator: float


@dataclass
class SeriesSource:
    """A SignalSource over fixed points: a window at `at` sums the points in (at - window, at],
    one sample per distinct value of the scope's labels (a wildcard splits, a value filters)."""

    metrics: Collection[str] = METRICS
    points: dict[str, list[Point]] = field(default_factory=dict)

    def add(
        self, metric: str, at: datetime, numerator: float, denominator: float, **labels: str
    ) -> None:
        self.points.setdefault(metric, []).append(Point(at, labels, numerator, denominator))

    def add_rate(
        self, metrics: tuple[str, str], at: datetime, bad: float, total: float, **labels: str
    ) -> None:
        """A failure rate and its complement (e.g. upload failure and success) at once."""
        self.add(metrics[0], at, bad, total, **labels)
        self.add(metrics[1], at, total - bad, total, **labels)

    def sample(
        self, metric: str, scope: Mapping[str, str], window: timedelta, at: datetime
    ) -> Sequence[SignalSample]:
        if metric not in self.metrics:
            raise UnknownMetric(metric)
        sums: dict[tuple[tuple[str, str], ...], list[float]] = {}
        for p in self.points.get(metric, []):
            if not (at - window < p.at <= at) or not _in_scope(p.labels, scope):
                continue
            key = tuple(sorted((k, p.labels.get(k, "")) for k in scope))
            total = sums.setdefault(key, [0.0, 0.0])
            total[0] += p.numerator
            total[1] += p.denominator
        return [SignalSample(dict(k), n, d) for k, (n, d) in sorted(sums.items())]

    def known_metrics(self) -> Collection[str]:
        return self.metrics


def _in_scope(labels: Mapping[str, str], scope: Mapping[str, str]) -> bool:
    return all(v == WILDCARD or labels.get(k) == v for k, v in scope.items())


def every_minute(start: datetime, minutes: int) -> Iterable[datetime]:
    return (start + timedelta(minutes=i) for i in range(minutes))


@pytest.fixture
def signals() -> SeriesSource:
    return SeriesSource()


@pytest.fixture
def receiver(clock: ManualClock) -> Iterator[Receiver]:
    with Receiver(clock) as rec:
        yield rec


@pytest.fixture
def start_live(live_servers: StartLive, clock: ManualClock, signals: SeriesSource) -> StartLive:
    """`start_live(**settings)`: a live server on the test's clock reading `signals`."""

    def start(**settings: object) -> LiveServer:
        settings = {"webhook_allow_networks": LOOPBACK, **settings}
        server = live_servers(clock=clock, **settings)
        server.runtime.alert_signals = signals
        return server

    return functools.partial(start)


@pytest.fixture
def server(start_live: StartLive) -> LiveServer:
    return start_live()
