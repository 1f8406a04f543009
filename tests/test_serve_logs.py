"""What `reelout serve` writes to its log: plain lines off a terminal, access lines on demand."""

from __future__ import annotations

import logging
import re

import httpx
import pytest
from rich.logging import RichHandler

from reelout import logs
from tests.support.live import ServerProcess, StartServer
from tests.support.waiting import wait_until

PLAIN_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR|DEBUG) +\S+: ")
ACCESS = '"GET /healthz?probe=1 HTTP/1.1" 200'


def probe_log(server: ServerProcess, probes: int = 4, logged: bool = True) -> str:
    """Send a few recognisable requests, then return the log once they are in it (`logged`).

    Without access lines there is nothing to wait for: uvicorn logs a request before it sends
    the response, so once the replies are in, any line it was going to write is written."""
    for _ in range(probes):
        assert httpx.get(server.url + "/healthz?probe=1").status_code == 200
    if logged:
        wait_until(lambda: ACCESS in server.log.read_text(), 5, "the access line")
    return server.log.read_text()


def test_off_a_terminal_every_line_is_plain_and_requests_are_logged(
    start_server: StartServer,
) -> None:
    text = probe_log(start_server())
    lines = [line for line in text.splitlines() if line.strip()]
    assert any("serving on http://" in line for line in lines)
    assert any("uvicorn.access" in line and ACCESS in line for line in lines)
    assert all(PLAIN_LINE.match(line) for line in lines), text
    assert "│" not in text and "\x1b[" not in text, "no Rich tables or colours in a file"


def test_the_access_log_can_be_turned_off(start_server: StartServer) -> None:
    text = probe_log(start_server(env={"REELOUT_ACCESS_LOG": "false"}), logged=False)
    assert "serving on http://" in text
    assert ACCESS not in text and "uvicorn.access" not in text


def test_each_worker_process_logs_in_the_same_format(start_server: StartServer) -> None:
    text = probe_log(start_server("--workers", "2"), probes=8)
    access = [line for line in text.splitlines() if ACCESS in line]
    assert access, text
    assert all(PLAIN_LINE.match(line) for line in access)


@pytest.mark.parametrize(
    ("fmt", "handler_type"),
    [("rich", RichHandler), ("plain", logging.StreamHandler), ("auto", logging.StreamHandler)],
)
def test_the_format_setting_picks_the_handler(
    fmt: logs.LogFormat, handler_type: type[logging.Handler]
) -> None:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    try:
        logs.configure("warning", fmt)  # pytest's stderr is not a terminal: auto means plain
        (handler,) = root.handlers
        assert type(handler) is handler_type
        assert root.level == logging.WARNING
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


SECRET = "s3cr3t-Vq7cN2xLr9TzKm4W"


@pytest.mark.parametrize("args", [(), ("--workers", "2")])
def test_secrets_in_logged_urls_are_redacted(
    start_server: StartServer, args: tuple[str, ...]
) -> None:
    server = start_server(*args)
    asked = [
        f"/healthz?probe=2&token={SECRET}",
        f"/media/nope/v-1/master.m3u8?max_height=360&token={SECRET}",
        f"/ofrep/v1/events?since=7&token={SECRET}",
        f"/healthz?probe=3&api_key={SECRET}&X-Amz-Signature={SECRET}&sig={SECRET}",
    ]
    for path in asked:
        httpx.get(server.url + path)
    wait_until(lambda: "probe=3" in server.log.read_text(), 5, "the last access line")
    text = server.log.read_text()
    assert "GET /healthz?probe=2&token=REDACTED HTTP/1.1" in text
    assert "/media/nope/v-1/master.m3u8?max_height=360&token=REDACTED" in text
    assert "/ofrep/v1/events?since=7&token=REDACTED" in text
    assert "probe=3&api_key=REDACTED&X-Amz-Signature=REDACTED&sig=REDACTED" in text
    assert SECRET not in text


@pytest.mark.parametrize(
    ("url", "logged"),
    [
        ("/a?token=x", "/a?token=REDACTED"),
        ("/a?TOKEN=x&b=1", "/a?TOKEN=REDACTED&b=1"),
        ("/a?access_token=x&refresh-token=y", "/a?access_token=REDACTED&refresh-token=REDACTED"),
        ("/a?key=x&keys=y&monkey=z", "/a?key=REDACTED&keys=REDACTED&monkey=z"),
        (
            "/a?secret=x&password=y&signature=z",
            "/a?secret=REDACTED&password=REDACTED&signature=REDACTED",
        ),
        ("/a?to%6Ben=x", "/a?to%6Ben=REDACTED"),  # an encoded name is still a token
        ("/a?q=token%3Dx&since=7", "/a?q=token%3Dx&since=7"),  # a value is not a name
        ("/a?token", "/a?token"),  # no value, nothing to hide
        ("/a?max_height=720&b=%20+", "/a?max_height=720&b=%20+"),  # the rest as sent
        ("/a/token=x", "/a/token=x"),
    ],
)
def test_what_redaction_keeps_and_hides(url: str, logged: str) -> None:
    assert logs.redact_url(url) == logged
