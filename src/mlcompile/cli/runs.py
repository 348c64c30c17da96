"""runs: the run records, what ran, what was cached, metrics and gate decisions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlcompile.cli.output import Output, handles_errors
from mlcompile.cli.params import file_option, format_option, in_project, runs_dir_option
from mlcompile.cli.summary import summary_text
from mlcompile.errors import UsageError
from mlcompile.runtime.runrecord import RunRecord, RunStatus, StepStatus
from mlcompile.runtime.trail.records import load_runs

if TYPE_CHECKING:
    from mlcompile.plan import Plan


@click.group()
def runs() -> None:
    """Run records: what ran, what was cached, metrics and gate decisions, on any backend."""


def _records(runs_dir: Path, project: Path | None) -> list[RunRecord]:
    from mlcompile.lineage.runs import all_runs

    return all_runs(runs_dir, project) if project is not None else load_runs(runs_dir)


def _find_run(runs_dir: Path, project: Path | None, run_id: str) -> RunRecord:
    records = _records(runs_dir, project)
    if run_id == "latest" and records:
        return records[-1]
    matches = [r for r in records if r["id"].startswith(run_id)]
    if len(matches) != 1:
        known = ", ".join(r["id"] for r in records[-5:]) or "none"
        raise UsageError(f"no single run matches '{run_id}' in {runs_dir} (latest: {known})")
    return matches[0]


@runs.command("list")
@runs_dir_option
@format_option
@handles_errors
@in_project
def runs_list(runs_dir: Path, project: Path | None, fmt: str, output: Output) -> None:
    """Every run of the project, oldest first, whichever backend ran it."""
    records = _records(runs_dir, project)
    width = max((len(r["id"]) for r in records), default=0)
    rows = []
    for r in records:
        statuses = [s["status"] for s in r["steps"].values()]
        rows.append(
            f"{r['id']:<{width}}  {r.get('backend', 'local'):<6} {r['status']:<11} "
            f"{r['plan']:<20} {r['seconds']:>8.1f}s  "
            f"ran {statuses.count(StepStatus.RAN)}, cached {statuses.count(StepStatus.CACHED)}"
        )
    output.result({"runs": records}, "\n".join(rows) or f"no runs in {runs_dir}")


@runs.command("show")
@click.argument("run_id", default="latest")
@runs_dir_option
@format_option
@handles_errors
@in_project
def runs_show(run_id: str, runs_dir: Path, project: Path | None, fmt: str, output: Output) -> None:
    record = _find_run(runs_dir, project, run_id)
    # a run still going, or whose process died, has no exit code
    code = record["exit_code"] if record["exit_code"] is not None else "-"
    backend = record.get("backend", "local")
    human = [f"run {record['id']} ({record['plan']}, {backend}): {record['status']}, exit {code}"]
    if record["status"] == RunStatus.UNFINISHED:
        human.append(
            "  unfinished: steps started and never ended; the run is still going, or its "
            "processes were killed"
        )
    for node, step in record["steps"].items():
        seconds = step.get("seconds")
        timing = f" {seconds:.2f}s" if isinstance(seconds, float) else ""
        human.append(f"  {step['status']:<8} {node}{timing}")
    human.append(summary_text({**record, "run_id": None}))
    output.result(dict(record), "\n".join(human))


@runs.command("compare")
@click.argument("first")
@click.argument("second")
@runs_dir_option
@file_option(
    "--report",
    "report_file",
    help="Also write SECOND's HTML report with FIRST's curves drawn beside its own.",
)
@format_option
@handles_errors
@in_project
def runs_compare(
    first: str,
    second: str,
    runs_dir: Path,
    project: Path | None,
    report_file: Path | None,
    fmt: str,
    output: Output,
) -> None:
    """Parameters that differ between two runs' plans, and their metrics with the difference."""
    from mlcompile.lineage.compare import metric_differences, param_differences
    from mlcompile.lineage.trace import plan_for_run

    a, b = _find_run(runs_dir, project, first), _find_run(runs_dir, project, second)
    plan_a = plan_for_run(a, runs_dir, project)[0]
    plan_b = plan_for_run(b, runs_dir, project)[0]
    params = param_differences(plan_a, plan_b)
    metrics = metric_differences(a, b)
    # run ids in full: two runs of one second differ in their last characters only
    width = max(22, len(a["id"]), len(b["id"]))
    head = f"{a['id']:>{width}} {b['id']:>{width}}"
    rows = [f"{'parameter':<48} {head}"]
    if plan_a is None or plan_b is None:
        rows.append("  (a run's plan.json is missing: parameters not compared)")
    for item in params:
        first_value, second_value = _shown(item["first"]), _shown(item["second"])
        rows.append(f"{item['param']:<48} {first_value:>{width}} {second_value:>{width}}")
    if len(rows) == 1:
        rows.append("  (same parameters)")
    rows.append(f"{'model.metric':<48} {head} {'delta':>10}")
    for item in metrics:
        fd = f"{item['delta']:+.4f}" if item["delta"] is not None else "-"
        name = f"{item['model']}.{item['metric']}"
        first_value, second_value = _shown(item["first"]), _shown(item["second"])
        rows.append(f"{name:<48} {first_value:>{width}} {second_value:>{width}} {fd:>10}")
    payload: dict[str, Any] = {
        "first": a["id"],
        "second": b["id"],
        "params": params,
        "metrics": metrics,
    }
    if report_file is not None:
        if plan_a is None or plan_b is None:
            raise UsageError("cannot draw the report: a run's plan.json is missing")
        _compare_report(plan_a, a, plan_b, b, report_file)
        payload["report"] = str(report_file)
        rows.append(f"wrote {report_file} (run {b['id']}, dashed: run {a['id']})")
    output.result(payload, "\n".join(rows))


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    text = "-" if value is None else str(value)
    return text if len(text) <= 22 else text[:21] + "…"


def _compare_report(plan_a: Plan, a: RunRecord, plan_b: Plan, b: RunRecord, out: Path) -> None:
    from mlcompile.cli.project import plan_registry
    from mlcompile.lineage.report import Baseline, render_report, run_diagnoses

    def store(plan: Plan, record: RunRecord) -> Path:
        root = Path(str(record.get("project_root", ".")))
        return Path(str(record.get("store") or root / str(plan.settings.get("store"))))

    root = Path(str(b.get("project_root", ".")))
    baseline = Baseline(f"run {a['id']}", run_diagnoses(plan_a, a, store(plan_a, a)))
    registry = plan_registry(plan_b, root)
    html = render_report(plan_b, b, store(plan_b, b), registry, baseline)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
