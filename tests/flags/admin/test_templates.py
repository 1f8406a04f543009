"""The video-rollout template: valid flagd JSON, the cohort rule, when init may overwrite, and
the first start that seeds it."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from reelout.flags import evaluate, parse_flag_set
from reelout.flags.admin import service
from reelout.flags.engine import templates
from reelout.flags.engine.validation import faults
from tests.flags.admin.conftest import FLAG_SET, audit, put_set, validate_with_schema
from tests.support.live import serving
from tests.support.settings import make_settings, start_runtime

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


def test_init_writes_every_environment_is_idempotent_and_refuses_to_overwrite(
    api: httpx.Client,
) -> None:
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

    again = api.post(INIT, params={"template": "video-rollout"})  # idempotent
    assert again.status_code == 200, again.text
    assert {e["changed"] for e in again.json()["environments"]} == {False}
    assert len(audit(api)) == 3

    edited = api.patch("/api/v1/environments/preview/flags/beta_mode", json={"state": "DISABLED"})
    assert edited.status_code == 200, edited.text
    refused = api.post(INIT, params={"template": "video-rollout"})
    assert refused.status_code == 409
    assert refused.json()["code"] == "FLAGS_EXIST"
    assert refused.json()["details"]["environments"] == ["preview"]

    forced = api.post(INIT, params={"template": "video-rollout", "force": "true"})
    assert forced.status_code == 200
    changed = {e["environment"]: e["changed"] for e in forced.json()["environments"]}
    assert changed == {"development": False, "preview": True, "production": False}


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


ENVS = ("development", "preview", "production")


def heads(api: httpx.Client) -> dict[str, int]:
    return {env["name"]: env["revision"] for env in api.get("/api/v1/environments").json()}


def test_a_first_start_seeds_the_template_as_system_once(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url)
    assert settings.seed_flags, "on by default"
    with serving(settings) as server, server.client() as api:
        assert heads(api) == dict.fromkeys(ENVS, 1)
        for env in ENVS:
            assert api.get(f"/api/v1/environments/{env}/flagset").json() == (
                templates.video_rollout(env)
            )
        entries = audit(api)
        assert {(e["environment"], e["action"], e["actor"]) for e in entries} == {
            (env, "init", "system") for env in ENVS
        }
        assert {e["reason"] for e in entries} == {service.SEED_REASON}
    with serving(settings) as server, server.client() as api:  # a restart adds nothing
        assert heads(api) == dict.fromkeys(ENVS, 1)
        assert len(audit(api)) == 3


def test_the_seed_leaves_an_environment_with_any_revision_alone(
    tmp_path: Path, database_url: str
) -> None:
    unseeded = make_settings(tmp_path, database_url=database_url, seed_flags=False)
    with serving(unseeded) as server, server.client() as api:
        assert heads(api) == dict.fromkeys(ENVS, 0), "REELOUT_SEED_FLAGS=false seeds nothing"
        put_set(api, "preview")
        assert put_set(api, "production", '{"flags": {}}').status_code == 200  # emptied on purpose
    reseeding = make_settings(tmp_path, database_url=database_url)
    with serving(reseeding) as server, server.client() as api:
        assert heads(api) == {"development": 1, "preview": 1, "production": 1}
        assert api.get("/api/v1/environments/production/flagset").json() == {"flags": {}}
        assert api.get("/api/v1/environments/preview/flagset").json() == json.loads(FLAG_SET)
        assert [e["environment"] for e in audit(api, actor="system")] == ["development"]


def test_processes_starting_together_seed_each_environment_once(
    tmp_path: Path, database_url: str
) -> None:
    rt = start_runtime(make_settings(tmp_path, database_url=database_url))
    try:

        def start(_: int) -> None:  # what each process's `prepare` does after migrating
            with rt.db.session() as session:
                service.seed_on_start(session, rt.clock, rt.settings)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(start, range(4)))
        with rt.db.read() as session:
            assert [service.head_revision(session, env) for env in ENVS] == [1, 1, 1]
            assert len(service.list_audit(session).entries) == 3
    finally:
        rt.db.dispose()
