"""Pure rules of webhooks: known event types, endpoint URLs, the retry window and attempt budget."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from reelout.jobs.timing import retry_ceiling

EVENT_TYPES = ("video.ready", "video.error")
ALL_EVENTS = "*"
MAX_URL_CHARS = 2048
MAX_RETRY_HOURS = 168  # the longest retry window a setting may ask for (7 days)


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook endpoint, or None: it must be absolute http(s) with a host."""
    if not url or len(url) > MAX_URL_CHARS:
        return f"the URL must be 1..{MAX_URL_CHARS} characters"
    if any(ch.isspace() for ch in url):
        return "the URL must not contain whitespace"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"the URL does not parse: {exc}"
    if parts.scheme not in ("http", "https"):
        return "the URL must start with http:// or https://"
    if not parts.hostname:
        return "the URL must name a host"
    if port == 0:
        return "the URL's port must be 1..65535"
    if parts.fragment:
        return "the URL must not have a #fragment"
    return None


def unknown_events(events: Iterable[str]) -> list[str]:
    """The names in `events` that are neither a known event type nor `*`."""
    return [e for e in events if e != ALL_EVENTS and e not in EVENT_TYPES]


def subscribed(events: Iterable[str], event_type: str) -> bool:
    return any(e in (ALL_EVENTS, event_type) for e in events)


def window_closed(event_created: datetime, now: datetime, window_seconds: float) -> bool:
    """After a failed attempt: True when no further try may be made (the window is over)."""
    return now >= event_created + timedelta(seconds=window_seconds)


def attempts_to_cover(window_seconds: float) -> int:
    """The fewest attempts that always reach past `window_seconds` under the jobs backoff.

    The jobs table waits at least half of `retry_ceiling(n)` after the n-th failure (equal
    jitter), so summing those shortest waits gives the earliest time of every attempt; the first
    attempt whose earliest time is at or past the window is the last one ever needed. A job with
    this many attempts is therefore always stopped by the window, never by its attempt count."""
    if window_seconds <= 0:
        raise ValueError("window_seconds must be positive")
    attempts, earliest = 1, 0.0
    while earliest < window_seconds:
        earliest += retry_ceiling(attempts) / 2
        attempts += 1
    return attempts


# Sized for the longest window a setting allows: 346 with the jobs backoff (5 s doubling, 1 h cap).
MAX_ATTEMPTS = attempts_to_cover(MAX_RETRY_HOURS * 3600)
