"""Metrics of a model bundle on raw test rows, overall and per slice.

A metric that is undefined on some rows (ROC AUC with one class, precision with no positive
prediction) is left out rather than written as NaN, so every number in metrics.json is real.
Test rows with a missing target are not evaluated; slices skip missing slice values.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from sklearn import metrics as skm

from mlcompile.errors import StepError, UsageError, did_you_mean

from .artifacts import ModelBundle, json_safe, json_scalar
from .train import encode_target, model_inputs

Scores = Any  # numpy arrays: true labels, predicted scores
Metric = Callable[[Scores, Scores], float]


# The score from which a binary model predicts the positive class; the confusion matrix and
# the operating point of the diagnosis pictures use the same one.
THRESHOLD = 0.5


def _binary_label(p: Scores) -> Scores:
    return (p >= THRESHOLD).astype(int)


def _defined_only(metric: Metric) -> Metric:
    """NaN where the metric is undefined: sklearn either raises, or warns and returns NaN
    (`zero_division=np.nan`); the warning carries no information the omission does not."""

    def safe(y: Scores, p: Scores) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return float(metric(y, p))
            except ValueError:
                return math.nan

    return safe


def _one_class_nan(metric: Metric) -> Metric:
    # sklearn scores ROC/PR AUC with one class present as a warning plus a made-up value.
    return lambda y, p: metric(y, p) if len(np.unique(y)) > 1 else math.nan


BINARY: dict[str, Metric] = {
    "roc_auc": _one_class_nan(skm.roc_auc_score),
    "pr_auc": _one_class_nan(skm.average_precision_score),
    "logloss": lambda y, p: skm.log_loss(y, p, labels=[0, 1]),
    "accuracy": lambda y, p: skm.accuracy_score(y, _binary_label(p)),
    "f1": lambda y, p: skm.f1_score(y, _binary_label(p), zero_division=np.nan),
    "precision": lambda y, p: skm.precision_score(y, _binary_label(p), zero_division=np.nan),
    "recall": lambda y, p: skm.recall_score(y, _binary_label(p), zero_division=np.nan),
}
MULTICLASS: dict[str, Metric] = {
    "accuracy": lambda y, p: skm.accuracy_score(y, p.argmax(axis=1)),
    "macro_f1": lambda y, p: skm.f1_score(y, p.argmax(axis=1), average="macro"),
    "logloss": lambda y, p: skm.log_loss(y, p, labels=list(range(p.shape[1]))),
}
REGRESSION: dict[str, Metric] = {
    "rmse": skm.root_mean_squared_error,
    "mae": skm.mean_absolute_error,
    "r2": skm.r2_score,
    "mape": skm.mean_absolute_percentage_error,
}
TASK_METRICS: dict[str, dict[str, Metric]] = {
    "binary": BINARY,
    "multiclass": MULTICLASS,
    "regression": REGRESSION,
}


def _chosen(task: str, names: Sequence[str] | None, model: str) -> dict[str, Metric]:
    available = TASK_METRICS[task]
    if names is None:
        return {name: _defined_only(f) for name, f in available.items()}
    chosen = {}
    for name in names:
        if name not in available:
            hint = did_you_mean(name, available)
            raise UsageError(
                f"model '{model}': metric '{name}' does not exist for a {task} model"
                + (f" ({hint})" if hint else "")
            )
        chosen[name] = _defined_only(available[name])
    return chosen


def _score(metrics: Mapping[str, Metric], y: Scores, p: Scores) -> dict[str, float]:
    values = {name: metric(y, p) for name, metric in metrics.items()}
    return {name: value for name, value in values.items() if math.isfinite(value)}


@dataclass(frozen=True)
class Predictions:
    """The labelled test rows of one model, as the model read them, and its scores on them:
    what metrics and diagnosis pictures are both computed from."""

    model: str
    task: str
    rows: pd.DataFrame
    inputs: pd.DataFrame  # the rows' model inputs (features applied)
    labels: Scores
    scores: Scores


def predictions(
    bundle: ModelBundle, test_df: pd.DataFrame, slices: Sequence[str], *, num_threads: int = 1
) -> Predictions:
    meta = bundle.meta
    model, task, target = str(meta["model"]), str(meta["task"]), str(meta["target"])
    if task not in TASK_METRICS:
        raise UsageError(f"model '{model}': unknown task '{task}'")
    if target not in test_df.columns:
        raise StepError(f"model '{model}': target column '{target}' is not in the test rows")
    absent = [s for s in slices if s not in test_df.columns]
    if absent:
        raise StepError(f"model '{model}': slice columns {absent} are not in the test rows")
    labels = encode_target(test_df[target], task, meta.get("classes"), model)
    known = ~np.isnan(labels)
    rows, y = test_df[known].reset_index(drop=True), labels[known]
    if not len(y):
        raise StepError(f"model '{model}': no test rows have a value for '{target}'")
    inputs = model_inputs(bundle, rows)
    scores = lgb.Booster(model_str=bundle.text).predict(inputs, num_threads=num_threads)
    return Predictions(model, task, rows, inputs, y, scores)


def evaluate(
    bundle: ModelBundle,
    test_df: pd.DataFrame,
    params: Mapping[str, Any],
    *,
    num_threads: int = 1,
) -> dict[str, Any]:
    """metrics.json: `{"task", "rows", "overall", "slices": {column: {value: metrics}}}`."""
    slices = list(params.get("slices") or [])
    return metrics_of(predictions(bundle, test_df, slices, num_threads=num_threads), params)


def metrics_of(found: Predictions, params: Mapping[str, Any]) -> dict[str, Any]:
    metrics = _chosen(found.task, params.get("metrics"), found.model)
    rows, y, scores = found.rows, found.labels, found.scores
    min_rows = int(params.get("min_slice_rows") or 1)
    by_slice: dict[str, dict[str, dict[str, float]]] = {}
    skipped: dict[str, dict[str, int]] = {}  # too few rows to judge: gates say so
    for column in params.get("slices") or []:
        by_slice[column] = {}
        for value, index in rows.groupby(column, sort=True).indices.items():
            if len(index) >= min_rows:
                entry = _score(metrics, y[index], scores[index])
                by_slice[column][str(json_scalar(value))] = {**entry, "rows": len(index)}
            else:
                skipped.setdefault(column, {})[str(json_scalar(value))] = len(index)
    result: dict[str, Any] = {
        "task": found.task,
        "rows": len(y),
        "overall": _score(metrics, y, scores),
        "slices": by_slice,
    }
    if skipped:
        result.update(skipped_slices=skipped, min_slice_rows=min_rows)
    return dict(json_safe(result))
