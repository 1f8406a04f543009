"""Secret generation and hashing for API keys and one-time upload tokens (pure, no I/O)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIXES = {
    "admin": "rlo_admin_",
    "client": "rlo_client_",
    "server": "rlo_server_",
    "upload": "rlo_upload_",
}

SHOWN_CHARS = 4  # of a key's own characters, after its type prefix, in listings


def type_prefix(secret: str) -> str:
    """The public `rlo_<kind>_` prefix a secret starts with, or ''."""
    return next((p for p in KEY_PREFIXES.values() if secret.startswith(p)), "")


def shown_prefix(secret: str) -> str:
    """What listings show of a key: its type prefix and at most SHOWN_CHARS characters more
    (enough to tell keys apart, never enough to help guess one)."""
    kind = type_prefix(secret)
    return kind + secret[len(kind) : len(kind) + SHOWN_CHARS]


def new_secret(kind: str) -> str:
    """A 256-bit random secret with a readable prefix saying what it is."""
    return KEY_PREFIXES[kind] + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 is right here: the secrets are 256-bit random, so no stretching is needed."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_hash(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def new_id() -> str:
    return secrets.token_hex(8)
