"""serve: answer predictions over HTTP from a registered model."""

from __future__ import annotations

from pathlib import Path

import click

from mlcompile import paths
from mlcompile.cli.output import Output, handles_errors
from mlcompile.cli.params import folder_option, in_project, registry_option, trust_options


@click.command()
@click.argument("ref")
@registry_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; any other than 127.0.0.1 requires --token-env.",
)
@click.option(
    "--token-env",
    metavar="NAME",
    default=None,
    help="Environment variable holding the bearer token every request but /health must send.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@folder_option(
    "--log-dir",
    help=f"Prediction log folder (default {paths.PREDICTIONS}/<model>).",
)
@click.option(
    "--flush-rows",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Write the prediction log after this many rows...",
)
@click.option(
    "--flush-seconds",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="...or after this many seconds, whichever comes first.",
)
@click.option(
    "--max-body-mb",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Largest request body, in MiB; a larger one is answered 413 unread.",
)
@click.option(
    "--max-rows",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Most rows in one request; more are answered 413.",
)
@click.option(
    "--max-buffered-rows",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="Most rows held in memory while the log cannot be written; then /predict answers 503.",
)
@click.option(
    "--canary",
    metavar="ALIAS=PERCENT",
    default=None,
    help="Answer PERCENT of requests with the version at ALIAS (sticky by X-Routing-Key).",
)
@click.option(
    "--shadow",
    metavar="ALIAS",
    default=None,
    help="The version at ALIAS scores every request too; logged, never returned.",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Print a line per request (answered ones are in the prediction log either way).",
)
@trust_options
@handles_errors
@in_project
def serve(
    ref: str,
    registry: Path | str,
    host: str,
    token_env: str | None,
    port: int,
    log_dir: Path | None,
    flush_rows: int,
    flush_seconds: float,
    max_body_mb: int,
    max_rows: int,
    max_buffered_rows: int,
    canary: str | None,
    shadow: str | None,
    access_log: bool,
    output: Output,
) -> None:
    """Serve MODEL, MODEL@ALIAS or MODEL@VERSION over HTTP (a bare MODEL means
    MODEL@production). An alias follows promote and rollback without a restart.
    SIGINT or SIGTERM stops it after writing the prediction log."""
    # FastAPI, uvicorn and pandas load only here, so other commands start fast
    from mlcompile.serving import server
    from mlcompile.serving.app import MIB, Limits, create_app
    from mlcompile.serving.auth import token_from
    from mlcompile.serving.model import split_ref
    from mlcompile.serving.rollout import check_alias, parse_canary

    name, which = split_ref(ref)
    token = token_from(host, token_env)
    split = parse_canary(canary) if canary else None
    if shadow:
        check_alias(shadow, "--shadow")
    limits = Limits(max_body_mb * MIB, max_rows, max_buffered_rows)
    app = create_app(
        registry,
        name,
        which,
        log_dir,
        flush_rows=flush_rows,
        flush_seconds=flush_seconds,
        limits=limits,
        token=token,
        canary=split,
        shadow=shadow,
    )
    server.run(app, host, port, access_log=access_log)
