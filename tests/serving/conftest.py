"""Fixtures for the serving tests: a registry holding conformance.benign, trained once per
session by the conformance project, and copied for each test that changes it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.registry import Registry
from mlcompile.serving.app import create_app
from mlcompile.testing import conformance_spec, make_project, run_backend

MODEL = "conformance.benign"


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
