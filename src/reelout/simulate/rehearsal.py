"""One rehearsal: create and start a rollout of the rehearsal plan, let synthetic users arrive
at a steady real-time pace while the server's controller decides on its (accelerated) clock, and
follow the rollout's decision log until it ends or shows the scenario's hold."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from reelout.rollouts.plan import Plan
from reelout.rollouts.reasons import classify
from reelout.simulate.apps import FlagSource, Ofrep, in_process
from reelout.simulate.playback import READY_TIMEOUT_SECONDS, Clip, Player, Progress, publish
from reelout.simulate.scenarios import APPS_SILENT, Scenario
from reelout.simulate.traffic import PlaybackTally, ServerClock, Traffic, Upload

API = "/api/v1/rollouts"
STEP_SECONDS = 0.25  # real seconds between two arrivals of users
EVALUATORS = 4  # OFREP requests in flight at once
CATCH_UP_STEPS = 4  # the most steps of users one step makes up for
ENDED = frozenset({"completed", "rolled_back", "aborted", "paused"})
HOLD_SHOWN_FOR = timedelta(minutes=30)  # plan time a scenario's expected hold must last


def reason_class(reasons: list[str]) -> str:
    """What a decision is about, as the rehearsal tells runs apart: its reasons' class
    (reelout.rollouts.reasons), with the apps' telemetry lag (their events stopped) told from
    the rollups falling behind, which share the class `telemetry_lag`."""
    found = classify(reasons)
    if found == "telemetry_lag" and reasons[0].startswith("telemetry lag: no client event"):
        return APPS_SILENT
    return found


@dataclass(frozen=True)
class LogLine:
    """One decision of the log as the rehearsal prints it: a run of decisions of the same kind,
    stage and reason class is printed once, at its first."""

    plan_time: timedelta  # since the rollout started
    percent: int
    decision: str
    reason: str
    reason_class: str


@dataclass
class Outcome:
    rollout: dict[str, Any]
    lines: list[LogLine] = field(default_factory=list)
    users: int = 0
    served: dict[str, int] = field(default_factory=dict)
    reported: dict[str, int] = field(default_factory=dict)  # exposures the apps reported
    events_sent: int = 0
    timed_out: bool = False
    latest: timedelta = timedelta(0)  # plan time of the last decision read
    uploads: list[Upload] = field(default_factory=list)
    clip: Clip | None = None  # the test clip the views played
    playback: PlaybackTally = field(default_factory=PlaybackTally)

    @property
    def shown(self) -> str:
        """What the rehearsal showed: the final state, or the class of the hold it ended on."""
        state = str(self.rollout["state"])
        if state == "running" and self.lines:
            return self.lines[-1].reason_class
        return state


def _ok(reply: httpx.Response) -> Any:
    reply.raise_for_status()
    return reply.json()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class Options:
    scenario: Scenario
    users_per_second: float
    timeout_seconds: float
    seed: int = 7
    clip_timeout_seconds: float = READY_TIMEOUT_SECONDS
    ffmpeg: str | None = None  # REELOUT_FFMPEG: what makes the test clip (None: as find_tools)


@dataclass
class Rehearsal:
    admin: httpx.Client
    app: httpx.Client  # with a client key of the plan's environment
    plan: Plan
    options: Options
    on_line: Callable[[LogLine], None]
    server_key: str | None = None  # of the plan's environment: the in-process SDK's
    on_progress: Progress = lambda _: None  # publishing the test clip

    def run(self) -> Outcome:
        clip = publish(
            self.admin,
            self.app,
            self.options.clip_timeout_seconds,
            self.on_progress,
            self.options.ffmpeg,
        )
        clock = ServerClock.read(self.admin)
        created = _ok(self.admin.post(API, json=self.plan.model_dump(mode="json")))
        rollout = _ok(self.admin.post(f"{API}/{created['id']}/start", json={}))
        started = _at(rollout["started_at"])
        flags = self._flags()
        try:
            traffic = Traffic(self.app, self.admin, flags, clock, self.options.scenario,
                              self.plan.flag, rollout["served_as"]["treatment"],
                              random.Random(self.options.seed),
                              started_at=started, player=Player(self.app, clip.hls))  # fmt: skip
            outcome = Outcome(rollout, clip=clip)
            cursor = self._drive(traffic, outcome, started)
        finally:
            flags.close()
        self._follow(outcome, rollout["id"], started, cursor)
        outcome.users, outcome.served = traffic.users, dict(traffic.served)
        outcome.reported, outcome.events_sent = dict(traffic.reported), traffic.events_sent
        outcome.uploads, outcome.playback = traffic.uploads, traffic.playback
        return outcome

    def _flags(self) -> FlagSource:
        """How the scenario's apps get the flag: OFREP, or the in-process SDK."""
        if self.options.scenario.flags == "ofrep":
            return Ofrep(self.app, self.plan.flag)
        if self.server_key is None:
            raise ValueError(f"scenario {self.options.scenario.name} needs a server key")
        return in_process(str(self.app.base_url).rstrip("/"), self.server_key, self.plan.flag)

    def _drive(self, traffic: Traffic, outcome: Outcome, started: datetime) -> str | None:
        """Users arrive at a steady pace until the rollout ends, shows the scenario's hold, or
        the rehearsal times out; the decision log's cursor."""
        rollout_id, cursor = outcome.rollout["id"], None
        deadline, owed = time.monotonic() + self.options.timeout_seconds, 0.0
        last = time.monotonic()
        with ThreadPoolExecutor(EVALUATORS) as pool:
            while True:
                step_began = time.monotonic()
                # users owed for the real time gone by (a slow step must not thin the traffic
                # per minute of the server's fast clock), at most a few steps' worth at once
                behind = min(step_began - last, CATCH_UP_STEPS * STEP_SECONDS)
                owed += self.options.users_per_second * behind
                last = step_began
                traffic.arrive(int(owed), pool)
                owed -= int(owed)
                cursor = self._follow(outcome, rollout_id, started, cursor)
                outcome.rollout = _ok(self.admin.get(f"{API}/{rollout_id}"))
                if outcome.rollout["state"] in ENDED or self._hold_shown(outcome):
                    return cursor
                if time.monotonic() > deadline:
                    outcome.timed_out = True
                    return cursor
                time.sleep(max(0.0, STEP_SECONDS - (time.monotonic() - step_began)))

    def _follow(
        self, outcome: Outcome, rollout_id: int, started: datetime, cursor: str | None
    ) -> str | None:
        """Read the decision log from `cursor` on; report each line that differs from the last."""
        while True:
            params: dict[str, Any] = {"kind": "decision", "limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = _ok(self.admin.get(f"{API}/{rollout_id}/log", params=params))
            for entry in page["entries"]:
                self._line(outcome, entry, started)
            cursor = page["next_cursor"] or cursor
            if not page["more"]:
                return cursor

    def _line(self, outcome: Outcome, entry: dict[str, Any], started: datetime) -> None:
        body = entry["body"]
        reasons = list(body.get("reasons") or ([entry["reason"]] if entry["reason"] else []))
        stage = int(body.get("stage", 0))
        line = LogLine(_at(entry["at"]) - started, self.plan.stages[stage].percent,
                       entry["what"], reasons[0] if reasons else "", reason_class(reasons))  # fmt: skip
        outcome.latest = line.plan_time
        last = outcome.lines[-1] if outcome.lines else None
        if last and (last.percent, last.decision, last.reason_class) == (
            line.percent, line.decision, line.reason_class,
        ):  # fmt: skip
            return  # the same hold again, a minute on
        outcome.lines.append(line)
        self.on_line(line)

    def _hold_shown(self, outcome: Outcome) -> bool:
        """A hold scenario is shown once its hold has lasted HOLD_SHOWN_FOR in plan time."""
        expected = self.options.scenario.expected
        if expected in ENDED or not outcome.lines:
            return False
        first = None
        for line in reversed(outcome.lines):
            if line.decision != "hold" or line.reason_class != expected:
                break
            first = line
        return first is not None and outcome.latest - first.plan_time >= HOLD_SHOWN_FOR
