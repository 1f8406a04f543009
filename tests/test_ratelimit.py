"""The public limiter's pure parts: token buckets bounded in memory, caller and key limits,
jittered Retry-After, slots taken atomically, the spread of change-triggered re-fetches, and
which address a caller has."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from reelout.clock import ManualClock
from reelout.ratelimit import CallerLimits, Slot, Slots, TokenBuckets, retry_after, spread
from reelout.urls import client_address
from tests.support.settings import make_settings


def spend(buckets: TokenBuckets, name: str, now: float) -> bool:
    if buckets.wait(name, now) > 0:
        return False
    buckets.take(name, now)
    return True


def test_a_bucket_gives_its_burst_then_its_rate() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(rate=2, burst=3, max_buckets=10)
    assert [spend(buckets, "a", clock.monotonic()) for _ in range(4)] == [True] * 3 + [False]
    assert buckets.wait("a", clock.monotonic()) == 0.5
    clock.advance(0.5)
    assert spend(buckets, "a", clock.monotonic())
    assert not spend(buckets, "a", clock.monotonic())
    assert spend(buckets, "b", clock.monotonic()), "another name has its own bucket"


def test_idle_buckets_are_evicted_and_memory_stays_bounded() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(rate=1, burst=2, max_buckets=100)
    for n in range(1000):
        spend(buckets, f"caller-{n}", clock.monotonic())
        assert len(buckets) <= 100, "never more buckets than the bound"
    assert len(buckets) == 100, "all busy: the least recently used went first"
    clock.advance(2)  # every bucket is full again: each is the same as no bucket
    spend(buckets, "newcomer", clock.monotonic())
    assert len(buckets) == 1, "idle (full) buckets are dropped when met"


def test_a_busy_bucket_is_kept_while_idle_ones_go() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(rate=1, burst=2, max_buckets=3)
    for _ in range(2):
        spend(buckets, "busy", clock.monotonic())
    assert not spend(buckets, "busy", clock.monotonic())
    for name in ("x", "y", "z"):  # each fills the bound; "busy" is the oldest and still empty
        spend(buckets, name, clock.monotonic())
    assert len(buckets) == 3
    assert "busy" not in buckets._buckets, "at the bound the oldest goes: lenient, never wrong"


def test_callers_share_nothing_but_the_key_ceiling_holds_for_all() -> None:
    now = 0.0
    limits = CallerLimits(caller=(1, 2), key=(1, 5), max_buckets=100, rng=random.Random(1))
    assert [limits.check("k", "10.0.0.1", now) for _ in range(2)] == [None, None]
    assert limits.check("k", "10.0.0.1", now) is not None, "the caller's burst is spent"
    assert limits.check("k", "10.0.0.2", now) is None, "another address of the key goes on"
    assert limits.check("other", "10.0.0.1", now) is None, "another key from the address too"
    assert [limits.check("k", f"10.0.1.{n}", now) for n in range(2)] == [None, None]
    assert limits.check("k", "10.0.2.1", now) is not None, "the key's ceiling: 5 in all"


def test_a_refused_request_takes_no_token() -> None:
    limits = CallerLimits(caller=(1, 1), key=(1, 1), max_buckets=10, rng=random.Random(1))
    assert limits.check("k", "a", 0.0) is None
    assert limits.check("k", "b", 0.0) is not None, "the key's ceiling refuses"
    assert limits.check("k", "b", 1.0) is None, "b's own bucket was not spent by the refusal"


def test_off_takes_nothing() -> None:
    limits = CallerLimits(caller=(0, 1), key=(0, 1), max_buckets=10)
    assert not limits.on
    assert all(limits.check("k", "a", 0.0) is None for _ in range(10_000))


@given(st.floats(min_value=0.001, max_value=3600), st.integers(0, 2**32))
def test_retry_after_is_jittered_but_never_too_early(wait: float, seed: int) -> None:
    seconds = retry_after(wait, random.Random(seed))
    assert seconds >= wait and seconds >= 1
    assert seconds <= max(1, int(wait) + 1) * 1.5 + 1


def test_retry_after_spreads_callers_over_several_seconds() -> None:
    rng = random.Random(7)
    assert len({retry_after(10, rng) for _ in range(200)}) == 6, "10 to 15 s"
    assert {retry_after(0.2, rng) for _ in range(200)} == {1, 2}


def test_slots_never_overshoot_under_concurrent_acquires() -> None:
    slots = Slots(total=100, per_key=7, per_caller=0)
    start = threading.Barrier(40)
    taken: list[Slot | str] = []

    def connect() -> None:
        start.wait()
        taken.append(slots.acquire("key", "10.0.0.1"))

    threads = [threading.Thread(target=connect) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = [slot for slot in taken if isinstance(slot, Slot)]
    assert len(held) == 7 == slots.open
    assert {refusal for refusal in taken if isinstance(refusal, str)} == {"key"}


def test_each_limit_of_the_slots_and_their_release() -> None:
    slots = Slots(total=4, per_key=3, per_caller=2)
    first, second = slots.acquire("k", "a"), slots.acquire("k", "a")
    assert slots.acquire("k", "a") == "caller"
    third = slots.acquire("k", "b")
    assert slots.acquire("k", "c") == "key"
    assert isinstance(slots.acquire("other", "a"), Slot), "one key full leaves room for another"
    assert slots.acquire("third", "z") == "total"
    assert isinstance(first, Slot) and isinstance(second, Slot) and isinstance(third, Slot)
    first.release()
    first.release()  # twice is once
    assert slots.open == 3 and slots.held_by("k") == 2
    assert isinstance(slots.acquire("k", "a"), Slot)


def test_refetches_spread_over_a_window_that_grows_with_the_streams() -> None:
    rng = random.Random(3)
    assert spread(1, 2000, rng) == 0.0, "one stream hears at once"
    assert spread(500, 0, rng) == 0.0, "0 turns spreading off"
    small = [spread(500, 2000, rng) for _ in range(1000)]
    large = [spread(20_000, 2000, rng) for _ in range(1000)]
    assert max(small) < 0.25 and max(large) < 10
    assert max(large) > 9, "10 000 apps come back over ten seconds, not in one"


@pytest.mark.parametrize(
    ("headers", "behind_proxy", "address"),
    [
        ({"x-forwarded-for": "10.9.9.9"}, False, "127.0.0.1"),
        ({"x-forwarded-for": "6.6.6.6, 10.0.0.1"}, True, "10.0.0.1"),
        ({"forwarded": 'for=6.6.6.6, for="10.0.0.2:4711"'}, True, "10.0.0.2"),
        ({"forwarded": 'for="[2001:db8::1]:4711"'}, True, "2001:db8::1"),
        ({}, True, "127.0.0.1"),
    ],
)
def test_the_caller_address_is_the_one_our_proxy_saw(
    headers: dict[str, str], behind_proxy: bool, address: str, tmp_path: Path
) -> None:
    scope = {
        "type": "http",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5555),
    }
    settings = make_settings(tmp_path, behind_proxy=behind_proxy)
    assert client_address(Request(scope), settings) == address
