"""`run_step` end to end: artifact directories in, artifact directories out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from mlcompile.errors import DataValidationError, GateFailed, StepError, UsageError
from mlcompile.runtime.artifacts import read_dataset, read_model, read_record, sha256_file
from mlcompile.runtime.registry import Registry
from mlcompile.runtime.steps import StepContext, StepResult, run_step

from .helpers import FLIGHT_FEATURES


class Project:
    """A project folder plus an artifact area, with artifacts named by the test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ctx = StepContext(project_root=root, num_threads=1, fingerprint="f" * 64)

    def art(self, name: str) -> Path:
        return self.root / "artifacts" / name

    def run(
        self, kind: str, params: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]
    ) -> StepResult:
        return run_step(
            kind,
            params,
            {k: self.art(v) for k, v in inputs.items()},
            {k: self.art(v) for k, v in outputs.items()},
            self.ctx,
        )


@pytest.fixture
def project(tmp_path: Path, flights: pd.DataFrame, weather: pd.DataFrame) -> Project:
    (tmp_path / "data").mkdir()
    flights.head(8000).to_csv(tmp_path / "data" / "flights.csv", index=False)
    weather.to_parquet(tmp_path / "data" / "weather.parquet", index=False)
    return Project(tmp_path)


JOIN = """
    SELECT f.*, w.temp, w.wind_speed, CAST(f.arr_delay > 15 AS INTEGER) AS delayed
    FROM flights f LEFT JOIN weather w USING (origin, time_hour)
    WHERE f.arr_delay IS NOT NULL
"""
SCHEMA = {
    "name": "training_rows",
    "strict": False,
    "coerce": True,
    "columns": {
        "time_hour": {"dtype": "datetime"},
        "origin": {"dtype": "str", "checks": [{"check": "isin", "values": ["EWR", "JFK", "LGA"]}]},
        "delayed": {"dtype": "int", "checks": [{"check": "isin", "values": [0, 1]}]},
        "temp": {"dtype": "float", "nullable": True},
    },
}
GATE = {
    "gate": "quality",
    "model": "delayed",
    "registry": ".mlcompile/registry",
    "registered_name": "flights.delayed",
    "compare_alias": "production",
    "checks": [
        {"metric": "roc_auc", "op": ">=", "value": 0.6},
        {"metric": "roc_auc", "max_drop": 0.02},
        {"metric": "logloss", "op": "<=", "value": 0.6, "slice": "origin"},
    ],
}
REGISTER = {
    "deployment": "delayed_registry",
    "model": "delayed",
    "registry": ".mlcompile/registry",
    "registered_name": "flights.delayed",
    "alias": "production",
}


def train_until_metrics(project: Project) -> None:
    project.run(
        "ingest",
        {"source": "flights", "format": "csv", "path": "data/flights.csv"},
        {},
        {"dataset": "flights"},
    )
    project.run(
        "ingest",
        {"source": "weather", "format": "parquet", "path": "data/weather.parquet"},
        {},
        {"dataset": "weather"},
    )
    project.run(
        "ingest",
        {"source": "training", "format": "sql", "sql": JOIN, "tables": ["flights", "weather"]},
        {"flights": "flights", "weather": "weather"},
        {"dataset": "joined"},
    )
    project.run(
        "validate",
        {"source": "training", "schema": SCHEMA, "on_invalid": "fail"},
        {"dataset": "joined"},
        {"dataset": "training", "report": "training_report"},
    )
    project.run(
        "split",
        {
            "model": "delayed",
            "method": "time",
            "test_size": 0.25,
            "column": "time_hour",
            "seed": 42,
            "target": "delayed",
        },
        {"dataset": "training"},
        {"train": "train", "test": "test"},
    )
    features = [
        *FLIGHT_FEATURES,
        {"name": "temp", "op": "impute", "column": "temp", "strategy": "median"},
    ]
    project.run(
        "features",
        {
            "model": "delayed",
            "target": "delayed",
            "task": "binary",
            "features": features,
            "model_inputs": [f["name"] for f in features],
            "carry": ["origin"],
        },
        {"train": "train"},
        {"transformer": "transformer", "train": "features_train"},
    )
    project.run(
        "train",
        {
            "model": "delayed",
            "task": "binary",
            "target": "delayed",
            "num_class": None,
            "params": {"num_leaves": 15},
            "num_boost_round": 50,
            "early_stopping_rounds": 10,
            "validation_size": 0.1,
            "seed": 42,
        },
        {"train": "features_train", "transformer": "transformer"},
        {"model": "model"},
    )
    project.run(
        "evaluate",
        {
            "model": "delayed",
            "task": "binary",
            "target": "delayed",
            "metrics": ["roc_auc", "logloss", "accuracy"],
            "slices": ["origin"],
            "min_slice_rows": 30,
        },
        {"model": "model", "test": "test"},
        {"metrics": "metrics", "diagnosis": "diagnosis"},
    )


def test_the_whole_chain(project: Project, flights: pd.DataFrame) -> None:
    train_until_metrics(project)
    raw_hash = sha256_file(project.root / "data" / "flights.csv")
    joined, meta = read_dataset(project.art("joined"))
    assert meta["sources"] == {
        "flights": raw_hash,
        "weather": sha256_file(project.root / "data" / "weather.parquet"),
    }
    assert len(joined) == flights.head(8000)["arr_delay"].notna().sum()
    training, _ = read_dataset(project.art("training"))
    assert str(training["time_hour"].dtype).startswith("datetime64")  # coerced by the schema
    assert read_record(project.art("training_report"), "report")["passed"] is True
    train, _ = read_dataset(project.art("train"))
    test, test_meta = read_dataset(project.art("test"))
    assert train["time_hour"].max() <= test["time_hour"].min()
    assert test_meta["sources"] == meta["sources"]  # lineage flows through every step
    bundle = read_model(project.art("model"))
    assert bundle.meta["training_data"]["sources"] == meta["sources"]
    assert bundle.meta["feature_state"] == read_record(project.art("transformer"), "transformer")
    metrics = read_record(project.art("metrics"), "metrics")
    assert metrics["overall"]["roc_auc"] > 0.6
    assert set(metrics["slices"]["origin"]) == {"EWR", "JFK", "LGA"}

    gate = project.run("gate", GATE, {"metrics": "metrics"}, {"decision": "decision"})
    decision = read_record(project.art("decision"), "decision")
    assert gate.summary["decision"] == decision and decision["passed"] is True
    assert decision["checks"][1]["note"] == "no production model to compare with"
    assert len(decision["checks"]) == 5  # origin expands into three checks

    registered = project.run(
        "register",
        REGISTER,
        {
            "model": "model",
            "metrics": "metrics",
            "diagnosis": "diagnosis",
            "reference": "train",
            "gate:quality": "decision",
        },
        {"registration": "registration"},
    )
    assert registered.summary == {
        "model_name": "flights.delayed",
        "version": 1,
        "alias": "production",
        "created": True,
    }
    assert read_record(project.art("registration"), "registration") == {
        "model_name": "flights.delayed",
        "version": 1,
        "uri": ".mlcompile/registry/flights.delayed/versions/1",
        "alias": "production",
        "model_sha256": bundle.sha256,
    }
    registry = Registry(project.root / ".mlcompile" / "registry")
    production = registry.get("flights.delayed", "production")
    assert production.registration["plan_fingerprint"] == "f" * 64
    # the version keeps its training rows, the columns its features read, for monitoring
    reference = pd.read_parquet(production.reference_path)
    train, _ = read_dataset(project.art("train"))
    signature = bundle.meta["feature_state"]["input_signature"]
    assert list(reference.columns) == [*signature, "delayed"]
    assert len(reference) == len(train)
    # and the data of its pictures, for the reports of the runs that come after it
    assert production.diagnosis() == read_record(project.art("diagnosis"), "diagnosis")

    scored = project.run(
        "score",
        {
            "deployment": "batch",
            "model": "delayed",
            "output": "outputs/scores.parquet",
            "format": "parquet",
            "id_columns": ["flight", "time_hour"],
        },
        {"model": "model", "dataset": "training", "gate:quality": "decision"},
        {"file": "scores"},
    )
    assert scored.summary == {"rows": len(training), "output": "outputs/scores.parquet"}
    written = read_record(project.art("scores"), "file")
    assert written == {
        "path": "outputs/scores.parquet",
        "sha256": sha256_file(project.root / written["path"]),
    }
    predictions = pd.read_parquet(project.root / "outputs" / "scores.parquet")
    assert list(predictions.columns) == ["flight", "time_hour", "probability", "label"]

    project.run(
        "kserve",
        {
            "deployment": "delayed_kserve",
            "model": "delayed",
            "registered_name": "flights.delayed",
            "namespace": "default",
            "storage_uri": "gs://models",
            "output": "deploy/delayed.yaml",
            "resources": {"cpu": "1", "memory": "2Gi"},
        },
        {"registration": "registration"},
        {"file": "manifest"},
    )
    manifest = yaml.safe_load((project.root / "deploy" / "delayed.yaml").read_text())
    assert (
        manifest["spec"]["predictor"]["model"]["storageUri"]
        == "gs://models/flights.delayed/versions/1"
    )

    # A second run of the same pipeline compares with production and registers nothing new.
    project.run("gate", GATE, {"metrics": "metrics"}, {"decision": "decision"})
    relative = read_record(project.art("decision"), "decision")["checks"][1]
    assert relative["bound"] == pytest.approx(metrics["overall"]["roc_auc"] - 0.02)
    again = project.run(
        "register",
        REGISTER,
        {"model": "model", "metrics": "metrics", "reference": "train", "gate:quality": "decision"},
        {"registration": "registration"},
    )
    assert again.summary["version"] == 1 and registry.versions("flights.delayed") == [1]
    json.dumps(again.summary, allow_nan=False)


def test_failed_validation_writes_its_report_then_stops(project: Project) -> None:
    project.run(
        "ingest",
        {"source": "flights", "format": "csv", "path": "data/flights.csv"},
        {},
        {"dataset": "flights"},
    )
    strict = {
        "name": "short_flights",
        "columns": {"distance": {"checks": [{"check": "lt", "value": 1000}]}},
    }
    with pytest.raises(
        DataValidationError, match="source 'flights' failed schema 'short_flights': distance: lt"
    ):
        project.run(
            "validate",
            {"source": "flights", "schema": strict, "on_invalid": "fail"},
            {"dataset": "flights"},
            {"dataset": "valid", "report": "report"},
        )
    report = read_record(project.art("report"), "report")
    assert report["failures"][0]["column"] == "distance"
    assert not project.art("valid").exists()
    warned = project.run(
        "validate",
        {"source": "flights", "schema": strict, "on_invalid": "warn"},
        {"dataset": "flights"},
        {"dataset": "valid", "report": "report"},
    )
    assert warned.summary == {"rows": 8000, "passed": False, "failures": 1}
    assert project.art("valid").is_dir()


def test_failed_gate_writes_its_decision_and_blocks_deployment(project: Project) -> None:
    train_until_metrics(project)
    impossible = {**GATE, "checks": [{"metric": "roc_auc", "op": ">=", "value": 0.999}]}
    with pytest.raises(GateFailed, match=r"roc_auc >= 0.999"):
        project.run("gate", impossible, {"metrics": "metrics"}, {"decision": "decision"})
    assert read_record(project.art("decision"), "decision")["passed"] is False
    with pytest.raises(GateFailed):
        project.run(
            "register",
            REGISTER,
            {
                "model": "model",
                "metrics": "metrics",
                "reference": "train",
                "gate:quality": "decision",
            },
            {"registration": "registration"},
        )
    assert not (project.root / ".mlcompile" / "registry").exists()


def test_usage_errors(project: Project) -> None:
    with pytest.raises(UsageError, match="unknown step kind 'trian' \\(did you mean 'train'"):
        project.run("trian", {}, {}, {})
    with pytest.raises(StepError, match="outside the project folder"):
        project.run(
            "ingest",
            {"source": "x", "format": "csv", "path": "../secrets.csv"},
            {},
            {"dataset": "x"},
        )
    with pytest.raises(UsageError, match="a 'split' step needs the input 'dataset'"):
        project.run("split", {"model": "m"}, {}, {"train": "a", "test": "b"})
    with pytest.raises(StepError, match="source 'flights': file not found"):
        project.run(
            "ingest",
            {"source": "flights", "format": "csv", "path": "data/none.csv"},
            {},
            {"dataset": "f"},
        )
