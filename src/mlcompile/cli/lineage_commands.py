"""lineage, report and diff: answering "where did this model come from" and "what changed"."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlcompile.cli import Output, cli, handles_errors, overrides_argument, trust_options
from mlcompile.cli.run_commands import registry_option, runs_dir_option
from mlcompile.errors import UsageError

if TYPE_CHECKING:
    from mlcompile.plan import Plan

text_or_json = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)


# ---- lineage ----------------------------------------------------------------------------


@cli.command("lineage")
@click.argument("ref")
@registry_option
@runs_dir_option
@click.option(
    "--store",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Artifact store (default: the store next to --runs-dir).",
)
@text_or_json
@handles_errors
def lineage(
    ref: str, registry: Path, runs_dir: Path, store: Path | None, fmt: str, output: Output
) -> None:
    """Trace a registered model back to its run, steps, checks, gates and raw files.

    REF is MODEL, MODEL@VERSION or MODEL@ALIAS; MODEL alone means its production alias,
    else its latest version.
    """
    from mlcompile.lineage.trace import trace_model

    found = trace_model(registry, runs_dir, ref, store)
    output.result(found, _lineage_text(found))


def _lineage_text(found: Mapping[str, Any]) -> str:
    aliases = f" ({', '.join(found['aliases'])})" if found["aliases"] else ""
    lines = [
        f"{found['model']} v{found['version']}{aliases}: model sha256 {found['model_sha256']}",
        f"  registered {found['registered_at']} by {found['registered_by']}",
    ]
    run = found["run"]
    if run is None:
        lines.append("  no run record produced this version (records deleted, or another machine)")
    else:
        where = {"run": "stored with the run", "build": "build/plan.json", "none": "no plan found"}
        lines.append(
            f"  produced by run {run['id']} ({run['status']}); plan: {where[found['plan_source']]}"
        )
    lines.append("raw data:")
    for raw in found["raw_files"]:
        lines.append(f"  {raw['source']:<12} {raw['path'] or '?':<28} sha256 {raw['sha256']}")
    training = found["training_data"]
    if training:
        lines.append(f"training data: {training.get('rows')} rows, sha256 {training.get('sha256')}")
    if found["steps"]:
        lines.append("steps:")
    for step in found["steps"]:
        lines.append(f"  {step['status'] or '?':<7} {step['id']}")
        if step["params"]:
            lines.append(f"          params: {step['params']}")
        for name, facts in sorted(step["outputs"].items()):
            rows = f" ({facts['rows']} rows)" if "rows" in facts else ""
            lines.append(f"          -> {name} sha256 {facts.get('sha256', '?')}{rows}")
        checks = step.get("checks")
        if checks is not None:
            failed = [c for c in checks if not c["success"]]
            lines.append(
                f"          data checks: {len(checks) - len(failed)} passed, {len(failed)} failed"
            )
            lines += [f"            FAIL {c['column'] or '(table)'}: {c['rule']}" for c in failed]
    metrics = (found.get("metrics") or {}).get("overall") or {}
    if metrics:
        shown = ", ".join(f"{k}={_num(v)}" for k, v in sorted(metrics.items()))
        lines.append(f"metrics: {shown}")
    for gate in found["gates"]:
        lines.append(f"gate {gate.get('gate')}: {'PASSED' if gate.get('passed') else 'FAILED'}")
        for check in gate.get("checks", []):
            mark = "ok  " if check.get("passed") else "FAIL"
            detail = (
                check.get("note")
                or f"value {_num(check.get('value'))} bound {_num(check.get('bound'))}"
            )
            lines.append(f"  {mark} {check.get('check')}: {detail}")
    if found["history"]:
        lines.append("registry history:")
    for event in found["history"]:
        what = event.get("event")
        if "to_version" in event:
            start = event.get("from_version")
            what += f" {event.get('alias')}: {'v' + str(start) if start else '-'} -> v{event['to_version']}"
        else:
            what += f" v{event.get('version')}"
        lines.append(f"  {event.get('timestamp')} {event.get('user')}: {what}")
    return "\n".join(lines)


def _num(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


# ---- report -----------------------------------------------------------------------------


@cli.command("report")
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
    from mlcompile.lineage.report import render_report

    if target.is_dir():
        plan, record, store = _from_run_dir(target)
    else:
        plan, record, store = _from_spec(target, overrides, run_id, output)
    root = Path(str(record.get("project_root", ".")))
    registry = root / str(plan.settings.get("registry", ".mlcompile/registry"))
    html = render_report(plan, record, store, registry)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    click.echo(f"wrote {out} (run {record['id']}, {len(plan.nodes)} steps)")


def _from_run_dir(run_dir: Path) -> tuple[Plan, dict[str, Any], Path]:
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
    return plan, record, root / str(plan.settings.get("store", ".mlcompile/store"))


def _from_spec(
    spec: Path, overrides: tuple[str, ...], run_id: str | None, output: Output
) -> tuple[Plan, dict[str, Any], Path]:
    from mlcompile.backends import get_backend
    from mlcompile.backends.local import local_folders
    from mlcompile.cli.commands import compile_with_texts
    from mlcompile.compiler import backend_settings
    from mlcompile.lineage.trace import plan_for_run
    from mlcompile.runtime.trail.records import load_runs

    compiled = compile_with_texts(spec, overrides, output)
    plan, root = compiled.plan, compiled.project_root
    # Runs and store live where the local backend puts them; its settings may move them.
    store, runs_dir = local_folders(backend_settings(compiled, get_backend("local")), plan, root)
    # --run may name a run of the spec's monitoring job as well as one of its training plan
    plans = {p.name: p for p in (plan, compiled.monitor_plan) if p is not None}
    records = [r for r in load_runs(runs_dir) if r.get("plan") in plans]
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
    # The plan the run stored is the one it executed; the spec may have changed since.
    executed, _ = plan_for_run(record, runs_dir)
    return executed or plans[str(record["plan"])], record, store


# ---- diff -------------------------------------------------------------------------------


@cli.command("diff")
@click.argument("old", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.argument("new", type=click.Path(path_type=Path, dir_okay=False, exists=True), required=False)
@click.option("--rev", default=None, help="Compare OLD with its own version at this git revision.")
@text_or_json
@trust_options
@handles_errors
def diff(old: Path, new: Path | None, rev: str | None, fmt: str, output: Output) -> None:
    """Compare two specs: steps added, removed and changed, and why.

    Give OLD and NEW, or one spec and --rev to compare it with its version at a git
    revision.
    """
    from mlcompile.cli.commands import compile_with_texts
    from mlcompile.lineage.diff import diff_plans, diff_text

    if new is not None and rev is None:
        before = compile_with_texts(old, (), output).plan
        after = compile_with_texts(new, (), output).plan
    elif new is None and rev is not None:
        with _at_revision(old, rev) as earlier:
            before = compile_with_texts(earlier, (), output).plan
        after = compile_with_texts(old, (), output).plan
    else:
        raise UsageError("give NEW_SPEC, or --rev GITREV to compare OLD with its git history")
    result = diff_plans(before, after)
    output.result(result, diff_text(result))


@contextlib.contextmanager
def _at_revision(spec: Path, rev: str) -> Iterator[Path]:
    """The spec as it was at `rev`, in a temporary file next to it (so its relative paths and
    its conf/ folder resolve as they do for the spec itself); removed afterwards."""
    try:
        shown = subprocess.run(
            ["git", "show", f"{rev}:./{spec.name}"],
            cwd=spec.parent.resolve(),
            capture_output=True,
            check=False,
        )
    except OSError as exc:
        raise UsageError(f"cannot run git: {exc}") from None
    if shown.returncode != 0:
        message = shown.stderr.decode("utf-8", "replace").strip()
        raise UsageError(f"git show {rev}:{spec.name} failed: {message}")
    with tempfile.NamedTemporaryFile(
        dir=spec.parent, prefix=f".{spec.stem}.", suffix=spec.suffix, delete=False
    ) as handle:
        handle.write(shown.stdout)
    earlier = Path(handle.name)
    try:
        yield earlier
    finally:
        earlier.unlink(missing_ok=True)
