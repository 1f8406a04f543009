"""The rehearsal's own server: `reelout serve` in a child process on a kept data folder, with the
simulation-only REELOUT_CLOCK_SPEED, stopped when the rehearsal ends."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

START_SECONDS = 60.0  # a cold start imports the whole app: slow on a busy 2-core host
LOG_FILE = "simulate-server.log"
ADMIN_KEY_FILE = "simulate-admin-token"  # the folder's admin key: made on its first start only


class ServerDidNotStart(RuntimeError):
    """The child `reelout serve` exited or did not answer /healthz in time."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OwnServer:
    url: str
    data_dir: Path
    admin_token: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def server_env(data_dir: Path, token: str, port: int, speed: float) -> dict[str, str]:
    """The child's settings: its own folder and token, the clock `speed` times faster, and a job
    lease long enough in the fast clock's seconds for the worker's real-time heartbeats."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELOUT_")}
    return {
        **env,
        "REELOUT_DATA_DIR": str(data_dir),
        "REELOUT_ADMIN_TOKEN": token,
        "REELOUT_PORT": str(port),
        "REELOUT_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "REELOUT_CLOCK_SPEED": str(speed),
        "REELOUT_JOB_LEASE_SECONDS": str(60 * speed),
        "REELOUT_JOB_POLL_SECONDS": "0.2",
        "REELOUT_LOG_LEVEL": "warning",
    }


def admin_token(data_dir: Path) -> str:
    """The admin key of the rehearsals on `data_dir`: kept in the folder (mode 0600), since a
    server makes its first admin key from REELOUT_ADMIN_TOKEN on its first start only."""
    kept = data_dir / ADMIN_KEY_FILE
    if kept.exists():
        return kept.read_text(encoding="utf-8").strip()
    token = secrets.token_urlsafe(32)
    fd = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    return token


def start(data_dir: Path, speed: float) -> OwnServer:
    """Start `reelout serve` on `data_dir` and wait until it answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port, token = free_port(), admin_token(data_dir)
    command = [sys.executable, "-c", "from reelout.cli import app; app()", "serve"]
    with (data_dir / LOG_FILE).open("ab") as log:
        process = subprocess.Popen(
            command, env=server_env(data_dir, token, port, speed), stdout=log, stderr=log
        )
    server = OwnServer(f"http://127.0.0.1:{port}", data_dir, token, process)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerDidNotStart(f"reelout serve exited; see {data_dir / LOG_FILE}")
        try:
            if httpx.get(server.url + "/healthz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise ServerDidNotStart(f"reelout serve did not answer in {START_SECONDS:.0f} s")
