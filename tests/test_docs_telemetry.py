"""The telemetry pages' JSON is what the ingest takes: every event shown for app teams passes the
event model, and the events the page lists per screen are the model's types."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from reelout.telemetry import events as model

ROOT = Path(__file__).resolve().parents[1]
APPS = ROOT / "docs" / "telemetry" / "apps.md"
BLOCK = re.compile(r"^ *```json\n(.*?)^ *```$", re.MULTILINE | re.DOTALL)


def json_blocks() -> list[Any]:
    return [json.loads(block) for block in BLOCK.findall(APPS.read_text(encoding="utf-8"))]


EVENTS = [block for block in json_blocks() if isinstance(block, dict) and "type" in block]


@pytest.mark.parametrize("shown", EVENTS, ids=[event["type"] for event in EVENTS])
def test_every_event_on_the_apps_page_passes_the_model(shown: dict[str, Any]) -> None:
    event = model.parse(shown)
    assert event.type == shown["type"]
    assert not (set(shown) - set(type(event).model_fields)), "a field the model does not know"


def test_the_apps_page_shows_every_client_type() -> None:
    shown = {event["type"] for event in EVENTS}
    assert shown >= model.TYPES - model.SERVER_ONLY - {"exposure", "cache_hit"}


def test_the_reply_shown_is_the_ingests_shape() -> None:
    (reply,) = [block for block in json_blocks() if isinstance(block, dict) and "accepted" in block]
    assert set(reply) == {"accepted", "duplicates", "rejected"}
    assert set(reply["rejected"][0]) == {"index", "code", "message"}
