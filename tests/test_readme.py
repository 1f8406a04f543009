"""The README documents every setting a user can set."""

from __future__ import annotations

from pathlib import Path

from reelout.config import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_in_the_readme() -> None:
    text = README.read_text()
    missing = [
        f"REELOUT_{name.upper()}"
        for name in Settings.model_fields
        if f"`REELOUT_{name.upper()}`" not in text
    ]
    assert missing == [], f"document these in README.md's settings table: {missing}"
