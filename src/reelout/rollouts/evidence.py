"""The evidence a rollout tick decides on, read from the store: each arm's guardrail sums and
exposed units from the telemetry rollups, the rollups' watermark, when the apps' own events
last arrived, and the page alerts about the flag. What every rollout shares (the watermark, the
firing alerts that veto rollouts) a tick reads once for all of them (`tick_reads`).

The analysis window. Each guardrail's sums cover the units that started in
[analysis_since, now - its lag): cumulative across stages, as the spec asks, for as long as the
arms' ratio stays the same (`analysis_since` gives the start of that run of stages plus its
first stage's warmup). A unit counts in the minute of its earliest event (the rollups' rule),
so a window is about the units that started in it; for the viewer metrics the unit is the
viewer's exposure to the arm, which starts at their first exposure to its variant.

The arms are read under the keys the flag serves them as (`arms`: the rollout's `served_as`,
`<variant>~r<id>`), variants that exist only while the rollout runs, so every viewer's exposure
to them starts inside the rollout. Read under the plain names, the control (the old path,
served to everyone before) would count only the viewers new to it.

Exposures are the `exposed_units` metric: the viewers first served the arm's variant in
[analysis_since, now), each once per variant. `last_exposure_at` is the latest minute in that
window in which a unit of either arm started: an exposure, or a unit of one of the guardrails'
metrics (a view, an upload) carrying the arm's variant.

The apps' own events. The watermark says the rollups have caught up with what arrived; it
cannot say the apps stopped sending (it moves on when nothing arrives). So the tick also reads
when a client event (source=client: the apps', not the server's exposures or upload facts)
carrying the flag last arrived in the environment, and when any client event did: two rows of
`telemetry_arrivals` by key, which the rollups keep as they fold each chunk (the events are
decoded there anyway), so the tick stays a handful of indexed reads whatever the events'
volume, and the times are as current as the watermark. The flag's time decides (the guardrails
read only the events that carry the flag); the environment's tells an outage of every app from
the flag's events alone going missing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from reelout.alerts import service as alerts
from reelout.alerts.schemas import AlertOut
from reelout.rollouts.decide import ArmData, ClientEvents, Snapshot
from reelout.rollouts.plan import Plan, Stage
from reelout.telemetry import rollups
from reelout.telemetry.sums import Sums

EXPOSURES = "exposed_units"


@dataclass(frozen=True)
class TickReads:
    """What the evidence of every rollout at a tick shares, read once for all of them at the
    tick's start: the rollups' watermark, the firing alerts that veto rollouts (of every
    flag; each rollout keeps those about its own) and the apps' last client arrivals for the
    (environment, flag) of each rollout (`read`), and for each of those environments alone."""

    watermark: datetime | None
    vetoes: tuple[AlertOut, ...]
    arrivals: Mapping[tuple[str, str], datetime] = field(default_factory=dict)
    read: frozenset[tuple[str, str]] = frozenset()

    def page_alerts(self, plan: Plan) -> tuple[str, ...]:
        """`page_alerts(session, plan)` from these alerts."""
        return _names(alerts.vetoes_of(self.vetoes, flag=plan.flag, environment=plan.environment))

    def client_events(self, plan: Plan) -> ClientEvents | None:
        """When the plan's flag's and its environment's client events last arrived; None when
        the tick did not read them for this (environment, flag)."""
        if (plan.environment, plan.flag) not in self.read:
            return None
        found = self.arrivals
        return ClientEvents(
            found.get((plan.environment, plan.flag)), found.get((plan.environment, ""))
        )


def tick_reads(session: Session, targets: Collection[tuple[str, str]] = ()) -> TickReads:
    """The shared reads of a tick over the rollouts of `targets` ((environment, flag) each)."""
    keys = frozenset(targets)
    return TickReads(
        rollups.read_watermark(session),
        tuple(alerts.rollout_vetoes(session)),
        rollups.read_arrivals(session, keys),
        keys,
    )


def client_events(session: Session, plan: Plan, shared: TickReads | None) -> ClientEvents:
    """The plan's client arrivals: from the tick's shared reads, else read now."""
    found = shared.client_events(plan) if shared is not None else None
    if found is not None:
        return found
    return ClientEvents(*rollups.read_client_arrivals(session, plan.environment, plan.flag))


def _same_ratio(a: Stage, b: Stage) -> bool:
    ratio_a, ratio_b = a.shares, b.shares
    if ratio_a is None or ratio_b is None:
        return ratio_a == ratio_b
    return ratio_a[0] * ratio_b[1] == ratio_b[0] * ratio_a[1]


def analysis_since(plan: Plan, stage: int, stage_started: Sequence[datetime]) -> datetime:
    """Where the cumulative analysis of `stage` starts: the start of the first stage of the run
    of stages up to it whose arm ratio is the same (1:1 up to 50%), plus that stage's warmup.
    `stage_started[i]` is when stage i started (for every stage up to `stage`)."""
    first = stage
    while first > 0 and _same_ratio(plan.stages[first - 1], plan.stages[stage]):
        first -= 1
    return stage_started[first] + plan.stages[first].warmup


def snapshot(
    session: Session,
    plan: Plan,
    *,
    stage: int,
    stage_started_at: datetime,
    analysis_since: datetime,
    now: datetime,
    arms: tuple[str, str],
    page_alerts: Sequence[str] = (),
    approved_stages: Collection[int] = frozenset(),
    dismissed: Collection[str] = frozenset(),
    extended_until: datetime | None = None,
    shared: TickReads | None = None,
) -> Snapshot:
    """The evidence for `decide(plan, snapshot)` at `now`, read in `session`; `arms`: the
    (treatment, control) keys the flag serves the arms as; the watermark and the client
    arrivals from `shared` when the tick read them for every rollout."""
    sums = _guardrail_sums(session, plan, arms, analysis_since, now)
    watched = sorted({EXPOSURES, *(g.metric for g in plan.guardrails)})
    last = rollups.latest(session, plan.environment, watched, plan.flag, arms, analysis_since, now)
    treatment, control = (_arm(plan, sums, arm) for arm in arms)
    return Snapshot(
        now=now,
        stage=stage,
        stage_started_at=stage_started_at,
        telemetry_watermark=(
            shared.watermark if shared is not None else rollups.read_watermark(session)
        ),
        last_exposure_at=last,
        treatment=treatment,
        control=control,
        page_alerts=tuple(page_alerts),
        approved_stages=frozenset(approved_stages),
        dismissed=frozenset(dismissed),
        extended_until=extended_until,
        client_events=client_events(session, plan, shared),
    )


Found = dict[str, dict[str, Sums]]  # metric -> variant -> sums


def _guardrail_sums(
    session: Session, plan: Plan, arms: Sequence[str], since: datetime, now: datetime
) -> Found:
    """The sums of every guardrail's metric up to now - its lag, and the exposures up to now,
    in one statement."""
    ends = {g.metric: now - g.lag for g in plan.guardrails if now - g.lag > since}
    if now > since:
        ends[EXPOSURES] = now
    return rollups.window_sums_until(session, plan.environment, plan.flag, since, ends, arms)


def _arm(plan: Plan, found: Found, arm: str) -> ArmData:
    metrics = {
        g.metric: found[g.metric][arm] for g in plan.guardrails if arm in found.get(g.metric, {})
    }
    exposed = found.get(EXPOSURES, {}).get(arm)
    return ArmData(exposures=0 if exposed is None else max(0, round(exposed.n)), metrics=metrics)


def page_alerts(session: Session, plan: Plan) -> tuple[str, ...]:
    """The names of the alerts firing now that veto the plan's flag (alerts.service.vetoes:
    page severity or the `pause_rollouts` action, labelled `flag=<the flag's key>`, in the
    plan's environment or naming none)."""
    return _names(alerts.vetoes(session, flag=plan.flag, environment=plan.environment))


def _names(found: Iterable[AlertOut]) -> tuple[str, ...]:
    return tuple(sorted({alert.labels.get("alertname", alert.rule) for alert in found}))
