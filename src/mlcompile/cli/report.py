"""report: a self-contained HTML audit report of one run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlcompile import paths
from mlcompile.cli.output import Output, handles_errors
from mlcompile.cli.params import overrides_argument, trust_options
from mlcompile.errors import UsageError

if TYPE_CHECKING:
    from mlcompile.plan import Plan
    from mlcompile.runtime.runrecord import RunRecord


@click.command("report")
@click.argument("target", type=click.Path(path_type=Path, exists=True))
@overrides_argument
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("report.html"),
    show_default=True,
)
@click.option(
    "--run",
    "run_id",
    default=None,
    help="Run id (prefix) when TARGET is a spec: a run of its pipeline or of its monitoring job.",
)
@trust_options
@handles_errors
def report(
    target: Path, overrides: tuple[str, ...], out: Path, run_id: str | None, output: Output
) -> None:
    """Write a self-contained HTML audit report of one run.

    TARGET is a run folder (.mlcompile/runs/<id>) or a spec (with the overrides it ran
    with: its pipeline's latest run, or the one --run names, monitoring runs included).
    """
    from mlcompile.cli.project import plan_registry
    from mlcompile.lineage.report import render_report

    if target.is_dir():
        plan, record, store = _from_run_dir(target)
    else:
        plan, record, store = _from_spec(target, overrides, run_id, output)
    root = Path(str(record.get("project_root", ".")))
    html = render_report(plan, record, store, plan_registry(plan, root))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    click.echo(f"wrote {out} (run {record['id']}, {len(plan.nodes)} steps)")


def _from_run_dir(run_dir: Path) -> tuple[Plan, RunRecord, Path]:
    from mlcompile.lineage.trace import plan_for_run
    from mlcompile.runtime.runrecord import read_run

    record = read_run(run_dir)
    if record is None:
        raise UsageError(f"{run_dir} holds no readable run.json")
    plan, _ = plan_for_run(record, run_dir.parent)
    if plan is None:
        raise UsageError(
            f"cannot find the plan run {record.get('id')} executed: no plan.json in {run_dir}, "
            "and build/plan.json is another plan; pass the spec instead"
        )
    root = Path(str(record.get("project_root", ".")))
    return plan, record, root / str(plan.settings.get("store", paths.STORE))


def _from_spec(
    spec: Path, overrides: tuple[str, ...], run_id: str | None, output: Output
) -> tuple[Plan, RunRecord, Path]:
    from mlcompile.backends import get_backend
    from mlcompile.backends.local import local_folders
    from mlcompile.cli.compiling import compile_with_texts
    from mlcompile.compiler import backend_settings
    from mlcompile.lineage.runs import all_runs
    from mlcompile.lineage.trace import plan_for_run

    compiled = compile_with_texts(spec, overrides, output)
    plan, root = compiled.plan, compiled.project_root
    # Runs and store live where the local backend puts them; its settings may move them.
    store, runs_dir = local_folders(backend_settings(compiled, get_backend("local")), plan, root)
    # --run may name a run of the spec's monitoring job as well as one of its training plan
    plans = {p.name: p for p in (plan, compiled.monitor_plan) if p is not None}
    # runs on any backend: a kfp or ZenML run is known from its steps' events
    records = [r for r in all_runs(runs_dir, root) if r.get("plan") in plans]
    if run_id is not None:
        records = [r for r in records if str(r["id"]).startswith(run_id)]
    else:
        records = [
            r
            for r in records
            if r.get("plan") == plan.name and r.get("spec_sha256") == plan.spec_sha256
        ]
    if not records:
        raise UsageError(
            f"no run of this plan in {runs_dir}"
            + (f" matching '{run_id}'" if run_id else " (run it first, or pass --run)")
        )
    record = records[-1]
    if record["project_root"] is None:
        record = {**record, "project_root": str(root)}
    # The plan the run stored is the one it executed; the spec may have changed since.
    executed, _ = plan_for_run(record, runs_dir, root)
    return executed or plans[str(record["plan"])], record, store
