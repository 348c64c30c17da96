"""Per-class metrics and validation-split metrics, measured and gated, on sklearn's tables."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets
from sklearn import metrics as skm

from mlcompile.runtime.artifacts import ModelBundle
from mlcompile.runtime.evaluate import metrics_of, predictions, validation_scores
from mlcompile.runtime.features import apply_features, fit_features
from mlcompile.runtime.gate import evaluate_gate
from mlcompile.runtime.split import split_frame
from mlcompile.runtime.train import train_model
from mlcompile.spec.checks.gates import parse_check

from .helpers import features_params, model_params


def _trained(
    frame: pd.DataFrame, task: str, target: str
) -> tuple[pd.DataFrame, ModelBundle, pd.DataFrame]:
    params = {"model": "m", "method": "random", "test_size": 0.3, "seed": 5}
    train, test = split_frame(frame, params)
    columns = [c for c in train.columns if c != target]
    features = [{"name": c, "op": "passthrough", "column": c} for c in columns]
    state = fit_features(train, features_params(task, target, features))
    transformed = apply_features(train, state)
    overrides: dict[str, Any] = {"validation_size": 0.2, "params": {"min_data_in_leaf": 5}}
    _, bundle = train_model(transformed, state, model_params(task, target, **overrides))
    return test, bundle, transformed


def _check(text: str) -> dict[str, Any]:
    parsed = parse_check(text)
    assert parsed is not None
    return {"metric": parsed.metric, "op": parsed.op, "value": parsed.value}


def test_per_class_recall_is_measured_and_gated_by_class_name() -> None:
    iris = datasets.load_iris(as_frame=True)
    names = dict(enumerate(iris.target_names))
    frame = iris.frame.assign(species=iris.frame["target"].map(names)).drop(columns="target")
    test, bundle, _ = _trained(frame, "multiclass", "species")
    metrics = metrics_of(predictions(bundle, test, []), {"metrics": None})
    overall = metrics["overall"]
    predicted = np.asarray(bundle.meta["classes"])[
        predictions(bundle, test, []).scores.argmax(axis=1)
    ]
    for name in iris.target_names:
        expected = skm.recall_score(test["species"], predicted, labels=[name], average=None)[0]
        assert overall[f"recall[class={name}]"] == pytest.approx(expected)
    assert overall["weighted_f1"] == pytest.approx(
        skm.f1_score(test["species"], predicted, average="weighted")
    )
    assert overall["balanced_accuracy"] == pytest.approx(
        skm.balanced_accuracy_score(test["species"], predicted)
    )
    passing = evaluate_gate(metrics, {"checks": [_check("recall[class=setosa] >= 0.9")]}, None)
    assert passing["passed"] and passing["checks"][0]["value"] == 1.0
    impossible = _check("precision[class=virginica] > 1")
    assert not evaluate_gate(metrics, {"checks": [impossible]}, None)["passed"]
    missing = evaluate_gate(metrics, {"checks": [_check("recall[class=Gentoo] >= 0.9")]}, None)
    assert not missing["passed"] and "recall[class=Gentoo]" in missing["checks"][0]["note"]


def test_validation_rmse_gates_on_the_held_out_rows() -> None:
    frame = datasets.load_diabetes(as_frame=True, scaled=False).frame
    test, bundle, transformed = _trained(frame, "regression", "target")
    held = validation_scores(bundle, transformed)
    assert held is not None
    metrics = metrics_of(predictions(bundle, test, []), {"metrics": None}, held)
    validation = metrics["validation"]["overall"]
    assert metrics["validation"]["rows"] == bundle.meta["validation"]["rows"] == len(held[0])
    assert validation["rmse"] == pytest.approx(skm.root_mean_squared_error(*held))
    assert validation["rmse"] != metrics["overall"]["rmse"]
    bound = (validation["rmse"] + metrics["overall"]["rmse"]) / 2
    lower = min(validation["rmse"], metrics["overall"]["rmse"]) == validation["rmse"]
    decision = evaluate_gate(
        metrics,
        {"checks": [_check(f"validation.rmse <= {bound}"), _check(f"rmse <= {bound}")]},
        None,
    )
    assert [c["passed"] for c in decision["checks"]] == [lower, not lower]
    assert decision["checks"][0]["value"] == validation["rmse"]
