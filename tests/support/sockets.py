"""Whether the server has read what a test sent on a loopback TCP connection (Linux).

Hand-written: Linux reports a socket's queues in /proc/net/tcp and through the TIOCOUTQ
ioctl; no library in the environment exposes them (psutil lists connections, not queues)."""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
from pathlib import Path

TCP_TABLE = Path("/proc/net/tcp")


def unsent_bytes(sock: socket.socket) -> int:
    """Bytes this socket has sent that the peer's kernel has not acknowledged yet."""
    raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    return int(struct.unpack("i", raw)[0])


def peer_unread_bytes(sock: socket.socket) -> int:
    """Bytes waiting in the receive queue of the other end of a loopback connection (the
    server's side, found in /proc/net/tcp by its local and remote ports)."""
    own_port = sock.getsockname()[1]
    peer_port = sock.getpeername()[1]
    for line in TCP_TABLE.read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, queues = fields[1], fields[2], fields[4]
        if int(local.split(":")[1], 16) == peer_port and int(remote.split(":")[1], 16) == own_port:
            return int(queues.split(":")[1], 16)
    raise AssertionError(f"no server side for the connection from port {own_port}")


def read_by_peer(sock: socket.socket) -> bool:
    """Whether the server has taken every byte sent on `sock` out of the kernel's queues."""
    return unsent_bytes(sock) == 0 and peer_unread_bytes(sock) == 0
