"""Properties of the pure timing rules: retry backoff and schedule slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout.jobs.timing import next_slot_after, retry_ceiling, retry_delay

attempts = st.integers(min_value=1, max_value=10_000)
bases = st.floats(min_value=0.001, max_value=1000)
caps = st.floats(min_value=0.001, max_value=1e7)
fractions = st.floats(min_value=0, max_value=1)


@given(attempts, bases, caps)
def test_backoff_ceiling_is_monotone_and_capped(n: int, base: float, cap: float) -> None:
    now, later = retry_ceiling(n, base=base, cap=cap), retry_ceiling(n + 1, base=base, cap=cap)
    assert 0 < now <= later <= cap
    assert now == min(base * 2 ** min(n - 1, 60), cap)


@given(attempts, fractions, bases, caps)
def test_delay_lies_in_the_upper_half_of_the_ceiling(
    n: int, jitter: float, base: float, cap: float
) -> None:
    ceiling = retry_ceiling(n, base=base, cap=cap)
    delay = retry_delay(n, jitter, base=base, cap=cap)
    assert ceiling / 2 <= delay <= ceiling <= cap


@given(attempts, fractions)
def test_delay_with_the_same_jitter_never_shrinks(n: int, jitter: float) -> None:
    assert retry_delay(n, jitter) <= retry_delay(n + 1, jitter)


def test_backoff_doubles_from_the_base() -> None:
    assert [retry_ceiling(n, base=5, cap=60) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    assert retry_delay(3, 0.0, base=5, cap=60) == 10
    assert retry_delay(3, 1.0, base=5, cap=60) == 20


@pytest.mark.parametrize(("n", "jitter"), [(0, 0.5), (1, -0.1), (1, 1.5)])
def test_backoff_rejects_nonsense(n: int, jitter: float) -> None:
    with pytest.raises(ValueError, match=r"attempts|jitter"):
        retry_delay(n, jitter)


T0 = datetime(2026, 1, 1, tzinfo=UTC)
offsets = st.integers(min_value=-(10**12), max_value=10**12).map(
    lambda us: timedelta(microseconds=us)
)
intervals = st.integers(min_value=1, max_value=10**11).map(lambda us: timedelta(microseconds=us))


@given(offsets, intervals, offsets)
def test_next_slot_is_the_first_grid_point_strictly_after_now(
    slot_offset: timedelta, interval: timedelta, now_offset: timedelta
) -> None:
    slot, now = T0 + slot_offset, T0 + now_offset
    nxt = next_slot_after(slot, interval, now)
    assert now < nxt <= now + interval  # strictly after now, and the first such slot
    assert (nxt - slot) % interval == timedelta(0)  # on the slot grid


def test_next_slot_examples() -> None:
    minute = timedelta(minutes=1)
    assert next_slot_after(T0, minute, T0) == T0 + minute
    assert next_slot_after(T0, minute, T0 - timedelta(seconds=1)) == T0
    assert next_slot_after(T0, minute, T0 + timedelta(hours=5, seconds=1)) == T0 + 301 * minute
    assert next_slot_after(T0, minute, T0 - timedelta(hours=1)) == T0 - 59 * minute
    with pytest.raises(ValueError, match="interval"):
        next_slot_after(T0, timedelta(0), T0)
