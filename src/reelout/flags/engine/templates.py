"""Flag-set templates: `video-rollout`, the seed's flags with the beta/control cohort rule.

Cohort rule: a user whose evaluation context has `cohort == "beta"` is a beta user; every other
user (the control cohort) gets "off". Every flag is off by default in every environment; in
development `beta_mode` is on for beta users, and each `use_*` flag follows `beta_mode` for the
same user through a prerequisite, `{"var": "$flags.beta_mode"}`: plain JsonLogic, so the set
stays valid flagd JSON (flagd itself would read null there and serve "off")."""

from __future__ import annotations

from typing import Any

VIDEO_ROLLOUT = "video-rollout"
BETA_ENVIRONMENTS = ("development",)
BETA_RULE: dict[str, Any] = {"in": [{"var": "cohort"}, ["beta"]]}

SEED_FLAGS: dict[str, str] = {
    "use_tus_upload": "Resumable uploads over tus instead of base64 JSON.",
    "use_direct_file_upload": "Direct binary uploads instead of base64 JSON.",
    "use_enhanced_video_ui": "The new upload and player UI.",
    "use_media_kit": "The media_kit player with a fallback player.",
    "use_video_cache": "Cache video segments on the device.",
    "use_adaptive_bitrate": "Play adaptive HLS instead of a single MP4.",
    "use_video_preload": "Preload the start of videos likely to be watched.",
    "beta_mode": "The beta experience; turns the use_* flags on for the same users.",
    "enable_debug_logs": "Verbose client logs.",
}
BETA_FLAG = "beta_mode"
BETA_FLAGS = (*(key for key in SEED_FLAGS if key.startswith("use_")), BETA_FLAG)

TEMPLATES = (VIDEO_ROLLOUT,)


def _flag(key: str, description: str, beta: bool) -> dict[str, Any]:
    flag: dict[str, Any] = {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
    }
    if beta and key == BETA_FLAG:
        flag["targeting"] = {"if": [{"$ref": "is_beta"}, "on", "off"]}
    elif beta and key in BETA_FLAGS:
        flag["targeting"] = {"if": [{"var": f"$flags.{BETA_FLAG}"}, "on", "off"]}
    flag["metadata"] = {"description": description}
    return flag


def video_rollout(environment: str) -> dict[str, Any]:
    """The video-rollout flag set for one environment."""
    beta = environment in BETA_ENVIRONMENTS
    return {
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "metadata": {"flagSetId": VIDEO_ROLLOUT, "version": "1"},
        "flags": {key: _flag(key, text, beta) for key, text in SEED_FLAGS.items()},
        "$evaluators": {"is_beta": BETA_RULE},
    }


def template(name: str, environment: str) -> dict[str, Any] | None:
    """A template's flag set for an environment, or None for an unknown template."""
    return video_rollout(environment) if name == VIDEO_ROLLOUT else None
