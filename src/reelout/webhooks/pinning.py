"""Webhook connections go only to addresses checked at connect time: one lookup, every answer
checked, the socket opened to a checked address, so DNS rebinding cannot swap it in between.

An httpcore network backend, because that is the one place httpcore opens sockets: the TLS
handshake that follows still names (SNI) and verifies the URL's host name, and the Host header is
the URL's. Hand-written because httpx has no hook for checking the address it connects to.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import httpcore

from reelout.webhooks import addresses
from reelout.webhooks.addresses import IPAddress, IPNetwork

Resolver = Callable[[str, int], Sequence[str]]
SocketOptions = Iterable[httpcore.SOCKET_OPTION] | None


def system_resolver(host: str, port: int) -> list[str]:
    """Every TCP address the system resolver gives for `host`, in its order, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class AddressRefused(Exception):
    """The host is, or resolved to, an address webhooks may not reach."""

    code = "WEBHOOK_ADDRESS_NOT_ALLOWED"

    def __init__(self, host: str, address: IPAddress, why: str) -> None:
        of = "" if str(address) == host.strip("[]") else f" (of {host})"
        super().__init__(
            f"the address {address}{of} is not allowed: {why}; webhooks only go to public "
            "addresses unless REELOUT_WEBHOOK_ALLOW_NETWORKS names its network"
        )
        self.address, self.why = address, why


class LookupFailed(Exception):
    """The host name did not resolve (now): retried, since DNS may answer later."""

    code = "WEBHOOK_DNS_FAILED"


@dataclass(frozen=True)
class Guard:
    """The address rule of one attempt: the allowlist and how names are resolved."""

    allow: tuple[IPNetwork, ...] = ()
    resolver: Resolver = field(default=system_resolver)

    def pin(self, host: str, port: int) -> list[IPAddress]:
        """Resolve `host` once and check every answer; the addresses to connect to, in order.

        One refused answer refuses the host: a name that mixes public and internal addresses is
        not one to half-trust."""
        try:
            answers = list(self.resolver(host, port))
        except (OSError, UnicodeError) as exc:
            raise LookupFailed(f"{host} did not resolve: {exc}") from exc
        if not answers:
            raise LookupFailed(f"{host} resolved to no address")
        found = [addresses.parse(answer) for answer in answers]
        for address in found:
            if (why := addresses.refusal(address, self.allow)) is not None:
                raise AddressRefused(host, address, why)
        return found


class PinnedBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, connecting only to the addresses `guard.pin` checked."""

    def __init__(self, guard: Guard, inner: httpcore.NetworkBackend | None = None) -> None:
        self._guard = guard
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: SocketOptions = None,
    ) -> httpcore.NetworkStream:
        failure: httpcore.ConnectError | None = None
        for address in self._guard.pin(host, port):
            try:
                return self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:  # try the next checked address, as browsers do
                failure = exc
        assert failure is not None  # pin() returns at least one address
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: SocketOptions = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("webhooks never connect to a unix socket")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)
