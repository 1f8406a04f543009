"""`reelout alerts` on a real database: the same rules, silences, receivers and deliveries the
API shows, refusals with their codes, changes recorded as the OS user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reelout.clock import ManualClock
from tests.support.cli import CLI_USER, Cli, cli_for, ok
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer
from tests.webhooks.receiver import Receiver


@pytest.fixture
def cli(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return cli_for(server, monkeypatch)


def test_rules_list_show_apply_and_delete(cli: Cli, server: LiveServer, tmp_path: Path) -> None:
    listed = ok(cli("alerts", "rules", "list")).output
    assert "upload-failure-sustained" in listed and "error-rate-critical" in listed
    shown = ok(cli("alerts", "rules", "show", "upload-success-daily")).output
    assert '"schedule": "0 9 * * *"' in shown
    bad = tmp_path / "rules.yaml"
    bad.write_text("alert_rules:\n  - id: x\n    signal: {metric: no_such_metric, window: 5m}\n"
                   "    condition: {op: '>', threshold: 0.1}\n")  # fmt: skip
    refused = cli("alerts", "rules", "apply", "-f", str(bad))
    assert refused.exit_code == 1 and "UNKNOWN_METRIC" in refused.output
    broken = cli("alerts", "rules", "apply", "-f", "-", input="alert_rules: [{id: x, signal: {}}]")
    assert broken.exit_code == 1 and "INVALID_RULE" in broken.output
    ok(cli("alerts", "rules", "delete", "error-rate-critical"))
    with server.client() as api:
        assert api.get("/api/v1/alerts/rules/error-rate-critical").status_code == 404
        [change] = api.get("/api/v1/audit/all", params={"action": "alerts.rule_deleted"}).json()[
            "entries"
        ]
    assert change["actor"] == CLI_USER
    missing = cli("alerts", "rules", "delete", "error-rate-critical")
    assert missing.exit_code == 1 and "RULE_NOT_FOUND" in missing.output


def test_silences_from_the_command_line(cli: Cli, server: LiveServer) -> None:
    added = ok(cli("alerts", "silence", "add", "-m", "flag=new-uploader", "-m", "variant!=off",
                   "--duration", "2h", "-c", "fix deploying", "--by", "ana", "--json")).output  # fmt: skip
    with server.client() as api:
        [silence] = api.get("/api/v1/alerts/silences").json()
    assert silence["id"] in added and silence["created_by"] == "ana"
    assert silence["matchers"][1] == {"name": "variant", "value": "off", "op": "!="}
    assert "fix deploying" in ok(cli("alerts", "silence", "list")).output
    ok(cli("alerts", "silence", "expire", silence["id"]))
    assert "ana" not in ok(cli("alerts", "silence", "list")).output
    assert "ana" in ok(cli("alerts", "silence", "list", "--all")).output
    bad = cli("alerts", "silence", "add", "-m", "flag", "--duration", "1h", "-c", "x")
    assert bad.exit_code == 2


def test_receivers_and_deliveries_from_the_command_line(
    cli: Cli, server: LiveServer, receiver: Receiver, clock: ManualClock
) -> None:
    made = ok(cli("alerts", "receivers", "add", "on-call", "--url", receiver.url(),
                  "-m", "severity=page"))  # fmt: skip
    assert "whsec_" in made.output
    assert "severity=page" in ok(cli("alerts", "receivers", "list")).output
    ok(cli("alerts", "receivers", "test", "on-call"))
    clock.set(datetime.now(UTC) + timedelta(minutes=1))  # the command queued it on real time
    run_jobs(server.runtime)
    assert len(receiver.requests) == 1
    assert "delivered" in ok(cli("alerts", "deliveries")).output
    ok(cli("alerts", "receivers", "delete", "on-call"))
    gone = cli("alerts", "receivers", "test", "on-call")
    assert gone.exit_code == 1 and "RECEIVER_NOT_FOUND" in gone.output
    assert "no alerts" in ok(cli("alerts", "list")).output
    ok(cli("alerts", "history"))
