"""Serving apps: OFREP evaluation, the serving cache it answers from, change streams and sync."""
