"""A real S3-compatible server for the tests: moto's standalone server, one per test process.

The project's own S3 code runs unmodified against it over HTTP; each test gets a bucket of its own.
The AWS_* variables are set for the whole test process (and the `reelout` processes it starts),
as an operator would set them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "reelout-test",
    "AWS_SECRET_ACCESS_KEY": "reelout-test-secret",
    "AWS_REGION": "us-east-1",
}


class MotoServer:
    """moto's standalone S3 server in a child process, on a free loopback port."""

    def __init__(self, log: Path) -> None:
        with socket.socket() as probe:  # a free port; moto_server binds it a moment later
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        command = shutil.which("moto_server", path=str(Path(sys.executable).parent))
        assert command, "moto[server] is a dev dependency: run `make install`"
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [command, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
            )
        self.endpoint = f"http://127.0.0.1:{port}"
        _wait_until_up(self.endpoint, self.process)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@contextmanager
def moto_server(log: Path) -> Iterator[MotoServer]:
    """A moto server for the length of a `with` block."""
    server = MotoServer(log)
    try:
        yield server
    finally:
        server.stop()


def _wait_until_up(endpoint: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode}")
        try:
            httpx.get(endpoint + "/moto-api/", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("moto_server did not answer within 30 s")


def use_endpoint(endpoint: str) -> None:
    """Point this process (and the servers it starts) at the test S3 server."""
    os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=endpoint)


def new_bucket(endpoint: str) -> str:
    """A fresh bucket; returns a storage URL with a prefix, as an operator would write it."""
    from reelout.objectstore import make_client

    name = "reelout-" + secrets.token_hex(6)
    make_client().create_bucket(Bucket=name)
    return f"s3://{name}/site"
