"""Direct tests of the pure semver module: lenient parsing, 2.0.0 precedence, flagd's `sem_ver`."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout.flags.engine.semver import Version, _order_key, compare, parse_version, sem_ver


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1.2.3", Version((1, 2, 3), ())),
        ("v1.2.3", Version((1, 2, 3), ())),
        ("V1.2.3", Version((1, 2, 3), ())),
        ("  1.2.3  ", Version((1, 2, 3), ())),
        ("1", Version((1, 0, 0), ())),
        ("1.2", Version((1, 2, 0), ())),
        (1, Version((1, 0, 0), ())),
        (1.5, Version((1, 5, 0), ())),
        ("1.2.3+build.7", Version((1, 2, 3), ())),
        ("1.2.3-rc.1+build", Version((1, 2, 3), ("rc", 1))),
        ("1.0.0-alpha.beta.10", Version((1, 0, 0), ("alpha", "beta", 10))),
        ("1.0.0-0", Version((1, 0, 0), (0,))),
        ("1.0.0-", Version((1, 0, 0), ())),  # an empty pre-release is none at all
    ],
)
def test_parse_version_reads_the_lenient_forms(raw: Any, expected: Version) -> None:
    assert parse_version(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        True,
        False,
        [1, 2, 3],
        {"major": 1},
        "",
        "v",
        "one.two",
        "1.2.3.4",
        "1..3",
        "1.2.x",
        "-1.2.3",
        "1.2.3-a..b",
        "1.2.3-rc.",
        "latest",
    ],
)
def test_parse_version_refuses_what_is_no_version(raw: Any) -> None:
    assert parse_version(raw) is None


SPEC_ORDER = [  # semver 2.0.0, section 11: each sorts before the next
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.1.0",
    "2.0.0",
    "10.0.0",
]


@pytest.mark.parametrize("i", range(len(SPEC_ORDER) - 1))
def test_compare_follows_the_precedence_of_the_specification(i: int) -> None:
    lower, higher = (parse_version(SPEC_ORDER[i]), parse_version(SPEC_ORDER[i + 1]))
    assert lower is not None and higher is not None
    assert compare(lower, higher) == -1
    assert compare(higher, lower) == 1


@pytest.mark.parametrize(
    ("left", "right"),
    [("1.2.3", "v1.2.3"), ("1.2.3+a", "1.2.3+b"), ("1", "1.0.0"), ("1.0.0-01", "1.0.0-1")],
)
def test_versions_differing_only_in_spelling_or_build_compare_equal(left: str, right: str) -> None:
    a, b = parse_version(left), parse_version(right)
    assert a is not None and b is not None
    assert compare(a, b) == 0


@pytest.mark.parametrize(
    ("version", "operator", "target", "expected"),
    [
        ("1.2.3", "=", "1.2.3", True),
        ("1.2.3", "=", "1.2.4", False),
        ("1.2.3", "!=", "1.2.4", True),
        ("1.2.3", "!=", "v1.2.3", False),
        ("1.2.3", "<", "1.10.0", True),  # numerically, not as text
        ("1.2.3", "<", "1.2.3", False),
        ("1.2.3", "<=", "1.2.3", True),
        ("2.0.0", ">", "1.99.99", True),
        ("1.0.0-rc.1", ">", "1.0.0", False),
        ("1.0.0", ">=", "1.0.0-rc.1", True),
        ("1.9.0", "^", "1.0.0", True),  # same major
        ("2.0.0", "^", "1.9.9", False),
        ("1.2.9", "~", "1.2.0", True),  # same major and minor
        ("1.3.0", "~", "1.2.0", False),
        ("v1.2", "=", 1.2, True),
    ],
)
def test_sem_ver_operators(version: Any, operator: str, target: Any, expected: bool) -> None:
    assert sem_ver([version, operator, target]) is expected


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["1.0.0", "="],
        ["1.0.0", "=", "1.0.0", "extra"],
        ["1.0.0", 1, "1.0.0"],  # the operator must be text
        ["1.0.0", "=~", "1.0.0"],  # an operator flagd does not know
        ["1.0.0", "==", "1.0.0"],
        ["not-a-version", "=", "1.0.0"],
        ["1.0.0", ">", None],
        [True, "=", "1.0.0"],
    ],
)
def test_sem_ver_gives_none_on_bad_input(args: list[Any]) -> None:
    assert sem_ver(args) is None


identifiers = st.one_of(
    st.integers(min_value=0, max_value=50),
    st.text(alphabet="abcxyz-", min_size=1, max_size=4).filter(lambda t: not t.isdigit()),
)
versions = st.builds(
    Version,
    st.tuples(*[st.integers(min_value=0, max_value=20)] * 3),
    st.lists(identifiers, max_size=3).map(tuple),
)


def spelled(version: Version) -> str:
    text = ".".join(str(n) for n in version.core)
    if version.prerelease:
        text += "-" + ".".join(str(i) for i in version.prerelease)
    return text


@given(versions)
def test_a_spelled_version_parses_back_to_itself(version: Version) -> None:
    assert parse_version(spelled(version)) == version
    assert parse_version("v" + spelled(version) + "+meta.1") == version


@given(versions, versions)
def test_compare_is_antisymmetric_and_agrees_with_equality(a: Version, b: Version) -> None:
    assert compare(a, b) == -compare(b, a)
    assert (compare(a, b) == 0) == (a == b)


@given(versions, versions, versions)
def test_compare_is_transitive(a: Version, b: Version, c: Version) -> None:
    if compare(a, b) <= 0 and compare(b, c) <= 0:
        assert compare(a, c) <= 0


@given(st.lists(versions, max_size=12))
def test_sorting_by_compare_is_sorting_by_the_parsed_order_key(items: list[Version]) -> None:
    by_compare = sorted(items, key=functools.cmp_to_key(compare))
    assert [_order_key(v) for v in by_compare] == sorted(_order_key(v) for v in items)


@given(versions, st.lists(identifiers, min_size=1, max_size=3).map(tuple))
def test_a_pre_release_sorts_before_its_release(release: Version, pre: tuple[Any, ...]) -> None:
    plain = Version(release.core, ())
    assert compare(Version(release.core, pre), plain) == -1


@given(versions, versions)
def test_sem_ver_agrees_with_compare(a: Version, b: Version) -> None:
    order = compare(a, b)
    assert sem_ver([spelled(a), "<", spelled(b)]) is (order < 0)
    assert sem_ver([spelled(a), ">=", spelled(b)]) is (order >= 0)
    assert sem_ver([spelled(a), "^", spelled(b)]) is (a.core[0] == b.core[0])
