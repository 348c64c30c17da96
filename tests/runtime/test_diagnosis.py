"""Diagnosis data against scikit-learn on the same predictions: a flights delay classifier,
iris (multiclass) and diabetes (regression), all from data that ships with the packages."""

from __future__ import annotations

import json
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn import datasets
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from mlcompile.runtime import diagnosis
from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.diagnosis import diagnose, thin
from mlcompile.runtime.evaluate import THRESHOLD, Predictions, predictions
from mlcompile.runtime.features import apply_features, fit_features
from mlcompile.runtime.split import split_frame
from mlcompile.runtime.train import model_inputs, train_model

from .helpers import features_params, model_params


def _bundle(train: pd.DataFrame, task: str, target: str, **overrides: Any) -> ModelBundle:
    columns = [c for c in train.columns if c != target]
    features = [{"name": c, "op": "passthrough", "column": c} for c in columns]
    state = fit_features(train, features_params(task, target, features))
    _, bundle = train_model(
        apply_features(train, state), state, model_params(task, target, **overrides)
    )
    return bundle


def _sklearn_split(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    params = {"model": "m", "method": "random", "test_size": 0.3, "seed": 5}
    return split_frame(frame.rename(columns={"target": target}), params)


def _shap_rows_sum_to_raw_scores(bundle: ModelBundle, found: Predictions, result: Any) -> None:
    swarm = result["shap"]["beeswarm"]
    rows = found.rows.iloc[swarm["rows"]]
    raw = lgb.Booster(model_str=bundle.text).predict(model_inputs(bundle, rows), raw_score=True)
    raw = raw.reshape(len(rows), -1)[np.arange(len(rows)), swarm["output"]]
    listed = np.sum([f["shap"] for f in swarm["features"]], axis=0)
    total = np.asarray(swarm["expected"]) + listed + np.asarray(swarm["rest"])
    # each stored value is rounded to 6 decimals; a row sums at most ~30 of them
    np.testing.assert_allclose(total, raw, atol=1e-4)


def test_binary_pictures_match_sklearn_on_flights(
    delay_split: tuple[pd.DataFrame, pd.DataFrame], delay_bundle: ModelBundle
) -> None:
    found = predictions(delay_bundle, delay_split[1], [])
    result = diagnose(delay_bundle, found)
    json.dumps(result, allow_nan=False)
    y, p = found.labels.astype(int), found.scores
    binary = result["binary"]

    assert binary["roc"]["auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    fpr, tpr = np.asarray(binary["roc"]["fpr"]), np.asarray(binary["roc"]["tpr"])
    assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert len(fpr) <= diagnosis.CURVE_POINTS
    # the thinned points still trace the curve: their area is the AUC to within a hair
    assert skm.auc(fpr, tpr) == pytest.approx(skm.roc_auc_score(y, p), abs=2e-3)
    assert binary["pr"]["average_precision"] == pytest.approx(
        skm.average_precision_score(y, p), abs=1e-12
    )

    (tn, fp), (fn, tp) = binary["confusion"]["matrix"]
    assert tn + fp + fn + tp == len(y) == result["rows"]
    assert tp + fn == y.sum()
    assert binary["operating_point"]["recall"] == skm.recall_score(y, p >= THRESHOLD)
    assert binary["operating_point"]["precision"] == skm.precision_score(y, p >= THRESHOLD)

    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(binary["calibration"]["observed"], observed, atol=1e-6)
    np.testing.assert_allclose(binary["calibration"]["predicted"], predicted, atol=1e-6)
    assert sum(binary["calibration"]["rows"]) == len(y)
    histogram = binary["score_histogram"]
    assert sum(histogram["negative"]) == (y == 0).sum()
    assert sum(histogram["positive"]) == (y == 1).sum()

    gains = {f["feature"]: f["gain"] for f in result["importance"]}
    assert set(gains) == set(delay_bundle.meta["feature_names"])
    assert max(gains, key=gains.__getitem__) == "dep_delay"  # departure delay decides arrival
    assert result["shap"]["mean_abs"][0]["feature"] == "dep_delay"
    _shap_rows_sum_to_raw_scores(delay_bundle, found, result)


def test_roc_points_are_exact_when_the_curve_is_short(delay_bundle: ModelBundle) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1)
    roc = diagnosis.roc(y, p)
    assert len(roc["fpr"]) < diagnosis.CURVE_POINTS  # nothing thinned
    assert skm.auc(roc["fpr"], roc["tpr"]) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-6)


def test_thin_keeps_both_ends_and_bounds_the_count() -> None:
    xs = np.linspace(0, 1, 5000) ** 2
    kept = thin(xs, np.sqrt(xs), 100)
    assert kept[0] == 0 and kept[-1] == 4999 and len(kept) <= 102
    assert np.all(np.diff(kept) > 0)


def test_multiclass_pictures_on_iris() -> None:
    frame = datasets.load_iris(as_frame=True).frame
    train, test = _sklearn_split(frame, "species")
    bundle = _bundle(train, "multiclass", "species", early_stopping_rounds=None)
    found = predictions(bundle, test, [])
    result = diagnose(bundle, found)
    json.dumps(result, allow_nan=False)
    y, predicted = found.labels.astype(int), found.scores.argmax(axis=1)

    matrix = np.asarray(result["multiclass"]["confusion"]["matrix"])
    np.testing.assert_array_equal(matrix, skm.confusion_matrix(y, predicted, labels=[0, 1, 2]))
    assert matrix.sum() == len(test)
    assert result["multiclass"]["classes"] == [0, 1, 2]
    recall = skm.recall_score(y, predicted, average=None, labels=[0, 1, 2])
    for entry, expected in zip(result["multiclass"]["per_class"], recall, strict=True):
        assert entry["recall"] == pytest.approx(expected)
    assert [e["support"] for e in result["multiclass"]["per_class"]] == np.bincount(y).tolist()
    assert set(result["shap"]["by_class"]) == {"0", "1", "2"}
    # the petal measures separate the species, as every iris tutorial finds
    assert result["shap"]["mean_abs"][0]["feature"].startswith("petal")
    _shap_rows_sum_to_raw_scores(bundle, found, result)


def test_regression_pictures_on_diabetes() -> None:
    frame = datasets.load_diabetes(as_frame=True, scaled=False).frame
    train, test = _sklearn_split(frame, "progression")
    bundle = _bundle(train, "regression", "progression", early_stopping_rounds=None)
    found = predictions(bundle, test, [])
    result = diagnose(bundle, found)
    json.dumps(result, allow_nan=False)
    y, p = found.labels, found.scores
    regression = result["regression"]

    residuals = regression["residuals"]
    assert sum(residuals["counts"]) == len(test)
    assert residuals["mean"] == pytest.approx(float(np.mean(y - p)))
    assert residuals["edges"][0] == pytest.approx((y - p).min(), abs=1e-6)
    sample = regression["sample"]
    assert len(sample["rows"]) == len(test)  # fewer rows than the scatter's limit: all of them
    np.testing.assert_allclose(sample["actual"], y[sample["rows"]], atol=1e-6)
    np.testing.assert_allclose(sample["predicted"], p[sample["rows"]], atol=1e-6)
    assert {f["feature"] for f in result["importance"][:3]} & {"bmi", "s5", "bp"}
    _shap_rows_sum_to_raw_scores(bundle, found, result)


def test_diagnosis_is_deterministic(
    delay_split: tuple[pd.DataFrame, pd.DataFrame], delay_bundle: ModelBundle
) -> None:
    first = diagnose(delay_bundle, predictions(delay_bundle, delay_split[1], []))
    again = diagnose(delay_bundle, predictions(delay_bundle, delay_split[1], []), num_threads=2)
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)


def test_beeswarm_colours_are_scaled_values(delay_bundle: ModelBundle) -> None:
    column = pd.Series([3.0, np.nan, 1.0, 5.0])
    assert diagnosis._scaled(column, 4) == [0.5, None, 0.0, 1.0]
    categories = pd.Series(pd.Categorical(["b", "a", None, "c"], categories=["a", "b", "c"]))
    assert diagnosis._scaled(categories, 4) == [0.5, 0.0, None, 1.0]
