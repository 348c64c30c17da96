"""A step's OpenLineage run events, built where the step runs, from the artifacts it read and
wrote: content hashes as dataset versions, data-quality assertions from validation reports,
and mlcompile facets for metrics, gate and monitor decisions and registrations.

Run ids are UUIDs: the pipeline run's is the orchestrator's own when it is one, else derived
from the run's id; a step's is derived from the pipeline run's and the node id, so every
event of one step of one run carries the same id, whichever process sends it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcompile.plan import InputRef, Node, Plan, StepKind
from mlcompile.runtime.artifacts import sha256_file
from mlcompile.runtime.runrecord import StepStatus
from mlcompile.runtime.trail import names
from mlcompile.runtime.trail.records import artifact_facts, data_checks, read_artifact
from mlcompile.runtime.trail.sink import transport_of

if TYPE_CHECKING:
    from openlineage.client.event_v2 import InputDataset, OutputDataset, RunEvent
    from openlineage.client.facet_v2 import DatasetFacet, RunFacet


@dataclass(frozen=True)
class PipelineRun:
    """The pipeline run a step belongs to: the plan, the run's id (a local run record's id,
    or the orchestrator's run name) and, when the orchestrator has one, its run UUID."""

    plan: str
    id: str
    backend: str
    uuid: str | None = None
    # the plan's settings.lineage transport, as canonical JSON (see sink.transport_of)
    transport: str | None = None

    @classmethod
    def of(cls, plan: Plan, id: str, backend: str, uuid: str | None = None) -> PipelineRun:
        """The run of `plan`, sending where its settings.lineage says."""
        return cls(plan.name, id, backend, uuid, transport_of(plan.settings))

    @property
    def run_uuid(self) -> str:
        if self.uuid and _is_uuid(self.uuid):
            return self.uuid
        return run_uuid(self.plan, self.id)

    def step_uuid(self, node_id: str) -> str:
        return str(uuid.uuid5(uuid.UUID(self.run_uuid), node_id))


@dataclass(frozen=True)
class StepTrail:
    """What a step needs to name itself in events: its run, and its node's place in the plan
    (the node id, its inputs' upstream outputs with their types, its outputs' types)."""

    run: PipelineRun
    node: str
    name: str
    inputs: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, run: PipelineRun, node: Node) -> StepTrail:
        return cls(
            run,
            node.id,
            node.name,
            {k: (r.node, r.output, r.type) for k, r in node.inputs.items()},
            dict(node.outputs),
        )

    def plan_node(self, kind: str, params: Mapping[str, Any]) -> Node:
        refs = {k: InputRef(*ref) for k, ref in self.inputs.items()}
        return Node(self.node, StepKind(kind), self.name, params, refs, self.outputs)


def run_uuid(plan_name: str, record_id: str) -> str:
    path = f"{names.namespace(plan_name)}/runs/{record_id}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, path))


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def now() -> str:
    moment = dt.datetime.now(dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pipeline_event(run: PipelineRun, state: str, facets: Mapping[str, RunFacet]) -> RunEvent:
    """The pipeline run's own START or COMPLETE/FAIL/ABORT, sent by whoever drives the run."""
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

    from mlcompile.runtime.trail.facets import PRODUCER

    return RunEvent(
        eventType=RunState[state],
        eventTime=now(),
        producer=PRODUCER,
        run=Run(runId=run.run_uuid, facets=dict(facets)),
        job=Job(namespace=names.namespace(run.plan), name=run.plan),
    )


class StepEvents:
    """The events of one step, read from its input and output artifact directories."""

    def __init__(
        self,
        trail: StepTrail,
        node: Node,
        project_root: Path,
        inputs: Mapping[str, Path],
        outputs: Mapping[str, Path],
    ) -> None:
        self.trail = trail
        self.node = node
        self.root = project_root
        self.space = names.namespace(trail.run.plan)
        self.dirs: dict[tuple[str, str], Path] = {
            (ref.node, ref.output): inputs[name]
            for name, ref in node.inputs.items()
            if name in inputs
        }
        self.dirs.update({(node.id, name): path for name, path in outputs.items()})

    def start(self) -> RunEvent:
        return self._event("START", {}, StepStatus.STARTED, written=False)

    def end(self, status: StepStatus, detail: Mapping[str, Any]) -> RunEvent:
        """COMPLETE for a step that ran or was cached, FAIL with its error otherwise."""
        facets = self.result_facets()
        failed = status not in (StepStatus.RAN, StepStatus.CACHED)
        if failed:
            from openlineage.client.facet_v2 import error_message_run

            from mlcompile.runtime.trail.facets import PRODUCER

            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=str(detail.get("error") or "failed"),
                programmingLanguage="python",
                producer=PRODUCER,
            )
        state = "FAIL" if failed else "COMPLETE"
        return self._event(state, facets, status, written=not failed, detail=detail)

    def _event(
        self,
        state: str,
        facets: dict[str, RunFacet],
        status: StepStatus,
        *,
        written: bool,
        detail: Mapping[str, Any] | None = None,
    ) -> RunEvent:
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import parent_run

        from mlcompile.runtime.trail.facets import PRODUCER, MlcompileStepRunFacet

        run = self.trail.run
        detail = detail or {}
        parent = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=run.run_uuid),
            job=parent_run.Job(namespace=self.space, name=run.plan),
            producer=PRODUCER,
        )
        step = MlcompileStepRunFacet(
            status=str(status),
            runRecord=run.id,
            backend=run.backend,
            kind=self.node.kind,
            cacheKey=detail.get("key"),
            seconds=detail.get("seconds"),
            summary=detail.get("summary"),
            exitCode=detail.get("exit_code"),
            producer=PRODUCER,
        )
        checked = state != "START"
        return RunEvent(
            eventType=RunState[state],
            eventTime=now(),
            producer=PRODUCER,
            run=Run(
                runId=run.step_uuid(self.node.id),
                facets={"parent": parent, "mlcompile_step": step, **facets},
            ),
            job=Job(namespace=self.space, name=self.node.id),
            inputs=self.inputs(checked=checked),
            outputs=[self.output(port, written=written) for port in names.writes(self.node)],
        )

    def where(self, port: names.Port) -> Path | None:
        if port.node is None or port.output is None:
            return None
        return self.dirs.get((port.node, port.output))

    def inputs(self, *, checked: bool) -> list[InputDataset]:
        """What the step read; `checked`: with the validation results (known at its end)."""
        from openlineage.client.event_v2 import InputDataset

        found = []
        checks = self.assertions() if checked and self.node.kind == "validate" else None
        for port in names.reads(self.node):
            input_facets: dict[str, Any] = {}
            if checks is not None and port.node is not None:
                input_facets["dataQualityAssertions"] = checks
            found.append(
                InputDataset(
                    namespace=self.space,
                    name=port.name,
                    facets=self.dataset_facets(port, self.facts(port)),
                    inputFacets=input_facets,
                )
            )
        return found

    def output(self, port: names.Port, *, written: bool) -> OutputDataset:
        from openlineage.client.event_v2 import OutputDataset
        from openlineage.client.facet_v2 import output_statistics_output_dataset as stats

        from mlcompile.runtime.trail.facets import PRODUCER

        if not written:
            return OutputDataset(namespace=self.space, name=port.name)
        facts = self.facts(port)
        output_facets: dict[str, Any] = {}
        if "rows" in facts:
            output_facets["outputStatistics"] = stats.OutputStatisticsOutputDatasetFacet(
                rowCount=int(facts["rows"]), producer=PRODUCER
            )
        where = self.where(port)
        if where is not None:
            facts = {**facts, "location": str(where)}
        return OutputDataset(
            namespace=self.space,
            name=port.name,
            facets=self.dataset_facets(port, facts),
            outputFacets=output_facets,
        )

    def facts(self, port: names.Port) -> dict[str, Any]:
        """Content facts of a dataset the step touches, wherever they are recorded."""
        node = self.node
        if port.node is not None:
            return artifact_facts(self.where(port), port.type)
        if node.kind == "ingest":
            # the raw file's hash as the step saw it (its output's meta), else as it is now
            meta = artifact_facts(self.dirs.get((node.id, "dataset")), "dataset")
            digest = (meta.get("sources") or {}).get(str(node.params.get("source")))
            raw = self.root / str(node.params.get("path"))
            if digest is None and raw.is_file():
                digest = sha256_file(raw)
            return {"sha256": digest} if digest else {}
        if node.kind == "register":
            registration = read_artifact(self.dirs.get((node.id, "registration")), "registration")
            if registration:
                return {
                    "version": str(registration.get("version")),
                    "sha256": registration.get("model_sha256"),
                }
            return {}
        written = read_artifact(self.dirs.get((node.id, "file")), "file")
        return {"sha256": written["sha256"]} if written and "sha256" in written else {}

    def dataset_facets(self, port: names.Port, facts: Mapping[str, Any]) -> dict[str, DatasetFacet]:
        from openlineage.client.facet_v2 import dataset_version_dataset, schema_dataset

        from mlcompile.runtime.trail.facets import PRODUCER, MlcompileArtifactFacet

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
            location=facts.get("location"),
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

    def assertions(self) -> Any:
        from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq

        from mlcompile.runtime.trail.facets import PRODUCER

        report = read_artifact(self.dirs.get((self.node.id, "report")), "report")
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
                for check in data_checks(self.node.params, report)
            ],
            producer=PRODUCER,
        )

    def monitor_facet(self, decision: Mapping[str, Any]) -> RunFacet:
        from mlcompile.runtime.trail.facets import PRODUCER, MlcompileMonitorRunFacet

        drift = read_artifact(self.dirs.get((self.node.id, "drift")), "drift")
        return MlcompileMonitorRunFacet(
            monitor=str(decision.get("monitor", self.node.name)),
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

    def result_facets(self) -> dict[str, RunFacet]:
        from mlcompile.runtime.trail.facets import (
            PRODUCER,
            MlcompileGateRunFacet,
            MlcompileMetricsRunFacet,
            MlcompileRegistrationRunFacet,
        )

        node = self.node
        facets: dict[str, RunFacet] = {}
        for output, kind in node.outputs.items():
            document = read_artifact(self.dirs.get((node.id, output)), kind)
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
                facets["mlcompile_monitor"] = self.monitor_facet(document)
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
