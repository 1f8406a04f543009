"""Which network addresses a webhook may reach (pure): public unicast only, unless allowlisted.

Written by hand because the stdlib's `is_global` differs between Python releases and says nothing
of multicast; the table below names every range refused, so the rule reads the same everywhere.
IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by that address
too, so `::ffff:127.0.0.1` is loopback like `127.0.0.1`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

_REFUSED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified ('this network')"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "shared (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata lives here)"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "reserved (IETF protocol assignments)"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "reserved (benchmarking)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "reserved (discard-only)"),
    ("fc00::/7", "private (unique local)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
)
REFUSED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(cidr), why) for cidr, why in _REFUSED
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
LOCALHOST = ipaddress.ip_address("127.0.0.1")


def parse(text: str) -> IPAddress:
    """An address as a resolver prints it (an IPv6 zone such as `%eth0` is dropped)."""
    return ipaddress.ip_address(text.split("%", 1)[0])


def embedded_ipv4(ip: IPAddress) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64, 6to4), if any."""
    if isinstance(ip, IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _V4_COMPATIBLE and int(ip) > 1):
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _range_of(ip: IPAddress) -> str | None:
    for network, why in REFUSED_NETWORKS:
        if ip.version == network.version and ip in network:
            return why
    if not ip.is_global:
        return "reserved (not globally routable)"
    return None


def _allowed(ip: IPAddress, allow: Iterable[IPNetwork]) -> bool:
    return any(ip.version == net.version and ip in net for net in allow)


def refusal(ip: IPAddress, allow: Iterable[IPNetwork] = ()) -> str | None:
    """Why a webhook may not connect to `ip` (e.g. "loopback"), or None when it may.

    An address in an allowlisted network (REELOUT_WEBHOOK_ALLOW_NETWORKS) is always allowed; an
    IPv6 address carrying an IPv4 one is allowed only if both are (or the IPv4 one is allowlisted).
    """
    allow = list(allow)
    inner = embedded_ipv4(ip)
    if _allowed(ip, allow) or (inner is not None and _allowed(inner, allow)):
        return None
    if inner is not None and (why := _range_of(inner)) is not None:
        return f"{why}, as {inner}"
    return _range_of(ip)


def literal(host: str) -> IPAddress | None:
    """The address a URL's host names without any lookup: an IP literal, a legacy IPv4 form the
    system resolver also reads as one (`2130706433`, `0x7f.1`), or `localhost` (RFC 6761); None
    for every other host name, which only a lookup at connect time can judge."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return LOCALHOST
    try:
        return parse(name)
    except ValueError:
        pass
    if name and all(ch in "0123456789abcdefx." for ch in name) and name[0].isdigit():
        try:
            return IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    return None
