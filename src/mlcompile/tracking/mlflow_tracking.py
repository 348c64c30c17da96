"""Log a pipeline run to MLflow: one MLflow run per model, and registry moves mirrored.

Each model's MLflow run holds its parameters (the plan's and the effective LightGBM ones,
so tuned values too), test metrics overall and per slice, validation metrics, tags tying it
to mlcompile (spec sha256, plan sha256, git commit, backend, run id), the diagnosis and
metrics documents, the pictures as SVG files, the run's HTML report, and the model in
MLflow's LightGBM flavour. With `registry` on, a model the run registered becomes a version
of the MLflow registered model of the same name (tagged with the local version), and the
local alias is set on it. mlcompile's own registry stays the source of truth: MLflow is a
mirror, and a model logged twice (a cached register step) is not registered twice.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcompile.errors import UsageError
from mlcompile.plan import Node, Plan, StepKind, make_node_id, sha256_text

TRACKING_ENV = "MLFLOW_TRACKING_URI"
VERSION_TAG = "mlcompile.version"
_KEY = re.compile(r"[^A-Za-z0-9_\-. /:]")
_PARAM_LIMIT = 500  # the smallest value length MLflow servers accept


@dataclass(frozen=True)
class MlflowConfig:
    tracking_uri: str
    experiment: str
    registry: bool = True


def mlflow_config(
    section: Mapping[str, Any] | None, environ: Mapping[str, str], default_experiment: str
) -> MlflowConfig | None:
    """The spec's `tracking.mlflow` section, completed from MLFLOW_TRACKING_URI; None when
    neither names a server."""
    section = section or {}
    uri = section.get("tracking_uri") or environ.get(TRACKING_ENV)
    if not uri:
        if section:
            raise UsageError(f"tracking.mlflow has no tracking_uri and {TRACKING_ENV} is not set")
        return None
    return MlflowConfig(
        tracking_uri=str(uri),
        experiment=str(section.get("experiment") or default_experiment),
        registry=bool(section.get("registry", True)),
    )


Locate = Callable[[str, str], Path | None]  # (node id, output) -> the artifact's folder


@dataclass(frozen=True)
class TrackedRun:
    """What a finished run offers a tracker. `locate` finds a step's output folder; it
    returns None where a backend keeps artifacts out of reach (then only the plan's
    parameters and the run's metrics are logged)."""

    plan: Plan
    run_id: str
    status: str
    backend: str
    metrics: Mapping[str, Any]
    decisions: Mapping[str, Any]
    locate: Locate
    git_commit: str | None = None
    report_html: str | None = None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow prints links and progress on stdout and stderr; a command's output is its own
    (failures still raise)."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _read(folder: Path | None, name: str) -> Any:
    if folder is None:
        return None
    try:
        return json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def log_run(config: MlflowConfig, run: TrackedRun) -> list[dict[str, Any]]:
    """Log every trained model of `run`; returns, per model, its MLflow run id and the
    MLflow model version it was registered as (or None)."""
    import mlflow

    with _quiet():
        mlflow.set_tracking_uri(config.tracking_uri)
        experiment = mlflow.set_experiment(config.experiment)
        logged = []
        for node in run.plan.topological():
            if node.kind == "train":
                logged.append(_log_model(config, run, node, experiment.experiment_id))
    return logged


def _tags(run: TrackedRun, node: Node) -> dict[str, str]:
    tags = {
        "mlcompile.run_id": run.run_id,
        "mlcompile.model": node.name,
        "mlcompile.plan": run.plan.name,
        "mlcompile.spec_sha256": run.plan.spec_sha256,
        "mlcompile.plan_sha256": sha256_text(run.plan.to_json()),
        "mlcompile.backend": run.backend,
        "mlcompile.status": run.status,
        "mlcompile.deploy": str(run.plan.settings.get("deploy", True)).lower(),
    }
    if run.git_commit:
        tags["mlcompile.git_commit"] = run.git_commit
    for gate in run.plan.nodes:
        decision = run.decisions.get(gate.name)
        if gate.kind == "gate" and gate.params.get("model") == node.name and decision:
            tags[f"mlcompile.gate.{_clean(gate.name)}"] = (
                "passed" if decision.get("passed") else "failed"
            )
    return tags


def _clean(name: str) -> str:
    return _KEY.sub("_", name)


def _flat(value: Any, prefix: str) -> dict[str, str]:
    if isinstance(value, Mapping):
        found: dict[str, str] = {}
        for key, item in sorted(value.items()):
            found.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
        return found
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return {_clean(prefix): text if len(text) <= _PARAM_LIMIT else text[: _PARAM_LIMIT - 1] + "…"}


def _params(node: Node, model_meta: Mapping[str, Any] | None) -> dict[str, str]:
    params = _flat({k: v for k, v in node.params.items() if k != "model"}, "")
    if model_meta:
        # what LightGBM actually trained with: the plan's params plus what mlcompile forces
        params.update(_flat(model_meta.get("params") or {}, "lightgbm"))
        params["best_iteration"] = str(model_meta.get("best_iteration"))
    return params


def _metrics(
    metrics: Mapping[str, Any] | None, model_meta: Mapping[str, Any] | None
) -> dict[str, float]:
    found: dict[str, float] = {}
    for name, value in ((metrics or {}).get("overall") or {}).items():
        found[_clean(f"test_{name}")] = float(value)
    for column, values in ((metrics or {}).get("slices") or {}).items():
        for slice_value, entry in values.items():
            for name, value in entry.items():
                if name != "rows":
                    found[_clean(f"test_{name}/{column}/{slice_value}")] = float(value)
    if metrics and metrics.get("rows") is not None:
        found["test_rows"] = float(metrics["rows"])
    validation = ((model_meta or {}).get("validation") or {}).get("best_score") or {}
    for name, value in validation.items():
        found[_clean(f"validation_{name}")] = float(value)
    return found


def _log_model(
    config: MlflowConfig, run: TrackedRun, node: Node, experiment_id: str
) -> dict[str, Any]:
    import mlflow

    from mlcompile.lineage.report import chart_files

    model_dir = run.locate(node.id, "model")
    model_meta = _read(model_dir, "model.json")
    evaluate = make_node_id(StepKind.EVALUATE, node.name)
    metrics = run.metrics.get(node.name)
    diagnosis = _read(run.locate(evaluate, "diagnosis"), "diagnosis.json")
    status = "FINISHED" if run.status == "succeeded" else "FAILED"
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=f"{node.name} {run.run_id}",
        tags=_tags(run, node),
    ) as active:
        client = mlflow.MlflowClient()
        mlflow.log_params(_params(node, model_meta))
        mlflow.log_metrics(_metrics(metrics, model_meta))
        if metrics:
            mlflow.log_dict(dict(metrics), "metrics.json")
        if diagnosis:
            mlflow.log_dict(diagnosis, "diagnosis/diagnosis.json")
        for name, svg in chart_files(diagnosis, metrics).items():
            mlflow.log_text(svg, f"plots/{name}")
        if run.report_html is not None:
            mlflow.log_text(run.report_html, "report.html")
        version = None
        text = model_dir / "model.txt" if model_dir is not None else None
        if text is not None and text.is_file():
            info = _log_booster(text)
            registration = _registration(run, node.name)
            if config.registry and registration is not None:
                version = _register(client, info.model_uri, registration)
        mlflow.end_run(status=status)
    return {"model": node.name, "run_id": active.info.run_id, "model_version": version}


def _log_booster(text: Path) -> Any:
    import lightgbm as lgb
    import mlflow.lightgbm

    booster = lgb.Booster(model_str=text.read_text(encoding="utf-8"))
    return mlflow.lightgbm.log_model(
        booster,
        name="model",
        # named, not inferred: inference would import and trace the model in a subprocess
        pip_requirements=[f"lightgbm=={lgb.__version__}"],
    )


def _registration(run: TrackedRun, model: str) -> Mapping[str, Any] | None:
    for node in run.plan.topological():
        if node.kind == "register" and node.params.get("model") == model:
            found = _read(run.locate(node.id, "registration"), "registration.json")
            if isinstance(found, Mapping):
                return found
    return None


def _find_version(client: Any, name: str, version: int) -> Any:
    """The MLflow version mirroring local `version` of `name`, or None."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_model_versions(
            f"name='{_quoted(name)}' and tags.`{VERSION_TAG}`='{int(version)}'"
        )
    except MlflowException:
        return None
    return found[0] if found else None


def _quoted(name: str) -> str:
    return name.replace("\\", "\\\\").replace("'", "\\'")


def _register(client: Any, model_uri: str, registration: Mapping[str, Any]) -> str:
    import mlflow

    name, version = str(registration["model_name"]), int(registration["version"])
    existing = _find_version(client, name, version)
    if existing is None:
        tags = {
            VERSION_TAG: str(version),
            "mlcompile.model_sha256": registration.get("model_sha256"),
        }
        existing = mlflow.register_model(model_uri, name, tags=tags)
    alias = registration.get("alias")
    if alias:
        client.set_registered_model_alias(name, str(alias), existing.version)
    return str(existing.version)


def mirror_alias(config: MlflowConfig, name: str, alias: str, version: int) -> str | None:
    """Point MLflow's `alias` of `name` at the version mirroring local `version` (a promote
    or a rollback); None when MLflow has no such version (it was never logged there)."""
    import mlflow

    with _quiet():
        mlflow.set_tracking_uri(config.tracking_uri)
        client = mlflow.MlflowClient()
        found = _find_version(client, name, version)
        if found is None:
            return None
        client.set_registered_model_alias(name, alias, found.version)
        return str(found.version)
