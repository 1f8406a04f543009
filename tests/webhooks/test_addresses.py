"""Which addresses webhooks may reach: public unicast only, IPv4-in-IPv6 forms judged by their
IPv4 address, allowlisted networks always, and host literals read as the system resolver does."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout.webhooks.addresses import REFUSED_NETWORKS, literal, parse, refusal


def nets(*cidrs: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(c) for c in cidrs]


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "shared"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "reserved"),
        ("198.18.0.1", "benchmarking"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("ff02::1", "multicast"),
        ("ff0e::1", "multicast"),
        ("2001:db8::1", "reserved"),
        ("::ffff:127.0.0.1", "loopback, as 127.0.0.1"),
        ("::ffff:10.0.0.1", "private (RFC 1918), as 10.0.0.1"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::7f00:1", "loopback, as 127.0.0.1"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("2002:7f00:1::1", "loopback, as 127.0.0.1"),
    ],
)
def test_internal_addresses_are_refused_saying_what_they_are(address: str, why: str) -> None:
    reason = refusal(parse(address))
    assert reason is not None and why in reason


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8", "1.1.1.1"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(parse(address)) is None


def test_an_allowlisted_network_is_reachable_and_only_that_one() -> None:
    allow = nets("127.0.0.0/8", "fd00:1::/64")
    assert refusal(parse("127.0.0.1"), allow) is None
    assert refusal(parse("::ffff:127.0.0.1"), allow) is None, "the same place as 127.0.0.1"
    assert refusal(parse("fd00:1::5"), allow) is None
    assert refusal(parse("fd00:2::5"), allow) is not None
    assert refusal(parse("10.0.0.1"), allow) is not None
    assert refusal(parse("::1"), allow) is not None, "IPv6 loopback is not in 127.0.0.0/8"


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_an_ipv4_mapped_address_is_judged_as_its_ipv4_address(number: int) -> None:
    v4 = ipaddress.IPv4Address(number)
    mapped = ipaddress.IPv6Address(f"::ffff:{v4}")
    assert (refusal(mapped) is None) == (refusal(v4) is None)


@given(st.sampled_from(REFUSED_NETWORKS), st.integers(min_value=0))
def test_every_address_of_a_refused_network_is_refused(
    entry: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], offset: int
) -> None:
    network, why = entry
    address = network[offset % network.num_addresses]
    reason = refusal(address)
    assert reason is not None and why in reason


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:7f00:1", "::ffff:7f00:1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("localhost", "127.0.0.1"),
        ("LOCALHOST.", "127.0.0.1"),
        ("admin.localhost", "127.0.0.1"),
    ],
)
def test_hosts_that_name_an_address_without_a_lookup(host: str, address: str) -> None:
    assert literal(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["example.com", "hooks.example.com", "1e100.net", "deadbeef"])
def test_host_names_are_left_to_the_lookup_at_connect_time(host: str) -> None:
    assert literal(host) is None
