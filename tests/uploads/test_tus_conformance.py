"""Runs every applicable tus-compliance `.hurl` case (shared suite) against Reelout's tus server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ADMIN_TOKEN, LiveServer, make_settings, serve_in_thread
from tests.uploads.hurl_runner import (
    SUITE_DIR,
    Target,
    advertised_extensions,
    collect,
    display_name,
    run_path,
    skip_reason,
)

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


@pytest.fixture(scope="module")
def suite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the whole suite: every case creates uploads of its own."""
    server = serve_in_thread(make_settings(tmp_path_factory.mktemp("tus-suite")))
    yield server
    server.stop()


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
