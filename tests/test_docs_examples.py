"""The docs' runnable examples ("Flags in 5 minutes", the README's tour, the Python telemetry
client, the telemetry ingest): their commands, run against a live server on a fresh data
folder, give exactly the answers the page shows."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.live import LiveServer
from tests.support.settings import ADMIN_TOKEN

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Example:
    """A run of commands between two markers of a page, with the least it must contain."""

    page: Path
    marker: str
    python_steps: int
    min_answers: int

    @property
    def begin(self) -> str:
        return f"<!-- {self.marker}:begin -->"

    @property
    def end(self) -> str:
        return f"<!-- {self.marker}:end -->"


EXAMPLES = [
    Example(ROOT / "docs" / "flags" / "tutorial.md", "flags-in-5-minutes", 1, 8),
    Example(ROOT / "README.md", "five-minute-tour", 0, 4),
    Example(ROOT / "docs" / "telemetry" / "python-client.md", "python-telemetry", 1, 1),
    Example(ROOT / "docs" / "telemetry" / "ingest.md", "telemetry-ingest", 0, 4),
]
DOCUMENTED_URL = "http://127.0.0.1:8000"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
STEP_DONE = "@@ docs step done @@"
MORE = "…"  # a list ending in "…" or a "…": "…" member: the real answer has more


@dataclass
class Step:
    """One command block of the section, and the answer block after it (if any)."""

    language: str
    code: str
    answer_language: str | None = None
    answer: str | None = None


def steps(example: Example) -> list[Step]:
    text = example.page.read_text(encoding="utf-8")
    where = example.page.relative_to(ROOT)
    assert example.begin in text and example.end in text, (
        f"{where} lost its {example.marker} markers"
    )
    found: list[Step] = []
    for language, code in BLOCK.findall(text.split(example.begin, 1)[1].split(example.end, 1)[0]):
        if language in ("sh", "python"):
            found.append(Step(language, code))
        else:
            assert language in ("json", "text"), f"unexpected ```{language} block"
            assert found and found[-1].answer is None, "an answer block must follow a command"
            found[-1].answer_language, found[-1].answer = language, code
    return found


def script(all_steps: list[Step], base_url: str) -> str:
    """One bash script (variables carry from step to step), marking the end of each step."""
    parts = ["set -euo pipefail"]
    for step in all_steps:
        code = step.code.replace(DOCUMENTED_URL, base_url)
        if step.language == "python":
            code = f"\"$PYTHON\" - <<'PYTHON_STEP'\n{code}PYTHON_STEP\n"
        parts += [code, f"echo '{STEP_DONE}'"]
    return "\n".join(parts)


def matches(documented: Any, actual: Any) -> bool:
    """Equal JSON, except where the page marks "…" for "and more"."""
    if isinstance(documented, dict):
        keys = set(documented) - {MORE}
        more = documented.get(MORE) == MORE
        if not isinstance(actual, dict) or not keys <= set(actual):
            return False
        return (more or set(actual) == keys) and all(
            matches(documented[k], actual[k]) for k in keys
        )
    if isinstance(documented, list):
        more = bool(documented) and documented[-1] == MORE
        head = documented[:-1] if more else documented
        if not isinstance(actual, list) or len(actual) < len(head):
            return False
        return (more or len(actual) == len(head)) and all(map(matches, head, actual))
    return type(documented) is type(actual) and documented == actual


def check_answer(step: Step, output: str) -> None:
    assert step.answer is not None
    shown, got = step.answer.strip(), output.strip()
    if step.answer_language == "text" or "\n" not in shown:  # compact JSON: exactly as sent
        assert got == shown, (
            f"the page shows\n{shown}\nafter\n{step.code}\nbut the server said\n{got}"
        )
        return
    assert matches(json.loads(shown), json.loads(got)), (
        f"the page shows\n{shown}\nafter\n{step.code}\nbut the server said\n{got}"
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.marker)
def test_the_section_is_commands_each_followed_by_its_answer(example: Example) -> None:
    found = steps(example)
    assert [s.language for s in found].count("python") == example.python_steps
    assert sum(s.answer is not None for s in found) >= example.min_answers
    assert all(DOCUMENTED_URL in s.code for s in found)


def test_the_answer_check_tells_a_wrong_answer_from_an_abridged_one() -> None:
    shown = {"flags": [{"key": "a", "value": True}, MORE], "metadata": {}, MORE: MORE}
    assert matches(shown, {"flags": [{"key": "a", "value": True}, {"key": "b"}], "metadata": {},
                           "eventStreams": []})  # fmt: skip
    assert not matches(shown, {"flags": [{"key": "a", "value": 1}], "metadata": {}})
    assert not matches(shown, {"flags": [{"key": "a", "value": True, "x": 1}], "metadata": {}})
    assert not matches({"flags": []}, {"flags": [], "metadata": {}})
    assert not matches([1, MORE], [])


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.marker)
def test_the_example_gives_the_answers_shown(example: Example, live_server: LiveServer) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (apt-get install -y curl)")
    all_steps = steps(example)
    env = {**os.environ, "ADMIN_KEY": ADMIN_TOKEN, "PYTHON": sys.executable}
    env.pop("CLIENT_KEY", None)
    done = subprocess.run(
        ["bash", "-c", script(all_steps, live_server.url)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    outputs = done.stdout.split(STEP_DONE + "\n")
    assert len(outputs) == len(all_steps) + 1 and outputs[-1] == ""
    for step, output in zip(all_steps, outputs, strict=False):
        if step.answer is not None:
            check_answer(step, output)
