"""The console's Alerts page: the alerts that are not inactive (silence one from its row), the
silences not yet ended (expire one), the recent history of transitions and the rules, read
through the alerts service the API calls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from reelout.alerts import service
from reelout.alerts.schemas import AlertOut, RuleOut, SilenceIn
from reelout.context import Signing
from reelout.deps import SigningDep
from reelout.errors import BadRequest, NotFound
from reelout.telemetry.metrics import METRICS
from reelout.web.pages import (
    PREFIX,
    ActionViewer,
    ConsoleRoute,
    PageViewer,
    PromptAnswer,
    Viewer,
    render,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)
SECTION = "alerts"
HISTORY_SHOWN = 50
SILENCE_PROMPT_EXAMPLE = "2h rolling back the new uploader"


@dataclass(frozen=True)
class AlertRow:
    """One alert as the page prints it: value against threshold in the metric's own words."""

    alert: AlertOut
    severity: str
    value: str
    threshold: str


@dataclass(frozen=True)
class RuleRow:
    rule: RuleOut
    summary: str


def _as_metric(metric: str, value: float | None) -> str:
    if value is None:
        return "no data"
    found = METRICS.get(metric)
    if found is not None and found.display == "percent":
        return f"{value * 100:.2f} %"
    return f"{value:g}"


def _signal(rule: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    signal = rule.get("signal") or {}
    return str(signal.get("metric", "")), signal


def _threshold(rule: dict[str, Any]) -> str:
    metric, _ = _signal(rule)
    condition = rule.get("condition")
    if condition:
        return f"{condition['op']} {_as_metric(metric, condition['threshold'])}"
    burn = rule.get("burn_rate")
    if burn:
        return f"burn rate against a {burn['objective'] * 100:g} % objective"
    return ""


def rule_summary(rule: dict[str, Any]) -> str:
    """A rule in one line: what it reads, when it fires or reports."""
    metric, signal = _signal(rule)
    window = f" over {signal['window']}" if signal.get("window") else ""
    scope = ", ".join(f"{k}={v}" for k, v in (signal.get("scope") or {}).items())
    scoped = f" ({scope})" if scope else ""
    condition = rule.get("condition") or {}
    volume = (
        f", at least {condition['min_denominator']:g} counted"
        if condition.get("min_denominator")
        else ""
    )
    if rule.get("kind") == "digest":
        return (
            f"{metric}{scoped} {_threshold(rule)}{window}, reported at cron {rule.get('schedule')}"
        )
    held = f", held {rule.get('for', '0s')}"
    return f"{metric}{scoped} {_threshold(rule)}{window}{volume}{held}"


def _alert_rows(alerts: list[AlertOut], rules: dict[str, dict[str, Any]]) -> list[AlertRow]:
    rows = []
    for alert in alerts:
        rule = rules.get(alert.rule, {})
        metric, _ = _signal(rule)
        severity = alert.labels.get("severity") or str(rule.get("severity", ""))
        rows.append(AlertRow(alert, severity, _as_metric(metric, alert.value), _threshold(rule)))
    return rows


def _live(rt: Signing) -> dict[str, Any]:
    """The alerts and silences part of the page (what the actions re-render)."""
    with rt.db.read() as session:
        rules = {rule.id: rule.rule for rule in service.list_rules(session)}
        alerts = service.list_alerts(session, rt.clock).alerts
        silences = service.list_silences(session, rt.clock)
    return {
        "alerts": _alert_rows(alerts, rules),
        "silences": silences,
        "prompt_example": SILENCE_PROMPT_EXAMPLE,
    }


def _live_fragment(request: Request, rt: Signing, viewer: Viewer, notice: str) -> Response:
    context = _live(rt) | {"notice": notice}
    return render(request, rt, "_alerts_live.html", context, viewer=viewer)


@router.get("/alerts")
def alerts_page(request: Request, rt: SigningDep, viewer: PageViewer) -> Response:
    """Active alerts with a Silence button each, silences with Expire, history and rules."""
    with rt.db.read() as session:
        rules = service.list_rules(session)
        history = service.history(session, limit=HISTORY_SHOWN).transitions
    context = _live(rt) | {
        "notice": "",
        "history": history,
        "rules": [RuleRow(rule, rule_summary(rule.rule)) for rule in rules],
    }
    return render(request, rt, "alerts.html", context, viewer=viewer, section=SECTION)


def silence_request(answer: str | None, labels: dict[str, str]) -> SilenceIn:
    """The prompt's answer, "<duration> <why>" (e.g. "2h rolling back"), as a silence whose
    matchers are the alert's labels; 400 SILENCE_ANSWER_INVALID when it is not that."""
    duration, _, comment = (answer or "").partition(" ")
    try:
        return SilenceIn.model_validate(
            {
                "matchers": [{"name": k, "value": v} for k, v in sorted(labels.items())],
                "duration": duration,
                "comment": comment.strip(),
            }
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise BadRequest(
            f"answer with a duration and why, e.g. {SILENCE_PROMPT_EXAMPLE!r} ({problems})",
            code="SILENCE_ANSWER_INVALID",
        ) from None


@router.post("/alerts/{fingerprint}/silence")
def silence_alert(
    fingerprint: str,
    request: Request,
    rt: SigningDep,
    viewer: ActionViewer,
    answer: PromptAnswer,
) -> Response:
    """POST /api/v1/alerts/silences's service, matching exactly this alert's labels, for the
    duration and with the comment the prompt's answer gives."""
    settings = rt.settings
    with rt.db.session() as session:
        alert = _alert(session, rt, fingerprint)
        body = silence_request(answer, alert.labels)
        made = service.create_silence(
            session,
            rt.clock,
            viewer.who,
            body,
            max_silences=settings.alerts_max_silences,
            max_days=settings.alerts_max_silence_days,
        )
    notice = f"Silence {made.id} mutes {alert.rule} until {_when(made.ends_at)} UTC."
    return _live_fragment(request, rt, viewer, notice)


def _alert(session: Any, rt: Signing, fingerprint: str) -> AlertOut:
    for alert in service.list_alerts(session, rt.clock).alerts:
        if alert.fingerprint == fingerprint:
            return alert
    raise NotFound(
        f"no alert {fingerprint!r} (it may have gone inactive): reload the page",
        code="ALERT_NOT_FOUND",
    )


@router.post("/alerts/silences/{silence_id}/expire")
def expire_silence(
    silence_id: str, request: Request, rt: SigningDep, viewer: ActionViewer
) -> Response:
    """DELETE /api/v1/alerts/silences/{id}'s service: the silence ends now."""
    with rt.db.session() as session:
        ended = service.expire_silence(session, rt.clock, viewer.who, silence_id)
    return _live_fragment(request, rt, viewer, f"Silence {ended.id} has ended.")


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M")
