"""Why a video cannot be made playable: one exception family, each with a video error code."""

from __future__ import annotations


class VideoFailed(Exception):
    """The video cannot be made playable; `code` (ERR_...) and `text` go to its status."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code, self.text = code, text
