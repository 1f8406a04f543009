"""GET /console/api/flags: the signed-in admin's upload flags, the page's source for its path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from reelout.config import Settings
from tests.support.live import LiveServer, live_server_fixture, serving
from tests.support.settings import ADMIN_TOKEN, make_settings
from tests.web.test_login import login, new_key

FLAGS = "/console/api/flags"
DEV = "/api/v1/environments/development"


server = live_server_fixture(per_database=True)


@pytest.fixture
def web(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as client:
        yield client


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def my_flags(web: httpx.Client, key: str = ADMIN_TOKEN) -> dict[str, Any]:
    """Log in with `key` and read the flags as the console page does."""
    cookie, csrf = login(web, key)
    reply = web.get(FLAGS, headers={**cookie, "X-CSRF-Token": csrf})
    assert reply.status_code == 200, reply.text
    assert reply.headers["cache-control"] == "no-store"
    body: dict[str, Any] = reply.json()
    return body


def key_id_of(api: httpx.Client, name: str = "bootstrap") -> str:
    keys = api.get("/api/v1/keys").json()
    [key_id] = [key["id"] for key in keys if key["name"] == name]
    return str(key_id)


def only_for(key_id: str) -> dict[str, Any]:
    """A boolean flag that is on for one targeting key."""
    return {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "targeting": {"if": [{"in": [{"var": "targetingKey"}, [key_id]]}, "on", "off"]},
    }


def test_without_a_session_the_answer_is_401(web: httpx.Client) -> None:
    for headers in ({}, {"Authorization": f"Bearer {ADMIN_TOKEN}"}):
        reply = web.get(FLAGS, headers=headers)
        assert reply.status_code == 401
        assert reply.json()["code"] == "SESSION_REQUIRED"
        assert "/console/login" in reply.json()["message"]


def test_the_session_cookie_alone_is_refused_without_the_csrf_header(web: httpx.Client) -> None:
    cookie, _ = login(web)
    reply = web.get(FLAGS, headers=cookie)
    assert reply.status_code == 403
    assert reply.json()["code"] == "CSRF_TOKEN_MISSING"


def test_a_fresh_install_has_the_template_flags_and_they_are_off(
    web: httpx.Client, api: httpx.Client
) -> None:
    body = my_flags(web)
    assert body["environment"] == "development"
    assert body["revision"] == 1  # the video-rollout template, seeded on the first start
    assert body["context"] == {"targetingKey": key_id_of(api)}
    assert body["cohort"] == "control"
    for key, flag in body["flags"].items():
        assert flag["value"] is False and flag["variant"] == "off", key
        assert flag["code_default"] is False and flag["error_code"] is None, key


def test_without_flags_every_flag_is_its_code_default(web: httpx.Client, api: httpx.Client) -> None:
    emptied = api.put(f"{DEV}/flagset", content=b'{"flags": {}}')
    assert emptied.status_code == 200, emptied.text
    body = my_flags(web)
    assert body["revision"] == 2
    assert set(body["flags"]) == {"use_tus_upload", "use_direct_file_upload", "beta_mode"}
    for flag in body["flags"].values():
        assert flag == {
            "value": False,
            "variant": None,
            "reason": "ERROR",
            "error_code": "FLAG_NOT_FOUND",
            "code_default": True,
        }


def test_a_beta_user_gets_the_use_flags_and_a_kill_switch_takes_one_away(
    server: LiveServer, web: httpx.Client, api: httpx.Client
) -> None:
    assert api.post("/api/v1/flags/init", params={"template": "video-rollout"}).status_code == 200
    me = key_id_of(api)
    reply = api.put(f"{DEV}/flags/beta_mode", json=only_for(me))
    assert reply.status_code == 200, reply.text

    body = my_flags(web)
    assert body["cohort"] == "beta"
    assert body["flags"]["use_tus_upload"] == {
        "value": True,
        "variant": "on",
        "reason": "TARGETING_MATCH",
        "error_code": None,
        "code_default": False,
    }
    assert body["flags"]["use_direct_file_upload"]["value"] is True

    _, other_admin = new_key(server, "admin")
    theirs = my_flags(web, other_admin)
    assert theirs["context"]["targetingKey"] != me
    assert theirs["cohort"] == "control"
    assert theirs["flags"]["use_tus_upload"]["value"] is False
    assert theirs["flags"]["use_tus_upload"]["reason"] == "TARGETING_MATCH"  # the rule said off

    assert api.post(f"{DEV}/flags/use_tus_upload/kill").status_code == 200
    killed = my_flags(web)["flags"]["use_tus_upload"]
    assert killed == {
        "value": False,
        "variant": None,
        "reason": "DISABLED",
        "error_code": None,
        "code_default": True,
    }


def test_a_flag_of_the_wrong_type_falls_back_to_the_code_default(
    web: httpx.Client, api: httpx.Client
) -> None:
    flag = {"state": "ENABLED", "variants": {"tus": "tus", "no": "no"}, "defaultVariant": "tus"}
    assert api.put(f"{DEV}/flags/use_tus_upload", json=flag).status_code == 200
    answer = my_flags(web)["flags"]["use_tus_upload"]
    assert answer["value"] is False and answer["code_default"] is True
    assert (answer["reason"], answer["error_code"]) == ("ERROR", "TYPE_MISMATCH")


def test_the_console_reads_the_environment_it_is_configured_for(tmp_path: Path) -> None:
    with serving(make_settings(tmp_path, console_flags_environment="preview")) as live:
        with live.client() as api:
            flag = {"state": "ENABLED", "variants": {"on": True, "off": False}}
            reply = api.put(
                "/api/v1/environments/preview/flags/use_direct_file_upload",
                json=flag | {"defaultVariant": "on"},
            )
            assert reply.status_code == 200, reply.text
        with httpx.Client(base_url=live.url, timeout=10) as web:
            body = my_flags(web)
        assert body["environment"] == "preview"
        assert body["flags"]["use_direct_file_upload"]["value"] is True
        assert body["flags"]["use_direct_file_upload"]["reason"] == "STATIC"


def test_the_console_flags_environment_must_be_a_known_one() -> None:
    assert Settings(environments=["staging", "live"]).console_flags_environment == "staging"
    assert Settings(console_flags_environment="preview").console_flags_environment == "preview"
    with pytest.raises(ValidationError, match="REELOUT_CONSOLE_FLAGS_ENVIRONMENT='qa'"):
        Settings(console_flags_environment="qa")
