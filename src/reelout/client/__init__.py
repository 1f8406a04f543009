"""Python SDK: the resumable uploader, the in-process OpenFeature flag provider (`.flags`) and
the telemetry client (`.telemetry`).

Names load on first use (PEP 562) so that `reelout` commands other than `upload` do not pay for
importing tuspy and its HTTP stacks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reelout.client.uploader import Progress, RetryPolicy, UploadError, UploadResult, upload

__all__ = ["Progress", "RetryPolicy", "UploadError", "UploadResult", "upload"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from reelout.client import uploader

        return getattr(uploader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
