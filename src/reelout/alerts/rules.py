"""Alert and digest rules as data (pure): the pydantic model of the rule format, its durations and
cron schedules, YAML/JSON reading, and validation errors with stable codes.

A document is `{alert_rules: [...], routing: {...}}` (either key optional); one rule alone is a
mapping with an `id`. Every error names where it is (`alert_rules[1].signal.window`) and carries
a code: the first error's own (`INVALID_DURATION`, `INVALID_CRON`, `INVALID_TEMPLATE`, ...) or
`INVALID_RULE`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from cronsim import CronSim, CronSimError
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from reelout.alerts import templates
from reelout.alerts.templates import spell_duration
from reelout.errors import BadRequest, ReeloutError
from reelout.textdata import Unreadable, read_text

MAX_RULES_PER_DOCUMENT = 200
MAX_LABELS = 16
MAX_LABEL_VALUE_CHARS = 200
MAX_BURN_WINDOWS = 6
MAX_DURATION = timedelta(days=90)
ALERTNAME, SEVERITY_LABEL = "alertname", "severity"
RESERVED_LABELS = (ALERTNAME, SEVERITY_LABEL)
_DURATION = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNIT_SECONDS = (7 * 86400, 86400, 3600, 60, 1)
RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
LABEL_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
METRIC_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


class RuleError(ReeloutError):
    """A rule or rules document that does not validate: 422 with where and why."""

    status = 422
    code = "INVALID_RULE"


# ---- durations and schedules -------------------------------------------------------------------


def parse_duration(value: object) -> timedelta:
    """ "30s", "5m", "1h30m", "2d", "1w" (or seconds as a number) as a timedelta."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        seconds = float(value)
    elif isinstance(value, str) and value and (match := _DURATION.fullmatch(value.strip())):
        seconds = sum(
            int(n or 0) * size for n, size in zip(match.groups(), _UNIT_SECONDS, strict=True)
        )
    else:
        raise PydanticCustomError(
            "invalid_duration",
            "{value} is not a duration such as 30s, 5m, 1h30m or 24h",
            {"value": repr(value)},
        )
    if seconds < 0 or seconds > MAX_DURATION.total_seconds():
        raise PydanticCustomError(
            "invalid_duration",
            "a duration is 0s to 90d, not {value}",
            {"value": repr(value)},
        )
    return timedelta(seconds=int(seconds))


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(spell_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"}),
]


def _check_cron(value: object) -> str:
    if not isinstance(value, str) or len(value) > 100:
        raise PydanticCustomError("invalid_cron", "a schedule is a cron expression string")
    try:
        CronSim(value, datetime(2026, 1, 1, tzinfo=UTC))
    except (CronSimError, ValueError) as exc:
        raise PydanticCustomError(
            "invalid_cron",
            "{value} is not a cron expression (minute hour day month weekday, UTC; e.g. "
            '"0 9 * * *" for 09:00 every day): {why}',
            {"value": repr(value), "why": str(exc)},
        ) from None
    return " ".join(value.split())


Cron = Annotated[str, BeforeValidator(_check_cron)]


def next_run(schedule: str, after: datetime) -> datetime:
    """The first time strictly after `after` that the cron `schedule` (UTC) names."""
    start = after.astimezone(UTC).replace(second=0, microsecond=0)
    for moment in CronSim(schedule, start):
        if moment > after:
            return moment.astimezone(UTC)
    raise ValueError(f"{schedule!r} names no time after {after}")  # pragma: no cover


# ---- the parts of a rule -----------------------------------------------------------------------


def _check_template(value: object) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("invalid_template", "a template is a string")
    why = templates.check(value)
    if why is not None:
        raise PydanticCustomError("invalid_template", "{why}", {"why": why})
    return value


LabelName = Annotated[str, Field(pattern=LABEL_NAME_PATTERN)]
LabelValue = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_VALUE_CHARS)]
Labels = Annotated[dict[LabelName, LabelValue], Field(max_length=MAX_LABELS)]
Template = Annotated[str, BeforeValidator(_check_template)]
MetricName = Annotated[str, Field(pattern=METRIC_PATTERN)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


class Severity(StrEnum):
    page = "page"
    warning = "warning"
    info = "info"


class NoData(StrEnum):
    """What an evaluation without data counts as."""

    ok = "ok"  # the condition is not met
    alerting = "alerting"  # the condition is met
    keep_last = "keep_last"  # nothing changes
    nodata = "nodata"  # the alert goes to its own `nodata` state (and notifies)


class Action(StrEnum):
    notify = "notify"
    pause_rollouts = "pause_rollouts"  # read by the rollout controller as a veto


class Op(StrEnum):
    gt = ">"
    ge = ">="
    lt = "<"
    le = "<="

    def holds(self, value: float, threshold: float) -> bool:
        if self is Op.gt:
            return value > threshold
        if self is Op.ge:
            return value >= threshold
        if self is Op.lt:
            return value < threshold
        return value <= threshold


class Signal(Strict):
    metric: MetricName = Field(description="A metric of the catalogue, e.g. `error_rate`.")
    scope: Labels = Field(
        default_factory=dict,
        description='Label → value, or "*" for one alert per value (e.g. per flag variant).',
    )
    window: Duration | None = Field(
        default=None, description="How far back each evaluation looks (e.g. 5m)."
    )


class Condition(Strict):
    op: Op
    threshold: float
    min_denominator: float = Field(
        default=0,
        ge=0,
        description="Below this volume the condition is not met: 1 failure of 3 is never 33%.",
    )

    def met(self, numerator: float, denominator: float) -> bool:
        if denominator <= 0 or denominator < self.min_denominator:
            return False
        return self.op.holds(numerator / denominator, self.threshold)


class BurnWindow(Strict):
    long: Duration
    short: Duration
    factor: float = Field(gt=0, description="Page when both windows burn faster than this.")

    @model_validator(mode="after")
    def _short_is_shorter(self) -> BurnWindow:
        if not timedelta(0) < self.short < self.long:
            raise PydanticCustomError(
                "invalid_burn_window", "a burn-rate pair needs 0 < short < long"
            )
        return self


class BurnRate(Strict):
    objective: float = Field(gt=0, lt=1, description="The SLO, e.g. 0.99: the budget is 1%.")
    windows: list[BurnWindow] = Field(min_length=1, max_length=MAX_BURN_WINDOWS)
    min_denominator: float = Field(default=0, ge=0)

    @property
    def budget(self) -> float:
        return 1.0 - self.objective


class Report(Strict):
    metrics: list[MetricName] = Field(
        default_factory=list,
        max_length=12,
        description="More KPIs for the digest's table, sampled over the same scope and window.",
    )


def _no_reserved(labels: dict[str, str]) -> dict[str, str]:
    if taken := [name for name in RESERVED_LABELS if name in labels]:
        raise PydanticCustomError(
            "reserved_label",
            "labels may not set {names}: they come from the rule's id and severity",
            {"names": ", ".join(taken)},
        )
    return labels


class RuleBase(Strict):
    id: str = Field(pattern=RULE_ID_PATTERN, description="Unique; becomes the `alertname` label.")
    description: str = Field(default="", max_length=500)
    enabled: bool = True
    signal: Signal
    labels: Labels = Field(default_factory=dict)
    annotations: Annotated[dict[LabelName, Template], Field(max_length=MAX_LABELS)] = Field(
        default_factory=dict,
        description="Templates, e.g. summary, description, runbook (see the docs' variables).",
    )

    _labels_free = field_validator("labels")(_no_reserved)


class AlertRule(RuleBase):
    kind: Literal["alert"] = "alert"
    condition: Condition | None = None
    burn_rate: BurnRate | None = None
    for_: Duration = Field(default=timedelta(0), alias="for")
    keep_firing_for: Duration = timedelta(0)
    no_data: NoData = NoData.ok
    severity: Severity = Severity.warning
    actions: list[Action] = Field(default_factory=lambda: [Action.notify], max_length=4)

    @model_validator(mode="after")
    def _one_condition(self) -> AlertRule:
        if (self.condition is None) == (self.burn_rate is None):
            raise PydanticCustomError(
                "condition_required", "an alert rule has either `condition` or `burn_rate`"
            )
        if self.condition is not None and not self.signal.window:
            raise PydanticCustomError(
                "window_required", "a threshold rule needs `signal.window` (e.g. 5m)"
            )
        if self.burn_rate is not None and self.signal.window is not None:
            raise PydanticCustomError(
                "window_not_allowed",
                "a burn-rate rule takes its windows from `burn_rate.windows`, not `signal.window`",
            )
        return self

    def windows(self) -> list[timedelta]:
        """Every window an evaluation samples, longest first, without repeats."""
        if self.burn_rate is None:
            assert self.signal.window is not None
            return [self.signal.window]
        found = {w for pair in self.burn_rate.windows for w in (pair.long, pair.short)}
        return sorted(found, reverse=True)


class DigestRule(RuleBase):
    kind: Literal["digest"]
    schedule: Cron = Field(description='Cron, UTC, e.g. "0 9 * * *".')
    condition: Condition | None = None
    report: Report = Field(default_factory=Report)
    severity: Severity = Severity.info

    @model_validator(mode="after")
    def _has_window(self) -> DigestRule:
        if not self.signal.window:
            raise PydanticCustomError(
                "window_required", "a digest needs `signal.window` (e.g. 24h)"
            )
        return self


def _kind(value: Any) -> str:
    kind = value.get("kind", "alert") if isinstance(value, Mapping) else getattr(value, "kind", "")
    return kind if kind in ("alert", "digest") else "alert"


Rule = Annotated[
    Annotated[AlertRule, Tag("alert")] | Annotated[DigestRule, Tag("digest")],
    Discriminator(_kind),
]


class InhibitRule(Strict):
    """While an alert matching `source` is active, alerts matching `target` that share the
    `equal` labels with it are muted."""

    source: Labels
    target: Labels
    equal: list[LabelName] = Field(default_factory=list, max_length=MAX_LABELS)


GROUP_ALL = "..."  # group_by: one group per alert


def _default_inhibit() -> list[InhibitRule]:
    rolled_back = {"alertname": "rollout-rolled-back"}
    return [InhibitRule(source=rolled_back, target={"severity": "warning"}, equal=["flag"])]


class Routing(Strict):
    """How alerts become notifications: grouping, the waits, and inhibition."""

    group_by: list[Annotated[str, Field(pattern=LABEL_NAME_PATTERN + "|^\\.\\.\\.$")]] = Field(
        default_factory=lambda: ["alertname", "environment", "flag"], max_length=MAX_LABELS
    )
    group_wait: Duration = Field(default=timedelta(seconds=30))
    group_interval: Duration = Field(default=timedelta(minutes=5))
    repeat_interval: Duration = Field(default=timedelta(hours=4))
    inhibit: list[InhibitRule] = Field(default_factory=_default_inhibit, max_length=50)


class RuleDocument(Strict):
    alert_rules: list[Rule] = Field(default_factory=list, max_length=MAX_RULES_PER_DOCUMENT)
    routing: Routing | None = None

    @model_validator(mode="after")
    def _unique_ids(self) -> RuleDocument:
        seen: set[str] = set()
        for rule in self.alert_rules:
            if rule.id in seen:
                raise PydanticCustomError(
                    "duplicate_rule_id", "two rules have the id {id}", {"id": repr(rule.id)}
                )
            seen.add(rule.id)
        return self


AnyRule = AlertRule | DigestRule


# ---- reading -----------------------------------------------------------------------------------


def load_text(raw: bytes | str) -> Any:
    """YAML or JSON text as data (`textdata.read_text`), or RULES_UNREADABLE."""
    try:
        return read_text(raw)[0]
    except Unreadable as exc:
        raise BadRequest(
            f"the rules are neither valid YAML nor JSON: {exc}", code="RULES_UNREADABLE"
        ) from None


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("alert", "digest", "function-after[_unique_ids(), RuleDocument]"):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "(document)"


def _code(error_type: str) -> str:
    custom = {
        "invalid_duration", "invalid_cron", "invalid_template", "duplicate_rule_id",
        "reserved_label", "condition_required", "window_required", "window_not_allowed",
        "invalid_burn_window",
    }  # fmt: skip
    return error_type.upper() if error_type in custom else "INVALID_RULE"


def rule_error(exc: ValidationError, prefix: str = "") -> RuleError:
    """One RuleError for all of a validation's errors, coded by the first."""
    errors = [
        {"loc": prefix + _where(tuple(e["loc"])), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False)
    ]
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return RuleError(
        f"{first['loc']}: {first['msg']}{more}",
        code=_code(str(first["type"])),
        details={"errors": errors},
    )


def parse_rule(data: Any) -> AnyRule:
    """One rule from data (a mapping), or RuleError."""
    if not isinstance(data, Mapping):
        raise RuleError("a rule is a mapping with at least id, signal and condition")
    try:
        if _kind(data) == "digest":
            return DigestRule.model_validate(data)
        return AlertRule.model_validate(data)
    except ValidationError as exc:
        raise rule_error(exc) from None


def parse_document(data: Any) -> RuleDocument:
    """A rules document from data: `{alert_rules, routing}`, a list of rules, or one rule."""
    if isinstance(data, list):
        data = {"alert_rules": data}
    elif isinstance(data, Mapping) and "id" in data:
        data = {"alert_rules": [data]}
    if not isinstance(data, Mapping):
        raise RuleError("a rules document is a mapping with `alert_rules` (and `routing`)")
    try:
        return RuleDocument.model_validate(data)
    except ValidationError as exc:
        raise rule_error(exc) from None


def dump(rule: AnyRule) -> dict[str, Any]:
    """A rule as the JSON the API answers (and a file would hold): durations spelled out."""
    return rule.model_dump(mode="json", by_alias=True)
