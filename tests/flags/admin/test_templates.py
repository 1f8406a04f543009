"""The video-rollout template: valid flagd JSON, the cohort rule, and when init may overwrite."""

from __future__ import annotations

import httpx
import pytest

from reelout.flags import evaluate, parse_flag_set
from reelout.flags.engine import templates
from reelout.flags.engine.validation import faults
from tests.flags.admin.conftest import audit, put_set, validate_with_schema

SEED = [
    "use_tus_upload",
    "use_direct_file_upload",
    "use_enhanced_video_ui",
    "use_media_kit",
    "use_video_cache",
    "use_adaptive_bitrate",
    "use_video_preload",
    "beta_mode",
    "enable_debug_logs",
]
INIT = "/api/v1/flags/init"


@pytest.mark.parametrize("env", ["development", "preview", "production"])
def test_the_template_is_a_valid_flagd_set_with_every_seed_flag_off(env: str) -> None:
    document = templates.video_rollout(env)
    validate_with_schema(document)
    assert faults(document) == []
    assert list(document["flags"]) == SEED
    for flag in document["flags"].values():
        assert flag["state"] == "ENABLED"
        assert flag["variants"] == {"on": True, "off": False}
        assert flag["defaultVariant"] == "off"


def flags_for(environment: str, cohort: str) -> dict[str, bool]:
    """What the template's flag set says for one user, through the real evaluation engine."""
    compiled = parse_flag_set(templates.video_rollout(environment))
    context = {"targetingKey": "user-1", "cohort": cohort}
    return {
        key: evaluate(compiled, key, context, default=False, expected_type=bool, now=0).value
        for key in SEED
    }


def test_beta_users_get_the_beta_experience_in_development_only() -> None:
    beta_flags = {key for key in SEED if key.startswith("use_")} | {"beta_mode"}
    beta = flags_for("development", "beta")
    assert {key for key, on in beta.items() if on} == beta_flags, "beta_mode turns use_* on"
    assert not any(flags_for("development", "control").values())
    for env in ("preview", "production"):
        assert not any(flags_for(env, "beta").values())
    rule = templates.video_rollout("development")["flags"]["use_tus_upload"]["targeting"]
    assert rule == {"if": [{"var": "$flags.beta_mode"}, "on", "off"]}, "a prerequisite"


def test_init_writes_every_environment_and_refuses_to_overwrite(api: httpx.Client) -> None:
    reply = api.post(INIT, params={"template": "video-rollout"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["environments"] == [
        {"environment": env, "revision": 1, "changed": True}
        for env in ("development", "preview", "production")
    ]
    for env in ("development", "preview", "production"):
        served = api.get(f"/api/v1/environments/{env}/flagset").json()
        assert served == templates.video_rollout(env)
        validate_with_schema(served)
    assert [e["action"] for e in audit(api)] == ["init"] * 3

    again = api.post(INIT, params={"template": "video-rollout"})
    assert again.status_code == 409
    assert again.json()["code"] == "FLAGS_EXIST"
    assert again.json()["details"]["environments"] == ["development", "preview", "production"]

    unchanged = api.post(INIT, params={"template": "video-rollout", "force": "true"})
    assert unchanged.status_code == 200
    assert {e["changed"] for e in unchanged.json()["environments"]} == {False}


def test_init_refuses_when_any_environment_has_flags_unless_forced(api: httpx.Client) -> None:
    put_set(api, "production")
    refused = api.post(INIT, params={"template": "video-rollout"})
    assert refused.status_code == 409
    assert refused.json()["details"]["environments"] == ["production"]
    assert api.get("/api/v1/environments/development/flagset").json() == {"flags": {}}
    forced = api.post(INIT, params={"template": "video-rollout", "force": "true"})
    assert forced.status_code == 200
    revisions = {e["environment"]: e["revision"] for e in forced.json()["environments"]}
    assert revisions == {"development": 1, "preview": 1, "production": 2}


def test_an_unknown_template_is_404(api: httpx.Client) -> None:
    reply = api.post(INIT, params={"template": "nope"})
    assert reply.status_code == 404
    assert reply.json()["code"] == "UNKNOWN_TEMPLATE"
    assert reply.json()["details"]["templates"] == ["video-rollout"]
