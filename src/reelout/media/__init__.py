"""Videos: the record and its files, the HLS pipeline, delivery and the playback API."""
