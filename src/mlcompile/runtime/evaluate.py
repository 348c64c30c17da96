"""Metrics of a model bundle on raw test rows, overall and per slice, and on the validation
split early stopping held out of training.

A metric that is undefined on some rows (ROC AUC with one class, precision with no positive
prediction) is not written as NaN: metrics.json lists it under `undefined` with the reason,
so every number in it is real and no metric vanishes unexplained. Test rows with a missing
target are not evaluated; slices skip missing slice values.
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
from mlcompile.tasks import PER_CLASS

from .artifacts import ModelBundle, json_safe, json_scalar
from .custom import load_function
from .threshold import THRESHOLD, model_threshold
from .train import encode_target, model_inputs, validation_rows

Scores = Any  # numpy arrays: true labels, predicted scores


class Undefined(Exception):
    """The metric has no value on these rows; the message says why."""


@dataclass(frozen=True)
class Scored:
    labels: Scores
    scores: Scores
    threshold: float = THRESHOLD

    @property
    def predicted(self) -> Scores:
        if self.scores.ndim == 2:
            return self.scores.argmax(axis=1)
        return (self.scores >= self.threshold).astype(int)


Metric = Callable[[Scored], float]


def _both_classes(s: Scored) -> None:
    if len(np.unique(s.labels)) < 2:
        raise Undefined("the rows hold one class only")


def _curve(metric: Callable[..., float]) -> Metric:
    def measure(s: Scored) -> float:
        _both_classes(s)
        return metric(s.labels, s.scores)

    return measure


def _precision(s: Scored) -> float:
    if not s.predicted.any():
        raise Undefined(f"no row is predicted positive at threshold {s.threshold:g}")
    return float(skm.precision_score(s.labels, s.predicted))


def _recall(s: Scored) -> float:
    if not s.labels.any():
        raise Undefined("no row is positive")
    return float(skm.recall_score(s.labels, s.predicted))


def _f1(s: Scored) -> float:
    if not s.labels.any() and not s.predicted.any():
        raise Undefined(f"no row is positive, none is predicted positive at {s.threshold:g}")
    return float(skm.f1_score(s.labels, s.predicted))


def _r2(s: Scored) -> float:
    if len(s.labels) < 2 or np.ptp(s.labels) == 0:
        raise Undefined("the target is constant on these rows")
    return float(skm.r2_score(s.labels, s.scores))


def _labels(metric: Callable[..., float], **kwargs: Any) -> Metric:
    return lambda s: metric(s.labels, s.predicted, **kwargs)


def _values(metric: Callable[..., float]) -> Metric:
    return lambda s: metric(s.labels, s.scores)


BINARY: dict[str, Metric] = {
    "roc_auc": _curve(skm.roc_auc_score),
    "pr_auc": _curve(skm.average_precision_score),
    "logloss": lambda s: skm.log_loss(s.labels, s.scores, labels=[0, 1]),
    "brier": lambda s: skm.brier_score_loss(s.labels, s.scores, pos_label=1),
    "accuracy": _labels(skm.accuracy_score),
    "balanced_accuracy": _labels(skm.balanced_accuracy_score),
    "f1": _f1,
    "precision": _precision,
    "recall": _recall,
}
MULTICLASS: dict[str, Metric] = {
    "accuracy": _labels(skm.accuracy_score),
    "balanced_accuracy": _labels(skm.balanced_accuracy_score),
    "macro_f1": _labels(skm.f1_score, average="macro"),
    "weighted_f1": _labels(skm.f1_score, average="weighted"),
    "logloss": lambda s: skm.log_loss(s.labels, s.scores, labels=list(range(s.scores.shape[1]))),
    # per class: `_per_class` measures each class as the positive one
    "precision": _precision,
    "recall": _recall,
}
REGRESSION: dict[str, Metric] = {
    "rmse": _values(skm.root_mean_squared_error),
    "mse": _values(skm.mean_squared_error),
    "mae": _values(skm.mean_absolute_error),
    "median_ae": _values(skm.median_absolute_error),
    "max_error": _values(skm.max_error),
    "r2": _r2,
    "mape": _values(skm.mean_absolute_percentage_error),
}
TASK_METRICS: dict[str, dict[str, Metric]] = {
    "binary": BINARY,
    "multiclass": MULTICLASS,
    "regression": REGRESSION,
}


def _custom(entry: Mapping[str, Any]) -> Metric:
    """A project's metric: `function(y_true, y_score)`, loaded under the operator's trust."""
    function = load_function(str(entry["function"]), f"custom metric '{entry['name']}'")

    def measure(s: Scored) -> float:
        try:
            return float(function(s.labels, s.scores))
        except Undefined:
            raise
        except Exception as exc:  # the project's own code failed: its metric's failure
            raise StepError(
                f"custom metric '{entry['name']}' failed: {type(exc).__name__}: {exc}"
            ) from None

    return measure


def _chosen(
    task: str,
    names: Sequence[str] | None,
    model: str,
    custom: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Metric]:
    available = TASK_METRICS[task]
    own = {str(entry["name"]): _custom(entry) for entry in custom}
    if names is None:
        return {**available, **own}
    chosen = {}
    for name in names:
        if name not in available:
            hint = did_you_mean(name, available)
            raise UsageError(
                f"model '{model}': metric '{name}' does not exist for a {task} model"
                + (f" ({hint})" if hint else "")
            )
        chosen[name] = available[name]
    return {**chosen, **own}


def _measure(metric: Metric, scored: Scored) -> float:
    # sklearn warns where it would make a value up; Undefined already says why
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = float(metric(scored))
        except ValueError as exc:
            raise Undefined(str(exc)) from None
    if not math.isfinite(value):
        raise Undefined("not a finite number on these rows")
    return value


def _one_vs_rest(scored: Scored, index: int) -> Scored:
    # the class as the positive one: its probability against the threshold of the argmax
    is_class = (scored.predicted == index).astype(float)
    return Scored((scored.labels == index).astype(int), is_class, threshold=0.5)


@dataclass(frozen=True)
class Scorer:
    """Measures the chosen metrics of one model on any rows."""

    task: str
    metrics: Mapping[str, Metric]
    classes: Sequence[Any]
    threshold: float

    def score(self, y: Scores, p: Scores) -> tuple[dict[str, float], dict[str, str]]:
        """(values, {metric: why it is undefined})."""
        scored = Scored(y, p, self.threshold)
        values: dict[str, float] = {}
        undefined: dict[str, str] = {}
        per_class = PER_CLASS.get(self.task, ())
        for name, metric in self.metrics.items():
            targets = [(name, scored)]
            if name in per_class:
                targets = [
                    (f"{name}[class={json_scalar(c)}]", _one_vs_rest(scored, i))
                    for i, c in enumerate(self.classes)
                ]
            for key, rows in targets:
                try:
                    values[key] = _measure(metric, rows)
                except Undefined as why:
                    undefined[key] = str(why)
        return values, undefined


def intervals(
    scorer: Scorer, y: Scores, p: Scores, bootstrap: Mapping[str, Any]
) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """({metric: {"lower", "upper"}}, {metric: why it has none}): percentile intervals over
    seeded resamples of the rows, drawn with replacement. A resample where a metric is
    undefined (one class drawn) does not count; with fewer than half counting, no interval."""
    resamples, confidence = int(bootstrap["resamples"]), float(bootstrap["confidence"])
    rng = np.random.default_rng(int(bootstrap["seed"]))
    draws: dict[str, list[float]] = {}
    for _ in range(resamples):
        index = rng.integers(0, len(y), len(y))
        values, _ = scorer.score(y[index], p[index])
        for name, value in values.items():
            draws.setdefault(name, []).append(value)
    overall, _ = scorer.score(y, p)
    found: dict[str, dict[str, float]] = {}
    undefined: dict[str, str] = {}
    tail = (1 - confidence) / 2 * 100
    for name in overall:
        drawn = draws.get(name, [])
        if len(drawn) * 2 < resamples:
            undefined[name] = f"defined in {len(drawn)} of {resamples} resamples only"
            continue
        lower, upper = np.percentile(drawn, [tail, 100 - tail])
        found[name] = {"lower": float(lower), "upper": float(upper)}
    return found, undefined


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
    threshold: float = THRESHOLD
    classes: tuple[Any, ...] = ()


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
    labels = encode_target(
        test_df[target], task, meta.get("classes"), model, meta.get("positive_class")
    )
    known = ~np.isnan(labels)
    rows, y = test_df[known].reset_index(drop=True), labels[known]
    if not len(y):
        raise StepError(f"model '{model}': no test rows have a value for '{target}'")
    inputs = model_inputs(bundle, rows)
    scores = lgb.Booster(model_str=bundle.text).predict(inputs, num_threads=num_threads)
    classes = tuple(meta.get("classes") or ())
    return Predictions(model, task, rows, inputs, y, scores, model_threshold(meta), classes)


def validation_scores(
    bundle: ModelBundle, train_df: pd.DataFrame, num_threads: int = 1
) -> tuple[Scores, Scores] | None:
    """(labels, scores) of the validation rows: the ones training held out of the features'
    train split for early stopping, picked again the same way. None without early stopping."""
    held = validation_rows(train_df, bundle.meta)
    if held is None:
        return None
    inputs, labels = held
    booster = lgb.Booster(model_str=bundle.text)
    return labels, booster.predict(inputs, num_threads=num_threads)


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


def metrics_of(
    found: Predictions,
    params: Mapping[str, Any],
    validation: tuple[Scores, Scores] | None = None,
) -> dict[str, Any]:
    """metrics.json: `{"task", "rows", "threshold", "overall", "slices": {column: {value:
    metrics}}, "validation": {"rows", "overall"} or null, "undefined": {"overall",
    "slices", "validation"}}` (undefined: metric -> why it has no value)."""
    scorer = Scorer(
        found.task,
        _chosen(found.task, params.get("metrics"), found.model, params.get("custom_metrics") or ()),
        found.classes,
        found.threshold,
    )
    rows, y, scores = found.rows, found.labels, found.scores
    min_rows = int(params.get("min_slice_rows") or 1)
    by_slice: dict[str, dict[str, dict[str, float]]] = {}
    undefined_slices: dict[str, dict[str, dict[str, str]]] = {}
    skipped: dict[str, dict[str, int]] = {}  # too few rows to judge: gates say so
    for column in params.get("slices") or []:
        by_slice[column], undefined_slices[column] = {}, {}
        for value, index in rows.groupby(column, sort=True).indices.items():
            if len(index) >= min_rows:
                entry, why = scorer.score(y[index], scores[index])
                key = str(json_scalar(value))
                by_slice[column][key] = {**entry, "rows": len(index)}
                if why:
                    undefined_slices[column][key] = why
            else:
                skipped.setdefault(column, {})[str(json_scalar(value))] = len(index)
    overall, undefined = scorer.score(y, scores)
    result: dict[str, Any] = {
        "task": found.task,
        "rows": len(y),
        "overall": overall,
        "slices": by_slice,
        "validation": None,
        "undefined": {
            "overall": undefined,
            "slices": {c: v for c, v in undefined_slices.items() if v},
        },
    }
    if skipped:
        result.update(skipped_slices=skipped, min_slice_rows=min_rows)
    if found.task == "binary":
        result["threshold"] = found.threshold
    bootstrap = params.get("bootstrap")
    if bootstrap:
        found_intervals, result["undefined"]["intervals"] = intervals(scorer, y, scores, bootstrap)
        result["intervals"], result["bootstrap"] = found_intervals, dict(bootstrap)
    if validation is not None:
        values, why = scorer.score(*validation)
        result["validation"] = {"rows": len(validation[0]), "overall": values}
        result["undefined"]["validation"] = why
    return dict(json_safe(result))
