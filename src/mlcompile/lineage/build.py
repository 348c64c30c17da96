"""Build-time lineage: one OpenLineage JobEvent per plan node, and one for the pipeline.

The output is part of `build` and must be byte-for-byte reproducible: no clock, no absolute
path, no host name. OpenLineage requires an `eventTime`; build events carry a fixed one,
the Unix epoch, or `SOURCE_DATE_EPOCH` when set (the reproducible-builds convention), so a
release build can stamp its commit time and still be reproducible.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from mlcompile import __version__
from mlcompile.plan import Node, Plan, canonical_json, sha256_text
from mlcompile.runtime.trail import names

if TYPE_CHECKING:
    from openlineage.client.event_v2 import InputDataset
    from openlineage.client.facet_v2 import DatasetFacet


def build_event_time(epoch: int | None = None) -> str:
    """The eventTime of build events: `epoch`, else $SOURCE_DATE_EPOCH, else 0."""
    if epoch is None:
        raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
        epoch = int(raw) if raw.isdigit() else 0
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


def build_lineage(
    plan: Plan,
    spec_file: str,
    spec_sha256: str,
    git_commit: str | None,
    *,
    epoch: int | None = None,
) -> dict[str, str]:
    """OpenLineage JSON for a plan: path relative to the lineage folder -> text.

    `jobs.jsonl` holds a JobEvent per node, one a line in node-id order (its datasets with
    schemas where a validate node declares columns); `pipeline.json` is the pipeline's
    JobEvent, reading the spec file (versioned by its sha256) and every raw source file.
    `spec_file` should be relative to the project (it is written into the output as is).
    """
    from openlineage.client.event_v2 import Job, JobEvent
    from openlineage.client.facet_v2 import documentation_job, job_type_job, sql_job
    from openlineage.client.serde import Serde

    from mlcompile.runtime.trail.facets import PRODUCER, MlcompileJobFacet

    when = build_event_time(epoch)
    schemas = names.declared_schemas(plan)
    space = names.namespace(plan.name)
    lines: list[str] = []
    # A dataset's facets depend on its type and, where declared, its schema: thousands of
    # datasets share a few sets, each built through the client once.
    facet_sets: dict[tuple[str, str | None], dict[str, Any]] = {}

    def dataset(side: str, port: names.Port) -> dict[str, Any]:
        key = (port.type, port.name if port.name in schemas else None)
        if key not in facet_sets:
            facet_sets[key] = Serde.to_dict(_input(space, port, schemas))["facets"]
        return {"namespace": space, "name": port.name, "facets": facet_sets[key], side: {}}

    # The client builds (and checks) one event with every facet a step can have; each step's
    # event is that document with the step's own values put in. Building every event through
    # the client cost a millisecond a step: most of a 10,000-step build.
    sample = Serde.to_dict(
        JobEvent(
            eventTime=when,
            producer=PRODUCER,
            job=Job(
                namespace=space,
                name="",
                facets={
                    "jobType": job_type_job.JobTypeJobFacet(
                        processingType="BATCH",
                        integration="MLCOMPILE",
                        jobType="",
                        producer=PRODUCER,
                    ),
                    "documentation": documentation_job.DocumentationJobFacet(
                        description="", producer=PRODUCER
                    ),
                    "mlcompile": MlcompileJobFacet(
                        kind="",
                        fingerprint="",
                        params={},
                        plan=plan.name,
                        specFile=spec_file,
                        mlcompileVersion=__version__,
                        gitCommit=git_commit,
                        producer=PRODUCER,
                    ),
                    "sql": sql_job.SQLJobFacet(query="", dialect="duckdb", producer=PRODUCER),
                },
            ),
            inputs=[],
            outputs=[],
        )
    )
    template = sample["job"]["facets"]
    for node in sorted(plan.nodes, key=lambda n: n.id):
        facets: dict[str, Any] = {
            "jobType": {**template["jobType"], "jobType": node.kind.upper()},
            "documentation": {
                **template["documentation"],
                "description": _describe(node, plan.name),
            },
            "mlcompile": {
                **template["mlcompile"],
                "kind": node.kind,
                "fingerprint": node.fingerprint,
                "params": Serde.remove_nulls_and_enums(dict(node.params)),
            },
        }
        if node.kind == "ingest" and node.params.get("format") == "sql":
            facets["sql"] = {**template["sql"], "query": str(node.params["sql"])}
        document = {
            **sample,
            "job": {"namespace": space, "name": node.id, "facets": facets},
            "inputs": [dataset("inputFacets", port) for port in names.reads(node)],
            "outputs": [dataset("outputFacets", port) for port in names.writes(node)],
        }
        lines.append(_compact(document))
    return {
        "jobs.jsonl": "".join(lines),
        "pipeline.json": _pipeline(plan, spec_file, spec_sha256, git_commit, when, schemas),
    }


def _pipeline(
    plan: Plan,
    spec_file: str,
    spec_sha256: str,
    commit: str | None,
    when: str,
    schemas: Mapping[str, Mapping[str, Any]],
) -> str:
    from openlineage.client.event_v2 import InputDataset, Job, JobEvent
    from openlineage.client.facet_v2 import dataset_version_dataset, documentation_job
    from openlineage.client.serde import Serde

    from mlcompile.runtime.trail.facets import PRODUCER, MlcompileArtifactFacet, MlcompileJobFacet

    space = names.namespace(plan.name)
    spec = InputDataset(
        namespace=space,
        name=names.project_file(spec_file),
        facets={
            "version": dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=spec_sha256, producer=PRODUCER
            ),
            "mlcompile_artifact": MlcompileArtifactFacet(
                artifactType="spec", sha256=spec_sha256, producer=PRODUCER
            ),
        },
    )
    raw = sorted(
        {p for node in plan.nodes for p in names.reads(node) if p.node is None},
        key=lambda p: p.name,
    )
    event = JobEvent(
        eventTime=when,
        producer=PRODUCER,
        job=Job(
            namespace=space,
            name=plan.name,
            facets={
                "documentation": documentation_job.DocumentationJobFacet(
                    description=f"mlcompile pipeline '{plan.name}': {len(plan.nodes)} steps",
                    producer=PRODUCER,
                ),
                "mlcompile": MlcompileJobFacet(
                    kind="pipeline",
                    fingerprint=_plan_fingerprint(plan),
                    params=dict(plan.settings),
                    plan=plan.name,
                    specFile=spec_file,
                    specSha256=spec_sha256,
                    mlcompileVersion=__version__,
                    gitCommit=commit,
                    producer=PRODUCER,
                ),
            },
        ),
        inputs=[spec, *(_input(space, port, schemas) for port in raw)],
    )
    return _text(Serde.to_json(event, indent=2))


def _plan_fingerprint(plan: Plan) -> str:
    return sha256_text(canonical_json(sorted(n.fingerprint for n in plan.nodes)))


def _describe(node: Node, plan_name: str) -> str:
    subject = {
        "ingest": "reads source",
        "validate": "checks source",
        "split": "splits the data of model",
        "features": "fits the features of model",
        "train": "trains model",
        "evaluate": "evaluates model",
        "gate": "applies gate",
        "register": "registers deployment",
        "score": "scores with deployment",
        "kserve": "writes the KServe manifest of deployment",
    }.get(node.kind, f"runs {node.kind} step")
    return f"{subject} '{node.name}' in pipeline '{plan_name}'"


def _declared_facets(
    port: names.Port, schemas: Mapping[str, Mapping[str, Any]]
) -> dict[str, DatasetFacet]:
    """The facets the plan alone knows for a dataset: its type and declared columns."""
    from openlineage.client.facet_v2 import dataset_type_dataset, schema_dataset

    from mlcompile.runtime.trail.facets import PRODUCER, MlcompileArtifactFacet

    facets: dict[str, DatasetFacet] = {
        "datasetType": dataset_type_dataset.DatasetTypeDatasetFacet(
            datasetType={"dataset": "TABLE", "model": "MODEL", "file": "FILE"}.get(
                port.type, "JOB_OUTPUT"
            ),
            subType=port.type,
            producer=PRODUCER,
        ),
        "mlcompile_artifact": MlcompileArtifactFacet(artifactType=port.type, producer=PRODUCER),
    }
    columns = schemas.get(port.name)
    if columns:
        rules = names.column_rules(columns)
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(
                    name=column,
                    type=str(columns[column].get("dtype") or "any"),
                    description="; ".join(rules[column]),
                    ordinal_position=position,
                )
                for position, column in enumerate(sorted(columns), start=1)
            ],
            producer=PRODUCER,
        )
    return facets


def _input(space: str, port: names.Port, schemas: Mapping[str, Mapping[str, Any]]) -> InputDataset:
    from openlineage.client.event_v2 import InputDataset

    return InputDataset(namespace=space, name=port.name, facets=_declared_facets(port, schemas))


def _text(json_text: str) -> str:
    return json_text + "\n"


def _compact(event: Mapping[str, Any]) -> str:
    """One event on one line, as OpenLineage's file transport writes them. One file for all
    steps, not one each: creating 10,000 files took longer than the rest of a build. orjson
    writes them in a fifth of the time json's C encoder takes; json is kept for integers
    past 64 bits, which orjson refuses."""
    try:
        return _text(orjson.dumps(event, option=orjson.OPT_SORT_KEYS).decode())
    except TypeError:
        return _text(canonical_json(event))
