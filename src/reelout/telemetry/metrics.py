"""The metric catalogue as data: each metric's kind, unit, numerator and denominator facts,
direction, and the seed's baseline and goal for the six KPIs a rollout watches. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from reelout.telemetry.facts import UnitKind

MetricKind = Literal["proportion", "ratio", "mean"]
Direction = Literal["higher", "lower"]
Display = Literal["percent", "seconds", "score", "log_ms", "count"]


@dataclass(frozen=True)
class Goal:
    """The seed's numbers: where the old path stood and what the new one must reach."""

    baseline: float
    op: Literal[">=", "<="]
    target: float

    def met(self, value: float) -> bool:
        return value >= self.target if self.op == ">=" else value <= self.target


@dataclass(frozen=True)
class Metric:
    """One metric over units of one kind. A proportion counts the units whose `denominator`
    fact is positive and averages their 0/1 `numerator`; a mean averages `numerator` over the
    units that have it; a ratio is Σnumerator / Σdenominator over units (the delta method's
    unit, e.g. a viewer), counting units with a positive denominator."""

    name: str
    title: str
    kind: MetricKind
    unit: UnitKind
    numerator: str
    denominator: str | None
    direction: Direction
    display: Display
    description: str
    lag_minutes: int = 0
    quantiles: bool = False
    goal: Goal | None = None

    def contribution(self, facts: Mapping[str, float]) -> tuple[float, float] | None:
        """This unit's (x, d) for the metric, or None when the unit does not count in it."""
        if self.kind == "mean":
            value = facts.get(self.numerator)
            return None if value is None else (value, 1.0)
        assert self.denominator is not None
        d = facts.get(self.denominator, 0.0)
        if d <= 0:
            return None
        x = facts.get(self.numerator, 0.0)
        return (x, 1.0) if self.kind == "proportion" else (x, d)


def _m(
    name: str,
    kind: MetricKind,
    unit: UnitKind,
    numerator: str,
    denominator: str | None,
    direction: Direction,
    display: Display,
    title: str,
    description: str,
    **extra: object,
) -> Metric:
    return Metric(
        name,
        title,
        kind,
        unit,
        numerator,
        denominator,
        direction,
        display,
        description,
        **extra,  # type: ignore[arg-type]
    )


CATALOGUE: tuple[Metric, ...] = (
    _m("upload_success_rate", "proportion", "attempt", "succeeded", "attempted", "higher",
       "percent", "Upload success rate",
       "Upload attempts the apps reported that completed, of those that ended (completed, "
       "failed, abandoned); the server's own record is server_upload_success_rate.",
       goal=Goal(0.85, ">=", 0.95)),
    _m("upload_failure_rate", "proportion", "attempt", "failed", "attempted", "lower",
       "percent", "Upload failure rate", "Upload attempts that ended without completing."),
    _m("upload_success_per_uploader", "ratio", "viewer", "upload_successes", "upload_attempts",
       "higher", "percent", "Upload success per uploader",
       "Σ completed / Σ attempts with the uploader as the unit (delta method)."),
    _m("upload_seconds_100mb", "mean", "attempt", "seconds_per_100mb", None, "lower",
       "seconds", "Upload time for 100 MB",
       "Completed uploads' duration scaled to 100 MB (duration * 100 MB / bytes), averaged.",
       goal=Goal(180.0, "<=", 90.0)),
    _m("video_startup_seconds", "mean", "view", "startup_seconds", None, "lower", "seconds",
       "Video startup time",
       "play_request → first playing, per view that played (Mux's Video Startup Time); read it "
       "with exits before start and startup failures, which have none.",
       quantiles=True, goal=Goal(3.5, "<=", 2.0)),
    _m("video_startup_log_ms", "mean", "viewer", "log_startup_ms", None, "lower", "log_ms",
       "Video startup time, log per viewer",
       "Each viewer's mean of ln(startup ms) over their views that played (startup as in "
       "video_startup_seconds, 1 ms at least), averaged over viewers: the randomization unit "
       "carries the variance, and an arm difference of 0.05 is about 5 % slower startup "
       "(exp of the value is the geometric mean in ms)."),
    _m("exits_before_video_start", "proportion", "view", "exited_before_start", "views",
       "lower", "percent", "Exits before video start",
       "Views that ended after play intent, before the first frame, without a fatal error."),
    _m("video_startup_failure", "proportion", "view", "startup_failed", "views", "lower",
       "percent", "Video startup failure", "Views with a fatal error before the first frame."),
    _m("playback_failure", "proportion", "view", "playback_failed", "views", "lower",
       "percent", "Playback failure",
       "Views ended by a fatal playback error (business and warning errors excluded)."),
    _m("rebuffer_percentage", "ratio", "view", "rebuffer_ms", "viewing_ms", "lower",
       "percent", "Rebuffer percentage",
       "Σ stall ms / Σ (playing + stall) ms over views that played; seek waits are not stalls."),
    _m("views_with_buffering", "proportion", "view", "rebuffered", "played", "lower",
       "percent", "Views with buffering", "Views that played and stalled at least once.",
       goal=Goal(0.15, "<=", 0.08)),
    _m("cache_hit_ratio", "ratio", "view", "cache_hit_bytes", "delivered_bytes", "higher",
       "percent", "Cache hit ratio",
       "Σ bytes the player took from its own cache (cache_hit events) / Σ bytes it delivered "
       "(those plus the network_bytes counter of heartbeat and view_end), over views that "
       "report network_bytes: cache_hit carries only the hit, so a view without that counter "
       "has no known share and does not count."),
    _m("crash_rate", "proportion", "session", "crashed", "sessions", "lower", "percent",
       "Crash rate", "App sessions that ended crashed or abnormal (Sentry's statuses).",
       goal=Goal(0.025, "<=", 0.01)),
    _m("crash_free_sessions", "proportion", "session", "crash_free", "sessions", "higher",
       "percent", "Crash-free sessions", "App sessions that did not crash."),
    _m("crash_free_users", "proportion", "viewer", "crash_free", "sessions", "higher",
       "percent", "Crash-free users", "Viewers with sessions, none of which crashed."),
    _m("satisfaction", "ratio", "viewer", "score_sum", "ratings", "higher", "score",
       "Satisfaction", "Mean rating (1 to 5), the viewer as the unit.", lag_minutes=60,
       goal=Goal(3.5, ">=", 4.2)),
    _m("complaint_rate", "proportion", "viewer", "complained", "viewers", "lower", "percent",
       "Complaint rate",
       "Viewers who complained, of viewers seen (in a flag's arm: of viewers exposed to it, "
       "with their complaints that carried its variant).", lag_minutes=60),
    _m("error_rate", "proportion", "action", "failed", "actions", "lower", "percent",
       "Error rate",
       "Actions (upload attempts the apps reported, and views) that failed: the upload did not "
       "complete, or the view met a fatal error."),
    _m("server_upload_success_rate", "proportion", "attempt", "server_succeeded",
       "server_attempted", "higher", "percent", "Upload success at the server",
       "Uploads (tus, direct, legacy base64) that finished at Reelout's endpoints, of those "
       "that finished or failed there: the server's own record, with no client reporting."),
    _m("processing_success_rate", "proportion", "attempt", "processing_ok", "processed",
       "higher", "percent", "Processing success",
       "Videos whose processing ended ready, of those whose processing ended."),
    _m("exposed_units", "mean", "exposure", "exposed", None, "higher", "count",
       "Exposed units",
       "Viewers served each variant (exposure events: OFREP's log, or the app's), each counted "
       "once per variant, in the minute of their first exposure to it (that event, or an "
       "earlier one that carried the variant): read n, the count (the value is always 1). A "
       "viewer whose events carried the variant with no exposure event is not counted. The "
       "rollout controller's units per arm and sample-ratio check."),
)  # fmt: skip
METRICS: dict[str, Metric] = {metric.name: metric for metric in CATALOGUE}
SEED_KPIS = tuple(metric.name for metric in CATALOGUE if metric.goal is not None)
