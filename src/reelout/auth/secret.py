"""The server's own secret (signs console sessions and playback URLs): REELOUT_SECRET_KEY, else a
random one kept in the data folder (mode 0600), made on first use."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from reelout.config import Settings
from reelout.errors import ReeloutError

MIN_SECRET_CHARS = 16


class SecretKeyError(ReeloutError):
    code = "INVALID_SECRET_KEY"


def secret_key(settings: Settings) -> str:
    """REELOUT_SECRET_KEY, else the data folder's secret.key (made, mode 0600, on first use)."""
    if settings.secret_key is not None:
        return _checked(settings.secret_key, "REELOUT_SECRET_KEY")
    path = settings.secret_key_file
    if not path.exists():
        _create_secret(path)
    return _checked(path.read_text().strip(), str(path))


def _checked(secret: str, where: str) -> str:
    if len(secret) < MIN_SECRET_CHARS:
        raise SecretKeyError(
            f"the server secret in {where} is shorter than {MIN_SECRET_CHARS} characters; "
            "set a long random REELOUT_SECRET_KEY or delete the file to have one made"
        )
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
