"""The server's own secret (signs console sessions and playback URLs): REELOUT_SECRET_KEY, else a
random one kept in the data folder (mode 0600), made on first use; and the strength check of
every secret an operator chooses (that one, REELOUT_ADMIN_TOKEN and REELOUT_METRICS_TOKEN), made
at start-up."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from reelout.auth.strength import refusal
from reelout.config import Settings
from reelout.errors import ReeloutError


class SecretKeyError(ReeloutError):
    code = "INVALID_SECRET_KEY"


class AdminTokenError(ReeloutError):
    code = "WEAK_ADMIN_TOKEN"


class MetricsTokenError(ReeloutError):
    code = "WEAK_METRICS_TOKEN"


def check_admin_token(settings: Settings) -> None:
    """Refuse to start with a REELOUT_ADMIN_TOKEN a person could guess."""
    if not settings.admin_token:  # unset or empty: a random admin key is made
        return
    problem = refusal(settings.admin_token, settings.min_secret_chars, "REELOUT_ADMIN_TOKEN")
    if problem is not None:
        raise AdminTokenError(
            f"{problem}. If the weak token is already an admin key, create a new admin key "
            "(`reelout keys create --scope admin`) and revoke the old one."
        )


def check_metrics_token(settings: Settings) -> None:
    """Refuse to start with a REELOUT_METRICS_TOKEN a person could guess."""
    if not settings.metrics_token:  # unset or empty: /metrics is open
        return
    problem = refusal(settings.metrics_token, settings.min_secret_chars, "REELOUT_METRICS_TOKEN")
    if problem is not None:
        raise MetricsTokenError(problem)


def secret_key(settings: Settings) -> str:
    """REELOUT_SECRET_KEY, else the data folder's secret.key (made, mode 0600, on first use)."""
    if settings.secret_key is not None:
        return _checked(settings.secret_key, "REELOUT_SECRET_KEY", settings.min_secret_chars)
    path = settings.secret_key_file
    if not path.exists():
        _create_secret(path)
    secret = path.read_text().strip()
    where = f"the secret in {path} (delete it to have one made)"
    return _checked(secret, where, settings.min_secret_chars)


def _checked(secret: str, where: str, min_chars: int) -> str:
    problem = refusal(secret, min_chars, where)
    if problem is not None:
        raise SecretKeyError(problem)
    return secret


def _create_secret(path: Path) -> None:
    """Write a new secret without ever exposing a half-written file (several processes race)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48) + "\n")
    try:
        os.link(partial, path)  # fails if another process made it first: theirs wins
    except FileExistsError:
        pass
    finally:
        partial.unlink()
