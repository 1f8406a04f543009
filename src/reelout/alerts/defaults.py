"""The seed's three rules, installed on first start (REELOUT_SEED_ALERTS): error rate > 5% over
5 min at once (page), upload failures > 3% held 30 min (warning), and a daily 09:00 UTC digest
of upload success > 98% with the KPI table per flag and variant."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reelout.alerts import rules
from reelout.alerts.models import AlertRoutingRow, AlertRuleRow
from reelout.alerts.service import save_routing, store_rule
from reelout.clock import Clock
from reelout.config import Settings

PER_VARIANT = {"environment": "*", "flag": "*", "variant": "*"}

DEFAULT_RULES: list[dict[str, Any]] = [
    {
        "id": "error-rate-critical",
        "description": "The seed's alert: error rate above 5% pages at once.",
        "signal": {"metric": "error_rate", "scope": PER_VARIANT, "window": "5m"},
        "condition": {"op": ">", "threshold": 0.05, "min_denominator": 200},
        "for": "0s",
        "keep_firing_for": "10m",
        "no_data": "keep_last",
        "severity": "page",
        "actions": ["notify", "pause_rollouts"],
        "annotations": {
            "runbook": (
                "Look at the KPI table for {{ labels.flag }} ({{ labels.environment }}); if the "
                "{{ labels.variant }} arm alone is failing, kill the flag: reelout flags kill "
                "{{ labels.flag }} --env {{ labels.environment }}"
            ),
        },
    },
    {
        "id": "upload-failure-sustained",
        "description": "The seed's alert: upload failures above 3% for 30 minutes.",
        "signal": {"metric": "upload_failure_rate", "scope": PER_VARIANT, "window": "30m"},
        "condition": {"op": ">", "threshold": 0.03, "min_denominator": 100},
        "for": "30m",
        "keep_firing_for": "15m",
        "no_data": "keep_last",
        "severity": "warning",
        "annotations": {
            "runbook": (
                "Compare the {{ labels.variant }} arm of {{ labels.flag }} with control "
                "(reelout kpi --flag {{ labels.flag }}); check the failed uploads' error classes "
                "before rolling the flag back."
            ),
        },
    },
    {
        "id": "upload-success-daily",
        "kind": "digest",
        "description": "The seed's daily report: upload success above 98%, per flag and variant.",
        "schedule": "0 9 * * *",
        "signal": {"metric": "upload_success_rate", "scope": PER_VARIANT, "window": "24h"},
        "condition": {"op": ">", "threshold": 0.98},
        "report": {"metrics": ["upload_failure_rate", "error_rate"]},
    },
]


class _System:
    """Who the seed's rules are recorded as."""

    key_id = "system"
    name = "system"


def default_rules() -> list[rules.AnyRule]:
    return [rules.parse_rule(rule) for rule in DEFAULT_RULES]


def seed_on_start(session: Session, clock: Clock, settings: Settings) -> None:
    """A first-start step: the default rules and routing, once: the routing row it writes marks
    the seed as done, so rules deleted later are never put back. Not in the audit trail (the
    rules show `updated_by: system`)."""
    if not settings.seed_alerts or session.get(AlertRoutingRow, 1) is not None:
        return
    if not session.scalar(select(func.count()).select_from(AlertRuleRow)):
        for rule in default_rules():
            store_rule(session, clock, _System(), rule, audited=False)
    save_routing(session, clock, _System(), rules.Routing(), audited=False)
