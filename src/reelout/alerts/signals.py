"""The one way alerts read metric values: a `SignalSource` (the telemetry domain implements it
over the KPI rollups; the runtime hands it in), and what it answers, `SignalSample`s."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

WILDCARD = "*"


@dataclass(frozen=True)
class SignalSample:
    """One label set's counts over a window; the value is `numerator / denominator`."""

    labels: Mapping[
        str, str
    ]  # e.g. {"environment": "production", "flag": "new-uploader", "variant": "on"}
    numerator: float
    denominator: float


class SignalSource(Protocol):
    """Metric values for the evaluator: one sample per distinct label set of `scope`.

    `scope` maps a label to a value, or to "*" for one sample per distinct value of it; a label
    not in `scope` is summed over. `known_metrics` lets a rule naming another metric be refused."""

    def sample(
        self, metric: str, scope: Mapping[str, str], window: timedelta, at: datetime
    ) -> Sequence[SignalSample]: ...

    def known_metrics(self) -> Collection[str]: ...


class UnknownMetric(LookupError):
    """A source asked for a metric it does not have."""


class NoSignals:
    """The source of a server without telemetry: it knows no metric and has no sample."""

    def sample(
        self, metric: str, scope: Mapping[str, str], window: timedelta, at: datetime
    ) -> Sequence[SignalSample]:
        raise UnknownMetric(f"no signal source knows the metric {metric!r}")

    def known_metrics(self) -> Collection[str]:
        return frozenset()


class CombinedSignals:
    """Several sources as one: a metric is asked of the first source that knows it (the KPI
    rollups, and the rollouts' own `rollout_rolled_back`)."""

    def __init__(self, *sources: SignalSource) -> None:
        self.sources = sources

    def sample(
        self, metric: str, scope: Mapping[str, str], window: timedelta, at: datetime
    ) -> Sequence[SignalSample]:
        for source in self.sources:
            if metric in source.known_metrics():
                return source.sample(metric, scope, window, at)
        raise UnknownMetric(f"no signal source knows the metric {metric!r}")

    def known_metrics(self) -> Collection[str]:
        return frozenset(m for source in self.sources for m in source.known_metrics())
