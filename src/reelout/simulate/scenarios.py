"""The rehearsal's scenarios (how each arm's users behave) and its small plan, derived from the
seed's template; pure: no HTTP, no database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from reelout.rollouts.plan import Plan, Stage, seed_template

# the rehearsal's stages: the seed's percents, each a short while in plan time, with unit floors
# a few hundred users reach (the seed's F12 sizes need weeks of real traffic); the 50 % stage
# waits for 400 per arm: with 250 (about the median the sequential test needs to prove a 2 % ->
# 10 % upload failure regression) a busy machine's slow uploads let one slip through to 100 %
STAGES = (
    Stage(percent=10, min_duration=timedelta(minutes=20), warmup=timedelta(minutes=5),
          min_units_per_arm=30),
    Stage(percent=25, min_duration=timedelta(minutes=15), warmup=timedelta(minutes=5),
          min_units_per_arm=80),
    Stage(percent=50, min_duration=timedelta(minutes=15), warmup=timedelta(minutes=5),
          min_units_per_arm=400),
    Stage(percent=100, min_duration=timedelta(minutes=10), monitor_only=True),
)  # fmt: skip
# guardrails the synthetic users report; complaints (6 h late by design) are left out
DROPPED_GUARDRAILS = frozenset({"complaint_rate"})
# the hold on the apps' telemetry lag, told from the rollups' (both `telemetry_lag` as labels)
APPS_SILENT = "apps_telemetry_lag"
FlagsPath = Literal["ofrep", "in_process"]  # how the apps get the flag (simulate.apps)
EVENTS_SCALE = 20  # min_events_per_arm is the seed's divided by this
TUNING_N = 600  # about the units per arm by which the rehearsal should catch a regression


@dataclass(frozen=True)
class Behaviour:
    """How the users of one arm fare: failure shares and latency medians."""

    upload_failure: float = 0.02
    upload_seconds: float = 40.0  # median duration of a 50 MB upload
    view_failure: float = 0.005
    startup_ms: float = 900.0  # median play_request -> first frame
    rebuffer_share: float = 0.01  # stalled share of viewing time
    crash: float = 0.003  # sessions that end crashed
    exposure_reported: float = 1.0  # users whose exposure the app reports (in-process flags)


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    expected: str  # what the rehearsal shows: a final state, or the hold's reason class (or
    # APPS_SILENT)
    control: Behaviour = Behaviour()
    treatment: Behaviour = Behaviour()
    # plan time after the start when the apps' events stop reaching the server (they still
    # evaluate the flag and upload)
    telemetry_stops_after: timedelta | None = None
    flags: FlagsPath = "ofrep"


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("healthy", "both arms fare alike: the canary advances to 100 % and completes",
                 "completed"),
        Scenario("regression",
                 "the treatment's upload failures go from 2 % to 10 %: the rollout rolls back",
                 "rolled_back", treatment=Behaviour(upload_failure=0.10)),
        Scenario("outage",
                 "10 minutes in, the apps' telemetry stops reaching the server while they still "
                 "evaluate the flag over OFREP: the rollout holds on telemetry lag",
                 APPS_SILENT, telemetry_stops_after=timedelta(minutes=10)),
        Scenario("srm",
                 "the apps evaluate the flag in process and report exposures themselves; the "
                 "treatment's new upload screen reports one only when it is opened (60 % of "
                 "users): the rollout holds on sample-ratio mismatch",
                 "srm", treatment=Behaviour(exposure_reported=0.6), flags="in_process"),
    )
}  # fmt: skip


def rehearsal_plan(
    flag: str, environment: str, treatment: str = "on", control: str = "off"
) -> Plan:
    """The seed's template made small: short stages in plan time, low unit and event floors,
    no approval step, and only the guardrails the synthetic users report."""
    seed = seed_template(flag, environment, treatment, control)
    guardrails = [
        g.model_copy(update={"min_events_per_arm": g.min_events_per_arm // EVENTS_SCALE})
        for g in seed.guardrails
        if g.metric not in DROPPED_GUARDRAILS
    ]
    stats = seed.stats.model_copy(
        update={"sequential": seed.stats.sequential.model_copy(update={"tuning_n": TUNING_N})}
    )
    return seed.model_copy(
        update={
            "stages": list(STAGES),
            "guardrails": guardrails,
            "stats": stats,
            "approvals": seed.approvals.model_copy(update={"before_stage": []}),
            "on_insufficient_data": seed.on_insufficient_data.model_copy(
                update={"extend_by": timedelta(minutes=30)}
            ),
        }
    )
