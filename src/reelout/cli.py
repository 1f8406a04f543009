"""The `reelout` command line (Typer): thin wrappers over the same services the HTTP API uses."""

from __future__ import annotations

import json
import logging
import os
from typing import Annotated

import typer
from rich.table import Table

from reelout import logs
from reelout.alerts.defaults import seed_on_start as seed_alerts
from reelout.auth import service as auth_service
from reelout.auth.schemas import Scope
from reelout.cli_alerts import alerts_app
from reelout.cli_audit import audit
from reelout.cli_common import cli_principal, console
from reelout.cli_common import fail as _fail
from reelout.cli_common import runtime as _runtime
from reelout.cli_kpi import kpi
from reelout.cli_rollouts import rollouts_app
from reelout.cli_simulate import simulate
from reelout.cli_videos import videos_app
from reelout.cli_webhooks import webhooks_app
from reelout.config import Settings
from reelout.errors import ReeloutError
from reelout.flags.admin.service import seed_on_start
from reelout.flags.cli import schedules as cli_schedules
from reelout.flags.cli.commands import flags_app
from reelout.runtime import Runtime

WORKER_START_SECONDS = 60  # how long `serve --workers N` waits for a worker to come up

app = typer.Typer(
    help="Reelout: self-hosted video platform with progressive delivery built in.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
cli_schedules.register(flags_app)
app.add_typer(flags_app, name="flags")
app.add_typer(videos_app, name="videos")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(alerts_app, name="alerts")
app.add_typer(rollouts_app, name="rollouts")
app.command("audit")(audit)
app.command("kpi")(kpi)
app.command("simulate")(simulate)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (REELOUT_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (REELOUT_PORT).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="API processes (REELOUT_WORKERS).")
    ] = None,
) -> None:
    """Serve the API, console and an embedded job worker."""
    import uvicorn

    from reelout.app import create_app
    from reelout.startup import prepare
    from reelout.telemetry import multiprocess

    if workers is not None:  # worker processes read their settings from the environment
        os.environ["REELOUT_WORKERS"] = str(workers)
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    bind_host, bind_port = host or settings.host, port or settings.port
    try:  # a weak chosen secret, say, is refused here with its message, not a traceback
        if settings.workers > 1:  # migrate (and seed) once, before the processes start
            prepare(Runtime.from_settings(settings), seed_on_start, seed_alerts)
        target = create_app(settings) if settings.workers == 1 else "reelout.app:create_worker_app"
    except ReeloutError as exc:
        raise _fail(exc) from None
    # every worker's metrics in files one scrape adds up; set before the workers start
    shared = multiprocess.share_across_workers(settings.data_dir) if settings.workers > 1 else None
    logging.getLogger("reelout").info(
        "serving on http://%s:%d (data: %s, database: %s, %d process%s)",
        bind_host,
        bind_port,
        settings.data_dir.resolve(),
        settings.resolved_database_url.split(":", 1)[0],
        settings.workers,
        "" if settings.workers == 1 else "es",
    )
    uvicorn.run(
        target,
        factory=settings.workers > 1,
        workers=settings.workers,
        host=bind_host,
        port=bind_port,
        log_config=None,
        access_log=settings.access_log,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
        # a worker process imports the whole app before it answers its supervisor: on a busy
        # 2-core host that took over 10 s, and uvicorn's 5 s default killed it in a loop
        timeout_worker_healthcheck=WORKER_START_SECONDS,
    )
    if shared:
        multiprocess.stop_sharing(shared)


@app.command()
def migrate() -> None:
    """Apply database migrations (also done on every start)."""
    rt = _runtime(seed_on_start, seed_alerts)
    console.print(f"[green]database is up to date[/green] ({rt.db.engine.url.get_backend_name()})")


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Jobs run at once.")] = None,
) -> None:
    """Run a standalone job worker (several may run against one PostgreSQL database)."""
    from reelout.jobs.worker import run_worker
    from reelout.media.jobs import tools as media_tools
    from reelout.rollouts.alerting import with_rollbacks
    from reelout.tasks import build_registry

    rt = _runtime(seed_on_start, seed_alerts)
    rt.alert_signals = with_rollbacks(rt, rt.alert_signals)  # the rollback alert's signal
    logs.configure(rt.settings.log_level, rt.settings.log_format)
    media_tools(rt.settings.ffmpeg, rt.settings.ffprobe)  # finds and logs the encoder once
    run_worker(rt, build_registry(), concurrency or rt.settings.worker_concurrency)


@keys_app.command("create")
def keys_create(
    scope: Annotated[
        Scope,
        typer.Option(
            help="admin; client (evaluates one environment's flags); server (also reads its flag set)."
        ),
    ],
    env: Annotated[str | None, typer.Option("--env", help="Environment of a client key.")] = None,
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")] = "",
) -> None:
    """Create an API key; the secret is printed once."""
    rt = _runtime(seed_on_start)
    try:
        with rt.db.session() as session:
            created = auth_service.create_key(
                session,
                rt.clock,
                cli_principal(),
                scope=scope,
                name=name,
                environment=env,
                environments=rt.settings.environments,
            )
    except ReeloutError as exc:
        raise _fail(exc) from None
    console.print(f"Created {created.scope} key [bold]{created.name}[/bold] (id {created.id}).")
    console.print("The secret is shown once; store it now:")
    typer.echo(created.key)


@keys_app.command("list")
def keys_list(
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List API keys (never their secrets)."""
    rt = _runtime(seed_on_start)
    with rt.db.session() as session:
        keys = auth_service.list_keys(session, include_revoked=all_keys)
    if as_json:
        typer.echo(json.dumps([key.model_dump(mode="json") for key in keys], indent=2))
        return
    table = Table("name", "scope", "environment", "prefix", "created", "revoked")
    table.add_column("id", no_wrap=True, min_width=16)
    for key in keys:
        table.add_row(
            key.name,
            key.scope,
            key.environment or "-",
            key.prefix + "…",
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "-",
            key.id,
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="Id from `reelout keys list`.")],
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", help="Why; kept in the audit trail.")
    ] = None,
) -> None:
    """Revoke an API key; requests with it fail from now on."""
    rt = _runtime(seed_on_start)
    try:
        with rt.db.session() as session:
            info = auth_service.revoke_key(session, rt.clock, cli_principal(), key_id, reason)
    except ReeloutError as exc:
        raise _fail(exc) from None
    console.print(f"Revoked key {info.id} ({info.name}).")


def _register_upload_command() -> None:
    from reelout.client.cli_upload import upload

    app.command(name="upload")(upload)


_register_upload_command()
