"""The prediction log: requests and predictions as Parquet, flushed by size, time and at
shutdown; a failing write keeps its rows, says so, and is tried again."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlcompile.errors import WriteError
from mlcompile.runtime.artifacts import parquet_bytes
from mlcompile.runtime.registry import Registry
from mlcompile.serving.app import create_app
from mlcompile.serving.inputs import input_columns, read_rows
from mlcompile.serving.predlog import Entry, LogFull, PredictionLog, entries_frame, entries_table

from .conftest import FLIGHTS, MODEL, as_json_rows, json_rows

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
        "warnings",
        "answered_by",
        *INPUTS,
        "probability",
        "label",
    ]
    assert list(logged["request_id"]) == [a["request_id"] for a in answers for _ in range(2)]
    assert (logged["model_version"] == 1).all()
    assert (logged["answered_by"] == "production").all() and (logged["warnings"] == 0).all()
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


def _blocked(tmp_path: Path) -> Path:
    """A log folder no write can create, even as root: its parent is a file."""
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    return blocked / "log"


def _until(done: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_failed_flush_keeps_rows(tmp_path: Path) -> None:
    log = PredictionLog(_blocked(tmp_path), flush_rows=10**6, flush_seconds=3600)
    log.append(pd.DataFrame({"x": [1, 2]}))
    with pytest.raises(OSError):
        log.flush()
    assert log.state().buffered_rows == 2
    log.log_dir = tmp_path / "log"
    (written,) = log.flush()
    assert len(pd.read_parquet(written)) == 2
    assert log.state().buffered_rows == 0


def test_a_failing_writer_says_so_and_retries_each_interval(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mlcompile.serving")
    log = PredictionLog(_blocked(tmp_path), flush_rows=1, flush_seconds=0.2)
    log.start()
    try:
        log.append(pd.DataFrame({"x": [1, 2, 3]}))
        _until(lambda: log.state().error is not None)
        state = log.state()
        assert state.buffered_rows == 3 and state.written_files == 0
        assert state.failing_since is not None and "NotADirectoryError" in state.error
        time.sleep(1.0)
        failures = [r for r in caplog.records if "cannot write" in r.getMessage()]
        # once per interval, not a tight loop of failing writes
        assert 2 <= len(failures) <= 8, len(failures)
        assert all(r.levelno == logging.ERROR for r in failures)
        assert "3 rows kept in memory, next try in 0.2 s" in failures[0].getMessage()
        log.log_dir = tmp_path / "log"
        _until(lambda: log.state().error is None)
        assert log.state().buffered_rows == 0 and log.state().written_files == 1
        assert any("works again" in r.getMessage() for r in caplog.records)
    finally:
        assert log.close() == 0
    assert list(pd.read_parquet(tmp_path / "log")["x"]) == [1, 2, 3]


def test_a_full_buffer_refuses_more_rows(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, flush_rows=10**6, flush_seconds=3600, max_buffered_rows=3)
    log.append(pd.DataFrame({"x": [1, 2]}))
    with pytest.raises(LogFull, match=r"holds 2 rows not yet written .* at most 3"):
        log.append(pd.DataFrame({"x": [3, 4]}))
    log.append(pd.DataFrame({"x": [3]}))
    assert log.close() == 0
    assert list(pd.read_parquet(tmp_path)["x"]) == [1, 2, 3]


def test_rows_that_one_file_cannot_hold_go_to_several(tmp_path: Path) -> None:
    """Two versions may disagree on a column's dtype, and requests on a category's values:
    one Parquet column has one type, so those rows get files of their own, never lost."""
    log = PredictionLog(tmp_path, flush_rows=10**6, flush_seconds=3600)
    frames = [
        pd.DataFrame({"c": [1, 2]}),
        pd.DataFrame({"c": [3]}),
        pd.DataFrame({"c": ["x"]}),
        pd.DataFrame({"c": pd.Series(["a"], dtype="category")}),
        pd.DataFrame({"c": pd.Series([7], dtype="category")}),
    ]
    for frame in frames:
        log.append(frame)
    written = log.flush()
    assert [len(pd.read_parquet(p)) for p in written] == [3, 1, 1, 1]
    values = [v for p in written for v in pd.read_parquet(p)["c"].astype(str)]
    assert values == ["1", "2", "3", "x", "a", "7"]


@pytest.mark.xdist_group("flights-serving")
@pytest.mark.parametrize("missing", [None, "distance"])
def test_a_file_holds_the_bytes_of_its_rows_frame(
    trained_flights: Path, december: pd.DataFrame, tmp_path: Path, missing: str | None
) -> None:
    """The log builds its Arrow table without a pandas frame where it can (not with a missing
    value in an int64 column, which makes it float64): the file is the frame's either way."""
    bundle = Registry(trained_flights / ".mlcompile" / "registry").get(FLIGHTS, 1).bundle()
    inputs = input_columns(bundle.meta["feature_state"]["input_signature"])
    rows = json_rows(december.head(300))
    if missing is not None:
        rows[7][missing] = None
    start = dt.datetime(2026, 12, 2, 12, 0, 0, 250, tzinfo=dt.UTC)
    entries = []
    for i, (low, high) in enumerate([(0, 1), (1, 51), (51, 300)]):
        values = read_rows(rows[low:high], inputs)
        predicted = {
            "probability": [0.5 + j / 1000 for j in range(low, high)],
            "label": [i] * (high - low),
        }
        received = start + dt.timedelta(seconds=i)
        warnings = list(range(high - low))
        entries.append(
            Entry(f"r{i}", received, 1, inputs, values, predicted, high - low, warnings, "p", {})
        )
    log = PredictionLog(tmp_path, flush_rows=10**6, flush_seconds=3600)
    for entry in entries:
        log.append(entry)
    (written,) = log.flush()
    assert written.read_bytes() == parquet_bytes(entries_frame(entries))
    assert (entries_table(entries) is None) == (missing is not None)


def test_close_reports_the_rows_it_could_not_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = PredictionLog(_blocked(tmp_path), flush_rows=10**6, flush_seconds=3600)
    log.start()
    log.append(pd.DataFrame({"x": [1, 2]}))
    assert log.close() == 2
    (lost,) = [r for r in caplog.records if "could not be written" in r.getMessage()]
    assert lost.levelno == logging.ERROR and "2 rows" in lost.getMessage()
    assert log.close() == 2  # again: still reported, nothing dropped


def test_a_folder_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    folder = _blocked(tmp_path)
    with pytest.raises(WriteError, match=re.escape(f"cannot write {folder}: Not a directory")):
        PredictionLog(folder).check_writable()
    PredictionLog(tmp_path / "new" / "log").check_writable()
    assert list((tmp_path / "new" / "log").iterdir()) == []  # the probe file is gone
