"""The console in headless Chromium uploads the way the signed-in admin's flags say.

The flags are read again before each upload, so a kill switch pulled between two uploads sends
the second one back to the code default: the legacy base64 path, the seed's old behaviour.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.live import LiveServer
from tests.web.conftest import Clips, Console, sha256, video

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console-browser")]

DEV = "/api/v1/environments/development"
TUS = "Using TUS Protocol"
LEGACY = "Using legacy base64 upload (deprecated)"


def only_for(targeting_key: str) -> dict[str, Any]:
    """use_tus_upload on for one user (the admin key's id is the console's targetingKey)."""
    return {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "targeting": {"if": [{"in": [{"var": "targetingKey"}, [targeting_key]]}, "on", "off"]},
    }


def check(reply: httpx.Response) -> None:
    assert reply.status_code == 200, reply.text


def upload(console: Console, order: str, clip: Path, message: str) -> str:
    """Upload with the select on "As the flags say"; the uid once every byte is in by the path
    that `message` names."""
    console.choose(order, "inbound", "flags", clip)
    console.page.click("#start")
    console.wait(f"$('status').textContent === 'Uploaded {clip.name} ({message}); "
                 "waiting for processing'")  # fmt: skip
    return console.uid()


def test_tus_for_the_user_whose_flag_is_on_then_the_code_default_after_a_kill(
    console: Console, server: LiveServer, clips: Clips
) -> None:
    clip = clips("tiny")
    me = console.page.evaluate("() => window.reelout.flags.context.targetingKey")
    with server.client() as api:
        check(api.post("/api/v1/flags/init", params={"template": "video-rollout"}))
        [bootstrap] = [key["id"] for key in api.get("/api/v1/keys").json()]
        assert me == bootstrap
        check(api.put(f"{DEV}/flags/use_tus_upload", json=only_for(me)))

    first = upload(console, "F-1", clip, TUS)  # the page was loaded before the flag changed
    assert f"[reelout] {TUS}" in console.logs
    assert console.upload_urls, "the page never created a tus upload"
    assert video(server, first)["source"] == "tus"
    assert console.page.get_attribute("#flags", "data-path") == "tus"
    assert console.text("#flags") == (
        "tus in development — use_tus_upload: on (TARGETING_MATCH, control)"
    )

    with server.client() as api:
        check(api.post(f"{DEV}/flags/use_tus_upload/kill", params={"reason": "upload failures"}))

    tus_uploads = len(console.upload_urls)
    second = upload(console, "F-2", clip, LEGACY)
    assert f"[reelout] {LEGACY}" in console.logs
    assert len(console.upload_urls) == tus_uploads, "tus was used after the kill switch"
    body = video(server, second)
    assert body["source"] == "legacy"
    assert body["original_sha256"] == sha256(clip)
    assert console.page.get_attribute("#flags", "data-path") == "legacy"
    assert "use_tus_upload: off (DISABLED, code default, control)" in console.text("#flags")
    assert not [line for line in console.logs if line.startswith("PAGE ERROR")]


def test_an_override_in_the_select_beats_the_flags(
    console: Console, server: LiveServer, clips: Clips
) -> None:
    with server.client() as api:
        on = {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on"}
        check(api.put(f"{DEV}/flags/use_direct_file_upload", json=on))
    console.page.reload()
    console.page.wait_for_function("() => document.body.dataset.ready === 'true'")
    assert console.page.get_attribute("#flags", "data-path") == "direct"

    clip = clips("tiny")
    console.choose("F-3", "work", "tus", clip)
    console.page.click("#start")
    console.wait(f"$('status').textContent.startsWith('Uploaded {clip.name} ({TUS})')")
    assert video(server, console.uid())["source"] == "tus"
