"""flagd-testbed conformance: every applicable v3 scenario against the pure evaluator."""

from __future__ import annotations

import pytest

from tests.support.flagd_testbed import Case, cases, run_case

CASES = list(cases())


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_scenario(case: Case) -> None:
    if case.skip_reason:
        pytest.skip(case.skip_reason)
    run_case(case)


def test_the_testbed_is_present_with_the_readme_counts() -> None:
    suites = [c.suite for c in CASES]
    assert (suites.count("evaluator"), suites.count("provider")) == (140, 286), (
        "the flagd-testbed data sits next to the repository as ../shared/conformance"
    )
