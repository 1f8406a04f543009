"""Videos: the video record and its files; later the HLS pipeline, delivery and playback API."""
