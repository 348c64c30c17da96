"""run: build a spec and execute its pipeline, locally or on a backend's local runner."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlcompile.cli.compiling import compile_and_render
from mlcompile.cli.output import Output, handles_errors
from mlcompile.cli.params import format_option, runner_options
from mlcompile.cli.summary import summary_text
from mlcompile.cli.track import track_run, tracking_config
from mlcompile.compiler import emitted_files, publish_bundle, write
from mlcompile.errors import UsageError

if TYPE_CHECKING:
    from mlcompile.backends import RunOptions, RunResult
    from mlcompile.compiler import Compiled, Rendered
    from mlcompile.plan import Plan


@click.command()
@runner_options
@click.option("--force", is_flag=True, help="Re-run every step, then refresh the cache.")
@click.option(
    "--no-cache",
    is_flag=True,
    help="Neither read nor write the cache: every step runs, its artifacts stay with the run.",
)
@click.option(
    "--keep-going", "-k", is_flag=True, help="After a failure, run what does not depend on it."
)
@click.option(
    "--no-deploy",
    is_flag=True,
    help="An experiment: train, evaluate, gate and record the run; deploy nothing "
    "(the same as settings.deploy=false).",
)
@format_option
@handles_errors
def run(
    spec: Path,
    overrides: tuple[str, ...],
    backend: str,
    out: Path | None,
    jobs: int,
    force: bool,
    no_cache: bool,
    keep_going: bool,
    no_deploy: bool,
    quiet: bool,
    fmt: str,
    output: Output,
) -> None:
    """Build a spec and run it: locally, or on a backend's local runner (kfp.local, ZenML)."""
    from mlcompile.backends import RunOptions

    if no_deploy:
        overrides = (*overrides, "settings.deploy=false")
    compiled, rendered, out_dir = compile_and_render(spec, overrides, backend, out, output)
    tracking = tracking_config(compiled)
    write(out_dir, emitted_files(compiled, rendered))
    publish_bundle(rendered)
    options = RunOptions(
        project_root=compiled.project_root,
        jobs=jobs,
        force=force,
        use_cache=not no_cache,
        keep_going=keep_going,
    )
    result = run_plan(
        compiled, rendered, compiled.plan, out_dir / backend, options, quiet or fmt == "json"
    )
    payload = result_payload(result)
    payload["deploy"] = compiled.plan.settings.get("deploy", True)
    if tracking is not None:
        payload["mlflow"] = track_run(tracking, compiled, rendered, result)
    output.result(payload, summary_text(payload))
    if result.exit_code:
        raise SystemExit(result.exit_code)


def run_plan(
    compiled: Compiled,
    rendered: Rendered,
    plan: Plan,
    built_dir: Path,
    options: RunOptions,
    quiet: bool,
) -> RunResult:
    """Run one built plan on the rendered backend's runner, with progress. Its steps send
    their own lineage events, wherever they run."""
    from mlcompile.backends import Runner
    from mlcompile.cli.progress import make_progress

    runner = rendered.backend
    if not isinstance(runner, Runner):
        raise UsageError(f"backend '{runner.name}' can build but not run pipelines")
    progress = make_progress(len(plan.nodes), quiet)
    try:
        result = runner.run(
            built_dir,
            plan,
            rendered.settings,
            dataclasses.replace(options, on_event=progress, bundle=rendered.bundle),
        )
    finally:
        if progress is not None:
            progress.close()
    return result


def result_payload(result: RunResult) -> dict[str, Any]:
    return {
        "status": result.status,
        "exit_code": result.exit_code,
        "run_id": result.run_id,
        "error": result.error,
        "metrics": result.metrics,
        "decisions": result.decisions,
        "steps": result.steps,
    }
