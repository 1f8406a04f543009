"""The shipped nginx example (deploy/nginx/reelout.conf) run in front of a live server."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live import LiveServer, free_port
from tests.support.waiting import wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "reelout.conf"


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if not found:
        pytest.fail("nginx is missing: `.ci/run` installs it (apt-get install nginx-light)")
    return found


def example_site(backends: list[str], media: str, port: int, prefix: Path) -> str:
    """The example's server block in front of `backends` (host:port, one upstream line each),
    its media alias at `media`, listening on `port`, logging in `prefix`."""
    line = "    server 127.0.0.1:8000 max_fails=1 fail_timeout=10s;\n"
    example = EXAMPLE.read_text()
    assert line in example, "the example's upstream line changed: update tests/support/nginx.py"
    upstream = "".join(line.replace("127.0.0.1:8000", backend) for backend in backends)
    site = example.replace(line, upstream)
    site = site.replace("/var/lib/reelout/media/", media)
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    return site.replace("/var/log/nginx/", f"{prefix}/logs/")


@contextlib.contextmanager
def nginx_in_front(server: LiveServer, prefix: Path) -> Iterator[str]:
    """nginx with the example site in front of `server` (its files under `prefix`, its logs in
    `prefix/logs`) for the length of a `with` block; yields the URL it listens on."""
    media = f"{server.runtime.settings.data_dir.resolve()}/media/"
    with nginx_balancing([server.url], prefix, media) as url:
        yield url


@contextlib.contextmanager
def nginx_balancing(urls: list[str], prefix: Path, media: str = "/nonexistent/") -> Iterator[str]:
    """nginx with the example site balancing the API hosts at `urls` (`http://host:port`)."""
    port = free_port()
    (prefix / "logs").mkdir(parents=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    backends = [url.removeprefix("http://") for url in urls]
    (prefix / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/logs/error.log;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n access_log off;\n client_body_temp_path {prefix}/body;\n"
        f" proxy_temp_path {prefix}/proxy;\n{example_site(backends, media, port, prefix)}\n}}\n"
    )
    process = subprocess.Popen(
        [nginx_binary(), "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )

    def listening() -> bool:
        if process.poll() is not None:
            pytest.fail(f"nginx did not start: {process.stderr.read() if process.stderr else ''}")
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(listening, 10, "nginx to listen")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
