"""Fixtures for the media tests: small generated clips, made once per test process."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media.clips import Clips, make_clip


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    """`clips(kind)` -> the path of a clip of that kind (see tests/media/clips.py)."""
    folder = tmp_path_factory.mktemp("clips")

    def clip(kind: str) -> Path:
        return make_clip(kind, folder)

    return clip
