"""A real HTTP server in a thread that receives webhooks, records them and answers as scripted."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from reelout.clock import Clock


@dataclass(frozen=True)
class Reply:
    """How the receiver answers one request."""

    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    content_length: bool = True  # False: no Content-Length, the body ends when the socket closes


@dataclass(frozen=True)
class Received:
    """One request as it arrived: path, headers (lower-case names), raw body, clock time."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: int  # unix seconds on the test's clock when it arrived

    @property
    def signature(self) -> str:
        return self.headers["reelout-signature"]

    @property
    def event_id(self) -> str:
        return self.headers["reelout-event-id"]


class Receiver:
    """`Receiver(clock)`: `url(path)` to subscribe, `script(...)` replies, `requests` to check.

    With `tls` (a server SSLContext) it speaks HTTPS; `connections` counts accepted connections,
    so a test can tell that nothing even connected."""

    def __init__(
        self, clock: Clock, tls: ssl.SSLContext | None = None, address: str = "127.0.0.1"
    ) -> None:
        self.clock = clock
        self.scheme = "https" if tls else "http"
        self.connections = 0
        self.requests: list[Received] = []
        self._script: list[Reply] = []
        self.default = Reply()
        self._lock = threading.Lock()
        server_class = _IPv6Server if ":" in address else ThreadingHTTPServer
        self._server = server_class((address, 0), self._handler_class())
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/hook", host: str | None = None) -> str:
        """The URL of `path`, by default at the receiver's IP address, else at `host`."""
        if host is None:
            address = str(self._server.server_address[0])
            host = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{host}:{self.port}{path}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, then with `default`."""
        with self._lock:
            self._script.extend(replies)

    def _next_reply(self, received: Received) -> Reply:
        with self._lock:
            self.requests.append(received)
            return self._script.pop(0) if self._script else self.default

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                with receiver._lock:
                    receiver.connections += 1
                super().setup()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                at = int(receiver.clock.now().timestamp())
                reply = receiver._next_reply(Received(self.path, headers, body, at))
                time.sleep(reply.delay)
                with contextlib.suppress(OSError):  # the sender may have given up waiting
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.content_length:
                        self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
