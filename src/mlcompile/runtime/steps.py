"""The path adapter: one entry point every path-based backend calls for every plan node.

`run_step` reads the node's input artifact directories, calls the pure step function, and
writes its output artifacts (atomically). A backend never interprets `params`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from mlcompile.errors import ExitCode, MlcompileError, UsageError, did_you_mean
from mlcompile.plan.kinds import STEP_KINDS, StepKind, parse_node_id
from mlcompile.plan.params import (
    GateParams,
    IngestParams,
    MonitorParams,
    RegisterParams,
    TuneParams,
    ValidateParams,
)
from mlcompile.uris import is_uri

from .artifacts import (
    atomic_write_bytes,
    dumps_json,
    json_safe,
    parquet_bytes,
    read_dataset,
    read_model,
    read_record,
    resolve_project_path,
    sha256_file,
    write_dataset,
    write_model,
    write_record,
)
from .custom import project
from .diagnosis import diagnose
from .evaluate import metrics_of, predictions, validation_scores
from .features import apply_features, fit_features
from .gate import evaluate_gate, raise_if_failed
from .ingest import load_file, load_uri, run_sql, sample_rows
from .kserve import render
from .monitor import monitor, reference_sample
from .registry import ModelRegistry, open_registry
from .runrecord import StepStatus
from .score import output_format, score_frame, write_table
from .split import split_frame
from .train import train_model
from .validate import raise_if_invalid, validate_frame

if TYPE_CHECKING:
    from .trail.events import StepTrail


@dataclass(frozen=True)
class StepContext:
    project_root: Path
    num_threads: int = 1
    # the node's plan fingerprint, recorded with registered models for lineage
    fingerprint: str | None = None
    # the run's id (a local run record's, or the orchestrator's run): registered versions
    # name it; None outside a run (tests, a bare `mlcompile step`)
    run_id: str | None = None
    # how the step names itself in the run's OpenLineage events; None: it sends none
    trail: StepTrail | None = None


@dataclass(frozen=True)
class StepResult:
    """A small JSON-safe summary of what a step did, for logs and run records."""

    kind: str
    summary: dict[str, Any]


@dataclass(frozen=True)
class _Step:
    kind: str
    params: Mapping[str, Any]
    inputs: Mapping[str, Path]
    outputs: Mapping[str, Path]
    ctx: StepContext

    def _lookup(self, paths: Mapping[str, Path], name: str, what: str) -> Path:
        if name not in paths:
            raise UsageError(f"a '{self.kind}' step needs the {what} '{name}'; got {sorted(paths)}")
        return paths[name]

    def input(self, name: str) -> Path:
        return self._lookup(self.inputs, name, "input")

    def output(self, name: str) -> Path:
        return self._lookup(self.outputs, name, "output")

    def project_path(self, key: str) -> tuple[Path, str]:
        """The absolute path of a project-relative path param, and its normalized relative
        form (what artifacts record)."""
        relative = self.params.get(key)
        if not relative:
            raise UsageError(f"a '{self.kind}' step needs the param '{key}'")
        path = resolve_project_path(
            self.ctx.project_root,
            str(relative),
            f"{self.kind} {key}",
            outside_allowed=bool(self.params.get("outside_project")),
        )
        # artifacts record paths relative to the project, as the spec wrote them when allowed
        # outside it; never the machine's absolute path
        root = self.ctx.project_root.resolve()
        shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(relative)
        return path, shown

    def registry(self) -> tuple[ModelRegistry, str]:
        """The registry the step's `registry` param names (a project path or an object
        store's URI), and the location its records show."""
        location = str(self.params.get("registry") or "")
        if is_uri(location):
            return open_registry(location), location.rstrip("/")
        root, shown = self.project_path("registry")
        return open_registry(root), shown

    def decisions(self) -> list[dict[str, Any]]:
        """The gate decisions this step is ordered after; all must have passed."""
        # such an input is named by the gate's node id
        found = [
            read_record(path, "decision")
            for name, path in sorted(self.inputs.items())
            if (parsed := parse_node_id(name)) is not None and parsed[0] is StepKind.GATE
        ]
        for decision in found:
            raise_if_failed(decision)
        return found


def _ingest(step: _Step) -> dict[str, Any]:
    params = cast(IngestParams, step.params)
    source = str(params["source"])
    if params.get("format") == "sql":
        frames, sources = {}, {}
        for table in params.get("tables") or []:
            frames[table], meta = read_dataset(step.input(table))
            sources.update(meta["sources"])
        df = run_sql(str(params["sql"]), frames, source)
    elif is_uri(str(params["path"])):
        df, digest = load_uri(
            str(params["path"]), str(params.get("format")), source, params.get("csv")
        )
        sources = {source: digest}
    else:
        path, _ = step.project_path("path")
        df = load_file(path, str(params.get("format")), source, params.get("csv"))
        sources = {source: sha256_file(path)}
    meta = write_dataset(step.output("dataset"), df, sources)
    return {"rows": meta["rows"], "columns": len(meta["columns"])}


def _validate(step: _Step) -> dict[str, Any]:
    params = cast(ValidateParams, step.params)
    df, meta = read_dataset(step.input("dataset"))
    df, report = validate_frame(
        df,
        params["schema"],
        str(params["source"]),
        str(params["on_invalid"]),
        step.ctx.project_root,
    )
    write_record(step.output("report"), "report", report)
    raise_if_invalid(report)
    write_dataset(step.output("dataset"), df, meta["sources"])
    return {"rows": len(df), "passed": report["passed"], "failures": len(report["failures"])}


def _split(step: _Step) -> dict[str, Any]:
    df, meta = read_dataset(step.input("dataset"))
    if step.params.get("sample_rows") is not None:
        # sampled after joins and checks, so a dev run still joins and validates all rows
        df = sample_rows(df, int(step.params["sample_rows"]), int(step.params.get("seed") or 0))
    train, test = split_frame(df, step.params)
    write_dataset(step.output("train"), train, meta["sources"])
    write_dataset(step.output("test"), test, meta["sources"])
    return {"rows": len(df), "train_rows": len(train), "test_rows": len(test)}


def _features(step: _Step) -> dict[str, Any]:
    df, meta = read_dataset(step.input("train"))
    state = fit_features(df, step.params)
    write_record(step.output("transformer"), "transformer", state)
    write_dataset(step.output("train"), apply_features(df, state), meta["sources"])
    return {"rows": len(df), "model_inputs": len(state["output_columns"])}


def _tune(step: _Step) -> dict[str, Any]:
    from .tune import study_name, tune

    params = cast(TuneParams, step.params)
    df, meta = read_dataset(step.input("train"))
    state = read_record(step.input("transformer"), "transformer")
    storage = step.project_path("storage")[0] if params.get("storage") else None
    name = study_name(params, {"train": meta["sha256"], "transformer": state})
    record, timings = tune(
        df, state, params, name=name, storage=storage, num_threads=step.ctx.num_threads
    )
    write_record(step.output("tuning"), "tuning", record)
    # the run record keeps the trial history; the seconds say what the search cost
    return {
        "metric": record["metric"],
        "best": record["best"],
        "finished": record["finished"],
        "resumed_from": record["resumed_from"],
        "stopped": record["stopped"],
        "trials": [
            {k: t.get(k) for k in ("number", "state", "value", "params")} for t in record["trials"]
        ],
        "seconds": round(timings["seconds"], 3),
        "lightgbm_seconds": round(timings["lightgbm_seconds"], 3),
    }


def _train(step: _Step) -> dict[str, Any]:
    df, meta = read_dataset(step.input("train"))
    state = read_record(step.input("transformer"), "transformer")
    training_data = {"sha256": meta["sha256"], "sources": meta["sources"]}
    tuning = read_record(step.input("tuning"), "tuning") if "tuning" in step.inputs else None
    _, bundle = train_model(
        df,
        state,
        step.params,
        num_threads=step.ctx.num_threads,
        training_data=training_data,
        tuning=tuning,
    )
    write_model(step.output("model"), bundle)
    return {
        "rows": bundle.meta["training_data"]["rows"],
        "best_iteration": bundle.meta["best_iteration"],
        "model_sha256": bundle.sha256,
    }


def _evaluate(step: _Step) -> dict[str, Any]:
    bundle = read_model(step.input("model"))
    df, _ = read_dataset(step.input("test"))
    threads = step.ctx.num_threads
    found = predictions(bundle, df, step.params.get("slices") or [], num_threads=threads)
    validation = None
    if "train" in step.inputs:
        validation = validation_scores(bundle, read_dataset(step.input("train"))[0], threads)
    metrics = metrics_of(found, step.params, validation)
    write_record(step.output("metrics"), "metrics", metrics)
    write_record(
        step.output("diagnosis"), "diagnosis", diagnose(bundle, found, num_threads=threads)
    )
    return {"rows": metrics["rows"], "metrics": metrics["overall"]}


def _gate(step: _Step) -> dict[str, Any]:
    params = cast(GateParams, step.params)
    metrics = read_record(step.input("metrics"), "metrics")
    production = None
    relative = any(check.get("max_drop") is not None for check in params.get("checks") or [])
    if relative and params.get("registered_name"):
        registry, _ = step.registry()
        alias = str(params.get("compare_alias") or "production")
        production = registry.production_metrics(str(params["registered_name"]), alias)
    decision = evaluate_gate(metrics, params, production)
    write_record(step.output("decision"), "decision", decision)
    raise_if_failed(decision)
    return {"decision": decision}


def _register(step: _Step) -> dict[str, Any]:
    params = cast(RegisterParams, step.params)
    decisions = step.decisions()
    bundle = read_model(step.input("model"))
    metrics = read_record(step.input("metrics"), "metrics")
    registry, shown_root = step.registry()
    name = str(params["registered_name"])
    alias = params.get("alias")
    training_rows, _ = read_dataset(step.input("reference"))
    # kept with the version, so a later run's report can draw production's curves
    diagnosis = (
        read_record(step.inputs["diagnosis"], "diagnosis") if "diagnosis" in step.inputs else None
    )
    version = registry.register(
        name,
        bundle,
        metrics,
        decisions=decisions,
        plan_fingerprint=step.ctx.fingerprint,
        alias=alias,
        reference=parquet_bytes(reference_sample(training_rows, bundle.meta)),
        run_id=step.ctx.run_id,
        diagnosis=diagnosis,
    )
    registration = {
        "model_name": name,
        "version": version.version,
        "uri": f"{shown_root}/{name}/versions/{version.version}",
        "alias": alias,
        "model_sha256": bundle.sha256,
    }
    write_record(step.output("registration"), "registration", registration)
    # created: False when the same model.txt was registered already, by an earlier run
    return {
        "model_name": name,
        "version": version.version,
        "alias": alias,
        "created": version.created,
    }


def _score(step: _Step) -> dict[str, Any]:
    step.decisions()
    bundle = read_model(step.input("model"))
    df, _ = read_dataset(step.input("dataset"))
    path, relative = step.project_path("output")
    fmt = output_format(relative, step.params.get("format"))
    frame = score_frame(bundle, df, step.params.get("id_columns") or [], step.ctx.num_threads)
    digest = write_table(frame, path, fmt)
    write_record(step.output("file"), "file", {"path": relative, "sha256": digest})
    return {"rows": len(frame), "output": relative}


def _kserve(step: _Step) -> dict[str, Any]:
    registration = read_record(step.input("registration"), "registration")
    path, relative = step.project_path("output")
    manifest = render(step.params, int(registration["version"])).encode("utf-8")
    digest = atomic_write_bytes(path, manifest)
    write_record(step.output("file"), "file", {"path": relative, "sha256": digest})
    return {"output": relative, "version": registration["version"]}


def _monitor(step: _Step) -> dict[str, Any]:
    params = cast(MonitorParams, step.params)
    registry, _ = step.registry()
    log_dir = None
    window = (params.get("current") or {}).get("prediction_log")
    if window:
        log_dir = resolve_project_path(
            step.ctx.project_root,
            str(window["path"]),
            "monitor prediction_log",
            outside_allowed=bool(params.get("outside_project")),
        )
    inputs = {name: read_dataset(path)[0] for name, path in step.inputs.items()}
    drift, decision = monitor(params, registry, inputs, log_dir, step.ctx.num_threads)
    write_record(step.output("drift"), "drift", drift)
    write_record(step.output("decision"), "decision", decision)
    # the report where people and schedulers look for it, outside any orchestrator's store
    path, relative = step.project_path("report")
    report = dumps_json({"decision": decision, "drift": drift}).encode("utf-8")
    return {
        "version": decision["version"],
        "rows": decision["rows"],
        "passed": decision["passed"],
        "retrain": decision["retrain"],
        "report": relative,
        "report_sha256": atomic_write_bytes(path, report),
    }


# How each kind runs; tests check that every StepKind has its function.
STEPS: dict[StepKind, Callable[[_Step], dict[str, Any]]] = {
    StepKind.INGEST: _ingest,
    StepKind.VALIDATE: _validate,
    StepKind.SPLIT: _split,
    StepKind.FEATURES: _features,
    StepKind.TUNE: _tune,
    StepKind.TRAIN: _train,
    StepKind.EVALUATE: _evaluate,
    StepKind.GATE: _gate,
    StepKind.REGISTER: _register,
    StepKind.SCORE: _score,
    StepKind.KSERVE: _kserve,
    StepKind.MONITOR: _monitor,
}


def run_step(
    kind: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, Path],
    outputs: Mapping[str, Path],
    ctx: StepContext,
) -> StepResult:
    """Run one plan node: read `inputs`, compute, write `outputs` (artifact directories)."""
    if kind not in STEP_KINDS:
        hint = did_you_mean(kind, STEP_KINDS)
        raise UsageError(f"unknown step kind '{kind}'" + (f" ({hint})" if hint else ""))
    events = None
    transport = ctx.trail.run.transport if ctx.trail is not None else None
    if ctx.trail is not None:
        from .trail.events import StepEvents
        from .trail.sink import emit

        node = ctx.trail.plan_node(kind, params)
        events = StepEvents(ctx.trail, node, ctx.project_root, inputs, outputs)
        emit(ctx.project_root, events.start(), transport)
    started = time.perf_counter()
    try:
        with project(ctx.project_root):
            summary = json_safe(STEPS[StepKind(kind)](_Step(kind, params, inputs, outputs, ctx)))
    except Exception as exc:
        # a kill or Ctrl-C sends nothing: the step's START without an end is the record of
        # a step that never finished
        if events is not None:
            code = exc.exit_code if isinstance(exc, MlcompileError) else ExitCode.BACKEND_FAILED
            message = (
                exc.message if isinstance(exc, MlcompileError) else f"{type(exc).__name__}: {exc}"
            )
            detail = {"error": message, "exit_code": int(code), "seconds": _since(started)}
            emit(ctx.project_root, events.end(StepStatus.FAILED, detail), transport)
        raise
    if events is not None:
        detail = {"summary": summary, "seconds": _since(started)}
        emit(ctx.project_root, events.end(StepStatus.RAN, detail), transport)
    return StepResult(kind, summary)


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
