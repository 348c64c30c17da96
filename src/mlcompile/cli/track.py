"""After `run`: log the run to the experiment trackers the spec or the environment names."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlcompile.errors import UsageError

if TYPE_CHECKING:
    from mlcompile.backends import RunResult
    from mlcompile.compiler import Compiled, Rendered
    from mlcompile.tracking import MlflowConfig, TrackedRun


def tracking_config(compiled: Compiled) -> MlflowConfig | None:
    """The MLflow settings of this spec (or MLFLOW_TRACKING_URI); checked before a run, so a
    missing extra is a usage error rather than a run nobody can see."""
    from mlcompile.tracking import mlflow_config

    config = mlflow_config(compiled.tracking, os.environ, compiled.plan.name)
    if config is not None and importlib.util.find_spec("mlflow") is None:
        raise UsageError(
            "MLflow tracking is configured but mlflow is not installed: "
            "pip install 'mlcompile[mlflow]'"
        )
    return config


def track_run(
    config: MlflowConfig, compiled: Compiled, rendered: Rendered, result: RunResult
) -> list[dict[str, Any]]:
    """Log the run; a tracker that fails is reported, never a reason for the run to fail."""
    from mlcompile.tracking import log_run

    if not result.run_id or all(s.get("status") == "cached" for s in result.steps.values()):
        return []  # a run served from the cache produced nothing new to log
    try:
        return log_run(config, _tracked(compiled, rendered, result))
    except Exception as exc:  # a tracker down or refusing must not undo a finished run
        click.echo(
            f"mlcompile: warning: not logged to MLflow: {type(exc).__name__}: {exc}", err=True
        )
        return []


def _tracked(compiled: Compiled, rendered: Rendered, result: RunResult) -> TrackedRun:
    from mlcompile.runtime.trail.git import git_commit
    from mlcompile.tracking import TrackedRun

    plan, root = compiled.plan, compiled.project_root
    common: dict[str, Any] = {
        "plan": plan,
        "run_id": str(result.run_id),
        "status": result.status,
        "backend": rendered.backend.name,
        "decisions": result.decisions,
        "git_commit": git_commit(root),
    }
    if rendered.backend.name != "local":
        # other orchestrators keep artifacts in their own stores: the plan's parameters and
        # the metrics the runner reported are what there is to log
        return TrackedRun(metrics=result.metrics, locate=lambda node, output: None, **common)
    from mlcompile.backends.local import local_folders
    from mlcompile.cli.project import plan_registry
    from mlcompile.lineage.report import render_report
    from mlcompile.runtime.trail.records import output_dir

    store, runs_dir = local_folders(rendered.settings, plan, root)
    record = json.loads((runs_dir / str(result.run_id) / "run.json").read_text(encoding="utf-8"))
    store = Path(str(record.get("store", store)))
    registry = plan_registry(plan, root)
    return TrackedRun(
        metrics=record.get("metrics") or {},
        locate=lambda node, output: output_dir(record, node, output, store),
        report_html=render_report(plan, record, store, registry),
        **common,
    )


def mirror(uri: str, name: str, alias: str, version: int) -> tuple[str | None, str]:
    """Move MLflow's alias after a local promote or rollback: (MLflow version, a line to
    print). The local move has happened whatever MLflow answers."""
    from mlcompile.tracking import MlflowConfig, mirror_alias

    if importlib.util.find_spec("mlflow") is None:
        return (
            None,
            "mlflow: not mirrored (mlflow is not installed: pip install 'mlcompile[mlflow]')",
        )
    try:
        found = mirror_alias(MlflowConfig(uri, ""), name, alias, version)
    except Exception as exc:
        click.echo(f"mlcompile: warning: alias not mirrored to MLflow: {exc}", err=True)
        return None, "mlflow: not mirrored (see the warning)"
    if found is None:
        return None, f"mlflow: no version of {name} mirrors v{version}; alias left alone"
    return found, f"mlflow: {name} alias {alias} -> version {found}"
