"""How strong a chosen secret is (REELOUT_ADMIN_TOKEN, REELOUT_SECRET_KEY): pure, no I/O.

Length alone lets `"x" * 40` through, and a count of character classes lets `Password1!` through,
so the guessing estimate comes from zxcvbn (Dropbox's estimator: dictionaries, repeats,
sequences, keyboard walks, dates), not from a home-made rule. Generated keys are 256-bit random
and always pass; the rule exists for the ones a person types.
"""

from __future__ import annotations

from dataclasses import dataclass

from reelout.auth.tokens import type_prefix

# 10**24 guesses is about 80 bits: decades even offline against the unsalted SHA-256 of a key
# at 10**11 guesses a second. A random 32-character hex or base64 string scores 28 or more.
MIN_GUESSES_LOG10 = 24.0
HOW_TO_MAKE_ONE = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
_ESTIMATE_CHARS = 72  # zxcvbn's own ceiling; a strong start makes the whole strong enough


@dataclass(frozen=True)
class Weakness:
    """Why a secret was refused, for a person."""

    reason: str


def weakness(secret: str, min_chars: int) -> Weakness | None:
    """None when `secret` is long and unpredictable enough; else what is wrong with it.

    A known `rlo_<kind>_` prefix counts for nothing: everyone knows it."""
    body = secret.removeprefix(type_prefix(secret))
    if len(body) < min_chars:
        return Weakness(
            f"it has {len(body)} characters of its own; at least {min_chars} are needed"
        )
    from zxcvbn import zxcvbn  # 30 ms to import; only start-up needs it

    guesses_log10 = float(zxcvbn(body[:_ESTIMATE_CHARS])["guesses_log10"])
    if guesses_log10 < MIN_GUESSES_LOG10:
        return Weakness(
            f"it could be guessed in about 10^{guesses_log10:.0f} tries (repeats, words, "
            f"sequences or keyboard runs); at least 10^{MIN_GUESSES_LOG10:.0f} are needed"
        )
    return None


def refusal(secret: str, min_chars: int, setting: str) -> str | None:
    """The start-up message for a weak secret in `setting`, or None when it is strong enough."""
    found = weakness(secret, min_chars)
    if found is None:
        return None
    return f"{setting} is too weak: {found.reason}. Make a random one with: {HOW_TO_MAKE_ONE}"
