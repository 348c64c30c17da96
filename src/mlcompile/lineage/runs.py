"""Runs read back from the OpenLineage events their steps sent, whichever backend ran them.

The project log (`.mlcompile/lineage/runs.jsonl`) holds every step's START and COMPLETE or
FAIL event, and the pipeline-level events of the runs driven from this machine. Step events
name their pipeline run in the ParentRunFacet; grouping by it gives one `RunRecord` per run,
in the run record's shape, so `runs`, `report` and `lineage` read a kfp or ZenML run the way
they read a local one. A local run also has its run.json, which knows more (cache keys, the
store): a local run is read from its run.json only.

A run whose pipeline sent no end event and has steps started but not ended is unfinished: it
is still going, or its process was killed. A last line cut by a kill is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlcompile.plan import parse_node_id
from mlcompile.runtime.runrecord import (
    RUN_FORMAT,
    RunError,
    RunRecord,
    RunStatus,
    StepOutcome,
    StepStatus,
)
from mlcompile.runtime.trail.records import load_runs
from mlcompile.runtime.trail.sink import log_path


def read_events(project_root: Path) -> list[dict[str, Any]]:
    """Every whole, readable event of the project's log, in the order written."""
    try:
        lines = log_path(project_root).read_bytes().split(b"\n")[:-1]
    except OSError:
        return []
    found = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and isinstance(event.get("run"), dict):
            found.append(event)
    return found


def runs_from_events(events: Iterable[Mapping[str, Any]]) -> list[RunRecord]:
    """One record per pipeline run the events tell of, oldest first."""
    groups: dict[str, _Run] = {}
    for event in events:
        facets = event["run"].get("facets") or {}
        parent = (facets.get("parent") or {}).get("run", {}).get("runId")
        key = str(parent or event["run"].get("runId"))
        run = groups.setdefault(key, _Run())
        if parent:
            run.step(event, facets)
        else:
            run.pipeline(event, facets)
    records = [run.record() for run in groups.values() if run.id]
    return sorted(records, key=lambda r: str(r["started_at"]))


def all_runs(runs_dir: Path, project_root: Path) -> list[RunRecord]:
    """The run records in `runs_dir`, and the runs known only from events, oldest first."""
    # a local run's record is its run.json, wherever --runs-dir or the spec put it
    recorded = load_runs(runs_dir)
    found = recorded + [
        r for r in runs_from_events(read_events(project_root)) if r["backend"] != "local"
    ]
    return sorted(found, key=lambda r: str(r["started_at"] or r["id"]))


class _Run:
    def __init__(self) -> None:
        self.id = ""
        self.plan = ""
        self.backend = "?"
        self.times: list[str] = []
        self.end: Mapping[str, Any] | None = None
        self.ended_at: str | None = None
        self.steps: dict[str, StepOutcome] = {}
        self.metrics: dict[str, Any] = {}
        self.decisions: dict[str, Any] = {}

    def pipeline(self, event: Mapping[str, Any], facets: Mapping[str, Any]) -> None:
        self.times.append(str(event.get("eventTime")))
        self.plan = self.plan or str(event["job"]["name"])
        outcome = facets.get("mlcompile_run")
        if event.get("eventType") != "START" and isinstance(outcome, Mapping):
            self.end, self.ended_at = outcome, str(event.get("eventTime"))
            self.id = self.id or str(outcome.get("runRecord"))
            self.backend = str(outcome.get("backend") or self.backend)

    def step(self, event: Mapping[str, Any], facets: Mapping[str, Any]) -> None:
        self.times.append(str(event.get("eventTime")))
        step = facets.get("mlcompile_step") or {}
        self.id = self.id or str(step.get("runRecord") or "")
        self.backend = str(step.get("backend") or self.backend)
        self.plan = self.plan or str(facets["parent"]["job"]["name"])
        node = str(event["job"]["name"])
        parsed = parse_node_id(node)
        kind, name = (str(parsed[0]), parsed[1]) if parsed else (str(step.get("kind")), node)
        try:
            status = StepStatus(str(step.get("status")))
        except ValueError:
            status = StepStatus.NOT_RUN
        outcome: StepOutcome = {"status": status}
        for field, key in (("seconds", "seconds"), ("summary", "summary")):
            if step.get(field) is not None:
                outcome[key] = step[field]  # type: ignore[literal-required]
        if step.get("cacheKey"):
            outcome["key"] = str(step["cacheKey"])
        if step.get("exitCode") is not None:
            outcome["exit_code"] = int(step["exitCode"])
        if "errorMessage" in facets:
            outcome["error"] = str(facets["errorMessage"].get("message"))
        if event.get("eventType") != "START":
            outcome["datasets"] = _datasets(event)
            checks = _assertions(event)
            if checks is not None:
                outcome["checks"] = checks
        self.steps[node] = outcome
        if "mlcompile_metrics" in facets:
            metrics = dict(facets["mlcompile_metrics"])
            self.metrics[name] = {k: metrics.get(k) for k in ("task", "rows", "overall", "slices")}
        for decision in ("mlcompile_gate", "mlcompile_monitor"):
            if decision in facets:
                found = {k: v for k, v in facets[decision].items() if not k.startswith("_")}
                self.decisions[name] = {**found, "kind": kind}

    def record(self) -> RunRecord:
        end = self.end or {}
        statuses = {s["status"] for s in self.steps.values()}
        if end:
            try:
                status = RunStatus(str(end.get("status")))
            except ValueError:
                status = RunStatus.FAILED
        elif StepStatus.STARTED in statuses:
            status = RunStatus.UNFINISHED
        else:
            status = RunStatus.FAILED if StepStatus.FAILED in statuses else RunStatus.SUCCEEDED
        failed = sorted(n for n, s in self.steps.items() if s["status"] == StepStatus.FAILED)
        exit_code = end.get("exitCode")
        if exit_code is None and failed:
            exit_code = self.steps[failed[0]].get("exit_code")
        error: RunError | None = None
        if isinstance(end.get("error"), Mapping):
            error = {"node": end["error"].get("node"), "message": str(end["error"].get("message"))}
        elif failed:
            error = {"node": failed[0], "message": self.steps[failed[0]].get("error", "failed")}
        started = min(self.times) if self.times else None
        return {
            "format": RUN_FORMAT,
            "id": self.id,
            "plan": self.plan,
            "backend": self.backend,
            "spec_sha256": end.get("specSha256"),
            "project_root": None,
            "pid": None,
            "host": None,
            "started_at": started,
            "finished_at": self.ended_at,
            "seconds": _seconds(
                started, self.ended_at or (max(self.times) if self.times else None)
            ),
            "status": status,
            "exit_code": None if exit_code is None else int(exit_code),
            "error": error,
            "jobs": None,
            "store": None,
            "steps": dict(sorted(self.steps.items())),
            "metrics": self.metrics,
            "decisions": self.decisions,
        }


def _datasets(event: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What the step wrote, by output name: content facts and where it was written."""
    found = {}
    prefix = f"artifacts/{event['job']['name']}/"
    for dataset in event.get("outputs") or []:
        name = str(dataset.get("name"))
        artifact = (dataset.get("facets") or {}).get("mlcompile_artifact") or {}
        if name.startswith(prefix) and artifact:
            keep = ("sha256", "rows", "sources", "location")
            found[name[len(prefix) :]] = {k: artifact[k] for k in keep if artifact.get(k)}
    return found


def _assertions(event: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    for dataset in event.get("inputs") or []:
        facet = (dataset.get("inputFacets") or {}).get("dataQualityAssertions")
        if facet:
            return [
                {
                    "assertion": a.get("assertion"),
                    "column": a.get("column"),
                    "rule": a.get("description"),
                    "success": bool(a.get("success")),
                    "severity": a.get("severity"),
                }
                for a in facet.get("assertions") or []
            ]
    return None


def _seconds(start: str | None, end: str | None) -> float:
    import datetime as dt

    if not start or not end:
        return 0.0
    try:
        delta = dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)
    except ValueError:
        return 0.0
    return round(delta.total_seconds(), 3)
