"""run, runs and registry: executing pipelines and looking at what they produced."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlcompile.cli import (
    F,
    Output,
    cli,
    format_option,
    handles_errors,
    overrides_argument,
    spec_argument,
    trust_options,
)
from mlcompile.cli.commands import compile_and_render
from mlcompile.cli.track import track_run, tracking_config
from mlcompile.compiler import emitted_files, write
from mlcompile.errors import UsageError
from mlcompile.runtime.trail.records import load_runs

if TYPE_CHECKING:
    from pydantic import BaseModel

    from mlcompile.backends import RunOptions, RunResult
    from mlcompile.compiler import Compiled, Rendered
    from mlcompile.plan import Plan
    from mlcompile.runtime.registry import Registry


def runner_options(func: F) -> F:
    """What every command that runs pipelines takes: the spec and its overrides, the backend,
    the build folder, parallel steps, quiet, and the operator's grants."""
    for option in reversed(
        [
            spec_argument,
            overrides_argument,
            click.option("--backend", "-b", default="local", show_default=True),
            click.option(
                "--out", "-o", type=click.Path(path_type=Path, file_okay=False), default=None
            ),
            click.option(
                "--jobs", "-j", type=int, default=0, help="Parallel steps (default: CPU cores)."
            ),
            click.option("--quiet", "-q", is_flag=True, help="No progress output."),
            trust_options,
        ]
    ):
        func = option(func)
    return func


@cli.command()
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
    from mlcompile.backends import Runner
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
    if runner.name == "local" and result.run_id and executed:
        # a run served wholly from the cache read and wrote nothing new: its run record is
        # kept, but it adds no lineage (and skips importing the OpenLineage client)
        _record_lineage(compiled, plan, rendered.settings, result.run_id)
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


def _record_lineage(compiled: Compiled, plan: Plan, settings: BaseModel, run_id: str) -> None:
    """Append the run's OpenLineage events to .mlcompile/lineage/runs.jsonl. Lineage is a
    record of the run, never a reason for it to fail: an unwritable folder is reported."""
    from mlcompile.backends.local import local_folders
    from mlcompile.lineage import append_run_events, run_events

    root = compiled.project_root
    store, runs_dir = local_folders(settings, plan, root)
    try:
        record = json.loads((runs_dir / run_id / "run.json").read_text(encoding="utf-8"))
        events = run_events(plan, record, Path(record.get("store", store)), root)
        append_run_events(root / ".mlcompile" / "lineage", events)
    except OSError as exc:
        click.echo(f"mlcompile: warning: lineage not recorded: {exc}", err=True)


def summary_text(payload: dict[str, Any]) -> str:
    steps = payload["steps"].values()
    counts = {
        s: sum(1 for step in steps if step.get("status") == s)
        for s in ("ran", "cached", "failed", "skipped")
    }
    lines = []
    if counts["ran"] == 0 and counts["failed"] == 0 and counts["cached"]:
        lines.append(f"nothing to do: all {counts['cached']} steps cached")
    else:
        lines.append(
            f"{counts['ran']} ran, {counts['cached']} cached, {counts['failed']} failed, "
            f"{counts['skipped']} skipped"
        )
    for model, metrics in sorted(payload["metrics"].items()):
        overall = (metrics or {}).get("overall", {})
        shown = ", ".join(
            f"{k}={v:.4f}" for k, v in sorted(overall.items()) if isinstance(v, float)
        )
        lines.append(f"metrics {model}: {shown}")
    for gate, decision in sorted(payload["decisions"].items()):
        if not decision:
            continue
        verdict = "PASSED" if decision.get("passed") else "FAILED"
        lines.append(f"gate {gate}: {verdict}")
        for check in decision.get("checks", []):
            mark = "ok " if check.get("passed") else "FAIL"
            text = str(check.get("check"))
            slice_value = check.get("slice_value")
            where = (
                f" [{check['slice']}={slice_value}]"
                if slice_value is not None and "=" not in text
                else ""
            )
            value, bound = check.get("value"), check.get("bound")
            numbers = (
                f"value {value:.4f} bound {bound:.4f}"
                if isinstance(value, float) and isinstance(bound, float)
                else (check.get("note") or "")
            )
            lines.append(f"  {mark} {text}{where}: {numbers}")
    for logged in payload.get("mlflow") or []:
        version = logged["model_version"]
        registered = f", registered as version {version}" if version else ""
        lines.append(f"mlflow {logged['model']}: run {logged['run_id']}{registered}")
    if payload.get("deploy") is False:
        lines.append("experiment: no deployment ran (settings.deploy is false)")
    if payload["error"]:
        lines.append(f"error: {payload['error']}")
    if payload["run_id"]:
        lines.append(f"run {payload['run_id']}: {payload['status']}")
    return "\n".join(lines)


# ---- runs -------------------------------------------------------------------------------

runs_dir_option = click.option(
    "--runs-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(".mlcompile/runs"),
    show_default=True,
)


@cli.group()
def runs() -> None:
    """Run records: what ran, what was cached, metrics and gate decisions."""


def _find_run(runs_dir: Path, run_id: str) -> dict[str, Any]:
    records = load_runs(runs_dir)
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
def runs_list(runs_dir: Path, fmt: str, output: Output) -> None:
    records = load_runs(runs_dir)
    rows = []
    for r in records:
        statuses = [s.get("status") for s in r["steps"].values()]
        rows.append(
            f"{r['id']}  {r['status']:<11} {r['plan']:<20} {r['seconds']:>8.1f}s  "
            f"ran {statuses.count('ran')}, cached {statuses.count('cached')}"
        )
    output.result({"runs": records}, "\n".join(rows) or f"no runs in {runs_dir}")


@runs.command("show")
@click.argument("run_id", default="latest")
@runs_dir_option
@format_option
@handles_errors
def runs_show(run_id: str, runs_dir: Path, fmt: str, output: Output) -> None:
    record = _find_run(runs_dir, run_id)
    # a run still going, or whose process died, has no exit code
    code = record["exit_code"] if record["exit_code"] is not None else "-"
    human = [f"run {record['id']} ({record['plan']}): {record['status']}, exit {code}"]
    for node, step in record["steps"].items():
        seconds = step.get("seconds")
        timing = f" {seconds:.2f}s" if isinstance(seconds, float) else ""
        human.append(f"  {step.get('status', '?'):<8} {node}{timing}")
    human.append(summary_text({**record, "run_id": None, "steps": {}}))
    output.result(record, "\n".join(human))


@runs.command("compare")
@click.argument("first")
@click.argument("second")
@runs_dir_option
@click.option(
    "--report",
    "report_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write SECOND's HTML report with FIRST's curves drawn beside its own.",
)
@format_option
@handles_errors
def runs_compare(
    first: str, second: str, runs_dir: Path, report_file: Path | None, fmt: str, output: Output
) -> None:
    """Parameters that differ between two runs' plans, and their metrics with the difference."""
    from mlcompile.lineage.compare import metric_differences, param_differences
    from mlcompile.lineage.trace import plan_for_run

    a, b = _find_run(runs_dir, first), _find_run(runs_dir, second)
    plan_a, plan_b = plan_for_run(a, runs_dir)[0], plan_for_run(b, runs_dir)[0]
    params = param_differences(plan_a, plan_b)
    metrics = metric_differences(a, b)
    head = f"{a['id'][:22]:>22} {b['id'][:22]:>22}"
    rows = [f"{'parameter':<48} {head}"]
    if plan_a is None or plan_b is None:
        rows.append("  (a run's plan.json is missing: parameters not compared)")
    for item in params:
        rows.append(f"{item['param']:<48} {_shown(item['first']):>22} {_shown(item['second']):>22}")
    if len(rows) == 1:
        rows.append("  (same parameters)")
    rows.append(f"{'model.metric':<48} {head} {'delta':>10}")
    for item in metrics:
        fd = f"{item['delta']:+.4f}" if item["delta"] is not None else "-"
        name = f"{item['model']}.{item['metric']}"
        rows.append(f"{name:<48} {_shown(item['first']):>22} {_shown(item['second']):>22} {fd:>10}")
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


def _compare_report(
    plan_a: Plan, a: dict[str, Any], plan_b: Plan, b: dict[str, Any], out: Path
) -> None:
    from mlcompile.lineage.report import Baseline, render_report, run_diagnoses

    def store(plan: Plan, record: dict[str, Any]) -> Path:
        root = Path(str(record.get("project_root", ".")))
        return Path(str(record.get("store") or root / str(plan.settings.get("store"))))

    root = Path(str(b.get("project_root", ".")))
    baseline = Baseline(f"run {a['id']}", run_diagnoses(plan_a, a, store(plan_a, a)))
    registry = root / str(plan_b.settings.get("registry", ".mlcompile/registry"))
    html = render_report(plan_b, b, store(plan_b, b), registry, baseline)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")


# ---- registry ---------------------------------------------------------------------------

registry_option = click.option(
    "--registry",
    type=click.Path(path_type=Path, file_okay=False),
    default=lambda: Path(os.environ.get("MLCOMPILE_REGISTRY", ".mlcompile/registry")),
    help="Registry folder (default .mlcompile/registry, or $MLCOMPILE_REGISTRY).",
)


@cli.group()
def registry() -> None:
    """The local model registry: versions, aliases, promote and rollback."""


def _describe(reg: Registry, name: str) -> dict[str, Any]:
    return {
        "versions": [reg.get(name, v).registration for v in reg.versions(name)],
        "aliases": reg.aliases(name),
    }


def _split_ref(ref: str) -> tuple[str, str | None]:
    name, _, version = ref.partition("@")
    return name, version or None


@registry.command("list")
@registry_option
@format_option
@handles_errors
def registry_list(registry: Path, fmt: str, output: Output) -> None:
    from mlcompile.runtime.registry import Registry

    reg = Registry(registry)
    models = {name: _describe(reg, name) for name in reg.list_models()}
    lines = []
    for name, info in models.items():
        aliases = (
            ", ".join(f"{a}->v{v}" for a, v in sorted(info["aliases"].items())) or "no aliases"
        )
        lines.append(f"{name}: {len(info['versions'])} versions ({aliases})")
    output.result({"models": models}, "\n".join(lines) or f"no models in {registry}")


@registry.command("show")
@click.argument("ref")
@registry_option
@format_option
@handles_errors
def registry_show(ref: str, registry: Path, fmt: str, output: Output) -> None:
    """MODEL or MODEL@VERSION or MODEL@ALIAS."""
    from mlcompile.runtime.registry import Registry

    name, version = _split_ref(ref)
    reg = Registry(registry)
    if version is None:
        info = _describe(reg, name)
        lines = [f"{name}"]
        for v in info["versions"]:
            tags = [a for a, n in info["aliases"].items() if n == v["version"]]
            lines.append(f"  v{v['version']} {v.get('created_at', '')} {' '.join(tags)}")
        for event in reg.history(name)[-10:]:
            lines.append(f"  event {event}")
        output.result(info, "\n".join(lines))
        return
    entry = reg.get(name, version)
    shown = {**entry.registration, "metrics": entry.metrics(), "path": str(entry.path)}
    output.result(shown, json.dumps(shown, indent=2, sort_keys=True, default=str))


@registry.command("promote")
@click.argument("ref")
@click.option("--alias", default="production", show_default=True)
@registry_option
@format_option
@handles_errors
def registry_promote(ref: str, alias: str, registry: Path, fmt: str, output: Output) -> None:
    """Point ALIAS at MODEL@VERSION."""
    from mlcompile.runtime.registry import Registry

    name, version = _split_ref(ref)
    if version is None:
        raise UsageError("say which version to promote: MODEL@VERSION")
    reg = Registry(registry)
    moved = reg.promote(name, version, alias).version
    _report_repairs(reg)
    _moved(name, alias, moved, output)


@registry.command("rollback")
@click.argument("name")
@click.option("--alias", default="production", show_default=True)
@registry_option
@format_option
@handles_errors
def registry_rollback(name: str, alias: str, registry: Path, fmt: str, output: Output) -> None:
    """Move ALIAS back to the version it pointed at before."""
    from mlcompile.runtime.registry import Registry

    reg = Registry(registry)
    moved = reg.rollback(name, alias).version
    _report_repairs(reg)
    _moved(name, alias, moved, output)


def _moved(name: str, alias: str, version: int, output: Output) -> None:
    """Report an alias move, mirrored to MLflow's registry when MLFLOW_TRACKING_URI is set."""
    payload: dict[str, Any] = {"model": name, "alias": alias, "version": version}
    lines = [f"{name}: {alias} -> v{version}"]
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        from mlcompile.cli.track import mirror

        payload["mlflow_version"], note = mirror(uri, name, alias, version)
        lines.append(note)
    output.result(payload, "\n".join(lines))


def _report_repairs(reg: Registry) -> None:
    """What the change had to repair first (a change an earlier process did not finish)."""
    for note in reg.repairs:
        click.echo(f"mlcompile: repaired the registry {reg.root} first: {note}", err=True)


# ---- one step, for path-based orchestrators ---------------------------------------------


def _pairs(values: tuple[str, ...], what: str) -> dict[str, Path]:
    pairs = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"{what} must be NAME=PATH, got '{value}'")
        pairs[name] = Path(path)
    return pairs


@cli.command("step")
@click.argument("plan_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--node", "node_id", help="The node's id.")
@click.option("--index", type=int, help="The node's position in plan.json (no spec text needed).")
@click.option("--in", "inputs", multiple=True, help="NAME=DIR of an input artifact.")
@click.option("--out", "outputs", multiple=True, help="NAME=DIR for an output artifact.")
@click.option(
    "--artifacts",
    type=click.Path(path_type=Path, file_okay=False),
    help="Instead of --in/--out: artifacts live in DIR/n<index>/<output> for every node.",
)
@click.option("--project-root", type=click.Path(path_type=Path, file_okay=False), default=Path("."))
@click.option("--threads", type=int, default=1, show_default=True)
@format_option
@trust_options
@handles_errors
def step(
    plan_file: Path,
    node_id: str | None,
    index: int | None,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    artifacts: Path | None,
    project_root: Path,
    threads: int,
    fmt: str,
    output: Output,
) -> None:
    """Run one plan node on artifact folders: the primitive any orchestrator can call."""
    from mlcompile.plan import Plan
    from mlcompile.runtime.steps import StepContext, run_step

    plan = Plan.from_json(plan_file.read_text(encoding="utf-8"))
    nodes = sorted(plan.nodes, key=lambda n: n.id)
    if (node_id is None) == (index is None):
        raise UsageError("give exactly one of --node and --index")
    if index is not None:
        if not 0 <= index < len(nodes):
            raise UsageError(f"--index must be 0..{len(nodes) - 1}")
        node = nodes[index]
    else:
        try:
            node = plan.node(str(node_id))
        except KeyError:
            raise UsageError(f"no node '{node_id}' in {plan_file}") from None
    if artifacts is not None:
        position = {n.id: i for i, n in enumerate(nodes)}
        given_in = {
            k: artifacts / f"n{position[r.node]}" / r.output for k, r in node.inputs.items()
        }
        given_out = {k: artifacts / f"n{position[node.id]}" / k for k in node.outputs}
    else:
        given_in, given_out = _pairs(inputs, "--in"), _pairs(outputs, "--out")
    if set(given_in) != set(node.inputs) or set(given_out) != set(node.outputs):
        raise UsageError(
            f"node '{node.id}' reads {sorted(node.inputs)} and writes {sorted(node.outputs)}; "
            f"got --in {sorted(given_in)} --out {sorted(given_out)}"
        )
    result = run_step(
        node.kind,
        dict(node.params),
        given_in,
        given_out,
        StepContext(project_root.resolve(), num_threads=threads, fingerprint=node.fingerprint),
    )
    output.result({"node": node.id, "summary": result.summary}, f"{node.id}: done")
