"""Runs flagd-testbed Gherkin pickles against the pure evaluator (test helper)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, cast

from gherkin.parser import Parser
from gherkin.pickles.compiler import Compiler, GherkinDocumentWithURI

from reelout.flags import FlagSet, Resolution, evaluate, parse_flag_set

TESTBED = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "flagd-testbed"
NOW = 1_800_000_000.0  # a fixed evaluation time (2027-01-15), before the 2100 vector
SKIP_TAGS = {
    "@fractional-v1": "v1 bucketing vector: this engine is v3 (README: run not v1 and not v2)",
    "@fractional-v2": "v2 bucketing vector: this engine is v3 (README: run not v1 and not v2)",
    "@deprecated": "superseded by @no-default-variant (README)",
    "@no-default": "superseded by @no-default-variant (README)",
}
TYPES: dict[str, type] = {
    "Boolean": bool,
    "String": str,
    "Integer": int,
    "Float": float,
    "Object": dict,
}


@dataclass(frozen=True)
class Case:
    """One expanded scenario (pickle) of a feature file."""

    suite: str
    feature: str
    name: str
    line: int
    tags: frozenset[str]
    steps: tuple[tuple[str, Any], ...]

    @property
    def skip_reason(self) -> str | None:
        """Why the tag selection leaves this case out, or None when it runs."""
        return next((why for tag, why in SKIP_TAGS.items() if tag in self.tags), None)

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.feature}:{self.line}:{self.name}"


def cases() -> Iterator[Case]:
    """Every pickle of the evaluator suite and the four provider features."""
    for suite, folder in (
        ("evaluator", TESTBED / "evaluator" / "gherkin"),
        ("provider", TESTBED / "gherkin"),
    ):
        for path in sorted(folder.glob("*.feature")):
            parsed = Parser().parse(path.read_text(encoding="utf-8"))
            document = cast("GherkinDocumentWithURI", {**parsed, "uri": str(path)})
            for pickle in Compiler().compile(document):
                steps = tuple((s["text"], s.get("argument")) for s in pickle["steps"])
                line = pickle["location"]["line"] if "location" in pickle else 0
                tags = frozenset(t["name"] for t in pickle["tags"])
                yield Case(suite, path.stem, pickle["name"], line, tags, steps)


def _load(paths: list[Path]) -> FlagSet:
    flags: dict[str, Any] = {}
    evaluators: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for path in paths:
        doc = json.loads(path.read_text(encoding="utf-8"))
        flags.update(doc.get("flags", {}))
        evaluators.update(doc.get("$evaluators", {}))
        metadata.update(doc.get("metadata", {}))
    return parse_flag_set({"flags": flags, "$evaluators": evaluators, "metadata": metadata})


@cache
def flag_set(name: str) -> FlagSet:
    """The testbed's flag sets: `evaluator`, `provider` (flags/*.json) and `selector`."""
    if name == "evaluator":
        return _load([TESTBED / "evaluator" / "flags" / "testkit-flags.json"])
    files = sorted((TESTBED / "flags").glob("*.json"))
    chosen = [p for p in files if p.name.startswith("selector") == (name == "selector")]
    return _load(chosen)


def typed(kind: str, text: str) -> Any:
    """A cell's value as the step's type says (Object cells escape quotes as \\")."""
    if kind == "Boolean":
        return text == "true"
    if kind == "Integer":
        return int(text)
    if kind == "Float":
        return float(text)
    if kind == "Object":
        return json.loads(text.replace('\\"', '"'))
    return text


@dataclass
class Run:
    """The state one case builds up step by step."""

    flag_set_name: str
    kind: str = "String"
    key: str = ""
    default: Any = None
    context: dict[str, Any] = field(default_factory=dict)
    result: Resolution | None = None
    backend: Backend | None = None  # None: the pure evaluator in this process

    @property
    def resolution(self) -> Resolution:
        assert self.result is not None, "no evaluation step ran"
        return self.result


Step = Callable[[Run, re.Match[str], Any], None]
Backend = Callable[[Run], Resolution]
STEPS: list[tuple[re.Pattern[str], Step]] = []


def step(pattern: str) -> Callable[[Step], Step]:
    def register(function: Step) -> Step:
        STEPS.append((re.compile(pattern + "$"), function))
        return function

    return register


@step(r"an evaluator|a (stable|metadata) flagd provider")
def _setup(run: Run, match: re.Match[str], argument: Any) -> None:
    """Harness set-up: nothing to do for a pure evaluator."""


@step(r'an option "(.*)" of type "(.*)" with value "(.*)"')
def _option(run: Run, match: re.Match[str], argument: Any) -> None:
    if match[1] == "selector" and "selector" in match[3]:
        run.flag_set_name = "selector"


@step(r'a (\w+)-flag with key "(.*)" and a (?:default|fallback) value "(.*)"')
def _flag(run: Run, match: re.Match[str], argument: Any) -> None:
    run.kind, run.key, run.default = match[1], match[2], typed(match[1], match[3])


@step(r'a context containing a targeting key with value "(.*)"')
def _targeting_key(run: Run, match: re.Match[str], argument: Any) -> None:
    run.context["targetingKey"] = match[1]


@step(r'a context containing a key "(.*)", with type "(\w+)" and with value "(.*)"')
def _context_key(run: Run, match: re.Match[str], argument: Any) -> None:
    run.context[match[1]] = typed(match[2], match[3])


@step(
    r'a context containing a nested property with outer key "(.*)" and inner key "(.*)", '
    r'with value "(.*)"'
)
def _nested(run: Run, match: re.Match[str], argument: Any) -> None:
    run.context.setdefault(match[1], {})[match[2]] = match[3]


@step(r"the flag was evaluated with details")
def _evaluate(run: Run, match: re.Match[str], argument: Any) -> None:
    if run.backend is not None:
        run.result = run.backend(run)
        return
    run.result = evaluate(
        flag_set(run.flag_set_name),
        run.key,
        run.context,
        default=run.default,
        expected_type=TYPES[run.kind],
        now=NOW,
    )


@step(r'the resolved details value should be "(.*)"')
def _value(run: Run, match: re.Match[str], argument: Any) -> None:
    assert run.resolution.value == typed(run.kind, match[1]), run.resolution


@step(r'the reason should be "(.*)"')
def _reason(run: Run, match: re.Match[str], argument: Any) -> None:
    assert run.resolution.reason == match[1], run.resolution


@step(r'the error-code should be "(.*)"')
def _error_code(run: Run, match: re.Match[str], argument: Any) -> None:
    assert run.resolution.error_code == (match[1] or None), run.resolution


@step(r'the variant should be "(.*)"')
def _variant(run: Run, match: re.Match[str], argument: Any) -> None:
    assert run.resolution.variant == match[1], run.resolution


@step(r"the resolved metadata should contain")
def _metadata(run: Run, match: re.Match[str], argument: Any) -> None:
    rows = [[c["value"] for c in row["cells"]] for row in argument["dataTable"]["rows"]]
    header, body = rows[0], rows[1:]
    for row in body:
        cell = dict(zip(header, row, strict=True))
        expected = typed(cell["metadata_type"], cell["value"])
        assert run.resolution.flag_metadata.get(cell["key"]) == expected, run.resolution


@step(r"the resolved metadata is empty")
def _no_metadata(run: Run, match: re.Match[str], argument: Any) -> None:
    assert dict(run.resolution.flag_metadata) == {}, run.resolution


def run_case(case: Case, backend: Backend | None = None) -> None:
    """Play every step of a case; an unknown step fails the case. `backend` evaluates instead
    of the in-process evaluator (e.g. over OFREP)."""
    run = Run(flag_set_name="evaluator" if case.suite == "evaluator" else "provider")
    run.backend = backend
    for text, argument in case.steps:
        for pattern, function in STEPS:
            match = pattern.match(text)
            if match:
                function(run, match, argument)
                break
        else:
            raise AssertionError(f"no step matches {text!r}")
