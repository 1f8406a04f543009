"""`reelout simulate`: a rollout rehearsal with synthetic users, printed as it goes (Rich)."""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.table import Table

from reelout.cli_common import console, err_console
from reelout.config import Settings
from reelout.rollouts.plan import Plan
from reelout.simulate import apps, playback
from reelout.simulate import server as own
from reelout.simulate.rehearsal import LogLine, Options, Outcome, Rehearsal
from reelout.simulate.scenarios import SCENARIOS, rehearsal_plan

ScenarioName = StrEnum("ScenarioName", {name: name for name in SCENARIOS})  # type: ignore[misc]
COLOURS = {"advance": "green", "complete": "green", "rollback": "red", "pause": "yellow",
           "hold": "yellow", "extend": "cyan"}  # fmt: skip


def plan_time(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"+{minutes // 60}h{minutes % 60:02d}m"


def show_plan(plan: Plan) -> None:
    """The plan the rehearsal rolls out: its stages in plan time and what it watches."""
    console.print(f"plan: {plan.flag} in {plan.environment}, {plan.treatment} against "
                  f"{plan.control.variation} (the seed's template, made small)")  # fmt: skip
    stages = Table("stage", "min duration", "warmup", "min units per arm")
    for stage in plan.model_dump(mode="json")["stages"]:
        floor = "monitor only" if stage["monitor_only"] else str(stage["min_units_per_arm"])
        stages.add_row(f"{stage['percent']} %", stage["min_duration"], stage["warmup"], floor)
    console.print(stages)
    watched = ", ".join(f"{g.metric} ({g.role}, ≥{g.min_events_per_arm} events)"
                        for g in plan.guardrails)  # fmt: skip
    console.print(f"guardrails: {watched}")


def show_line(line: LogLine) -> None:
    colour = COLOURS.get(line.decision, "white")
    console.print(
        f"{plan_time(line.plan_time):>8}  {line.percent:>3} %  "
        f"[{colour}]{line.decision:<8}[/{colour}]  {line.reason}",
        highlight=False,
    )


def show_progress(text: str) -> None:
    console.print(text, highlight=False)


def environment_key(admin: httpx.Client, environment: str, scope: str = "client") -> str:
    body = {"scope": scope, "environment": environment, "name": "reelout simulate"}
    reply = admin.post("/api/v1/keys", json=body)
    reply.raise_for_status()
    return str(reply.json()["key"])


def rehearse(url: str, token: str, plan: Plan, options: Options) -> Outcome:
    """The rehearsal with the apps' keys: a client key (OFREP, the ingest), and a server key
    when the scenario's apps evaluate the flag in process."""
    with (
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as admin,
    ):
        key = environment_key(admin, plan.environment)
        in_process = options.scenario.flags == "in_process"
        server_key = environment_key(admin, plan.environment, "server") if in_process else None
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as app:
            return Rehearsal(
                admin, app, plan, options, show_line, server_key, on_progress=show_progress
            ).run()


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{variant}: {count}" for variant, count in sorted(counts.items()))


def summary(outcome: Outcome, url: str, expected: str) -> None:
    rollout = outcome.rollout
    console.print(f"\nrollout {rollout['id']}: [bold]{rollout['state']}[/bold] at "
                  f"{rollout['percent']} % — {outcome.users} users "
                  f"({_counts(outcome.served)})")  # fmt: skip
    if outcome.reported:
        console.print(f"exposures the apps reported: {_counts(outcome.reported)}")
    console.print(f"telemetry events sent: {outcome.events_sent}")
    cut = sum(not upload.completed for upload in outcome.uploads)
    console.print(f"real tus uploads: {len(outcome.uploads)} ({cut} cut off halfway)")
    played = outcome.playback
    if outcome.clip is not None:
        console.print(f"real playback of test clip {outcome.clip.uid}: {played.views} views, "
                      f"{played.bytes} bytes fetched ({played.failed} failed), "
                      f"median {played.median_ms():.0f} ms of requests before the first frame",
                      highlight=False)  # fmt: skip
    shown = outcome.shown
    verdict = "as the scenario expects" if shown == expected else f"expected {expected}"
    console.print(f"shown: {shown} ({verdict})" + (" — timed out" if outcome.timed_out else ""))
    console.print(f"console: {url}/console/rollouts/{rollout['id']}")


def simulate(
    scenario: Annotated[
        ScenarioName,
        typer.Option(
            help="What the synthetic users do: healthy (completes), regression (rolls back), "
            "outage (the apps' telemetry stops: holds on telemetry lag), srm (the treatment "
            "loses exposure reports: holds on sample-ratio mismatch)."
        ),
    ] = ScenarioName["healthy"],
    url: Annotated[
        str | None,
        typer.Option(
            help="A running Reelout to rehearse on (admin token: REELOUT_ADMIN_TOKEN); "
            "default: start one on a new data folder."
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="The self-started server's data folder (kept); default a new temporary folder."
        ),
    ] = None,
    speed: Annotated[
        float, typer.Option(min=1, help="How much faster the self-started server's clock runs.")
    ] = 240.0,
    flag: Annotated[str, typer.Option(help="The flag to roll out.")] = "use_tus_upload",
    environment: Annotated[str, typer.Option(help="Its environment.")] = "production",
    users_per_second: Annotated[
        float, typer.Option(min=1, help="Synthetic users arriving per real second.")
    ] = 40.0,
    timeout: Annotated[float, typer.Option(min=1, help="Real seconds before giving up.")] = 180.0,
    seed: Annotated[int, typer.Option(help="The users' random seed.")] = 7,
    clip_timeout: Annotated[
        float,
        typer.Option(
            min=1,
            help="Real seconds the server has to process the test clip the views play, "
            "published before the rollout starts.",
        ),
    ] = playback.READY_TIMEOUT_SECONDS,
) -> None:
    """Rehearse a rollout of the seed's template with synthetic users on an accelerated clock.

    It first publishes a 2 s test clip (made with ffmpeg, uploaded over tus, processed by the
    server); every synthetic view then fetches its HLS playlists and first segment."""
    chosen = SCENARIOS[str(scenario.value)]
    plan = rehearsal_plan(flag, environment)
    console.print(f"[bold]scenario {chosen.name}[/bold]: {chosen.summary}")
    show_plan(plan)
    options = Options(chosen, users_per_second, timeout, seed, clip_timeout, Settings().ffmpeg)
    try:
        if chosen.flags == "in_process":
            apps.check_in_process()  # before a server or a rollout is started
        if url is not None:
            outcome = on_server(url.rstrip("/"), plan, options, chosen.expected)
        else:
            folder = data_dir or Path(tempfile.mkdtemp(prefix="reelout-simulate-"))
            outcome = on_own_server(folder, speed, plan, options, chosen.expected)
    except (httpx.HTTPError, own.ServerDidNotStart, apps.SdkMissing, playback.ClipNotReady) as exc:
        said = f" — {exc.response.text[:500]}" if isinstance(exc, httpx.HTTPStatusError) else ""
        err_console.print(f"error: the rehearsal stopped: {exc}{said}", highlight=False)
        raise typer.Exit(1) from None
    if outcome.shown != chosen.expected:
        raise typer.Exit(1)


def on_server(url: str, plan: Plan, options: Options, expected: str) -> Outcome:
    """A rehearsal on the user's own running server, which stays up and shows the rollout."""
    token = os.environ.get("REELOUT_ADMIN_TOKEN")
    if not token:
        err_console.print("error: --url needs an admin key in REELOUT_ADMIN_TOKEN")
        raise typer.Exit(1)
    outcome = rehearse(url, token, plan, options)
    summary(outcome, url, expected)
    return outcome


def on_own_server(
    folder: Path, speed: float, plan: Plan, options: Options, expected: str
) -> Outcome:
    """A rehearsal on a `reelout serve` of its own, on `folder`, which is kept afterwards."""
    console.print(f"starting reelout serve on {folder} (clock {speed:g} times real time) …")
    server = own.start(folder, speed)
    try:
        outcome = rehearse(server.url, server.admin_token, plan, options)
    finally:
        server.stop()
    summary(outcome, "http://127.0.0.1:8000", expected)
    console.print(
        f"the data folder is kept at {folder}; to see the rollout in the console, run\n"
        f"  REELOUT_DATA_DIR={folder} reelout serve\n"
        f"and sign in with the admin key in {folder / own.ADMIN_KEY_FILE}. The rehearsal's records "
        f"carry its fast clock's times, up to {plan_time(outcome.latest)[1:]} after it started.",
        highlight=False,
    )
    return outcome
