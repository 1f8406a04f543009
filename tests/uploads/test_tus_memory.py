"""T38: a huge single PATCH streams to disk; the server's memory does not grow with the body."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import psutil
import pytest

from tests.support.live import StartServer
from tests.support.settings import ADMIN_TOKEN

MiB = 1024 * 1024
BODY = 512 * MiB
T = {"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {ADMIN_TOKEN}"}


class PeakRss:
    """Samples a process's RSS every 20 ms in a thread and keeps the highest value."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.slow
def test_t38_a_half_gigabyte_patch_does_not_grow_the_server(
    start_server: StartServer,
) -> None:
    server = start_server()
    block = bytes(range(256)) * 4096  # 1 MiB

    def body() -> Iterator[bytes]:
        for _ in range(BODY // MiB):
            yield block

    with httpx.Client(base_url=server.url, headers=T, timeout=120) as http:
        warm = http.post(
            "/files/",
            content=block,
            headers={"Upload-Length": str(MiB), "Content-Type": "application/offset+octet-stream"},
        )
        assert warm.status_code == 201
        baseline = psutil.Process(server.proc.pid).memory_info().rss
        url = http.post("/files/", headers={"Upload-Length": str(BODY)}).headers["Location"]
        with PeakRss(server.proc.pid) as rss:
            reply = http.patch(
                url,
                content=body(),
                headers={
                    "Content-Type": "application/offset+octet-stream",
                    "Upload-Offset": "0",
                    "Content-Length": str(BODY),
                },
            )
        assert reply.status_code == 204
        assert reply.headers["Upload-Offset"] == str(BODY)
    growth = (rss.peak - baseline) / MiB
    assert growth < 64, f"the server grew by {growth:.0f} MiB while receiving {BODY // MiB} MiB"
