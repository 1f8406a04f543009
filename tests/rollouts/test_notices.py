"""What a rollout's notifications say, directly: how a `notify` entry names a receiver, and the
Slack message's header, reason and evidence."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reelout.rollouts.notices import Notice, Target, data, failing, slack, target

DECISION = {
    "decision": "rollback",
    "per_metric": {
        "error_rate": {"state": "fail", "message": 'guardrail "error_rate" FAIL: harm …'},
        "crash_rate": {"state": "insufficient", "message": "n=3/2 < min_events_per_arm 500"},
        "upload_success_rate": {"state": "breach", "message": 'guardrail "upload…" BREACH: …'},
    },
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("slack:#video-rollouts", Target("video-rollouts", "slack")),
        ("webhook:deploy-bot", Target("deploy-bot", "webhook")),
        ("on-call", Target("on-call", None)),
        ("#video", Target("video", None)),
        ("email:team", Target("email:team", None)),  # not a receiver kind: the whole name
    ],
)
def test_a_target_names_a_receiver_and_maybe_its_kind(text: str, expected: Target) -> None:
    assert target(text) == expected


def notice(
    state: str, decision: dict[str, object] | None = DECISION, suffix: str = "~r7"
) -> Notice:
    return Notice(
        rollout_id=7, flag="use_tus_upload", environment="production", treatment="on",
        control="off", served_treatment="on" + suffix, served_control="off" + suffix,
        excluded="off~excluded", state=state, stage=1, stages=4, percent=25,
        at=datetime(2026, 1, 1, 0, 1, tzinfo=UTC), who="rollout-controller",
        reason="guardrail failed", decision=decision,
    )  # fmt: skip


def test_the_failing_guardrails_are_the_evidence() -> None:
    assert failing(DECISION) == ['guardrail "error_rate" FAIL: harm …',
                                 'guardrail "upload…" BREACH: …']  # fmt: skip
    assert failing(None) == [] and failing({"per_metric": {}}) == []


def test_the_slack_message_and_the_webhook_data() -> None:
    message = slack(notice("rolled_back"))
    header = message["blocks"][0]["text"]["text"]
    assert header == "[ROLLED BACK] rollout 7 of use_tus_upload in production (stage 2 of 4, 25%)"
    assert message["text"].endswith(header)
    texts = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert texts[0] == "*Why:* guardrail failed"
    assert texts[1] == (
        "*Arms:* `on` (served as `on~r7`) (treatment) against `off` (served as `off~r7`) "
        "(control); the rest `off~excluded`"
    )
    assert "FAIL" in texts[2] and "BREACH" in texts[2] and "insufficient" not in texts[2]
    assert texts[3] == "Everyone is served `off` now."
    paused = slack(notice("paused", None))
    assert [b["type"] for b in paused["blocks"]] == ["header", "section", "section", "context"]
    body = data(notice("completed"))
    assert (body["event"], body["at"], body["api"]) == (
        "rollout.completed", "2026-01-01T00:01:00.000Z", "/api/v1/rollouts/7")  # fmt: skip
    assert body["rollout"]["percent"] == 25 and body["decision"] == DECISION
    assert body["rollout"]["served_as"] == {
        "treatment": "on~r7", "control": "off~r7", "excluded": "off~excluded"}  # fmt: skip


def test_a_rollout_serving_the_plain_names_says_them_once() -> None:
    """A rollout made before the arms had keys of their own: no "served as"."""
    message = slack(notice("aborted", None, suffix=""))
    texts = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert texts[1] == "*Arms:* `on` (treatment) against `off` (control); the rest `off~excluded`"
    served = data(notice("aborted", None, suffix=""))["rollout"]["served_as"]
    assert (served["treatment"], served["control"]) == ("on", "off")
