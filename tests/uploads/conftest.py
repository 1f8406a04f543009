"""Fixtures shared into the upload tests: the media tests' generated clips (for the nginx test)."""

from tests.media.conftest import clips

__all__ = ["clips"]
