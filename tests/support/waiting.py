"""Waiting on what a test can observe (a row, a file, a log line) instead of sleeping blindly."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], timeout: float = 20.0, message: str = "", interval: float = 0.02
) -> T:
    """Poll `condition()` until it returns something truthy and return that; after `timeout`
    real seconds, fail the test saying what it waited for (`message`)."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {message or condition}")
        time.sleep(interval)


def wait_until_steady(
    read: Callable[[], T], quiet: float = 0.3, timeout: float = 10.0, message: str = ""
) -> T:
    """Poll `read()` until its value stays the same for `quiet` seconds; return that value
    (for things with no end marker of their own, such as a file a writer may still grow)."""
    deadline = time.monotonic() + timeout
    value, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return value
    raise AssertionError(f"waited {timeout} s for {message or read} to settle (last: {value!r})")
