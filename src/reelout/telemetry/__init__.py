"""Telemetry: the event model, ingest, rollups, metric definitions and KPIs per cohort."""
