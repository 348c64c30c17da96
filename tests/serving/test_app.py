"""The HTTP API through FastAPI's TestClient: predictions, validation errors, hot-swap."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlcompile.runtime.registry import Registry
from mlcompile.runtime.score import score_frame
from mlcompile.serving.app import create_app

from .conftest import MODEL, add_version, as_json_rows


def test_predictions_equal_score_frame(
    client: TestClient, registry_root: Path, raw_rows: pd.DataFrame
) -> None:
    rows = raw_rows.head(5)
    payload = as_json_rows(rows)
    payload[0]["not_a_model_input"] = "ignored"
    response = client.post("/predict", json={"rows": payload})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["version"], body["alias"]) == (MODEL, 1, "production")
    expected = score_frame(Registry(registry_root).get(MODEL, 1).bundle(), rows, [])
    assert pd.DataFrame(body["predictions"]).equals(expected)


def test_single_row(client: TestClient, raw_rows: pd.DataFrame) -> None:
    response = client.post("/predict", json={"rows": as_json_rows(raw_rows.head(1))})
    assert response.status_code == 200
    assert set(response.json()["predictions"][0]) == {"probability", "label"}


def test_missing_column_names_row_and_column(client: TestClient, raw_rows: pd.DataFrame) -> None:
    rows = as_json_rows(raw_rows.head(3))
    del rows[2]["worst_area"]
    response = client.post("/predict", json={"rows": rows})
    assert response.status_code == 422
    assert response.json() == {
        "errors": [
            {
                "row": 2,
                "column": "worst_area",
                "kind": "missing",
                "message": "required column is missing",
            }
        ]
    }


def test_wrong_type_names_row_and_column(client: TestClient, raw_rows: pd.DataFrame) -> None:
    rows = as_json_rows(raw_rows.head(2))
    rows[1]["mean_radius"] = "large"
    rows[0]["mean_texture"] = True
    response = client.post("/predict", json={"rows": rows})
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [(e["row"], e["column"], e["kind"]) for e in errors] == [
        (0, "mean_texture", "type"),
        (1, "mean_radius", "type"),
    ]
    assert "expected a number" in errors[1]["message"] and "'large'" in errors[1]["message"]


def test_null_is_a_missing_value(client: TestClient, raw_rows: pd.DataFrame) -> None:
    rows = as_json_rows(raw_rows.head(1))
    rows[0]["worst_concavity"] = None
    assert client.post("/predict", json={"rows": rows}).status_code == 200


def test_health_model_and_openapi(client: TestClient, log_dir: Path) -> None:
    assert client.get("/health").json() == {
        "status": "ok",
        "model": MODEL,
        "version": 1,
        "alias": "production",
        "detail": None,
        "prediction_log": {
            "path": str(log_dir),
            "buffered_rows": 0,
            "written_files": 0,
            "error": None,
            "failing_since": None,
        },
    }
    info = client.get("/model").json()
    assert info["task"] == "binary"
    assert set(info["signature"]) == {
        "mean_radius",
        "mean_texture",
        "mean_smoothness",
        "worst_area",
        "worst_concavity",
    }
    assert info["metrics"]["overall"]["roc_auc"] > 0.8
    predict = client.get("/openapi.json").json()["paths"]["/predict"]["post"]
    body = predict["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["rows"]


def test_alias_follows_promote_and_rollback(
    client: TestClient, registry_root: Path, raw_rows: pd.DataFrame
) -> None:
    rows = {"rows": as_json_rows(raw_rows.head(1))}
    assert client.post("/predict", json=rows).json()["version"] == 1
    version = add_version(registry_root)
    Registry(registry_root).promote(MODEL, version, "production")
    assert client.post("/predict", json=rows).json()["version"] == version
    assert client.get("/health").json()["version"] == version
    Registry(registry_root).rollback(MODEL, "production")
    assert client.post("/predict", json=rows).json()["version"] == 1


def test_pinned_version_never_moves(
    registry_root: Path, log_dir: Path, raw_rows: pd.DataFrame
) -> None:
    rows = {"rows": as_json_rows(raw_rows.head(1))}
    with TestClient(create_app(registry_root, MODEL, "1", log_dir)) as pinned:
        Registry(registry_root).promote(MODEL, add_version(registry_root), "production")
        body = pinned.post("/predict", json=rows).json()
        assert (body["version"], body["alias"]) == (1, None)


def test_unknown_model_fails_at_creation(registry_root: Path, log_dir: Path) -> None:
    from mlcompile.errors import UsageError

    with pytest.raises(UsageError, match="did you mean"):
        create_app(registry_root, "conformance.benig", "production", log_dir)
