"""Values outside what the training rows held: flagged and counted, or refused on request."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi.testclient import TestClient

from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.registry import Registry
from mlcompile.serving.app import create_app

from .conftest import FLIGHTS, json_rows, post_rows


def _rows(december: pd.DataFrame) -> list[dict[str, Any]]:
    rows = json_rows(december.head(3))
    rows[1] = {**rows[1], "carrier": "ZZ", "distance": 99_999}  # unseen, beyond training
    return rows


def test_values_outside_training_are_flagged_and_counted(
    flights_client: TestClient, december: pd.DataFrame, tmp_path: Path
) -> None:
    answer = post_rows(flights_client, _rows(december))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["predictions"]) == 3
    flagged = [(w["row"], w["column"], w["kind"]) for w in body["warnings"]]
    # December: a month the training rows (the first months of 2013) never held
    assert flagged == [
        (0, "month", "out_of_range"),
        (1, "carrier", "unseen"),
        (1, "distance", "out_of_range"),
        (1, "month", "out_of_range"),
        (2, "month", "out_of_range"),
    ]
    distance = body["warnings"][2]["message"]
    assert re.fullmatch(r"99999 is outside the training range \d+ to 4983", distance), distance
    assert body["warnings"][0]["message"].startswith("12 is outside the training range 1 to ")
    in_range = json_rows(december.head(2).assign(month=5))
    assert post_rows(flights_client, in_range).json()["warnings"] == []
    flights_client.app.state.prediction_log.flush()  # type: ignore[attr-defined]
    logged = pd.read_parquet(tmp_path / "predictions")
    assert logged["warnings"].tolist() == [1, 3, 1, 0, 0]


def test_a_model_that_says_reject_refuses_them(
    trained_flights: Path, december: pd.DataFrame, tmp_path: Path
) -> None:
    root = tmp_path / "registry"
    shutil.copytree(trained_flights / ".mlcompile" / "registry", root)
    registry = Registry(root)
    first = registry.get(FLIGHTS, 1)
    bundle = first.bundle()
    meta = {**bundle.meta, "serving": {"on_invalid": "reject"}}
    version = registry.register(
        FLIGHTS, ModelBundle(bundle.text + "\n", meta), first.metrics()
    ).version
    shutil.copy(first.reference_path, registry.get(FLIGHTS, version).reference_path)
    with TestClient(create_app(root, FLIGHTS, str(version), tmp_path / "log")) as client:
        refused = post_rows(client, _rows(december))
        assert refused.status_code == 422
        kinds = [(e["row"], e["column"], e["kind"]) for e in refused.json()["errors"]]
        assert (1, "carrier", "unseen") in kinds and (1, "distance", "out_of_range") in kinds
        in_range = json_rows(december.head(2).assign(month=5))
        assert post_rows(client, in_range).status_code == 200
