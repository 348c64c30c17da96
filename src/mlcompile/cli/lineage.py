"""lineage: where did this model come from."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from mlcompile.cli.output import Output, handles_errors
from mlcompile.cli.params import (
    folder_option,
    in_project,
    registry_option,
    runs_dir_option,
    text_or_json,
)
from mlcompile.cli.summary import registry_event_text


@click.command("lineage")
@click.argument("ref")
@registry_option
@runs_dir_option
@folder_option("--store", help="Artifact store (default: the store next to --runs-dir).")
@text_or_json
@handles_errors
@in_project
def lineage(
    ref: str,
    registry: Path | str,
    runs_dir: Path,
    store: Path | None,
    project: Path | None,
    fmt: str,
    output: Output,
) -> None:
    """Trace a registered model back to its run, steps, checks, gates and raw files.

    REF is MODEL, MODEL@VERSION or MODEL@ALIAS; MODEL alone means its production alias,
    else its latest version.
    """
    from mlcompile.lineage.trace import trace_model
    from mlcompile.runtime.registry import open_registry

    found = trace_model(open_registry(registry), runs_dir, ref, store, project)
    output.result(found, _lineage_text(found))


def _lineage_text(found: Mapping[str, Any]) -> str:
    aliases = f" ({', '.join(found['aliases'])})" if found["aliases"] else ""
    lines = [
        f"{found['model']} v{found['version']}{aliases}: model sha256 {found['model_sha256']}",
        f"  registered {found['registered_at']} by {found['registered_by']}",
    ]
    run = found["run"]
    if run is None:
        lines.append(
            "  no run record or lineage event names the run that produced this version "
            "(records deleted, or another machine's)"
        )
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
            mark = "skip" if check.get("skipped") else "ok  " if check.get("passed") else "FAIL"
            detail = (
                check.get("note")
                or f"value {_num(check.get('value'))} bound {_num(check.get('bound'))}"
            )
            lines.append(f"  {mark} {check.get('check')}: {detail}")
    if found["history"]:
        lines.append("registry history:")
    lines += [f"  {registry_event_text(event)}" for event in found["history"]]
    return "\n".join(lines)


def _num(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
