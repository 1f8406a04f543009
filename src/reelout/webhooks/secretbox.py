"""Webhook signing secrets at rest: Fernet (cryptography), keyed by HKDF from the server's secret.

A signing secret must be read back to sign, so it is encrypted, not hashed. Stored values start
with `fernet:`; a value without it is a secret from before encryption (a `whsec_…` in clear),
still usable, and sealed by the hourly `webhooks.seal_secrets` job (due at a worker's first tick). If the server's secret
changes, stored secrets no longer open: deliveries then fail with `WEBHOOK_SECRET_UNREADABLE`
until the endpoint's secret is rotated.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEALED_PREFIX = "fernet:"
_KEY_INFO = b"reelout webhook signing secrets v1"


class SecretUnreadable(Exception):
    """A stored secret that the current server secret cannot open."""

    code = "WEBHOOK_SECRET_UNREADABLE"


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED_PREFIX)


class SecretBox:
    """Seals and opens webhook signing secrets with a key derived from the server's secret."""

    def __init__(self, server_secret: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO).derive(
            server_secret.encode("utf-8")
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, secret: str) -> str:
        """The stored form of `secret`: `fernet:` and a Fernet token."""
        return SEALED_PREFIX + self._fernet.encrypt(secret.encode("utf-8")).decode("ascii")

    def open(self, stored: str) -> str:
        """The secret a stored value holds (a value from before encryption is returned as is)."""
        if not is_sealed(stored):
            return stored
        try:
            return self._fernet.decrypt(stored[len(SEALED_PREFIX) :]).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError) as exc:
            raise SecretUnreadable(
                "the endpoint's signing secret was sealed under another server secret "
                "(REELOUT_SECRET_KEY or data/secret.key changed) and cannot be read; rotate it "
                "(POST /api/v1/webhooks/{id}/rotate-secret) and give the receiver the new one"
            ) from exc


@lru_cache(maxsize=4)
def box_for(server_secret: str) -> SecretBox:
    """The box of a server secret, made once per process."""
    return SecretBox(server_secret)
