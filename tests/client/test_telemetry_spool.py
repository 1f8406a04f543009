"""The telemetry client's spool on its own: what goes in comes out once and in order, across
reopenings at most again (never lost), and a bounded spool drops only its oldest lines."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from reelout.client.spool import DiskSpool, MemorySpool

Step = tuple[str, int]
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 8)),
        st.tuples(st.just("send"), st.integers(1, 5)),
        st.tuples(st.just("reopen"), st.just(0)),
    ),
    max_size=40,
)


class Run:
    """A spool in a fresh folder, the lines given to it and the lines it handed out."""

    def __init__(self, folder: Path, max_bytes: int, segment_bytes: int) -> None:
        self.folder, self.max_bytes, self.segment_bytes = folder, max_bytes, segment_bytes
        self.spool = self.open()
        self.given: list[bytes] = []
        self.sent: list[bytes] = []
        self.dropped = 0

    def open(self) -> DiskSpool:
        return DiskSpool(self.folder, self.max_bytes, fsync=False, segment_bytes=self.segment_bytes)

    def step(self, kind: str, count: int) -> None:
        if kind == "append":
            lines = [b'{"n":%d}\n' % (len(self.given) + i) for i in range(count)]
            self.given += lines
            self.dropped += self.spool.append(lines)
        elif kind == "send":
            batch = self.spool.peek(count)
            self.sent += batch
            self.spool.ack(len(batch))
        else:
            self.spool.close()
            self.spool = self.open()

    def drain(self) -> None:
        while batch := self.spool.peek(3):
            self.sent += batch
            self.spool.ack(len(batch))


def first_seen(lines: list[bytes]) -> list[bytes]:
    return list(dict.fromkeys(lines))


@given(STEPS, st.integers(1, 60))
def test_every_line_comes_out_in_order_and_twice_only_after_a_reopen(
    steps: list[Step], segment_bytes: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run = Run(Path(folder), 10**9, segment_bytes)
        for kind, count in steps:
            run.step(kind, count)
        run.drain()
        assert run.spool.pending == 0
        assert first_seen(run.sent) == run.given
        if not any(kind == "reopen" for kind, _ in steps):
            assert run.sent == run.given
        run.spool.close()
        assert list(Path(folder).glob("*.ndjson")) == []


@given(STEPS.filter(lambda steps: all(kind != "reopen" for kind, _ in steps)))
def test_a_bounded_spool_drops_only_its_oldest_lines_and_counts_them(steps: list[Step]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run = Run(Path(folder), 60, 20)
        for kind, count in steps:
            run.step(kind, count)
            assert run.spool.size <= 60 + 20 + len(b'{"n":999}\n')
        run.drain()
        assert len(run.sent) + run.dropped == len(run.given)
        kept = iter(run.given)
        assert all(line in kept for line in run.sent)  # a subsequence: in order
        run.spool.close()


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, 10_000)
    spool.append([b'{"n":1}\n', b'{"n":2}\n'])
    spool.close()
    (segment,) = tmp_path.glob("*.ndjson")
    with segment.open("ab") as out:
        out.write(b'{"n":3')
    reopened = DiskSpool(tmp_path, 10_000)
    assert (reopened.torn, reopened.pending) == (1, 2)
    assert reopened.peek(10) == [b'{"n":1}\n', b'{"n":2}\n']
    reopened.close()


def test_the_memory_spool_keeps_the_newest() -> None:
    spool = MemorySpool(3)
    assert spool.append([b"1\n", b"2\n"]) == 0
    assert spool.append([b"3\n", b"4\n", b"5\n"]) == 2
    assert spool.peek(10) == [b"3\n", b"4\n", b"5\n"]
    spool.ack(2)
    assert (spool.pending, spool.peek(10)) == (1, [b"5\n"])
