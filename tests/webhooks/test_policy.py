"""Pure webhook rules: endpoint URLs, subscriptions and the attempt budget of the retry window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout.jobs.timing import retry_ceiling
from reelout.webhooks import policy


@pytest.mark.parametrize(
    "url",
    ["https://example.com/hooks", "http://127.0.0.1:9000/x?y=1", "https://user:pw@h.example/"],
)
def test_absolute_http_urls_are_endpoints(url: str) -> None:
    assert policy.url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "characters"),
        ("/hooks", "http"),
        ("example.com/hooks", "http"),
        ("ftp://example.com/", "http"),
        ("https://", "host"),
        ("https://exa mple.com/", "whitespace"),
        ("https://example.com:99999/", "parse"),
        ("https://example.com:0/", "port"),
        ("https://example.com/#frag", "fragment"),
        ("https://example.com/" + "a" * 2100, "characters"),
    ],
)
def test_other_urls_are_refused_with_a_reason(url: str, problem: str) -> None:
    reason = policy.url_problem(url)
    assert reason is not None and problem in reason


def test_subscriptions() -> None:
    assert policy.subscribed(["*"], "video.error")
    assert policy.subscribed(["video.ready"], "video.ready")
    assert not policy.subscribed(["video.ready"], "video.error")
    assert policy.unknown_events(["video.ready", "*", "video.deleted"]) == ["video.deleted"]


def earliest_times(attempts: int) -> list[float]:
    """When each attempt can run at the earliest (all jitter zero), from the first one."""
    times, at = [0.0], 0.0
    for n in range(1, attempts):
        at += retry_ceiling(n) / 2
        times.append(at)
    return times


def test_the_default_window_needs_58_attempts_at_most() -> None:
    budget = policy.attempts_to_cover(24 * 3600)
    assert budget == 58
    times = earliest_times(budget)
    assert times[-1] >= 24 * 3600 > times[-2]


def test_the_job_budget_covers_the_longest_window_a_setting_allows() -> None:
    assert earliest_times(policy.MAX_ATTEMPTS)[-1] >= policy.MAX_RETRY_HOURS * 3600


@given(st.floats(min_value=1, max_value=policy.MAX_RETRY_HOURS * 3600))
def test_the_budget_always_reaches_the_window(window: float) -> None:
    budget = policy.attempts_to_cover(window)
    times = earliest_times(budget)
    assert times[-1] >= window
    assert budget <= policy.MAX_ATTEMPTS


def test_the_window_closes_at_its_end() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert not policy.window_closed(start, start + timedelta(hours=23, minutes=59), 86400)
    assert policy.window_closed(start, start + timedelta(hours=24), 86400)
