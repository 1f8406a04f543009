"""The docs' receiver-side verification example accepts a real delivery and refuses forgeries."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reelout.clock import ManualClock
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer
from tests.webhooks.conftest import emit, subscribe
from tests.webhooks.receiver import Receiver

PAGE = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
Verifier = Callable[[str, str, bytes], bool]


@pytest.fixture
def clock() -> ManualClock:
    """Real time: the example reads `time.time()`."""
    return ManualClock(datetime.now(UTC))


def documented_verifier() -> Verifier:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)
    [source] = [b for b in blocks if "def verify_reelout_signature" in b]
    namespace: dict[str, object] = {}
    exec(compile(source, str(PAGE), "exec"), namespace)
    verifier: Verifier = namespace["verify_reelout_signature"]  # type: ignore[assignment]
    return verifier


def test_the_documented_example_verifies_a_real_delivery(
    server: LiveServer, receiver: Receiver
) -> None:
    verify_reelout_signature = documented_verifier()
    with server.client() as api:
        endpoint = subscribe(api, receiver.url())
    emit(server.runtime)
    run_jobs(server.runtime)
    [got] = receiver.requests
    assert verify_reelout_signature(endpoint["secret"], got.signature, got.body)
    assert not verify_reelout_signature(endpoint["secret"], got.signature, got.body + b"x")
    assert not verify_reelout_signature("whsec_wrong", got.signature, got.body)
