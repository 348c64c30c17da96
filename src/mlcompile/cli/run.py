"""run: build a spec and execute its pipeline, locally or on a backend's local runner."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlcompile import paths
from mlcompile.cli.compiling import compile_and_render
from mlcompile.cli.output import Output, handles_errors
from mlcompile.cli.params import format_option, runner_options
from mlcompile.cli.summary import summary_text
from mlcompile.cli.track import track_run, tracking_config
from mlcompile.compiler import emitted_files, write
from mlcompile.errors import UsageError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from mlcompile.backends import RecordsLineage, RunOptions, RunResult
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
    """Run one built plan on the rendered backend's runner, with progress, and record the
    lineage of a local run that executed anything."""
    from mlcompile.backends import RecordsLineage, Runner
    from mlcompile.cli.progress import make_progress

    runner = rendered.backend
    if not isinstance(runner, Runner):
        raise UsageError(f"backend '{runner.name}' can build but not run pipelines")
    progress = make_progress(len(plan.nodes), quiet)
    try:
        result = runner.run(
            built_dir, plan, rendered.settings, dataclasses.replace(options, on_event=progress)
        )
    finally:
        if progress is not None:
            progress.close()
    executed = any(step.get("status") != "cached" for step in result.steps.values())
    if isinstance(runner, RecordsLineage) and result.run_id and executed:
        # a run served wholly from the cache read and wrote nothing new: its run record is
        # kept, but it adds no lineage (and skips importing the OpenLineage client)
        _record_lineage(runner, compiled, plan, rendered.settings, result.run_id)
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


def _record_lineage(
    runner: RecordsLineage, compiled: Compiled, plan: Plan, settings: BaseModel, run_id: str
) -> None:
    """Append the run's OpenLineage events to .mlcompile/lineage/runs.jsonl. Lineage is a
    record of the run, never a reason for it to fail: an unwritable folder is reported."""
    from mlcompile.lineage import append_run_events, run_events

    root = compiled.project_root
    store, runs_dir = runner.run_folders(settings, plan, root)
    try:
        record = json.loads((runs_dir / run_id / "run.json").read_text(encoding="utf-8"))
        events = run_events(plan, record, Path(record.get("store", store)), root)
        append_run_events(root / paths.LINEAGE, events)
    except OSError as exc:
        click.echo(f"mlcompile: warning: lineage not recorded: {exc}", err=True)
