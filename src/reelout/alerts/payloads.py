"""What notifiers send (pure): the generic JSON body (an envelope like the media webhooks') and
the Slack incoming-webhook message (`text` plus Block Kit `blocks`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pydantic_core

from reelout.alerts import templates
from reelout.alerts.digest import Report
from reelout.alerts.routing import AlertView, Notification

NOTIFICATION_EVENT = "alert.notification"
DIGEST_EVENT = "alert.digest"
TEST_EVENT = "alert.test"
MAX_SLACK_ALERTS = 10  # Slack allows 50 blocks; a page of alerts is what a person reads
MAX_SLACK_TEXT = 2900  # a section's text is at most 3000 characters


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(event_id: str, event_type: str, created: datetime, data: Mapping[str, Any]) -> str:
    """The JSON every attempt sends: compact, keys in a fixed order."""
    body = {"id": event_id, "type": event_type, "created": _iso(created), "data": dict(data)}
    return pydantic_core.to_json(body).decode("utf-8")


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = dict(maps[0])
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def notification_data(note: Notification) -> dict[str, Any]:
    alerts = [*note.firing, *note.resolved]
    return {
        "receiver": note.receiver_id,
        "status": note.status,
        "reason": note.reason,
        "group_key": note.group_key,
        "group_labels": dict(note.group_labels),
        "common_labels": _common([a.labels for a in alerts]),
        "common_annotations": _common([a.annotations for a in alerts]),
        "alerts": [a.to_json() for a in alerts],
    }


# ---- Slack -------------------------------------------------------------------------------------

_ICON = {
    "firing": ":rotating_light:",
    "nodata": ":grey_question:",
    "resolved": ":white_check_mark:",
}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_SLACK_TEXT]}}


def _alert_block(alert: AlertView) -> dict[str, Any]:
    summary = alert.annotations.get("summary") or alert.labels.get("alertname", "")
    lines = [f"{_ICON.get(alert.status, '')} *{summary}*"]
    if description := alert.annotations.get("description"):
        lines.append(description)
    if runbook := alert.annotations.get("runbook"):
        lines.append(f"What to do: {runbook}")
    since = f"since {templates.when(alert.starts_at)}" if alert.starts_at else ""
    ended = f", resolved {templates.when(alert.ends_at)}" if alert.ends_at else ""
    lines.append(f"`{templates.scope(alert.labels)}` {since}{ended}")
    return _section("\n".join(lines))


def slack_notification(note: Notification) -> dict[str, Any]:
    alerts = [*note.firing, *note.resolved]
    name = note.group_labels.get("alertname") or _common([a.labels for a in alerts]).get(
        "alertname", "alerts"
    )
    title = f"[{note.status.upper()}:{len(note.firing) or len(note.resolved)}] {name}"
    where = templates.scope({k: v for k, v in note.group_labels.items() if k != "alertname"})
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        *(_alert_block(a) for a in alerts[:MAX_SLACK_ALERTS]),
    ]
    if len(alerts) > MAX_SLACK_ALERTS:
        blocks.append(_section(f"…and {len(alerts) - MAX_SLACK_ALERTS} more"))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": where}]})
    return {"text": f"{_ICON.get(note.status, '')} {title} ({where})", "blocks": blocks}


def _table(report: Report) -> str:
    header = ["labels", *report.metrics]
    if report.condition:
        header.append("target")
    lines = [" | ".join(header)]
    for row in report.rows:
        cells = [templates.scope(row.labels)]
        for metric in report.metrics:
            cell = row.cells.get(metric)
            cells.append(
                "n/a" if cell is None or cell.value is None else
                f"{templates.percent(cell.value)} ({templates.number(cell.denominator)})"
            )  # fmt: skip
        if report.condition:
            cells.append({True: "pass", False: "FAIL", None: "no data"}[row.met])
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def digest_text(report: Report) -> str:
    """The digest as plain text: a headline and the KPI table."""
    verdict = {
        "met": f"{report.metric} {report.condition}: met everywhere",
        "not_met": f"{report.metric} {report.condition}: NOT met everywhere",
        "no_data": "no data",
        "reported": "report",
    }[report.status]
    head = f"{report.rule_id} at {templates.when(report.at)}, last {report.window}: {verdict}"
    return f"{head}\n{_table(report)}"


def slack_digest(report: Report) -> dict[str, Any]:
    text = digest_text(report)
    head, _, table = text.partition("\n")
    return {
        "text": head,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": f"Digest: {report.rule_id}"}},
            _section(head),
            _section(f"```{table}```"),
        ],
    }


def slack_test() -> dict[str, Any]:
    text = "Reelout alerts: test message. This receiver is set up."
    return {"text": text, "blocks": [_section(text)]}
