"""Python SDK: the resumable uploader (later: OpenFeature provider, telemetry, playback probe)."""

from reelout.client.uploader import Progress, RetryPolicy, UploadError, UploadResult, upload

__all__ = ["Progress", "RetryPolicy", "UploadError", "UploadResult", "upload"]
