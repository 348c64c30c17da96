"""The prediction log: requests and predictions as Parquet, flushed by size, time and at
shutdown."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient

from mlcompile.serving.app import create_app
from mlcompile.serving.predlog import PredictionLog

from .conftest import MODEL, as_json_rows

# the signature's order, as the registry stores it
INPUTS = ["mean_radius", "mean_smoothness", "mean_texture", "worst_area", "worst_concavity"]


def test_log_holds_requests_after_size_flush(
    registry_root: Path, log_dir: Path, raw_rows: pd.DataFrame
) -> None:
    app = create_app(registry_root, MODEL, "production", log_dir, flush_rows=3, flush_seconds=60)
    with TestClient(app) as client:
        answers = [
            client.post("/predict", json={"rows": as_json_rows(raw_rows.iloc[i : i + 2])}).json()
            for i in (0, 2)
        ]
        deadline = time.monotonic() + 10
        while not list(log_dir.glob("part-*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert list(log_dir.glob("part-*.parquet")), "4 rows >= flush_rows=3 should flush"
    logged = pd.read_parquet(log_dir).sort_values("received_at", kind="stable")
    assert list(logged.columns) == [
        "request_id",
        "received_at",
        "model_version",
        *INPUTS,
        "probability",
        "label",
    ]
    assert list(logged["request_id"]) == [a["request_id"] for a in answers for _ in range(2)]
    assert (logged["model_version"] == 1).all()
    assert str(logged["received_at"].dt.tz) == "UTC"
    expected = raw_rows.head(4)[INPUTS].reset_index(drop=True)
    pd.testing.assert_frame_equal(logged[INPUTS].reset_index(drop=True), expected)
    probabilities = [p["probability"] for a in answers for p in a["predictions"]]
    assert list(logged["probability"]) == probabilities


def test_shutdown_flushes_what_is_buffered(
    registry_root: Path, log_dir: Path, raw_rows: pd.DataFrame
) -> None:
    app = create_app(
        registry_root, MODEL, "production", log_dir, flush_rows=10**6, flush_seconds=3600
    )
    with TestClient(app) as client:
        client.post("/predict", json={"rows": as_json_rows(raw_rows.head(3))})
        assert not list(log_dir.glob("*.parquet"))
    (part,) = log_dir.glob("*.parquet")
    assert len(pd.read_parquet(part)) == 3


def test_timed_flush_and_file_names(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, flush_rows=10**6, flush_seconds=0.1)
    log.start()
    try:
        log.append(pd.DataFrame({"x": [1]}))
        deadline = time.monotonic() + 10
        while not list(tmp_path.glob("*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.02)
        log.append(pd.DataFrame({"x": [2]}))
    finally:
        log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2, names
    assert [n.rsplit("-", 1)[1] for n in names] == ["000001.parquet", "000002.parquet"]
    assert all(n.startswith("part-") and n[13] == "T" and "Z-" in n for n in names)
    assert list(pd.read_parquet(tmp_path)["x"].sort_values()) == [1, 2]


def test_failed_flush_keeps_rows(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    log = PredictionLog(blocked / "log", flush_rows=10**6, flush_seconds=3600)
    log.append(pd.DataFrame({"x": [1, 2]}))
    try:
        log.flush()
    except OSError:
        pass
    else:
        raise AssertionError("writing under a file should fail")
    log.log_dir = tmp_path / "log"
    written = log.flush()
    assert written is not None and len(pd.read_parquet(written)) == 2
