"""The feedback loop through the prediction log: rows served by `mlcompile serve` are the
current window of `mlcompile monitor`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import Result
from fastapi.testclient import TestClient

from mlcompile.serving.app import create_app

from .conftest import MODEL, as_json_rows

LOG = "logs/predictions"


@pytest.fixture
def project(_project: Path, tmp_path: Path) -> Path:
    """The trained conformance project, its monitor watching the prediction log."""
    copy = tmp_path / "project"
    shutil.copytree(_project, copy, ignore=shutil.ignore_patterns("build"))
    spec_path = copy / "mlcompile.yaml"
    spec = json.loads(spec_path.read_text())
    spec["monitoring"]["drift"]["current"] = {"prediction_log": {"path": LOG}}
    spec_path.write_text(json.dumps(spec, indent=2))
    return copy


def _serve(project: Path, rows: pd.DataFrame) -> None:
    app = create_app(project / ".mlcompile" / "registry", MODEL, "production", project / LOG)
    with TestClient(app) as client:  # leaving the block flushes the log
        for start in range(0, len(rows), 50):
            response = client.post(
                "/predict", json={"rows": as_json_rows(rows[start : start + 50])}
            )
            assert response.status_code == 200, response.text


def _monitor(cli: Callable[..., Result], project: Path) -> tuple[int, dict[str, Any]]:
    result = cli("monitor", project / "mlcompile.yaml", "--no-retrain", "--format", "json")
    return result.exit_code, json.loads(result.output)


def test_served_rows_like_the_training_data_pass(
    cli: Callable[..., Result], project: Path, raw_rows: pd.DataFrame
) -> None:
    _serve(project, raw_rows)
    code, out = _monitor(cli, project)
    decision = out["monitoring"]["decisions"]["drift"]
    assert code == 0, decision
    assert decision["rows"] == len(raw_rows) and decision["passed"]


def test_served_rows_from_larger_tumours_drift(
    cli: Callable[..., Result], project: Path, raw_rows: pd.DataFrame
) -> None:
    shifted = raw_rows.assign(mean_radius=raw_rows["mean_radius"] * 1.6)
    _serve(project, shifted)
    code, out = _monitor(cli, project)
    decision = out["monitoring"]["decisions"]["drift"]
    assert code == 7
    failing = {c["feature"] for c in decision["checks"] if not c["passed"]}
    # radius_log is log(mean_radius); the model leans on it, so its predictions move too
    assert "radius_log" in failing
    assert not {"texture", "worst_area", "worst_concavity"} & failing


def test_rows_another_version_answered_are_not_this_versions_window(
    cli: Callable[..., Result], project: Path, raw_rows: pd.DataFrame
) -> None:
    _serve(project, raw_rows.head(30))
    # the log says version 2 answered these: version 1, the one watched, has seen nothing
    for part in (project / LOG).glob("part-*.parquet"):
        pd.read_parquet(part).assign(model_version=2).to_parquet(part, index=False)
    code, out = _monitor(cli, project)
    decision = out["monitoring"]["decisions"]["drift"]
    assert code == 0
    assert decision["rows"] == 0 and decision["judged"] is False
    assert "fewer than min_rows" in decision["reason"]
