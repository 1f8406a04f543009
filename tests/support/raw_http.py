"""A raw HTTP/1.1 request whose body the test sends piece by piece and ends as it likes.

Hand-written: httpx cannot stall a body half-way, or close the connection with an RST."""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.support.sockets import read_by_peer
from tests.support.waiting import wait_until


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class RawRequest:
    """One HTTP/1.1 request on its own socket; the body is sent piece by piece with `send`."""

    def __init__(self, base_url: str, method: str, path: str, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        assert parts.hostname and parts.port
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.hostname}:{parts.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.sent = 0
        self._buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.sent += len(data)

    def send_slowly(self, data: bytes, seconds: float, pieces: int) -> None:
        """Spread `data` over about `seconds`, in `pieces` writes."""
        step = -(-len(data) // pieces)
        pause = seconds / pieces
        for start in range(0, len(data), step):
            self.send(data[start : start + step])
            time.sleep(pause)

    def wait_until_read(self, timeout: float = 10.0) -> None:
        """Return once the server has taken every byte sent so far out of the kernel's queues."""
        wait_until(lambda: read_by_peer(self.sock), timeout, "the server to read the body sent")

    def response(self, timeout: float) -> RawResponse | None:
        """The server's reply, or None when it closed the connection without one."""
        self.sock.settimeout(timeout)
        try:
            while b"\r\n\r\n" not in self._buffer:
                block = self.sock.recv(65536)
                if not block:
                    return None
                self._buffer += block
        except ConnectionResetError:
            return None
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            block = self.sock.recv(65536)
            if not block:
                break
            rest += block
        self._buffer = rest[length:]
        return RawResponse(int(status_line.split()[1]), headers, rest[:length])

    def closed_by_server(self, timeout: float) -> bool:
        """True once the server has closed its side (EOF or reset) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        """Close like a process that exits: FIN, after whatever was sent."""
        self.sock.close()

    def reset(self) -> None:
        """Close with an RST (SO_LINGER 0), like a connection torn down by a dying client."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
