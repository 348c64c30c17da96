"""Reading what the runtime left on disk: run records, store entries, registry folders.

Plain JSON and file hashing only, on purpose: an audit must not need pandas or LightGBM,
and must work on a copy of `.mlcompile/` taken off the machine that ran the pipeline.
The layouts are the runtime's (see `mlcompile.runtime.executor`, `.store`, `.registry`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# the runtime's artifact layout; its artifacts module imports nothing heavy at load time
from mlcompile.runtime.artifacts import RECORD_FILES, sha256_file
from mlcompile.runtime.runrecord import DONE, RUN_FILE, RunRecord, StepStatus, read_run
from mlcompile.runtime.trail.names import check_text


def read_json(path: Path) -> Any:
    """The JSON in `path`, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def load_runs(runs_dir: Path) -> list[RunRecord]:
    """Every readable run record, oldest first (run ids start with their UTC time); a run
    whose process died is read as interrupted, with the steps it finished."""
    found = []
    for path in sorted(runs_dir.glob(f"*/{RUN_FILE}")):
        record = read_run(path.parent)
        if record is not None:
            found.append(record)
    return found


def output_dir(
    record: Mapping[str, Any], node_id: str, output: str, store_dir: Path
) -> Path | None:
    """Where a step's output lives: its store entry, or what a failed step left behind."""
    step = record.get("steps", {}).get(node_id) or {}
    location = ((step.get("datasets") or {}).get(output) or {}).get("location")
    if location and Path(location).is_dir():
        return Path(location)  # an orchestrator's task folder, still on this machine
    if step.get("status") in DONE and step.get("key"):
        key = str(step["key"])
        return store_dir / "entries" / key[:2] / key / output
    if step.get("status") == StepStatus.FAILED and step.get("artifacts"):
        return Path(str(step["artifacts"])) / output
    return None


def read_artifact(path: Path | None, kind: str) -> Any:
    """The JSON document of a record artifact (metrics, decision, report...), or None."""
    if path is None or kind not in RECORD_FILES:
        return None
    return read_json(path / RECORD_FILES[kind])


def artifact_facts(path: Path | None, kind: str) -> dict[str, Any]:
    """Content facts of an artifact: sha256 (of its data file), rows, columns, sources.

    A dataset's meta.json already holds the hash of its Parquet file and of the raw files
    it descends from; a model is identified by its model.txt, a JSON artifact by its file.
    """
    if path is None or not path.is_dir():
        return {}
    if kind == "dataset":
        meta = read_json(path / "meta.json") or {}
        return {k: meta[k] for k in ("sha256", "rows", "columns", "sources") if k in meta}
    if kind == "model":
        meta = read_json(path / "model.json") or {}
        text = path / "model.txt"
        facts: dict[str, Any] = {"sha256": sha256_file(text)} if text.is_file() else {}
        training = meta.get("training_data") or {}
        if training.get("sources"):
            facts["sources"] = training["sources"]
        return facts
    document = path / RECORD_FILES.get(kind, "")
    if kind == "file":
        written = read_json(document) or {}
        return {k: written[k] for k in ("sha256", "path") if k in written}
    return {"sha256": sha256_file(document)} if document.is_file() else {}


def data_checks(
    params: Mapping[str, Any], report: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """Every rule a validate step enforced and whether the data passed it.

    Rules come from the plan (the schema's columns); results from the step's report, whose
    failures are matched to rules by column and check kind. A failure matching no declared
    rule (a pandera YAML schema, a missing column) is listed on its own.
    """
    report = report or {}
    failures = list(report.get("failures") or [])
    severity = (
        "error" if (report.get("on_invalid") or params.get("on_invalid")) == "fail" else "warn"
    )
    columns = (params.get("schema") or {}).get("columns") or {}
    found: list[dict[str, Any]] = []
    for column, rules in sorted(columns.items()):
        declared = [("dtype", f"dtype {rules['dtype']}")] if rules.get("dtype") else []
        if not rules.get("nullable"):
            declared.append(("nullable", "not null"))
        if rules.get("unique"):
            declared.append(("unique", "unique"))
        declared += [(str(r.get("check")), check_text(r)) for r in rules.get("checks") or []]
        for kind, text in declared:
            hits = [f for f in failures if f.get("column") == column and _kind(f) == kind]
            for hit in hits:
                failures.remove(hit)
            found.append(_check(kind, column, text, hits, severity))
    for failure in failures:
        found.append(
            _check(_kind(failure), failure.get("column"), failure["check"], [failure], severity)
        )
    if not columns and report:
        # The rules are not at hand (a pandera YAML schema, or no plan): one verdict for
        # the rules that no failure names.
        name = (params.get("schema") or {}).get("file") or report.get("schema") or "schema"
        rest = "every other rule" if found else "every rule"
        found.append(_check("schema", None, f"{rest} of schema {name}", [], severity))
    return found


def _kind(failure: Mapping[str, Any]) -> str:
    label = str(failure.get("check", ""))
    kind = label.split("(", 1)[0]
    return {"not_nullable": "nullable", "coerce": "dtype"}.get(kind, kind)


def _check(
    kind: str,
    column: str | None,
    text: str,
    failures: list[Mapping[str, Any]],
    severity: str,
) -> dict[str, Any]:
    return {
        "assertion": kind,
        "column": column,
        "rule": text,
        "success": not failures,
        "severity": severity,
        "failing_rows": sum(int(f.get("failing_rows") or 0) for f in failures),
        "examples": [e for f in failures for e in f.get("examples") or []][:5],
    }
