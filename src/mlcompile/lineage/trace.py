"""Walk back from a registered model version to the raw files it was trained on.

registry version -> the run whose register step created it -> that run's plan nodes (the
register node's ancestors) -> store entries (params, hashes, checks, metrics, decisions)
-> raw files with their sha256.

A run record does not hold its plan. The plan is taken from `<run dir>/plan.json` when the
run stored one, else from `<project>/build/plan.json` when that plan is the one the run
executed (same name, spec hash and nodes). Without either, the walk still reaches the raw
files through the store's metadata (model.json names its training data and source
hashes), but lists the steps by naming convention only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlcompile.lineage.runs import all_runs
from mlcompile.plan import Node, Plan, parse_node_id
from mlcompile.runtime.registry import ModelRegistry, replay_aliases
from mlcompile.runtime.runrecord import RunRecord
from mlcompile.runtime.trail.records import (
    artifact_facts,
    data_checks,
    output_dir,
    read_artifact,
    read_json,
)


def split_ref(ref: str) -> tuple[str, str | None]:
    name, _, version = ref.partition("@")
    return name, version or None


def registry_history(registry: ModelRegistry, name: str) -> list[dict[str, Any]]:
    """Who registered and promoted what of a model, and when; [] for a model never
    registered there (a run whose gate failed has nothing in the registry)."""
    return registry.history(name) if name in registry.list_models() else []


def producing_run(
    records: list[RunRecord],
    runs_dir: Path,
    store: Path,
    name: str,
    version: int,
    registration: Mapping[str, Any],
) -> tuple[RunRecord, str] | None:
    """The run whose register step produced `name` v`version`, and that step's id.

    The version's registration names the run that created it: that run and no other, even
    when it was killed before it finished (and None when its record is gone). A version
    registered without a run id (by an older mlcompile) is matched by the runs' register
    steps: one that created the version wins over later runs
    that found it cached or already registered. Runs registering into another registry (a CI
    profile's) can report the same name and version: the registered model's hash, where the
    store still has it, tells them apart.
    """
    creator = registration.get("run_id")
    if creator:
        for record in records:
            if record["id"] == creator:
                node_id = _register_node(record, runs_dir, name)
                return (record, node_id) if node_id else None
        return None
    model_sha256 = registration.get("model_sha256")
    fallback = None
    for record in records:
        for node_id, step in sorted(record["steps"].items()):
            summary = step.get("summary") or {}
            if not node_id.startswith("register:") or summary.get("model_name") != name:
                continue
            if summary.get("version") != version:
                continue
            where = output_dir(record, node_id, "registration", store)
            registered = read_artifact(where, "registration") or {}
            if registered.get("model_sha256", model_sha256) != model_sha256:
                continue
            if step.get("status") == "ran" and summary.get("created", True):
                return record, node_id
            fallback = fallback or (record, node_id)
    return fallback


def _register_node(record: Mapping[str, Any], runs_dir: Path, name: str) -> str | None:
    """The id of the step of `record` that registers `name`: by its summary, or, for a step
    that never finished, by the run's plan."""
    for node_id, step in sorted(record["steps"].items()):
        if (
            node_id.startswith("register:")
            and (step.get("summary") or {}).get("model_name") == name
        ):
            return str(node_id)
    plan, _ = plan_for_run(record, runs_dir)
    for node in plan.nodes if plan is not None else ():
        if node.kind == "register" and node.params.get("registered_name") == name:
            return node.id
    return None


def plan_for_run(
    record: Mapping[str, Any], runs_dir: Path, project_root: Path | None = None
) -> tuple[Plan | None, str]:
    """The plan a run executed, and where it was found ("run", "build" or "none"). A run
    known from events only has no folder: its plan is the build's, if it is the same."""
    stored = runs_dir / str(record.get("id")) / "plan.json"
    if stored.is_file():
        return Plan.from_json(stored.read_text(encoding="utf-8")), "run"
    root = record.get("project_root") or project_root or "."
    built = Path(str(root)) / "build" / "plan.json"
    data = read_json(built)
    if isinstance(data, dict) and data.get("spec_sha256") == record.get("spec_sha256"):
        plan = Plan.from_dict(data)
        # a run known from events lists the steps that started only
        if plan.name == record.get("plan") and set(record["steps"]) <= {n.id for n in plan.nodes}:
            return plan, "build"
    return None, "none"


def ancestors(plan: Plan, node_id: str) -> list[Node]:
    """`node_id` and every node it depends on, in execution order."""
    wanted, todo = set(), [node_id]
    while todo:
        current = todo.pop()
        if current not in wanted:
            wanted.add(current)
            todo += plan.dependencies(current)
    return [n for n in plan.topological() if n.id in wanted]


def params_summary(kind: str, params: Mapping[str, Any]) -> str:
    """The parameters an auditor reads, on one line: long SQL and schemas are abbreviated."""
    parts = []
    for key, value in sorted(params.items()):
        if value is None or key in ("registry",):
            continue
        if key == "schema" and isinstance(value, Mapping):
            columns = value.get("columns")
            shown = (
                f"{value.get('name')} ({len(columns)} columns)" if columns else value.get("file")
            )
        elif key == "features" and isinstance(value, list):
            # a features step lists specs; a monitor lists the model inputs it watches
            shown = ", ".join(
                f"{f.get('name')}={f.get('op')}" if isinstance(f, Mapping) else str(f)
                for f in value
            )
        elif key == "checks" and isinstance(value, list):
            shown = "; ".join(str(c.get("text", c)) for c in value)
        elif key == "sql":
            shown = " ".join(str(value).split())[:80] + ("…" if len(str(value)) > 80 else "")
        elif isinstance(value, Mapping):
            shown = ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
            shown = "{" + shown + "}"
        else:
            shown = str(value) if not isinstance(value, list) else ", ".join(map(str, value))
        parts.append(f"{key}={shown}")
    return "; ".join(parts)


def trace_model(
    registry: ModelRegistry,
    runs_dir: Path,
    ref: str,
    store_dir: Path | None = None,
    project_root: Path | None = None,
) -> dict[str, Any]:
    """Everything known about how MODEL[@version|alias] came to be, as plain JSON data: from
    the run records and the events of whichever backend ran it."""
    name, asked = split_ref(ref)
    history = registry.history(name)
    aliases = replay_aliases(history)
    if asked is None:
        # MODEL alone: its production version, else its latest
        asked = str(aliases.get("production") or max(registry.versions(name), default=0))
    chosen = registry.get(name, asked)
    version, registration = chosen.version, chosen.registration
    model_meta = read_json(chosen.path / "model.json") or {}
    training = registration.get("training_data") or model_meta.get("training_data") or {}
    found: dict[str, Any] = {
        "model": name,
        "version": version,
        "aliases": sorted(a for a, v in aliases.items() if int(v) == version),
        "model_sha256": registration.get("model_sha256"),
        "registered_at": registration.get("created_at"),
        "registered_by": registration.get("user"),
        "training_data": training,
        "train_params": {
            k: model_meta.get(k)
            for k in ("task", "target", "params", "num_boost_round", "feature_names")
            if k in model_meta
        },
        "metrics": read_json(chosen.path / "metrics.json"),
        "gates": registration.get("gates") or [],
        "history": [e for e in history if _about(e, version)],
        "run": None,
        "plan_source": "none",
        "steps": [],
        "raw_files": [
            {"source": s, "sha256": h, "path": None}
            for s, h in sorted((training.get("sources") or {}).items())
        ],
    }
    store = store_dir or runs_dir.parent / "store"
    root = project_root or runs_dir.parent.parent
    produced = producing_run(all_runs(runs_dir, root), runs_dir, store, name, version, registration)
    if produced is None:
        return found
    record, register_id = produced
    found["run"] = {
        k: record.get(k)
        for k in ("id", "backend", "status", "started_at", "spec_sha256", "project_root")
    }
    plan, found["plan_source"] = plan_for_run(record, runs_dir, root)
    if plan is not None:
        nodes: list[tuple[str, str, dict[str, Any], dict[str, str]]] = [
            (n.id, n.kind, dict(n.params), dict(n.outputs)) for n in ancestors(plan, register_id)
        ]
        paths = {
            str(n.params["source"]): str(n.params["path"])
            for n in plan.nodes
            if n.kind == "ingest" and "path" in n.params
        }
        for raw in found["raw_files"]:
            raw["path"] = paths.get(raw["source"])
    else:
        nodes = _steps_by_convention(record, store, register_id, registration, training)
    found["steps"] = [_step(record, store, *node) for node in nodes]
    return found


def _about(event: Mapping[str, Any], version: int) -> bool:
    return version in (event.get("version"), event.get("to_version"), event.get("from_version"))


def _steps_by_convention(
    record: Mapping[str, Any],
    store: Path,
    register_id: str,
    registration: Mapping[str, Any],
    training: Mapping[str, Any],
) -> list[tuple[str, str, dict[str, Any], dict[str, str]]]:
    """Without a plan: the register step, the train step that made this model (by its
    model hash), that model's split/features/evaluate steps and its gates, and the
    ingest/validate steps whose data descends only from the model's raw files."""
    steps = record["steps"]
    model = next(
        (
            node_id.split(":", 1)[1]
            for node_id, step in steps.items()
            if node_id.startswith("train:")
            and (step.get("summary") or {}).get("model_sha256") == registration.get("model_sha256")
        ),
        None,
    )
    sources = dict(training.get("sources") or {})
    picked: list[tuple[str, str, dict[str, Any], dict[str, str]]] = []
    for node_id in sorted(steps):
        kind, _, node_name = node_id.partition(":")
        outputs = _OUTPUTS.get(kind, {})
        if kind in ("ingest", "validate"):
            facts = artifact_facts(output_dir(record, node_id, "dataset", store), "dataset")
            from_sources = facts.get("sources") or {}
            if not from_sources or any(sources.get(s) != h for s, h in from_sources.items()):
                continue
        elif kind == "gate":
            if node_name not in {g.get("gate") for g in registration.get("gates") or []}:
                continue
        elif kind in ("split", "features", "train", "evaluate"):
            if node_name != model:
                continue
        elif node_id != register_id:
            continue
        picked.append((node_id, kind, {}, outputs))
    order = ["ingest", "validate", "split", "features", "train", "evaluate", "gate", "register"]
    return sorted(picked, key=lambda p: (order.index(p[1]), p[0]))


# The outputs of each step kind (docs/internals/steps.md), for walking without a plan.
_OUTPUTS: dict[str, dict[str, str]] = {
    "ingest": {"dataset": "dataset"},
    "validate": {"dataset": "dataset", "report": "report"},
    "split": {"train": "dataset", "test": "dataset"},
    "features": {"train": "dataset", "transformer": "transformer"},
    "train": {"model": "model"},
    "evaluate": {"metrics": "metrics"},
    "gate": {"decision": "decision"},
    "register": {"registration": "registration"},
}


def _step(
    record: Mapping[str, Any],
    store: Path,
    node_id: str,
    kind: str,
    params: dict[str, Any],
    outputs: Mapping[str, str],
) -> dict[str, Any]:
    step = record["steps"].get(node_id) or {}
    found: dict[str, Any] = {
        "id": node_id,
        "kind": kind,
        "status": step.get("status"),
        "params": params_summary(kind, params) if params else None,
        "summary": step.get("summary"),
        "outputs": {},
    }
    # what the step's events said it wrote, for a run whose artifacts are not on this machine
    sent = step.get("datasets") or {}
    for output, artifact_type in sorted(outputs.items()):
        where = output_dir(record, node_id, output, store)
        facts = artifact_facts(where, artifact_type) or sent.get(output, {})
        found["outputs"][output] = {k: facts[k] for k in ("sha256", "rows") if k in facts}
        document = read_artifact(where, artifact_type)
        if artifact_type == "report" and document is not None:
            found["checks"] = data_checks(params, document)
        elif artifact_type == "metrics" and document is not None:
            found["metrics"] = document
        elif artifact_type == "decision" and document is not None:
            found["decision"] = document
    parsed = parse_node_id(node_id)
    name = parsed[1] if parsed else node_id
    if "checks" not in found and step.get("checks") is not None:
        found["checks"] = step["checks"]
    if "metrics" in outputs.values() and "metrics" not in found:
        found["metrics"] = (record.get("metrics") or {}).get(name)
    if "decision" in outputs.values() and "decision" not in found:
        found["decision"] = (record.get("decisions") or {}).get(name)
    return {k: v for k, v in found.items() if v is not None or k in ("params", "summary", "status")}
