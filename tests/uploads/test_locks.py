"""Upload locks: the in-process locker and the file locker shared by several processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reelout.errors import Locked
from reelout.uploads.locks import FileLocker, LocalLocker


def test_a_newcomer_asks_the_holder_to_stop_and_takes_over() -> None:
    async def scenario() -> list[str]:
        locker = LocalLocker()
        events: list[str] = []

        held, asked = asyncio.Event(), asyncio.Event()

        async def holder() -> None:
            async with locker.hold("u", 1.0) as lease:
                lease.on_stop(asked.set)
                events.append("held")
                held.set()
                await asked.wait()
                events.append("asked to stop")

        first = asyncio.create_task(holder())
        await held.wait()
        async with locker.hold("u", 1.0):
            events.append("newcomer holds")
        await first
        return events

    assert asyncio.run(scenario()) == ["held", "asked to stop", "newcomer holds"]


def test_a_holder_that_does_not_let_go_gets_the_newcomer_a_423() -> None:
    async def scenario() -> None:
        locker = LocalLocker()
        async with locker.hold("u", 1.0):
            with pytest.raises(Locked):
                async with locker.hold("u", 0.1):
                    pass

    asyncio.run(scenario())


def test_file_locks_are_seen_across_lockers_and_forgotten(tmp_path: Path) -> None:
    async def scenario() -> None:
        here, there = FileLocker(tmp_path, poll=0.01), FileLocker(tmp_path, poll=0.01)
        assert not there.is_held("u")
        async with here.hold("u", 1.0) as lease:
            assert there.is_held("u"), "another process sees the lock"
            with pytest.raises(Locked):
                async with there.hold("u", 0.2):
                    pass
            asked = asyncio.Event()
            lease.on_stop(asked.set)  # called at once if the request already arrived
            await asyncio.wait_for(asked.wait(), 5)  # the watcher polls the stop file
            assert lease.stop_requested, "the newcomer's stop request reached the holder"
        async with there.hold("u", 1.0):
            assert here.is_held("u")
        assert not here.is_held("u")
        here.forget("u")
        assert list(tmp_path.iterdir()) == []

    asyncio.run(scenario())
