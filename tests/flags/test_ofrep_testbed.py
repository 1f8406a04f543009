"""flagd-testbed conformance through the OFREP endpoint, seen the way an OFREP provider sees it.

Each testbed flag set is written through the admin API into an environment of its own; each
scenario becomes one `POST /ofrep/v1/evaluate/flags/{key}` with that environment's client key,
translated back as the testbed README's OFREP table says. Flags the admin API refuses when the
set is written (an unknown operator, a `$ref` to a missing evaluator: the README allows a
validating server to refuse them) are named, and their scenarios skipped with that reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from reelout.clock import ManualClock
from reelout.flags.engine.evaluator import ErrorCode, Reason, Resolution, fits
from tests.support.flagd_testbed import NOW, TESTBED, TYPES, Case, Run, cases, run_case
from tests.support.live import LiveServer, serving
from tests.support.settings import make_settings

SETS = ("evaluator", "provider", "selector")
FLAG_STEP = re.compile(r'a \w+-flag with key "(.*)" and a (?:default|fallback) value')
CASES = list(cases())


def document(name: str) -> dict[str, Any]:
    """A testbed flag set as one flagd document (as flagd-testbed's allFlags.json joins them)."""
    if name == "evaluator":
        paths = [TESTBED / "evaluator" / "flags" / "testkit-flags.json"]
    else:
        files = sorted((TESTBED / "flags").glob("*.json"))
        paths = [p for p in files if p.name.startswith("selector") == (name == "selector")]
    joined: dict[str, Any] = {"flags": {}, "$evaluators": {}, "metadata": {}}
    for path in paths:
        part = json.loads(path.read_text(encoding="utf-8"))
        for member in joined:
            joined[member].update(part.get(member, {}))
    return joined


def write(admin: httpx.Client, env: str, doc: dict[str, Any]) -> dict[str, str]:
    """PUT the set; drop the flags the API refuses (by their pointers) until it is accepted."""
    refused: dict[str, str] = {}
    while True:
        reply = admin.put(f"/api/v1/environments/{env}/flagset", json=doc)
        if reply.is_success:
            return refused
        assert reply.json()["code"] == "INVALID_FLAG_SET", reply.text
        for fault in reply.json()["details"]["errors"]:
            parts = fault["pointer"].split("/")
            assert parts[1] == "flags", fault
            refused[parts[2]] = fault["message"]
            doc["flags"].pop(parts[2], None)


class Ofrep:
    """The server plus one client key and the refused flags per testbed flag set."""

    def __init__(self, server: LiveServer) -> None:
        self.server, self.keys, self.refused = server, dict[str, str](), dict[str, dict[str, str]]()
        with server.client() as admin:
            for env in SETS:
                self.refused[env] = write(admin, env, document(env))
                body = {"scope": "client", "environment": env, "name": f"testbed-{env}"}
                self.keys[env] = admin.post("/api/v1/keys", json=body).json()["key"]

    def evaluate(self, run: Run) -> Resolution:
        reply = httpx.post(
            f"{self.server.url}/ofrep/v1/evaluate/flags/{run.key}",
            json={"context": run.context},
            headers={"Authorization": f"Bearer {self.keys[run.flag_set_name]}"},
        )
        return as_provider_sees(reply, run)


def as_provider_sees(reply: httpx.Response, run: Run) -> Resolution:
    body = reply.json()
    metadata = body.get("metadata", {})
    if reply.status_code == 404:
        return Resolution(run.default, None, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND, None, metadata)
    if reply.status_code == 400:
        code = ErrorCode(body["errorCode"])
        return Resolution(run.default, None, Reason.ERROR, code, body.get("errorDetails"), metadata)
    assert reply.status_code == 200, reply.text
    if "value" not in body:  # DISABLED, or no default variant: the caller's code default
        return Resolution(run.default, None, Reason(body["reason"]), None, None, metadata)
    if not fits(body["value"], TYPES[run.kind]):
        return Resolution(run.default, None, Reason.ERROR, ErrorCode.TYPE_MISMATCH, None, metadata)
    value = float(body["value"]) if TYPES[run.kind] is float else body["value"]
    return Resolution(value, body.get("variant"), Reason(body["reason"]), None, None, metadata)


@pytest.fixture(scope="module")
def ofrep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ofrep]:
    settings = make_settings(tmp_path_factory.mktemp("ofrep-testbed"), environments=list(SETS))
    with serving(settings, ManualClock(datetime.fromtimestamp(NOW, UTC))) as server:
        yield Ofrep(server)


def flag_of(case: Case) -> str | None:
    return next((m[1] for text, _ in case.steps if (m := FLAG_STEP.match(text))), None)


def set_of(case: Case) -> str:
    if any("selector" in text and "selector" in str(arg) for text, arg in case.steps):
        return "selector"
    return "evaluator" if case.suite == "evaluator" else "provider"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_scenario_over_ofrep(case: Case, ofrep: Ofrep) -> None:
    if case.skip_reason:
        pytest.skip(case.skip_reason)
    refused = ofrep.refused[set_of(case)].get(flag_of(case) or "")
    if refused is not None:
        pytest.skip(f"the admin API refuses this flag when the set is written: {refused}")
    run_case(case, ofrep.evaluate)


def test_refused_flags_break_the_schema_or_the_engine_and_the_rest_all_run(ofrep: Ofrep) -> None:
    """The testbed keeps flags flagd accepts at run time but its own JSON schema does not (nested
    operators where the schema wants objects, misspelt operators): writing them is refused."""
    refused = {flag: why for flags in ofrep.refused.values() for flag, why in flags.items()}
    assert all(why for why in refused.values())
    runnable = [c for c in CASES if not c.skip_reason]
    skipped = [c for c in runnable if ofrep.refused[set_of(c)].get(flag_of(c) or "")]
    assert len(runnable) - len(skipped) >= 280, "most scenarios run through OFREP"
