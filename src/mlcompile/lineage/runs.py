"""Run-time lineage: OpenLineage RunEvents from a run record and the store it points at.

Each executed or cached step gives a START and a COMPLETE (or FAIL) event, with the content
hash of every dataset it read and wrote as the dataset's version, data-quality assertions
from validation reports, and mlcompile facets for metrics, gate decisions and registrations.
The pipeline run is the parent of its step runs. Steps that never started (skipped after a
failure) give no event: OpenLineage has no state for "did not run".

Run ids are UUIDs derived from the run record's id and the node id, so regenerating the
events of a run gives the same ids (and a lineage server deduplicates them).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcompile.lineage import names
from mlcompile.lineage.build import git_commit
from mlcompile.lineage.records import artifact_facts, data_checks, output_dir, read_artifact
from mlcompile.plan import Node, Plan
from mlcompile.runtime.artifacts import sha256_file

if TYPE_CHECKING:
    from openlineage.client.event_v2 import InputDataset, OutputDataset, RunEvent
    from openlineage.client.facet_v2 import DatasetFacet, RunFacet

RUNS_FILE = "runs.jsonl"


def run_uuid(plan_name: str, record_id: str, node_id: str | None = None) -> str:
    path = f"{names.namespace(plan_name)}/runs/{record_id}" + (f"/{node_id}" if node_id else "")
    return str(uuid.uuid5(uuid.NAMESPACE_URL, path))


def run_events(
    plan: Plan, record: Mapping[str, Any], store_dir: Path, project_root: Path
) -> list[str]:
    """The run's OpenLineage events as compact JSON texts: the pipeline's START, each step's
    pair in plan order, the pipeline's COMPLETE, FAIL or ABORT (an interrupted run).

    `store_dir` and `project_root` locate artifacts; relative paths in the plan are taken
    relative to `project_root`.
    """
    from openlineage.client.serde import Serde

    context = _Context(plan, record, store_dir, project_root)
    events = [context.pipeline_event("START")]
    for node in plan.topological():
        step = record.get("steps", {}).get(node.id) or {}
        if step.get("status") in ("ran", "cached", "failed"):
            events += context.step_events(node, step)
    outcome = {"succeeded": "COMPLETE", "interrupted": "ABORT"}.get(str(record.get("status")))
    events.append(context.pipeline_event(outcome or "FAIL"))
    return [Serde.to_json(event) for event in events]


def append_run_events(lineage_dir: Path, events: Sequence[str]) -> Path:
    """Append events to `lineage_dir/runs.jsonl` in one write(2) with O_APPEND.

    One write of whole lines means concurrent runs interleave whole batches, never parts of
    lines (on local file systems, where O_APPEND writes are atomic with respect to each other).
    """
    lineage_dir.mkdir(parents=True, exist_ok=True)
    path = lineage_dir / RUNS_FILE
    data = "".join(event.rstrip("\n") + "\n" for event in events).encode("utf-8")
    if not data:
        return path
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:  # a short write (signal, full disk) continues rather than cut a line
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


class _Context:
    def __init__(
        self, plan: Plan, record: Mapping[str, Any], store_dir: Path, project_root: Path
    ) -> None:
        self.plan = plan
        self.record = record
        self.store = store_dir
        self.root = project_root
        self.space = names.namespace(plan.name)
        self.started = _parse_time(str(record.get("started_at")))

    # ---- times and ids ------------------------------------------------------------------

    def at(self, offset: Any) -> str:
        seconds = float(offset) if isinstance(offset, int | float) else 0.0
        moment = self.started + dt.timedelta(seconds=seconds)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def pipeline_event(self, state: str) -> RunEvent:
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

        from mlcompile.lineage.facets import PRODUCER, MlcompilePipelineRunFacet

        facets: dict[str, RunFacet] = {}
        when = self.at(0)
        if state != "START":
            finished = _parse_time(str(self.record.get("finished_at") or self.record["started_at"]))
            when = finished.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            facets["mlcompile_run"] = MlcompilePipelineRunFacet(
                runRecord=str(self.record["id"]),
                status=str(self.record.get("status")),
                exitCode=int(self.record.get("exit_code") or 0),
                specSha256=str(self.record.get("spec_sha256") or self.plan.spec_sha256),
                error=self.record.get("error"),
                gitCommit=git_commit(self.root),
                producer=PRODUCER,
            )
        return RunEvent(
            eventType=RunState[state],
            eventTime=when,
            producer=PRODUCER,
            run=Run(runId=run_uuid(self.plan.name, str(self.record["id"])), facets=facets),
            job=Job(namespace=self.space, name=self.plan.name),
        )

    # ---- one step -----------------------------------------------------------------------

    def step_events(self, node: Node, step: Mapping[str, Any]) -> list[RunEvent]:
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import parent_run

        from mlcompile.lineage.facets import PRODUCER, MlcompileStepRunFacet

        parent = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=run_uuid(self.plan.name, str(self.record["id"]))),
            job=parent_run.Job(namespace=self.space, name=self.plan.name),
            producer=PRODUCER,
        )
        status = str(step["status"])
        step_facet = MlcompileStepRunFacet(
            status=status,
            runRecord=str(self.record["id"]),
            cacheKey=step.get("key"),
            seconds=step.get("seconds"),
            summary=step.get("summary"),
            producer=PRODUCER,
        )
        run_id = run_uuid(self.plan.name, str(self.record["id"]), node.id)
        job = Job(namespace=self.space, name=node.id)
        start = RunEvent(
            eventType=RunState.START,
            eventTime=self.at(step.get("start")),
            producer=PRODUCER,
            run=Run(runId=run_id, facets={"parent": parent, "mlcompile_step": step_facet}),
            job=job,
            inputs=self.inputs(node, checked=False),
            outputs=[self.output(port, node, written=False) for port in names.writes(node)],
        )
        done_facets: dict[str, RunFacet] = {
            "parent": parent,
            "mlcompile_step": step_facet,
            **self.result_facets(node),
        }
        failed = status == "failed"
        if failed:
            from openlineage.client.facet_v2 import error_message_run

            done_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=str(step.get("error") or "failed"),
                programmingLanguage="python",
                producer=PRODUCER,
            )
        end = RunEvent(
            eventType=RunState.FAIL if failed else RunState.COMPLETE,
            eventTime=self.at(step.get("end", step.get("start"))),
            producer=PRODUCER,
            run=Run(runId=run_id, facets=done_facets),
            job=job,
            inputs=self.inputs(node, checked=True),
            outputs=[self.output(port, node, written=not failed) for port in names.writes(node)],
        )
        return [start, end]

    def inputs(self, node: Node, *, checked: bool) -> list[InputDataset]:
        """What the step read; `checked`: with the validation results (known at its end)."""
        from openlineage.client.event_v2 import InputDataset

        found = []
        checks = self.assertions(node) if checked and node.kind == "validate" else None
        for port in names.reads(node):
            facts = self.facts(port, node)
            input_facets: dict[str, Any] = {}
            if checks is not None and port.node is not None:
                input_facets["dataQualityAssertions"] = checks
            found.append(
                InputDataset(
                    namespace=self.space,
                    name=port.name,
                    facets=self.dataset_facets(port, facts),
                    inputFacets=input_facets,
                )
            )
        return found

    def output(self, port: names.Port, node: Node, *, written: bool) -> OutputDataset:
        from openlineage.client.event_v2 import OutputDataset
        from openlineage.client.facet_v2 import output_statistics_output_dataset as stats

        from mlcompile.lineage.facets import PRODUCER

        if not written:
            return OutputDataset(namespace=self.space, name=port.name)
        facts = self.facts(port, node)
        output_facets: dict[str, Any] = {}
        if "rows" in facts:
            output_facets["outputStatistics"] = stats.OutputStatisticsOutputDatasetFacet(
                rowCount=int(facts["rows"]), producer=PRODUCER
            )
        return OutputDataset(
            namespace=self.space,
            name=port.name,
            facets=self.dataset_facets(port, facts),
            outputFacets=output_facets,
        )

    def facts(self, port: names.Port, node: Node) -> dict[str, Any]:
        """Content facts of a dataset a step touches, wherever they are recorded."""
        if port.node is not None and port.output is not None:
            where = output_dir(self.record, port.node, port.output, self.store)
            return artifact_facts(where, port.type)
        if node.kind == "ingest":
            # The raw file's hash as the ingest step saw it: recorded in its output's meta.
            # A step that failed recorded nothing; events are made right after the run, so
            # the file on disk now is the best witness of what it read.
            meta = artifact_facts(
                output_dir(self.record, node.id, "dataset", self.store), "dataset"
            )
            digest = (meta.get("sources") or {}).get(str(node.params.get("source")))
            raw = self.root / str(node.params.get("path"))
            if digest is None and raw.is_file():
                digest = sha256_file(raw)
            return {"sha256": digest} if digest else {}
        if node.kind == "register":
            registration = read_artifact(
                output_dir(self.record, node.id, "registration", self.store), "registration"
            )
            if registration:
                return {
                    "version": str(registration.get("version")),
                    "sha256": registration.get("model_sha256"),
                }
            return {}
        written = read_artifact(output_dir(self.record, node.id, "file", self.store), "file")
        return {"sha256": written["sha256"]} if written and "sha256" in written else {}

    def dataset_facets(self, port: names.Port, facts: Mapping[str, Any]) -> dict[str, DatasetFacet]:
        from openlineage.client.facet_v2 import dataset_version_dataset, schema_dataset

        from mlcompile.lineage.facets import PRODUCER, MlcompileArtifactFacet

        facets: dict[str, DatasetFacet] = {}
        version = facts.get("version") or facts.get("sha256")
        if version:
            facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=str(version), producer=PRODUCER
            )
        facets["mlcompile_artifact"] = MlcompileArtifactFacet(
            artifactType=port.type,
            sha256=facts.get("sha256"),
            rows=facts.get("rows"),
            sources=facts.get("sources"),
            producer=PRODUCER,
        )
        columns = facts.get("columns")
        if isinstance(columns, Mapping) and columns:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(
                        name=str(name), type=str(dtype), ordinal_position=position
                    )
                    for position, (name, dtype) in enumerate(columns.items(), start=1)
                ],
                producer=PRODUCER,
            )
        return facets

    def assertions(self, node: Node) -> Any:
        from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq

        from mlcompile.lineage.facets import PRODUCER

        report = read_artifact(output_dir(self.record, node.id, "report", self.store), "report")
        if report is None:
            return None
        return dq.DataQualityAssertionsDatasetFacet(
            assertions=[
                dq.Assertion(
                    assertion=check["assertion"],
                    success=bool(check["success"]),
                    column=check["column"],
                    severity=check["severity"],
                    description=check["rule"],
                    actual=f"{check['failing_rows']} failing rows",
                )
                for check in data_checks(node.params, report)
            ],
            producer=PRODUCER,
        )

    def monitor_facet(self, node: Node, decision: Mapping[str, Any]) -> RunFacet:
        from mlcompile.lineage.facets import PRODUCER, MlcompileMonitorRunFacet

        drift = read_artifact(output_dir(self.record, node.id, "drift", self.store), "drift")
        return MlcompileMonitorRunFacet(
            monitor=str(decision.get("monitor", node.name)),
            model=str(decision.get("registered_name", "")),
            version=int(decision.get("version") or 0),
            rows=int(decision.get("rows") or 0),
            passed=bool(decision.get("passed")),
            retrain=bool(decision.get("retrain")),
            reason=str(decision.get("reason", "")),
            checks=list(decision.get("checks") or []),
            drift=_measures(drift) if isinstance(drift, Mapping) else None,
            producer=PRODUCER,
        )

    def result_facets(self, node: Node) -> dict[str, RunFacet]:
        from mlcompile.lineage.facets import (
            PRODUCER,
            MlcompileGateRunFacet,
            MlcompileMetricsRunFacet,
            MlcompileRegistrationRunFacet,
        )

        facets: dict[str, RunFacet] = {}
        for output, kind in node.outputs.items():
            document = read_artifact(output_dir(self.record, node.id, output, self.store), kind)
            if not isinstance(document, Mapping):
                continue
            if kind == "metrics":
                facets["mlcompile_metrics"] = MlcompileMetricsRunFacet(
                    model=node.name,
                    task=document.get("task"),
                    rows=document.get("rows"),
                    overall=dict(document.get("overall") or {}),
                    slices=dict(document.get("slices") or {}),
                    producer=PRODUCER,
                )
            elif kind == "decision" and node.kind == "monitor":
                facets["mlcompile_monitor"] = self.monitor_facet(node, document)
            elif kind == "decision":
                facets["mlcompile_gate"] = MlcompileGateRunFacet(
                    gate=str(document.get("gate", node.name)),
                    model=str(document.get("model", "")),
                    passed=bool(document.get("passed")),
                    checks=list(document.get("checks") or []),
                    producer=PRODUCER,
                )
            elif kind == "registration":
                facets["mlcompile_registration"] = MlcompileRegistrationRunFacet(
                    modelName=str(document.get("model_name")),
                    version=int(document.get("version") or 0),
                    modelSha256=document.get("model_sha256"),
                    alias=document.get("alias"),
                    producer=PRODUCER,
                )
        return facets


def _measures(drift: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("type", "psi", "ks", "ks_pvalue", "unseen", "missing")
    features = drift.get("features") or {}
    return {
        "features": {name: {k: m.get(k) for k in keep} for name, m in features.items()},
        "reference": drift.get("reference"),
        "current": drift.get("current"),
        "performance": (drift.get("performance") or {}).get("overall"),
    }


def _parse_time(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return dt.datetime.fromtimestamp(0, dt.UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
