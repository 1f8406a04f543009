"""Keyset pagination cursors: an opaque token for "after (created_at, id)", newest first."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from reelout.errors import BadRequest


def encode_cursor(created_at: datetime, key: str) -> str:
    """The cursor that continues after the row (created_at, key)."""
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{key}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(created_at, key) of a cursor this server gave out; 400 INVALID_CURSOR otherwise."""
    try:
        created, key = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(created), key
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest(
            "the cursor is not one this server gave out", code="INVALID_CURSOR"
        ) from None
