from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlcompile.errors import DataValidationError, StepError, UsageError
from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.score import output_format, score_frame, write_table
from mlcompile.runtime.train import predict

from .helpers import train_bundle


def test_binary_scores_keep_ids_and_row_order(
    delay_split: tuple[pd.DataFrame, pd.DataFrame], delay_bundle: ModelBundle
) -> None:
    rows = delay_split[1].drop(columns=["delayed", "arr_delay"])  # scoring needs no target
    scored = score_frame(delay_bundle, rows, ["flight", "time_hour"])
    assert list(scored.columns) == ["flight", "time_hour", "probability", "label"]
    assert scored["flight"].tolist() == rows["flight"].tolist()
    assert scored["probability"].to_numpy() == pytest.approx(predict(delay_bundle, rows))
    assert (scored["label"] == (scored["probability"] >= 0.5)).all()
    assert scored["label"].dtype == "int64"


def test_multiclass_and_regression_columns(delays: pd.DataFrame) -> None:
    multiclass = train_bundle(
        delays, "multiclass", "origin", num_boost_round=10, early_stopping_rounds=None
    )
    scored = score_frame(multiclass, delays.head(50), ["flight"])
    probabilities = ["probability_EWR", "probability_JFK", "probability_LGA"]
    assert list(scored.columns) == ["flight", "class", *probabilities]
    assert scored[probabilities].sum(axis=1).to_numpy() == pytest.approx(np.ones(50))
    best = np.array(probabilities)[scored[probabilities].to_numpy().argmax(axis=1)]
    assert [f"probability_{c}" for c in scored["class"]] == best.tolist()
    regression = train_bundle(
        delays, "regression", "arr_delay", num_boost_round=10, early_stopping_rounds=None
    )
    assert list(score_frame(regression, delays.head(5), []).columns) == ["prediction"]


def test_score_errors(delay_bundle: ModelBundle, delays: pd.DataFrame) -> None:
    with pytest.raises(StepError, match="id columns \\['row_id'\\] are not in the scored rows"):
        score_frame(delay_bundle, delays, ["row_id"])
    with pytest.raises(UsageError, match="clash with prediction columns"):
        score_frame(delay_bundle, delays.assign(label=1), ["label"])
    with pytest.raises(StepError, match="lacks input columns \\['carrier'\\]"):
        score_frame(delay_bundle, delays.drop(columns="carrier"), [])


def test_written_files_are_deterministic(
    tmp_path: Path, delay_bundle: ModelBundle, delays: pd.DataFrame
) -> None:
    scored = score_frame(delay_bundle, delays.head(200), ["flight"])
    for name in ("out.parquet", "out.csv"):
        fmt = output_format(name, None)
        first = write_table(scored, tmp_path / "a" / name, fmt)
        second = write_table(scored, tmp_path / "b" / name, fmt)
        assert first == second
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a" / "out.parquet"), scored)
    assert pd.read_csv(tmp_path / "a" / "out.csv")["flight"].tolist() == scored["flight"].tolist()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["out.csv", "out.parquet"]
    with pytest.raises(UsageError, match="format must be parquet or csv, not 'xlsx'"):
        output_format("out.xlsx", None)


def test_infinities_in_scored_rows_are_a_data_failure(
    delay_split: tuple[pd.DataFrame, pd.DataFrame], delay_bundle: ModelBundle
) -> None:
    rows = delay_split[1].drop(columns=["delayed", "arr_delay"]).reset_index(drop=True)
    rows["distance"] = rows["distance"].astype("float64")
    rows.loc[[0, 1, 2], "distance"] = -np.inf
    with pytest.raises(
        DataValidationError,
        match=rf"input column holds inf or -inf: 'distance' in 3 of {len(rows)} rows",
    ):
        score_frame(delay_bundle, rows, ["flight"])
