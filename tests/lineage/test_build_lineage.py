"""Build lineage: one JobEvent per node, valid OpenLineage, reproducible to the byte."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlcompile.compiler import compile_spec
from mlcompile.lineage import build_event_time, build_lineage, git_commit
from mlcompile.plan import Plan
from tests.lineage.conftest import copy_example, invoke


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    project = copy_example(tmp_path_factory.mktemp("build") / "flights")
    return compile_spec(project / "mlcompile.yaml", []).plan


def _jobs(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The step events of jobs.jsonl by node id, checking it is one event a line."""
    lines = files["jobs.jsonl"].splitlines()
    return {event["job"]["name"]: event for event in map(json.loads, lines)}


def test_every_node_is_a_valid_job_event(
    plan: Plan, openlineage: Callable[[str, dict[str, Any]], list[str]]
) -> None:
    files = build_lineage(plan, "mlcompile.yaml", plan.spec_sha256, "a" * 40)
    assert set(files) == {"pipeline.json", "jobs.jsonl"}
    events = [json.loads(files["pipeline.json"]), *_jobs(files).values()]
    assert [e["job"]["name"] for e in events[1:]] == sorted(n.id for n in plan.nodes)
    for event in events:
        assert openlineage("JobEvent", event) == [], event["job"]["name"]
        assert event["job"]["namespace"] == "mlcompile://flights"
        assert event["eventTime"] == "1970-01-01T00:00:00Z"
    train = _jobs(files)["train:delayed"]
    facet = train["job"]["facets"]["mlcompile"]
    node = plan.node("train:delayed")
    assert facet["fingerprint"] == node.fingerprint
    assert facet["params"]["params"] == node.params["params"]
    assert facet["gitCommit"] == "a" * 40
    assert "specSha256" not in facet  # only the pipeline's job: see the next assertion
    pipeline_facet = json.loads(files["pipeline.json"])["job"]["facets"]["mlcompile"]
    assert pipeline_facet["specSha256"] == plan.spec_sha256
    assert [d["name"] for d in train["inputs"]] == [
        "artifacts/features:delayed/train",
        "artifacts/features:delayed/transformer",
    ]
    assert train["outputs"][0]["name"] == "artifacts/train:delayed/model"


def test_sql_and_declared_schemas_are_carried(plan: Plan) -> None:
    files = build_lineage(plan, "mlcompile.yaml", plan.spec_sha256, None)
    jobs = _jobs(files)
    training = jobs["ingest:training"]
    assert "LEFT JOIN weather" in training["job"]["facets"]["sql"]["query"]
    ingest = jobs["ingest:flights"]
    (raw,) = ingest["inputs"]
    assert raw["name"] == "files/data/flights.parquet"
    fields = {f["name"]: f for f in raw["facets"]["schema"]["fields"]}
    assert fields["origin"]["type"] == "str"
    assert "isin [EWR, JFK, LGA]" in fields["origin"]["description"]
    assert "nullable" in fields["dep_delay"]["description"]
    # The validated dataset carries the same declared schema downstream.
    validate = jobs["validate:flights"]
    out = {d["name"]: d for d in validate["outputs"]}["artifacts/validate:flights/dataset"]
    assert {f["name"] for f in out["facets"]["schema"]["fields"]} == set(fields)
    pipeline = json.loads(files["pipeline.json"])
    spec = {d["name"]: d for d in pipeline["inputs"]}["files/mlcompile.yaml"]
    assert spec["facets"]["version"]["datasetVersion"] == plan.spec_sha256
    assert {d["name"] for d in pipeline["inputs"]} >= {
        "files/data/flights.parquet",
        "files/data/weather.csv",
        "files/data/planes.csv",
    }


def test_event_time_is_fixed_or_source_date_epoch(
    plan: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert build_event_time() == "2023-11-14T22:13:20Z"
    stamped = json.loads(build_lineage(plan, "s.yaml", "x", None)["pipeline.json"])
    assert stamped["eventTime"] == "2023-11-14T22:13:20Z"
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert build_event_time() == "1970-01-01T00:00:00Z"


def test_git_commit_never_fails(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None  # not a repository
    assert git_commit(tmp_path / "missing" / "spec.yaml") is None
    here = git_commit(Path(__file__))
    assert here is None or len(here) == 40


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_build_is_byte_identical_in_two_directories(tmp_path: Path) -> None:
    trees = []
    for place in ("one/deep/er", "two"):
        project = copy_example(tmp_path / place / "flights")
        out = project / "build"
        result = invoke("build", project / "mlcompile.yaml", "--out", out)
        assert result.exit_code == 0, result.output
        if not (out / "lineage").is_dir():
            # Until `build` writes lineage/ itself, write what it will write.
            compiled = compile_spec(project / "mlcompile.yaml", [])
            files = build_lineage(
                compiled.plan, "mlcompile.yaml", compiled.plan.spec_sha256, git_commit(project)
            )
            for rel, text in files.items():
                (out / "lineage" / rel).parent.mkdir(parents=True, exist_ok=True)
                (out / "lineage" / rel).write_text(text, encoding="utf-8")
        trees.append(_tree(out))
    first, second = trees
    assert {"plan.json", "local/pipeline.json", "lineage/pipeline.json"} <= set(first)
    assert sorted(first) == sorted(second)
    for rel in first:
        assert first[rel] == second[rel], f"{rel} differs between the two builds"
    assert str(tmp_path).encode() not in b"".join(first.values())


def _through_client(event: dict[str, Any]) -> dict[str, Any]:
    """`event` rebuilt from the OpenLineage client's classes and serialized by the client:
    build lineage is written without it, and must be what it would write."""
    from openlineage.client.event_v2 import InputDataset, Job, JobEvent, OutputDataset
    from openlineage.client.facet_v2 import (
        dataset_type_dataset,
        dataset_version_dataset,
        documentation_job,
        job_type_job,
        schema_dataset,
        sql_job,
    )
    from openlineage.client.serde import Serde

    from mlcompile.runtime.trail import facets as ours

    classes: dict[str, Any] = {
        "jobType": job_type_job.JobTypeJobFacet,
        "documentation": documentation_job.DocumentationJobFacet,
        "sql": sql_job.SQLJobFacet,
        "mlcompile": ours.MlcompileJobFacet,
        "datasetType": dataset_type_dataset.DatasetTypeDatasetFacet,
        "version": dataset_version_dataset.DatasetVersionDatasetFacet,
        "mlcompile_artifact": ours.MlcompileArtifactFacet,
        "schema": schema_dataset.SchemaDatasetFacet,
    }

    def facets(written: dict[str, Any]) -> dict[str, Any]:
        built = {}
        for name, facet in written.items():
            fields = {k: v for k, v in facet.items() if not k.startswith("_")}
            if name == "schema":
                fields["fields"] = [
                    schema_dataset.SchemaDatasetFacetFields(**f) for f in fields["fields"]
                ]
            built[name] = classes[name](**fields, producer=facet["_producer"])
        return built

    job = event["job"]
    return Serde.to_dict(
        JobEvent(
            eventTime=event["eventTime"],
            producer=event["producer"],
            job=Job(namespace=job["namespace"], name=job["name"], facets=facets(job["facets"])),
            inputs=[
                InputDataset(namespace=d["namespace"], name=d["name"], facets=facets(d["facets"]))
                for d in event["inputs"]
            ],
            outputs=[
                OutputDataset(namespace=d["namespace"], name=d["name"], facets=facets(d["facets"]))
                for d in event["outputs"]
            ],
        )
    )


def test_events_are_what_the_openlineage_client_writes(plan: Plan) -> None:
    files = build_lineage(plan, "mlcompile.yaml", plan.spec_sha256, "a" * 40)
    events = [json.loads(files["pipeline.json"]), *_jobs(files).values()]
    kinds = {e["job"]["facets"]["mlcompile"]["kind"] for e in events}
    assert {"pipeline", "ingest", "validate", "train", "gate", "register"} <= kinds
    for event in events:
        assert event == _through_client(event), event["job"]["name"]
