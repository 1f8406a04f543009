"""Video ingest: the tus 1.0.0 server, its store and locker, direct and legacy uploads, order stages."""
