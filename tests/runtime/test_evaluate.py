from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from mlcompile.errors import DataValidationError, StepError, UsageError
from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.evaluate import evaluate
from mlcompile.runtime.split import split_frame
from mlcompile.runtime.train import predict
from mlcompile.tasks import TASK_METRICS

from .helpers import train_bundle

EVALUATE = {"metrics": None, "slices": ["origin"], "min_slice_rows": 30}


def test_binary_delay_model_on_flights(
    delay_split: tuple[pd.DataFrame, pd.DataFrame], delay_bundle: ModelBundle
) -> None:
    test = delay_split[1]
    result = evaluate(delay_bundle, test, EVALUATE)
    overall = result["overall"]
    assert result["task"] == "binary" and result["rows"] == len(test)
    assert set(overall) == set(TASK_METRICS["binary"])
    assert overall["roc_auc"] > 0.6
    assert overall["accuracy"] > 1 - test["delayed"].mean()  # better than always "on time"
    scores = predict(delay_bundle, test)
    assert overall["roc_auc"] == skm.roc_auc_score(test["delayed"], scores)
    assert overall["logloss"] == skm.log_loss(test["delayed"], scores)
    assert set(result["slices"]["origin"]) == {"EWR", "JFK", "LGA"}
    jfk = result["slices"]["origin"]["JFK"]
    at_jfk = (test["origin"] == "JFK").to_numpy()
    assert jfk["rows"] == at_jfk.sum()
    assert jfk["recall"] == skm.recall_score(test["delayed"][at_jfk], scores[at_jfk] >= 0.5)
    assert overall["brier"] == skm.brier_score_loss(test["delayed"], scores)
    assert overall["balanced_accuracy"] == skm.balanced_accuracy_score(
        test["delayed"], scores >= 0.5
    )
    assert result["threshold"] == 0.5 and result["undefined"]["overall"] == {}
    json.dumps(result, allow_nan=False)


def test_regression_on_arrival_delay(delays: pd.DataFrame) -> None:
    train, test = split_frame(
        delays, {"model": "m", "method": "time", "column": "time_hour", "test_size": 0.2, "seed": 1}
    )
    bundle = train_bundle(train, "regression", "arr_delay")
    result = evaluate(bundle, test, {"metrics": ["rmse", "mae", "r2"], "slices": []})
    overall = result["overall"]
    assert set(overall) == {"rmse", "mae", "r2"}
    everything = evaluate(bundle, test, {"metrics": None, "slices": []})["overall"]
    errors = test["arr_delay"] - predict(bundle, test)
    assert everything["mse"] == pytest.approx(everything["rmse"] ** 2)
    assert everything["max_error"] == pytest.approx(errors.abs().max())
    assert everything["median_ae"] == pytest.approx(errors.abs().median())
    baseline_rmse = math.sqrt(((test["arr_delay"] - train["arr_delay"].mean()) ** 2).mean())
    assert overall["rmse"] < 0.7 * baseline_rmse  # departure delay explains most of it
    assert overall["r2"] > 0.5
    assert 0 < overall["mae"] < overall["rmse"]
    assert result["slices"] == {}


def test_undefined_metrics_are_reported_with_the_reason(
    delay_bundle: ModelBundle, delays: pd.DataFrame
) -> None:
    # One slice holds only on-time flights: ROC AUC, PR AUC, recall are undefined there.
    rows = delays.head(400).assign(
        group=np.where(delays["delayed"].head(400) == 1, "late", "on_time")
    )
    result = evaluate(
        delay_bundle, rows, {"metrics": None, "slices": ["group"], "min_slice_rows": 5}
    )
    on_time = result["slices"]["group"]["on_time"]
    assert {"roc_auc", "pr_auc", "recall"}.isdisjoint(on_time)
    assert result["undefined"]["slices"]["group"]["on_time"] == {
        "roc_auc": "the rows hold one class only",
        "pr_auc": "the rows hold one class only",
        "recall": "no row is positive",
    }
    assert {"accuracy", "logloss", "rows"} <= set(on_time)
    assert "roc_auc" in result["overall"]


def test_small_slices_and_missing_targets_are_skipped(
    delay_bundle: ModelBundle, delays: pd.DataFrame
) -> None:
    rows = delays.head(1000).assign(delayed=delays["delayed"].head(1000).astype("Int64"))
    rows.loc[:99, "delayed"] = pd.NA
    result = evaluate(delay_bundle, rows, {"slices": ["carrier"], "min_slice_rows": 100})
    assert result["rows"] == 900
    counts = rows["carrier"][rows["delayed"].notna()].value_counts()
    assert set(result["slices"]["carrier"]) == set(counts[counts >= 100].index)


def test_evaluate_errors(delay_bundle: ModelBundle, delays: pd.DataFrame) -> None:
    with pytest.raises(UsageError, match="metric 'rmse' does not exist for a binary model"):
        evaluate(delay_bundle, delays, {"metrics": ["rmse"]})
    with pytest.raises(UsageError, match="did you mean 'roc_auc'"):
        evaluate(delay_bundle, delays, {"metrics": ["rocauc"]})
    with pytest.raises(StepError, match="slice columns \\['gate'\\] are not in the test rows"):
        evaluate(delay_bundle, delays, {"slices": ["gate"]})
    with pytest.raises(StepError, match="target column 'delayed' is not in the test rows"):
        evaluate(delay_bundle, delays.drop(columns="delayed"), {})


def test_runtime_computes_exactly_the_metrics_the_spec_allows() -> None:
    from mlcompile.runtime.evaluate import TASK_METRICS as IMPLEMENTED

    assert {task: tuple(m) for task, m in IMPLEMENTED.items()} == TASK_METRICS


def test_infinities_in_test_rows_are_a_data_failure(
    delay_split: tuple[pd.DataFrame, pd.DataFrame], delay_bundle: ModelBundle
) -> None:
    test = delay_split[1].reset_index(drop=True)
    features = test.assign(dep_delay=test["dep_delay"].where(test.index % 500 != 1, np.inf))
    rows = int(np.isinf(features["dep_delay"]).sum())
    with pytest.raises(
        DataValidationError,
        match=rf"input column holds inf or -inf: 'dep_delay' in {rows} of {len(test)} rows",
    ):
        evaluate(delay_bundle, features, EVALUATE)
    targets = test.assign(delayed=test["delayed"].astype("float64").where(test.index != 7, np.inf))
    with pytest.raises(DataValidationError, match=r"target 'delayed' holds inf or -inf"):
        evaluate(delay_bundle, targets, EVALUATE)
