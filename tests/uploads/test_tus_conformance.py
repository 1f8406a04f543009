"""Runs every applicable tus-compliance `.hurl` case (shared suite) against Reelout's tus server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.hurl_runner import (
    SUITE_DIR,
    Target,
    advertised_extensions,
    collect,
    display_name,
    run_path,
    skip_reason,
)
from tests.support.live import LiveServer, live_server_fixture
from tests.support.settings import ADMIN_TOKEN

SUITE_TESTS = SUITE_DIR / "tests"
CASES = collect([SUITE_TESTS]) if SUITE_TESTS.is_dir() else []


def target_for(server: LiveServer) -> Target:
    """`{{base_url}}` is the collection URL without a trailing slash (`{{base_url}}/x` is used)."""
    base_url = server.files_url.rstrip("/")
    return Target(base_url, headers=(("Authorization", f"Bearer {ADMIN_TOKEN}"),))


def test_the_shared_suite_is_present() -> None:
    assert SUITE_TESTS.is_dir(), (
        f"the tus compliance suite is missing: expected {SUITE_TESTS} "
        "(the shared folder lives next to the repository, as ../shared)"
    )


# one server for the whole suite (one on the data folder, one on object storage): every case
# creates uploads of its own
suite_server = live_server_fixture(
    name="suite_server", scope="module", folder="tus-suite", per_store=True
)


@pytest.fixture(scope="module")
def extensions(suite_server: LiveServer) -> frozenset[str]:
    return advertised_extensions(target_for(suite_server))


@pytest.mark.parametrize("path", CASES, ids=[display_name(path) for path in CASES])
def test_tus_compliance_case(
    path: Path, suite_server: LiveServer, extensions: frozenset[str]
) -> None:
    target = target_for(suite_server)
    if reason := skip_reason(path, extensions):
        pytest.skip(reason)
    result = run_path(path, target)
    assert result.outcome == "passed", "\n".join(result.details)
