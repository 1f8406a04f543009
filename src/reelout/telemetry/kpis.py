"""KPIs per cohort from the minute rollups: the seed's table (baseline, target, control,
treatment, difference with a 95 % interval, pass or fail) for one flag and window, series per
arm for charts, and the signal source alert rules read. One service under the API, the CLI
and the console.

The arms, when none are asked for: those a rollout of the flag served over the window, if a
finder of them is given (`ArmsFinder`: the rollouts', which this layer may not import, passed
in by the API, the CLI and the console); else the variant named like a control against the
first other one by name, never a rollout's excluded rest (`<control>~excluded`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from reelout.alerts.signals import WILDCARD, SignalSample, UnknownMetric
from reelout.context import Core
from reelout.errors import BadRequest, NotFound
from reelout.stats.compare import Estimate, welch, wilson
from reelout.telemetry import rollups
from reelout.telemetry.metrics import METRICS, SEED_KPIS, Metric
from reelout.telemetry.sums import ALL, Sums, estimate, quantile
from reelout.variant_keys import is_excluded

CONTROL_NAMES = ("control", "off", "false", "old", "baseline")  # a flag's control, by its name
MAX_WINDOW = timedelta(days=90)


@dataclass(frozen=True)
class RolloutArms:
    """The arms a rollout of the flag served: its plan's variants and the keys it served them as
    (`<variant>~r<id>`: the telemetry's variants)."""

    rollout: int
    state: str
    treatment: str
    control: str
    served_treatment: str
    served_control: str


ArmsFinder = Callable[[Session, str, str, datetime, datetime], "RolloutArms | None"]
"""(session, environment, flag, since, until) -> the arms of the flag's rollout that ran in
[since, until), or None."""


@dataclass(frozen=True)
class Arm:
    """One arm of one metric: the value, its 95 % interval and the units behind it."""

    variant: str
    n: int
    value: float | None
    lower: float | None
    upper: float | None
    p50: float | None = None
    p90: float | None = None


@dataclass(frozen=True)
class KpiRow:
    metric: Metric
    control: Arm | None
    treatment: Arm | None
    difference: tuple[float, float, float] | None  # treatment - control, 95 % interval

    @property
    def passed(self) -> bool | None:
        """Treatment (or everyone, without a flag) against the seed's target."""
        arm = self.treatment or self.control
        if self.metric.goal is None or arm is None or arm.value is None:
            return None
        return self.metric.goal.met(arm.value)


@dataclass(frozen=True)
class KpiTable:
    environment: str
    flag: str | None
    since: datetime
    until: datetime
    watermark: datetime | None
    rows: list[KpiRow]
    rollout: RolloutArms | None = None  # the rollout whose arms these are, when none were asked


def parse_window(text: str) -> timedelta:
    """'15m', '6h', '7d' as a timedelta; 400 INVALID_WINDOW otherwise."""
    units = {"m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if not number.isdigit() or unit not in units or int(number) == 0:
        raise BadRequest(f"window {text!r} is not like 15m, 6h or 7d", code="INVALID_WINDOW")
    window = timedelta(seconds=int(number) * units[unit])
    if window > MAX_WINDOW:
        raise BadRequest(f"window {text!r} is over {MAX_WINDOW.days} days", code="INVALID_WINDOW")
    return window


def known(names: Sequence[str]) -> list[str]:
    """The names, if every one is a metric; 400 UNKNOWN_METRIC otherwise."""
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise BadRequest(
            f"unknown metric {unknown[0]!r}; GET /api/v1/kpis/metrics lists them",
            code="UNKNOWN_METRIC",
        )
    return list(names)


def check_environment(core: Core, environment: str) -> str:
    """The environment, if the settings name it (REELOUT_ENVIRONMENTS: where client keys, and
    so telemetry, get theirs); 404 UNKNOWN_ENVIRONMENT otherwise, not an empty table."""
    environments = list(core.settings.environments)
    if environment not in environments:
        raise NotFound(
            f"no environment {environment!r}; the environments are {', '.join(environments)}",
            code="UNKNOWN_ENVIRONMENT",
            details={"environments": environments},
        )
    return environment


def kpi_table(
    core: Core,
    environment: str,
    window: timedelta,
    flag: str | None = None,
    control: str | None = None,
    treatment: str | None = None,
    metrics: Sequence[str] = SEED_KPIS,
    until: datetime | None = None,
    find_arms: ArmsFinder | None = None,
) -> KpiTable:
    """The metrics over [until - window, until) (until: now), per arm of `flag`, or for
    everyone without one. With neither arm asked for, `find_arms` may give them (a rollout's)."""
    metrics = known(metrics)
    environment = check_environment(core, environment)
    until = until or core.clock.now()
    since = until - window
    quantiles = [name for name in metrics if METRICS[name].quantiles]
    found = None
    with core.db.read() as session:
        if flag and control is None and treatment is None and find_arms is not None:
            found = find_arms(session, environment, flag, since, until)
        if found is not None:
            control, treatment = found.served_control, found.served_treatment
        by_metric = rollups.window_sums(
            session, environment, metrics, flag or ALL, since, until, quantiles
        )
        watermark = rollups.read_watermark(session)
    rows = [
        _row(METRICS[name], by_metric.get(name, {}), flag, control, treatment) for name in metrics
    ]
    return KpiTable(environment, flag, since, until, watermark, rows, found)


def choose_arms(
    variants: Collection[str], control: str | None, treatment: str | None
) -> tuple[str | None, str | None]:
    """Control: as asked, else the variant named like a control; treatment: as asked, else the
    other one; neither by default a rollout's excluded rest."""
    names = sorted(v for v in variants if not is_excluded(v))
    control = control or next((v for v in names if v.lower() in CONTROL_NAMES), None)
    control = control or (names[0] if names else None)
    treatment = treatment or next((v for v in names if v != control), None)
    return control, treatment


def _row(
    metric: Metric,
    arms: Mapping[str, Sums],
    flag: str | None,
    control: str | None,
    treatment: str | None,
) -> KpiRow:
    if not flag:
        return KpiRow(metric, _arm(metric, ALL, arms.get(ALL)), None, None)
    control, treatment = choose_arms(arms, control, treatment)
    c = _arm(metric, control, arms.get(control)) if control else None
    t = _arm(metric, treatment, arms.get(treatment)) if treatment else None
    return KpiRow(
        metric, c, t, _difference(metric, arms.get(control or ""), arms.get(treatment or ""))
    )


def _arm(metric: Metric, variant: str, sums: Sums | None) -> Arm:
    found = estimate(metric, sums) if sums else None
    if sums is None or found is None:
        return Arm(variant, 0, None, None, None)
    lower, upper = _interval(metric, sums, found)
    p50 = quantile(sums.hist, 0.5) if metric.quantiles else None
    p90 = quantile(sums.hist, 0.9) if metric.quantiles else None
    return Arm(variant, found.n, found.mean, lower, upper, p50, p90)


def _interval(metric: Metric, sums: Sums, found: Estimate) -> tuple[float, float]:
    if metric.kind == "proportion":
        return wilson(round(sums.x), found.n)
    half = 1.96 * (found.variance / found.n) ** 0.5 if found.n else 0.0
    return found.mean - half, found.mean + half


def _difference(
    metric: Metric, control: Sums | None, treatment: Sums | None
) -> tuple[float, float, float] | None:
    a = estimate(metric, control) if control else None
    b = estimate(metric, treatment) if treatment else None
    if a is None or b is None or a.n < 2 or b.n < 2 or (a.variance == 0 and b.variance == 0):
        return None
    compared = welch(a, b)
    return compared.effect, compared.lower, compared.upper


def table_body(table: KpiTable) -> dict[str, Any]:
    """The table as the API answers it."""
    return {
        "environment": table.environment,
        "flag": table.flag,
        "since": table.since.isoformat(),
        "until": table.until.isoformat(),
        "watermark": table.watermark.isoformat() if table.watermark else None,
        "rollout": _rollout_body(table.rollout) if table.rollout else None,
        "kpis": [_row_body(row) for row in table.rows],
    }


def _rollout_body(found: RolloutArms) -> dict[str, Any]:
    return {
        "id": found.rollout,
        "state": found.state,
        "treatment": found.treatment,
        "control": found.control,
        "served_as": {"treatment": found.served_treatment, "control": found.served_control},
    }


def _row_body(row: KpiRow) -> dict[str, Any]:
    goal = row.metric.goal
    return {
        "metric": row.metric.name,
        "title": row.metric.title,
        "kind": row.metric.kind,
        "unit": row.metric.unit,
        "display": row.metric.display,
        "direction": row.metric.direction,
        "baseline": goal.baseline if goal else None,
        "target": {"op": goal.op, "value": goal.target} if goal else None,
        "control": vars(row.control) if row.control else None,
        "treatment": vars(row.treatment) if row.treatment else None,
        "difference": (
            dict(zip(("estimate", "lower", "upper"), row.difference, strict=True))
            if row.difference
            else None
        ),
        "passed": row.passed,
    }


def series(
    core: Core,
    environment: str,
    metric: str,
    flag: str | None,
    window: timedelta,
    step: timedelta,
    until: datetime | None = None,
) -> dict[str, list[tuple[datetime, float | None]]]:
    """The metric per arm in buckets of `step` over [until - window, until) (until: now), for
    the console's charts."""
    found = METRICS[metric]
    environment = check_environment(core, environment)
    until = until or core.clock.now()
    since = until - window
    step_s = max(60, int(step.total_seconds()))
    buckets: dict[str, dict[int, Sums]] = defaultdict(lambda: defaultdict(Sums))
    with core.db.read() as session:
        for minute, variant, sums in rollups.minute_rows(
            session, environment, metric, flag or ALL, since, until
        ):
            buckets[variant][int(minute.timestamp()) // step_s * step_s].add(sums)
    out: dict[str, list[tuple[datetime, float | None]]] = {}
    for variant, by_bucket in buckets.items():
        points = []
        for start in sorted(by_bucket):
            value = estimate(found, by_bucket[start])
            points.append((datetime.fromtimestamp(start, UTC), value.mean if value else None))
        out[variant] = points
    return out


class KpiSignals:
    """The alerts' signal source over the rollups: Σnumerator and Σdenominator of a metric's
    units in the window, per label set of the scope (environment, flag, variant)."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def known_metrics(self) -> Collection[str]:
        return frozenset(METRICS)

    def sample(
        self, metric: str, scope: Mapping[str, str], window: timedelta, at: datetime
    ) -> Sequence[SignalSample]:
        if metric not in METRICS:
            raise UnknownMetric(f"no metric {metric!r}; known: {', '.join(sorted(METRICS))}")
        flag = scope.get("flag")
        per_flag = flag not in (None, "", WILDCARD)
        groups: dict[tuple[str, ...], Sums] = defaultdict(Sums)
        with self.core.db.read() as session:
            for row in rollups.labelled_rows(
                session, metric, at - window, at, scope.get("environment")
            ):
                labels = _labels(row, scope, per_flag)
                if labels is not None:
                    groups[labels].add(row[-1])
        return [_sample(METRICS[metric], scope, key, sums) for key, sums in groups.items()]


def _labels(
    row: tuple[Any, ...], scope: Mapping[str, str], per_flag: bool
) -> tuple[str, ...] | None:
    environment, flag, variant, _ = row
    wanted = scope.get("environment")
    if wanted not in (None, WILDCARD) and environment != wanted:
        return None
    if scope.get("flag") in (None, ""):  # everyone: the row that counts all units
        return (environment, "", "") if flag == ALL else None
    if flag == ALL or (per_flag and flag != scope["flag"]):
        return None
    if scope.get("variant") not in (None, WILDCARD) and variant != scope["variant"]:
        return None
    return (environment, flag, variant)


def _sample(
    metric: Metric, scope: Mapping[str, str], key: tuple[str, ...], sums: Sums
) -> SignalSample:
    environment, flag, variant = key
    labels = {"environment": environment}
    if flag:
        labels |= {"flag": flag, "variant": variant}
    denominator = sums.d if metric.kind == "ratio" else sums.n
    return SignalSample(labels, sums.x, denominator)


def definition(metric: Metric) -> dict[str, Any]:
    """A metric's definition as data, for the API and the docs."""
    goal = metric.goal
    return {
        "name": metric.name,
        "title": metric.title,
        "kind": metric.kind,
        "unit": metric.unit,
        "numerator": metric.numerator,
        "denominator": metric.denominator,
        "direction": metric.direction,
        "display": metric.display,
        "lag_minutes": metric.lag_minutes,
        "quantiles": metric.quantiles,
        "description": metric.description,
        "baseline": goal.baseline if goal else None,
        "target": {"op": goal.op, "value": goal.target} if goal else None,
    }
