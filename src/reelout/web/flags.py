"""The console user's upload flags: evaluated for one admin key, code defaults filled in. Pure."""

from __future__ import annotations

from typing import Any

from reelout.flags.engine.evaluator import FlagSet, Resolution, resolve
from reelout.flags.serving.cache import Served

# The code defaults, used whenever a flag gives no value (missing, killed, broken, wrong type).
# All off, because "flags off" must mean the seed's old behaviour: uploads as base64 JSON (the
# legacy path, still served, and possible in every browser with FileReader). A kill switch thus
# returns everyone to the path that worked before the rollout started, never to a newer one.
CODE_DEFAULTS: dict[str, bool] = {
    "use_tus_upload": False,
    "use_direct_file_upload": False,
    "beta_mode": False,
}
BETA_FLAG = "beta_mode"


def context_for(key_id: str) -> dict[str, Any]:
    """The evaluation context of a console user: the admin key's id, stable across logins."""
    return {"targetingKey": key_id}


def flag_answer(key: str, resolution: Resolution) -> dict[str, Any]:
    """One flag as the page reads it; `code_default` says the value is the code's, not the set's."""
    error = resolution.error_code.value if resolution.error_code is not None else None
    usable = resolution.variant is not None and isinstance(resolution.value, bool)
    if resolution.variant is not None and not usable and error is None:
        error = "TYPE_MISMATCH"
    return {
        "value": resolution.value if usable else CODE_DEFAULTS[key],
        "variant": resolution.variant if usable else None,
        "reason": resolution.reason.value if error is None else "ERROR",
        "error_code": error,
        "code_default": not usable,
    }


def evaluate(flags: FlagSet, key_id: str, now: float) -> dict[str, dict[str, Any]]:
    """Each upload flag for this user, as `flag_answer` shapes it."""
    context = context_for(key_id)
    return {key: flag_answer(key, resolve(flags, key, context, now)) for key in CODE_DEFAULTS}


def upload_flags(served: Served, key_id: str, now: float) -> dict[str, Any]:
    """The JSON the console fetches: where the flags come from, the user's cohort, the flags."""
    flags = evaluate(served.flags, key_id, now)
    return {
        "environment": served.environment,
        "revision": served.revision,
        "context": context_for(key_id),
        "cohort": "beta" if flags[BETA_FLAG]["value"] else "control",
        "flags": flags,
    }
