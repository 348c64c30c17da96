"""A binary model's decision threshold: chosen on the validation split, stored with the
model, and the same in evaluate, batch scoring and serving."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn import metrics as skm

from mlcompile.errors import StepError
from mlcompile.runtime.artifacts import ModelBundle, read_dataset, write_dataset
from mlcompile.runtime.evaluate import evaluate, metrics_of, predictions, validation_scores
from mlcompile.runtime.features import apply_features, fit_features
from mlcompile.runtime.registry import Registry
from mlcompile.runtime.score import score_frame
from mlcompile.runtime.threshold import choose_threshold
from mlcompile.runtime.train import predict, train_model
from mlcompile.serving.app import create_app

from .helpers import features_params, model_params

RULE = {"maximize": "f1"}


def _train(train: pd.DataFrame, **overrides: object) -> tuple[pd.DataFrame, ModelBundle]:
    state = fit_features(train, features_params("binary", "delayed"))
    transformed = apply_features(train, state)
    _, bundle = train_model(transformed, state, model_params("binary", "delayed", **overrides))
    return transformed, bundle


def test_threshold_chosen_on_validation_maximizes_f1_there(
    delay_split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    transformed, bundle = _train(delay_split[0], threshold=RULE)
    chosen = bundle.meta["threshold"]
    assert chosen["rule"] == RULE and chosen["rows"] == bundle.meta["validation"]["rows"]
    labels, scores = validation_scores(bundle, transformed) or ((), ())
    assert len(labels) == chosen["rows"]
    best = skm.f1_score(labels, scores >= chosen["value"])
    for other in np.linspace(0.05, 0.95, 19):
        assert best >= skm.f1_score(labels, scores >= other)
    assert chosen["value"] != 0.5
    # evaluate measures at the stored threshold, on test and on validation
    test = delay_split[1]
    found = predictions(bundle, test, [])
    result = metrics_of(found, {"metrics": None}, (labels, scores))
    test_scores = predict(bundle, test)
    assert result["threshold"] == chosen["value"]
    assert result["overall"]["f1"] == skm.f1_score(test["delayed"], test_scores >= chosen["value"])
    assert result["validation"]["overall"]["f1"] == pytest.approx(best)
    assert result["validation"]["rows"] == chosen["rows"]


def test_a_tuned_threshold_changes_batch_scores_and_serving_answers_alike(
    delay_split: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train, test = delay_split
    _, plain = _train(train)
    _, tuned = _train(train, threshold=RULE)
    assert plain.text == tuned.text  # the same trees: only the threshold differs
    rows = test.head(400)
    plain_labels = score_frame(plain, rows, [])["label"]
    tuned_scores = score_frame(tuned, rows, [])
    assert (plain_labels != tuned_scores["label"]).any()
    expected = (tuned_scores["probability"] >= tuned.meta["threshold"]["value"]).astype(int)
    assert (tuned_scores["label"] == expected).all()
    registry = Registry(tmp_path / "registry")
    registry.register("delay", tuned, evaluate(tuned, test, {}), alias="production")
    payload = json.loads(rows.to_json(orient="records", date_format="iso"))
    with TestClient(create_app(tmp_path / "registry", "delay", "production")) as client:
        response = client.post("/predict", json={"rows": payload})
    assert response.status_code == 200, response.text
    served = [p["label"] for p in response.json()["predictions"]]
    assert served == tuned_scores["label"].tolist()


def test_rules_that_no_threshold_meets_are_an_error() -> None:
    labels, scores = np.array([0, 1, 0, 1]), np.array([0.9, 0.8, 0.7, 0.1])
    with pytest.raises(StepError, match="no threshold reaches"):
        choose_threshold({"min_precision": 0.9}, labels, scores)
    picked = choose_threshold({"min_recall": 0.5}, labels, scores)
    assert picked["value"] == 0.8  # recall 1/2 at the best precision (1/2) reached there


def test_validation_metrics_come_from_the_held_out_rows(
    delay_split: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    transformed, bundle = _train(delay_split[0])
    write_dataset(tmp_path / "train", transformed, {})
    again, _ = read_dataset(tmp_path / "train")
    held = validation_scores(bundle, again)
    assert held is not None and len(held[0]) == bundle.meta["validation"]["rows"]
    best = bundle.meta["validation"]["best_score"]["binary_logloss"]
    assert skm.log_loss(held[0], held[1]) == pytest.approx(best, rel=1e-6)
    _, unstopped = _train(delay_split[0], early_stopping_rounds=None)
    assert validation_scores(unstopped, transformed) is None
