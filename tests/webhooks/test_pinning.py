"""The pinned connection: one lookup, every answer checked, the socket opened to the checked
address while the Host header, TLS SNI and certificate check keep the URL's host name. Real
sockets and servers; the resolver is injected only to play a DNS server that changes its answer."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from reelout.clock import ManualClock
from reelout.webhooks import sender
from reelout.webhooks.pinning import AddressRefused, Guard, LookupFailed, system_resolver
from tests.webhooks.receiver import Receiver
from tests.webhooks.tls import ThrowawayCA

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
ONLY_127_0_0_1 = (ipaddress.ip_network("127.0.0.1/32"),)


class RebindingDNS:
    """A DNS server that answers `first`, then `later` to every further question (a rebinding
    attacker's: a checked answer first, an internal one for the connect)."""

    def __init__(self, first: list[str], later: list[str]) -> None:
        self.first, self.later = first, later
        self.questions: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.questions.append(host)
        return self.first if len(self.questions) == 1 else self.later


def send(url: str, guard: Guard, clock: ManualClock, **kwargs: object) -> sender.AttemptResult:
    request = sender.Request(url, b"{}", {"Content-Type": "application/json"})
    return sender.post(request, timeout=5, clock=clock, guard=guard, **kwargs)  # type: ignore[arg-type]


def test_one_refused_answer_refuses_the_host() -> None:
    mixed = Guard(resolver=lambda host, port: ["93.184.216.34", "10.0.0.7"])
    with pytest.raises(AddressRefused, match=r"10\.0\.0\.7 \(of hooks\.example\) is not allowed"):
        mixed.pin("hooks.example", 443)
    assert Guard(resolver=lambda h, p: ["93.184.216.34"]).pin("hooks.example", 443) == [
        ipaddress.ip_address("93.184.216.34")
    ]


def test_a_name_that_does_not_resolve_is_a_lookup_failure() -> None:
    with pytest.raises(LookupFailed, match="did not resolve"):
        Guard().pin("no-such-host.invalid", 80)  # .invalid never resolves (RFC 6761)
    with pytest.raises(LookupFailed, match="no address"):
        Guard(resolver=lambda h, p: []).pin("empty.example", 80)


def test_localhost_resolved_by_the_system_is_refused_unless_allowlisted() -> None:
    with pytest.raises(AddressRefused, match="loopback"):
        Guard().pin("localhost", 80)
    pinned = Guard(allow=LOOPBACK).pin("localhost", 80)
    assert pinned and all(address.is_loopback for address in pinned)
    assert system_resolver("localhost", 80)  # the real resolver, as deliveries use it


def test_the_connection_goes_to_the_checked_address_though_dns_changes_its_answer(
    receiver: Receiver, clock: ManualClock
) -> None:
    dns = RebindingDNS(first=["127.0.0.1"], later=["127.0.0.2"])
    result = send(receiver.url(host="hook.test"), Guard(ONLY_127_0_0_1, dns), clock)
    assert result.ok, result.error
    assert dns.questions == ["hook.test"], "resolved once, for the check and the connect"
    [got] = receiver.requests
    assert got.headers["host"] == f"hook.test:{receiver.port}", "the Host header is the URL's"


def test_a_rebinding_answer_to_an_internal_address_never_connects(
    receiver: Receiver, clock: ManualClock
) -> None:
    dns = RebindingDNS(first=["127.0.0.1"], later=["93.184.216.34"])
    result = send(receiver.url(host="hook.test"), Guard(resolver=dns), clock)
    assert result.status_code is None and result.permanent
    assert result.error_code == "WEBHOOK_ADDRESS_NOT_ALLOWED"
    assert result.error is not None and "127.0.0.1 (of hook.test) is not allowed" in result.error
    assert receiver.connections == 0 and receiver.requests == []


@pytest.fixture
def ca(tmp_path: Path) -> ThrowawayCA:
    return ThrowawayCA(tmp_path)


@pytest.fixture
def tls_receiver(clock: ManualClock, ca: ThrowawayCA) -> Iterator[Receiver]:
    with Receiver(clock, tls=ca.server_context("hook.test")) as rec:
        yield rec


def test_tls_names_and_verifies_the_host_name_while_connecting_to_the_pinned_address(
    tls_receiver: Receiver, ca: ThrowawayCA, clock: ManualClock
) -> None:
    dns = RebindingDNS(first=["127.0.0.1"], later=["127.0.0.1"])
    guard = Guard(ONLY_127_0_0_1, dns)
    result = send(tls_receiver.url(host="hook.test"), guard, clock, ssl_context=ca.client_context())
    assert result.ok, result.error
    assert ca.sni_names == ["hook.test"]
    assert tls_receiver.requests[0].headers["host"] == f"hook.test:{tls_receiver.port}"


def test_a_certificate_for_another_name_is_refused_at_the_pinned_address(
    tls_receiver: Receiver, ca: ThrowawayCA, clock: ManualClock
) -> None:
    guard = Guard(ONLY_127_0_0_1, lambda host, port: ["127.0.0.1"])
    url = tls_receiver.url(host="other.test")
    result = send(url, guard, clock, ssl_context=ca.client_context())
    assert result.status_code is None and not result.permanent
    assert result.error_code == "WEBHOOK_CONNECT_FAILED"
    assert result.error is not None and "certificate" in result.error.lower()
    assert tls_receiver.requests == []


def test_an_ipv6_literal_is_checked_and_named_in_brackets(clock: ManualClock) -> None:
    with Receiver(clock, address="::1") as receiver:
        refused = send(receiver.url(), Guard(), clock)
        allowed = send(receiver.url(), Guard(LOOPBACK), clock)
    assert refused.error_code == "WEBHOOK_ADDRESS_NOT_ALLOWED"
    assert allowed.ok, allowed.error
    [got] = receiver.requests
    assert got.headers["host"] == f"[::1]:{receiver.port}"
