"""Per-unit sufficient statistics that add up: what one unit puts into a rollup row (n, Σx, Σx²,
Σd, Σd², Σxd and a log-bucket histogram for quantiles), the change when its state moves, and
the KPI estimates read back from a window's sums. Pure: no I/O.

A unit counts in the minute of its earliest event, so summing any window's minute rows gives
exactly the statistics of the units that started in it, with all their events so far; when a
late event moves a unit, the rollup takes its old contribution out and puts the new one in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from reelout.stats.compare import Estimate, Moments, RatioMoments, moments_estimate, ratio_estimate
from reelout.telemetry.facts import State, UnitKind, attribution, facts
from reelout.telemetry.metrics import CATALOGUE, Metric

MINUTE_MS = 60_000
BUCKET_GROWTH = 1.05  # histogram buckets: a quantile is good to about ±2.5 %
ALL = ""  # the flag and variant of the row that counts every unit


@dataclass(frozen=True, order=True)
class RowKey:
    """Where a unit's numbers go: minute (ms), flag and variant ("" = all), platform,
    app version, metric."""

    minute: int
    flag: str
    variant: str
    platform: str
    app_version: str
    metric: str


@dataclass
class Sums:
    """Additive sums over units: n units, x and d with their squares and product, and a sparse
    histogram of x (bucket -> units) for quantile metrics."""

    n: float = 0.0
    x: float = 0.0
    x2: float = 0.0
    d: float = 0.0
    d2: float = 0.0
    xd: float = 0.0
    hist: dict[int, float] = field(default_factory=dict)

    def add(self, other: Sums, sign: float = 1.0) -> None:
        self.n += sign * other.n
        self.x += sign * other.x
        self.x2 += sign * other.x2
        self.d += sign * other.d
        self.d2 += sign * other.d2
        self.xd += sign * other.xd
        for bucket, count in other.hist.items():
            left = self.hist.get(bucket, 0.0) + sign * count
            if abs(left) < 1e-9:
                self.hist.pop(bucket, None)
            else:
                self.hist[bucket] = left

    @classmethod
    def of_unit(cls, x: float, d: float, quantiles: bool) -> Sums:
        hist = {bucket_of(x): 1.0} if quantiles else {}
        return cls(1.0, x, x * x, d, d * d, x * d, hist)

    def is_empty(self) -> bool:
        values = (self.n, self.x, self.x2, self.d, self.d2, self.xd)
        return all(abs(value) < 1e-9 for value in values) and not self.hist

    def moments(self) -> Moments:
        return Moments(round(self.n), self.x, self.x2)

    def ratio(self) -> RatioMoments:
        return RatioMoments(round(self.n), self.x, self.d, self.x2, self.d2, self.xd)


def bucket_of(value: float) -> int:
    """The histogram bucket of a non-negative value (0 and below share the lowest)."""
    if value <= 0:
        return -(10**6)
    return math.floor(math.log(value) / math.log(BUCKET_GROWTH))


def quantile(hist: Mapping[int, float], q: float) -> float | None:
    """The q-quantile of a histogram (the bucket's geometric middle), None when empty."""
    total = sum(hist.values())
    if total <= 0:
        return None
    seen = 0.0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= q * total:
            if bucket == -(10**6):
                return 0.0
            return float(BUCKET_GROWTH ** (bucket + 0.5))
    return None


def metrics_of(kind: UnitKind) -> tuple[Metric, ...]:
    return tuple(metric for metric in CATALOGUE if metric.unit == kind)


def contributions(kind: UnitKind, state: State) -> dict[RowKey, Sums]:
    """What a unit in `state` puts into each rollup row (nothing before its first event)."""
    if "_at" not in state:
        return {}
    at, platform, app_version, arms = attribution(state)
    minute = at - at % MINUTE_MS
    unit_facts = facts(kind, state)
    out: dict[RowKey, Sums] = {}
    for metric in metrics_of(kind):
        counted = metric.contribution(unit_facts)
        if counted is None:
            continue
        for flag, variant in [(ALL, ALL), *sorted(arms.items())]:
            key = RowKey(minute, flag, variant, platform, app_version, metric.name)
            out[key] = Sums.of_unit(*counted, metric.quantiles)
    return out


def change(kind: UnitKind, before: State, after: State) -> dict[RowKey, Sums]:
    """The rows' change when a unit moves from `before` to `after`."""
    delta: dict[RowKey, Sums] = {}
    for sign, state in ((-1.0, before), (1.0, after)):
        for key, sums in contributions(kind, state).items():
            delta.setdefault(key, Sums()).add(sums, sign)
    return {key: sums for key, sums in delta.items() if not sums.is_empty()}


def total(rows: Iterable[Sums]) -> Sums:
    out = Sums()
    for row in rows:
        out.add(row)
    return out


def estimate(metric: Metric, sums: Sums) -> Estimate | None:
    """The metric's value for these units with its standard error; None with no unit."""
    if sums.n < 1:
        return None
    if metric.kind == "ratio":
        if sums.d <= 0:
            return None
        return ratio_estimate(sums.ratio())
    return moments_estimate(sums.moments())
