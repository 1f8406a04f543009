"""Rollout plans as data (pure): the pydantic model of the plan format (spec §4.1), reading it
from YAML or JSON, its validation with every problem named by its path, and the seed's plan
shipped as a template (`templates/seed.yaml`), and a stored plan read back (`stored_plan`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from reelout.alerts.rules import Duration, parse_duration
from reelout.alerts.templates import spell_duration
from reelout.errors import BadRequest
from reelout.stats.compare import DEFAULT_N_STAR
from reelout.telemetry.metrics import METRICS, MetricKind
from reelout.textdata import Unreadable, read_text

Role = Literal["critical", "guardrail", "signal", "info"]
Direction = Literal["higher_is_better", "lower_is_better"]
Action = Literal["rollback", "hold", "pause"]
Percent = Annotated[int, Field(ge=1, le=100)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
SEED_TEMPLATE = "seed.yaml"
STORED_PLANS_CACHED = 256  # stored plans kept read (validated), by their JSON text


class PlanInvalid(BadRequest):
    """A plan that does not read or does not validate; the message lists every problem."""

    code = "INVALID_PLAN"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class ControlArm(Strict):
    """The control: the variant it is served, with a share matched to the treatment's (up to
    50%); the rest of the traffic keeps the old path and is left out of the analysis."""

    variation: Name
    allocation: Literal["matched"] = "matched"


class Stage(Strict):
    """One step of the rollout: the treatment's share and how long it stays there."""

    percent: Percent
    min_duration: Duration
    max_duration: Duration | None = None
    warmup: Duration = timedelta(0)
    min_units_per_arm: int = Field(0, ge=0)
    monitor_only: bool = False

    @property
    def shares(self) -> tuple[int, int] | None:
        """The treatment's and the control's share of the traffic (percent): the control
        matched to the treatment up to 50%, the rest of the traffic past that (75 -> 75:25);
        None on a monitor-only stage, which has no control."""
        if self.monitor_only:
            return None
        return self.percent, min(self.percent, 100 - self.percent)

    @field_validator("min_duration")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise PydanticCustomError("invalid_duration", "a stage lasts more than 0s")
        return value

    @field_validator("max_duration")
    @classmethod
    def _positive_max(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise PydanticCustomError("invalid_duration", "a stage lasts more than 0s")
        return value


class VsControl(Strict):
    """The comparison with the control: harm beyond this margin is proven harm. `margin_abs`
    is in the metric's own units (0.01 = one percentage point of a rate); `margin_rel` is a
    share of the control's value (0.10 = 10% worse)."""

    margin_abs: float | None = Field(None, ge=0)
    margin_rel: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_margin(self) -> VsControl:
        if (self.margin_abs is None) == (self.margin_rel is None):
            raise PydanticCustomError(
                "margin_required", "give exactly one of margin_abs, margin_rel"
            )
        return self

    @property
    def relative(self) -> bool:
        return self.margin_rel is not None

    @property
    def margin(self) -> float:
        return self.margin_rel if self.margin_rel is not None else (self.margin_abs or 0.0)


class Absolute(Strict):
    """A kill switch on the treatment's own value: `min` (the value must stay above) or `max`
    (below), and what to do when a bound proves it crossed."""

    min: float | None = None
    max: float | None = None
    action: Action

    @model_validator(mode="after")
    def _one_limit(self) -> Absolute:
        if (self.min is None) == (self.max is None):
            raise PydanticCustomError("limit_required", "give exactly one of min, max")
        return self


def _known_metric(value: str) -> str:
    if value not in METRICS:
        raise PydanticCustomError(
            "unknown_metric",
            "{value} is not a metric; the known metrics are {known}",
            {"value": repr(value), "known": ", ".join(sorted(METRICS))},
        )
    return value


class Guardrail(Strict):
    """A metric the rollout watches, its role (what proven harm does) and its checks."""

    metric: Name
    type: MetricKind | None = None  # optional: when given, it must match the catalogue
    role: Role
    direction: Direction
    vs_control: VsControl | None = None
    absolute: Absolute | None = None
    min_events_per_arm: int = Field(0, ge=0)
    lag: Duration
    evaluate_from_stage: Percent | None = None

    @model_validator(mode="before")
    @classmethod
    def _catalogue_defaults(cls, data: Any) -> Any:
        """direction and lag default to the catalogue's; an unknown metric gets placeholders
        so that its only problem reported is its name."""
        if not isinstance(data, Mapping):
            return data
        metric = METRICS.get(str(data.get("metric")))
        out = dict(data)
        if metric is None:
            out.setdefault("direction", "lower_is_better")
            out.setdefault("lag", 0)
        else:
            out.setdefault("direction", f"{metric.direction}_is_better")
            out.setdefault("lag", metric.lag_minutes * 60)
        return out

    _metric = field_validator("metric")(_known_metric)

    @model_validator(mode="after")
    def _consistent(self) -> Guardrail:
        if self.vs_control is None and self.absolute is None:
            raise PydanticCustomError("check_required", "give vs_control, absolute or both")
        kind = METRICS[self.metric].kind
        if (
            self.type is not None
            and self.type != kind
            and (self.type, kind) != ("ratio", "proportion")
        ):
            raise PydanticCustomError(
                "type_mismatch",
                "type {given} does not match the metric {metric}, a {kind}",
                {"given": self.type, "metric": self.metric, "kind": kind},
            )
        return self


class SrmCheck(Strict):
    """Sample-ratio mismatch (F3): a χ² p-value under `p_threshold`, once each arm expects at
    least `min_units_per_arm` units, holds (or pauses) the rollout."""

    p_threshold: float = Field(0.001, gt=0, lt=1)
    min_units_per_arm: int = Field(8, ge=0)
    action: Literal["hold", "pause"] = "hold"


class ExposureCheck(Strict):
    """The share of units exposed to both arms; read by the controller, not the decision."""

    max: float = Field(0.01, ge=0, le=1)
    action: Literal["warn", "hold", "pause"] = "warn"


class Health(Strict):
    """Checks that come before any metric: is the data fresh, is there traffic, is the split
    the one planned."""

    srm: SrmCheck = SrmCheck()
    max_data_lag: Duration = timedelta(minutes=10)
    no_traffic_after: Duration = timedelta(minutes=30)
    multiple_exposure_rate: ExposureCheck | None = None


class InsufficientPolicy(Strict):
    """What a stage past its max_duration without enough data does."""

    action: Literal["extend_then_pause", "pause", "rollback", "advance"] = "extend_then_pause"
    extend_by: Duration = timedelta(hours=24)


class Sequential(Strict):
    method: Literal["asymptotic_cs"] = "asymptotic_cs"
    tuning_n: int = Field(DEFAULT_N_STAR, ge=1)


class StatsSettings(Strict):
    alpha: float = Field(0.05, gt=0, lt=0.5)
    sequential: Sequential = Sequential()
    correction: Literal["sidak", "none"] = "sidak"


class Approvals(Strict):
    """Stage percents a person must approve before the rollout enters them."""

    before_stage: list[Percent] = []


class Plan(Strict):
    """A rollout plan (spec §4.1)."""

    flag: Name
    environment: Name
    unit: Name = "viewer_id"
    treatment: Name
    control: ControlArm
    stages: list[Stage] = Field(min_length=1, max_length=20)
    guardrails: list[Guardrail] = Field([], max_length=50)
    health: Health = Health()
    on_insufficient_data: InsufficientPolicy = InsufficientPolicy()
    stats: StatsSettings = StatsSettings()
    approvals: Approvals = Approvals()
    notify: list[Name] = []

    @property
    def percents(self) -> tuple[int, ...]:
        """Each stage's treatment percentage, in order."""
        return tuple(stage.percent for stage in self.stages)

    @property
    def metrics(self) -> tuple[str, ...]:
        """The guardrails' metrics, in order."""
        return tuple(guardrail.metric for guardrail in self.guardrails)

    @model_validator(mode="after")
    def _coherent(self) -> Plan:
        problems = plan_problems(self.model_dump())
        if problems:
            raise PydanticCustomError(
                "invalid_plan", "{listed}", {"listed": "; ".join(problems), "problems": problems}
            )
        return self


def plan_problems(data: Mapping[str, Any]) -> list[str]:
    """The problems across fields, as `path: why`. Lenient about types: it also reads a plan
    whose fields did not validate, so one answer lists those problems with the fields' own."""
    problems: list[str] = []
    control = data.get("control")
    variation = control.get("variation") if isinstance(control, Mapping) else None
    treatment = data.get("treatment")
    if isinstance(treatment, str) and treatment == variation:
        problems.append(f"treatment: {treatment!r} is also the control's variation")
    stages = data.get("stages")
    stages = [s for s in stages if isinstance(s, Mapping)] if isinstance(stages, list) else []
    percents: list[int] = []
    for i, stage in enumerate(stages):
        percent = stage.get("percent")
        if not isinstance(percent, int):
            continue
        if percents and percent <= percents[-1]:
            problems.append(
                f"stages[{i}].percent: {percent} is not above the stage before's {percents[-1]}"
                " (percents rise strictly)"
            )
        percents.append(percent)
        problems += _stage_problems(i, stage, percent)
    known = set(percents)
    guardrails = data.get("guardrails")
    watched: dict[str, int] = {}
    for i, guardrail in enumerate(guardrails if isinstance(guardrails, list) else []):
        metric = guardrail.get("metric") if isinstance(guardrail, Mapping) else None
        if isinstance(metric, str) and metric in watched:
            problems.append(
                f"guardrails[{i}].metric: {metric!r} is already watched by"
                f" guardrails[{watched[metric]}]"
            )
        elif isinstance(metric, str):
            watched[metric] = i
        start = guardrail.get("evaluate_from_stage") if isinstance(guardrail, Mapping) else None
        if isinstance(start, int) and known and start not in known:
            problems.append(
                f"guardrails[{i}].evaluate_from_stage: {start} is not a stage's percent"
                f" ({_listed(percents)})"
            )
    approvals = data.get("approvals")
    gates = approvals.get("before_stage") if isinstance(approvals, Mapping) else None
    for i, gate in enumerate(gates if isinstance(gates, list) else []):
        if isinstance(gate, int) and known and gate not in known:
            problems.append(
                f"approvals.before_stage[{i}]: {gate} is not a stage's percent ({_listed(percents)})"
            )
    return problems


def _stage_problems(i: int, stage: Mapping[str, Any], percent: int) -> list[str]:
    problems = []
    monitor_only = stage.get("monitor_only") is True
    if monitor_only and percent != 100:
        problems.append(
            f"stages[{i}].monitor_only: only the 100% stage is monitor-only (this one is {percent}%)"
        )
    if percent == 100 and not monitor_only:
        problems.append(
            f"stages[{i}].monitor_only: at 100% everyone has the treatment and no control is left"
            " to compare with: set monitor_only: true"
        )
    low, high = _duration(stage.get("min_duration")), _duration(stage.get("max_duration"))
    if low is not None and high is not None and timedelta(0) < high < low:
        problems.append(
            f"stages[{i}].max_duration: {spell_duration(high)} is shorter than min_duration {spell_duration(low)}"
        )
    return problems


def _duration(value: object) -> timedelta | None:
    """A duration as written (or as the model spells it), None when it is none."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError:  # PydanticCustomError is a ValueError
        return None


def _listed(percents: list[int]) -> str:
    return ", ".join(str(p) for p in percents)


# ---- reading -----------------------------------------------------------------------------------


def _read(text: str | bytes) -> tuple[Any, bool]:
    try:
        return read_text(text)
    except Unreadable as exc:
        raise PlanInvalid(f"the plan is neither valid YAML nor JSON: {exc}") from None


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(plan)"


def _body(data: Any) -> Any:
    """A plan without its optional top-level `rollout:` wrapper."""
    if isinstance(data, Mapping) and set(data) == {"rollout"}:
        return data["rollout"]
    return data


def load_plan(text: str | bytes) -> Plan:
    """A plan from YAML or JSON text (an optional top-level `rollout:` wraps it), or
    PlanInvalid listing every problem with its path."""
    return _checked(_read(text)[0])


def _checked(data: Any) -> Plan:
    inner = _body(data)
    if not isinstance(inner, Mapping):
        raise PlanInvalid("a plan is a mapping with flag, environment, treatment, control, stages")
    return plan_from_data(inner)


def plan_document(text: str | bytes) -> dict[str, Any]:
    """The plan to store from YAML or JSON text: JSON as given, YAML as the JSON it reads as
    (defaults written out); PlanInvalid naming every problem either way."""
    data, was_json = _read(text)
    checked = _checked(data)
    return dict(data) if was_json else checked.model_dump(mode="json")


def stored_plan(data: Mapping[str, Any]) -> Plan:
    """A rollout's plan as stored (JSON, validated when the rollout was created), read again;
    the last STORED_PLANS_CACHED plans read are kept (a Plan is immutable)."""
    return _stored(json.dumps(data, sort_keys=True))


@lru_cache(maxsize=STORED_PLANS_CACHED)
def _stored(text: str) -> Plan:
    return _checked(json.loads(text))


def plan_from_data(data: Mapping[str, Any]) -> Plan:
    """A plan from parsed data, or PlanInvalid listing every problem with its path."""
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        problems = [
            f"{_where(tuple(e['loc']))}: {e['msg']}" for e in errors if e["type"] != "invalid_plan"
        ]
        crossed = [e for e in errors if e["type"] == "invalid_plan"]
        problems += crossed[0]["ctx"]["problems"] if crossed else plan_problems(data)
        raise PlanInvalid(
            f"the plan is invalid: {'; '.join(problems)}", details={"errors": problems}
        ) from None


def seed_template(flag: str, environment: str, treatment: str, control: str) -> Plan:
    """The seed's plan (10% -> 25% -> 50% -> 100%, sized from the F12 table) for this flag."""
    text = resources.files("reelout.rollouts").joinpath("templates", SEED_TEMPLATE).read_text()
    data = dict(_body(_read(text)[0]))
    data.update(flag=flag, environment=environment, treatment=treatment)
    data["control"] = {**data["control"], "variation": control}
    return plan_from_data(data)
