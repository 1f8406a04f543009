"""Why a video cannot be made playable: one exception family, each with a video error code."""

from __future__ import annotations

import errno


class VideoFailed(Exception):
    """The video cannot be made playable; `code` (ERR_...) and `text` go to its status."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code, self.text = code, text


class OutOfSpace(Exception):
    """A write failed for want of disk space (ENOSPC, EFBIG, EDQUOT): nothing is wrong with the
    video, so the job is retried with backoff instead of failing it."""


NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def is_out_of_space(exc: OSError) -> bool:
    return exc.errno in NO_SPACE_ERRNOS
