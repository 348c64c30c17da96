"""Fixtures for the serving tests: a registry holding conformance.benign, trained once per
session by the conformance project, and copied for each test that changes it; and the flights
example trained once (its model reads integers, text, date/times and a nullable Int64, where
the conformance model reads floats only)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.registry import Registry
from mlcompile.runtime.store import Store
from mlcompile.serving.app import create_app
from mlcompile.testing import conformance_spec, make_project, run_backend

from .serve_process import Sandbox

MODEL = "conformance.benign"
FLIGHTS = "flights.delayed"


@pytest.fixture(scope="session")
def _project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("conformance")
    result = run_backend(make_project(folder, conformance_spec()), "local", folder / "build")
    assert result.status == "succeeded", result.error
    return folder


@pytest.fixture
def registry_root(_project: Path, tmp_path: Path) -> Path:
    root = tmp_path / "registry"
    shutil.copytree(_project / ".mlcompile" / "registry", root)
    return root


@pytest.fixture(scope="session")
def raw_rows(_project: Path) -> pd.DataFrame:
    return pd.read_csv(_project / "data" / "cancer.csv")


def as_json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]


def add_version(root: Path) -> int:
    """Register a second version of MODEL (the same trees, so a different sha256 only)."""
    registry = Registry(root)
    first = registry.get(MODEL, 1)
    bundle = first.bundle()
    return registry.register(
        MODEL, ModelBundle(bundle.text + "\n", bundle.meta), first.metrics()
    ).version


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "predictions"


@pytest.fixture
def client(registry_root: Path, log_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(registry_root, MODEL, "production", log_dir)) as test_client:
        yield test_client


def json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a client sends them: ISO 8601 times, null for every missing value."""
    rows: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return rows


def post_rows(client: TestClient, rows: list[dict[str, Any]]) -> Any:
    """POST /predict with the body json.dumps writes, as Python clients send it: a lone
    surrogate as its escape ("\\ud800"), a missing float as NaN (httpx refuses both)."""
    body = json.dumps({"rows": rows}).encode()
    return client.post("/predict", content=body, headers={"Content-Type": "application/json"})


@pytest.fixture(scope="session")
def trained_flights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The flights example after `mlcompile run`: flights.delayed version 1 in production."""
    from click.testing import CliRunner

    from mlcompile.cli import cli
    from tests.conftest import EXAMPLE

    target = tmp_path_factory.mktemp("flights") / "flights"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("build", ".mlcompile"))
    result = CliRunner().invoke(cli, ["run", str(target / "mlcompile.yaml"), "-q"])
    assert result.exit_code == 0, result.output
    return target


@pytest.fixture(scope="session")
def december(trained_flights: Path) -> pd.DataFrame:
    """The December rows the example's batch deployment scored (its `december` source)."""
    (run,) = (trained_flights / ".mlcompile" / "runs").iterdir()
    key = json.loads((run / "run.json").read_text())["steps"]["ingest:december"]["key"]
    store = Store(trained_flights / ".mlcompile" / "store")
    return pd.read_parquet(store.entry(key) / "dataset" / "data.parquet")


@pytest.fixture
def flights_client(trained_flights: Path, tmp_path: Path) -> Iterator[TestClient]:
    registry = trained_flights / ".mlcompile" / "registry"
    app = create_app(registry, FLIGHTS, "production", tmp_path / "predictions")
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def sandbox(_project: Path) -> Iterator[Sandbox]:
    """A copy of the conformance registry where a real `mlcompile serve` can be refused
    writes (see serve_process)."""
    folder = Sandbox(_project / ".mlcompile" / "registry")
    try:
        folder.check()
        yield folder
    finally:
        folder.remove()


@pytest.fixture
def flights_sandbox(trained_flights: Path) -> Iterator[Sandbox]:
    """A copy of the trained flights registry where a real `mlcompile serve` runs."""
    folder = Sandbox(trained_flights / ".mlcompile" / "registry")
    try:
        yield folder
    finally:
        folder.remove()
