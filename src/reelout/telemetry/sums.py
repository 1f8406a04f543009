"""Per-unit sufficient statistics that add up: what one unit puts into a rollup row (n, Σx, Σx²,
Σd, Σd², Σxd and a log-bucket histogram for quantiles), the change when its state moves, and
the KPI estimates read back from a window's sums. Pure: no I/O.

A unit counts in the minute of its earliest event, so summing any window's minute rows gives
exactly the statistics of the units that started in it, with all their events so far; when a
late event moves a unit, the rollup takes its old contribution out and puts the new one in. The
viewer metrics count the viewer in everyone's rows and, in a flag's rows, the viewer's exposure
to each arm (from its first exposure to it): see `facts.attribution`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from reelout.stats.compare import Estimate, Moments, RatioMoments, moments_estimate, ratio_estimate
from reelout.telemetry.facts import UNIT_KINDS, State, UnitKind, attribution, facts
from reelout.telemetry.metrics import CATALOGUE, Metric

MINUTE_MS = 60_000
BUCKET_GROWTH = 1.05  # histogram buckets: a quantile is good to about ±2.5 %
ALL = ""  # the flag and variant of the row that counts every unit


class RowKey(NamedTuple):
    """Where a unit's numbers go: minute (ms), flag and variant ("" = all), platform,
    app version, metric. A named tuple: hashed and compared in C, the rollups' hottest keys."""

    minute: int
    flag: str
    variant: str
    platform: str
    app_version: str
    metric: str


@dataclass(slots=True)
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

    def copy(self) -> Sums:
        return Sums(self.n, self.x, self.x2, self.d, self.d2, self.xd, dict(self.hist))

    def negated(self) -> Sums:
        hist = {bucket: -count for bucket, count in self.hist.items()}
        return Sums(-self.n, -self.x, -self.x2, -self.d, -self.d2, -self.xd, hist)

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
    """The metrics a unit of `kind` counts in: its own, and for a viewer's exposure to an arm
    the viewer's metrics too (in that arm's rows)."""
    return _BY_KIND[kind]


_ALSO: dict[UnitKind, tuple[UnitKind, ...]] = {"exposure": ("viewer",)}
_BY_KIND = {
    kind: tuple(m for m in CATALOGUE if m.unit == kind or m.unit in _ALSO.get(kind, ()))
    for kind in UNIT_KINDS
}


def contributions(kind: UnitKind, state: State) -> dict[RowKey, Sums]:
    """What a unit in `state` puts into each rollup row (nothing before its first event). The
    rows of one metric share one object: add it to yours, never change it."""
    if "_at" not in state:
        return {}
    at, platform, app_version, arms, everyone = attribution(kind, state)
    minute = at - at % MINUTE_MS
    unit_facts = facts(kind, state)
    out: dict[RowKey, Sums] = {}
    cohorts = [(ALL, ALL)] if everyone else []
    cohorts += sorted(arms.items())
    for metric in metrics_of(kind):
        counted = metric.contribution(unit_facts)
        if counted is None:
            continue
        unit = Sums.of_unit(*counted, metric.quantiles)  # one object for every cohort's row
        for flag, variant in cohorts:
            out[RowKey(minute, flag, variant, platform, app_version, metric.name)] = unit
    return out


def change(kind: UnitKind, before: State, after: State) -> dict[RowKey, Sums]:
    """The rows' change when a unit moves from `before` to `after`. The sums may be shared
    between rows: add them to yours, never change them."""
    delta = contributions(kind, after)
    for key, old in contributions(kind, before).items():
        new = delta.get(key)
        if new is None:
            delta[key] = old.negated()
        elif new == old:
            del delta[key]  # the same numbers: no change
        else:
            moved = new.copy()
            moved.add(old, -1.0)
            if moved.is_empty():
                del delta[key]
            else:
                delta[key] = moved
    return delta


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
