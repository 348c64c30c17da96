"""Build-time lineage: one OpenLineage JobEvent per plan node, and one for the pipeline.

The output is part of `build` and must be byte-for-byte reproducible: no clock, no absolute
path, no host name. OpenLineage requires an `eventTime`; build events carry a fixed one,
the Unix epoch, or `SOURCE_DATE_EPOCH` when set (the reproducible-builds convention), so a
release build can stamp its commit time and still be reproducible.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from typing import Any

import orjson

from mlcompile import __version__
from mlcompile.plan import Node, Plan, canonical_json, sha256_text
from mlcompile.runtime.trail import names
from mlcompile.runtime.trail.producer import PRODUCER, facet_schema

# The events are written as the OpenLineage client (2-0-2 events) serializes them, without
# importing it: its package loads HTTP clients and transports, a second of a large build.
# tests/lineage/test_build_lineage.py builds them through the client and compares.
JOB_EVENT_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent"
_OPENLINEAGE_FACET = "https://openlineage.io/spec/facets/{1}/{0}.json#/$defs/{0}"
# standard facet -> its version in the schemas the client's events follow
STANDARD_FACETS = {
    "JobTypeJobFacet": "2-0-4",
    "DocumentationJobFacet": "1-1-0",
    "SQLJobFacet": "1-1-0",
    "DatasetTypeDatasetFacet": "1-0-1",
    "DatasetVersionDatasetFacet": "1-0-1",
    "SchemaDatasetFacet": "1-2-0",
}


def _facet(name: str, **fields: Any) -> dict[str, Any]:
    """A facet as the client writes it: producer, schema URL, its fields without nulls."""
    version = STANDARD_FACETS.get(name)
    schema = facet_schema(name) if version is None else _OPENLINEAGE_FACET.format(name, version)
    return {"_producer": PRODUCER, "_schemaURL": schema, **without_nulls(fields)}


def without_nulls(value: Any) -> Any:
    """What the client's serializer does to plain JSON data: None values dropped from
    mappings, None and {} items from lists."""
    if isinstance(value, dict):
        return {k: v for k, v in ((k, without_nulls(v)) for k, v in value.items()) if v is not None}
    if isinstance(value, list):
        items = (without_nulls(v) for v in value if v is not None)
        return [v for v in items if v is not None and v != {}]
    return value


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
    when = build_event_time(epoch)
    schemas = names.declared_schemas(plan)
    space = names.namespace(plan.name)
    lines: list[str] = []
    # A dataset's facets depend on its type and, where declared, its schema: thousands of
    # datasets share a few sets, each built once.
    facet_sets: dict[tuple[str, str | None], dict[str, Any]] = {}

    def dataset(side: str, port: names.Port) -> dict[str, Any]:
        key = (port.type, port.name if port.name in schemas else None)
        if key not in facet_sets:
            facet_sets[key] = _declared_facets(port, schemas)
        return {"namespace": space, "name": port.name, "facets": facet_sets[key], side: {}}

    # each step's facets are these with its own values put in: built once, not per step
    job_type = _facet(
        "JobTypeJobFacet", processingType="BATCH", integration="MLCOMPILE", jobType=""
    )
    documentation = _facet("DocumentationJobFacet", description="")
    mlcompile = _facet(
        "MlcompileJobFacet",
        kind="",
        fingerprint="",
        params={},
        plan=plan.name,
        specFile=spec_file,
        mlcompileVersion=__version__,
        gitCommit=git_commit,
    )
    for node in sorted(plan.nodes, key=lambda n: n.id):
        facets: dict[str, Any] = {
            "jobType": {**job_type, "jobType": node.kind.upper()},
            "documentation": {**documentation, "description": _describe(node, plan.name)},
            "mlcompile": {
                **mlcompile,
                "kind": node.kind,
                "fingerprint": node.fingerprint,
                "params": without_nulls(dict(node.params)),
            },
        }
        if node.kind == "ingest" and node.params.get("format") == "sql":
            facets["sql"] = _facet("SQLJobFacet", query=str(node.params["sql"]), dialect="duckdb")
        document = _event(
            when,
            {"namespace": space, "name": node.id, "facets": facets},
            [dataset("inputFacets", port) for port in names.reads(node)],
            [dataset("outputFacets", port) for port in names.writes(node)],
        )
        lines.append(_compact(document))
    return {
        "jobs.jsonl": "".join(lines),
        "pipeline.json": _pipeline(plan, spec_file, spec_sha256, git_commit, when, schemas),
    }


def _event(
    when: str, job: dict[str, Any], inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "eventTime": when,
        "producer": PRODUCER,
        "schemaURL": JOB_EVENT_SCHEMA,
        "job": job,
        "inputs": inputs,
        "outputs": outputs,
    }


def _pipeline(
    plan: Plan,
    spec_file: str,
    spec_sha256: str,
    commit: str | None,
    when: str,
    schemas: Mapping[str, Mapping[str, Any]],
) -> str:
    space = names.namespace(plan.name)
    spec = {
        "namespace": space,
        "name": names.project_file(spec_file),
        "facets": {
            "version": _facet("DatasetVersionDatasetFacet", datasetVersion=spec_sha256),
            "mlcompile_artifact": _facet(
                "MlcompileArtifactFacet", artifactType="spec", sha256=spec_sha256
            ),
        },
        "inputFacets": {},
    }
    raw = sorted(
        {p for node in plan.nodes for p in names.reads(node) if p.node is None},
        key=lambda p: p.name,
    )
    job = {
        "namespace": space,
        "name": plan.name,
        "facets": {
            "documentation": _facet(
                "DocumentationJobFacet",
                description=f"mlcompile pipeline '{plan.name}': {len(plan.nodes)} steps",
            ),
            "mlcompile": _facet(
                "MlcompileJobFacet",
                kind="pipeline",
                fingerprint=_plan_fingerprint(plan),
                params=dict(plan.settings),
                plan=plan.name,
                specFile=spec_file,
                specSha256=spec_sha256,
                mlcompileVersion=__version__,
                gitCommit=commit,
            ),
        },
    }
    inputs = [
        spec,
        *(
            {
                "namespace": space,
                "name": p.name,
                "facets": _declared_facets(p, schemas),
                "inputFacets": {},
            }
            for p in raw
        ),
    ]
    return _text(json.dumps(_event(when, job, inputs, []), sort_keys=True, indent=2))


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


def _declared_facets(port: names.Port, schemas: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The facets the plan alone knows for a dataset: its type and declared columns."""
    facets = {
        "datasetType": _facet(
            "DatasetTypeDatasetFacet",
            datasetType={"dataset": "TABLE", "model": "MODEL", "file": "FILE"}.get(
                port.type, "JOB_OUTPUT"
            ),
            subType=port.type,
        ),
        "mlcompile_artifact": _facet("MlcompileArtifactFacet", artifactType=port.type),
    }
    columns = schemas.get(port.name)
    if columns:
        rules = names.column_rules(columns)
        facets["schema"] = _facet(
            "SchemaDatasetFacet",
            fields=[
                {
                    "name": column,
                    "type": str(columns[column].get("dtype") or "any"),
                    "description": "; ".join(rules[column]),
                    "ordinal_position": position,
                    "fields": [],
                }
                for position, column in enumerate(sorted(columns), start=1)
            ],
        )
    return facets


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
