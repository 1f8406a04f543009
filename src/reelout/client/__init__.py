"""Python SDK: the resumable uploader (later: OpenFeature provider, telemetry, playback probe)."""
