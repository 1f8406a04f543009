"""`reelout upload`: placeholder until the uploader lands."""

from __future__ import annotations


def upload() -> None:
    """Upload video files over tus (not implemented yet)."""
    raise SystemExit("not implemented yet")
