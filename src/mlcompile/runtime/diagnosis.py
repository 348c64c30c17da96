"""The data behind a model's pictures: curves, confusion, residuals, importance and SHAP.

Computed from the very predictions evaluate scores, so a picture never disagrees with a
metric. Curves are thinned to a bounded number of points (the AUC and average precision are
computed on the whole curve first); SHAP values come from LightGBM's own `pred_contrib` on a
sample of the test rows seeded by the model's seed. Everything is plain JSON, a few tens of
kilobytes whatever the size of the test set.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from sklearn import metrics as skm

from .artifacts import ModelBundle, json_safe
from .evaluate import Predictions

CURVE_POINTS = 400
CALIBRATION_BINS = 10
HISTOGRAM_BINS = 20
SCATTER_ROWS = 500
SHAP_ROWS = 1000
BEESWARM_ROWS = 200
BEESWARM_FEATURES = 12
DIGITS = 6  # coordinates are rounded: the pictures need no more, and the file stays small

Array = Any  # numpy arrays


def diagnose(bundle: ModelBundle, found: Predictions, *, num_threads: int = 1) -> dict[str, Any]:
    """diagnosis.json: `{"model", "task", "rows", <task>: {...}, "importance", "shap"}`."""
    booster = lgb.Booster(model_str=bundle.text)
    names = [str(n) for n in bundle.meta["feature_names"]]
    y, p = found.labels, found.scores
    result: dict[str, Any] = {"model": found.model, "task": found.task, "rows": len(y)}
    if found.task == "binary":
        result["binary"] = binary(y, p, found.threshold)
    elif found.task == "multiclass":
        result["multiclass"] = multiclass(y, p, list(bundle.meta.get("classes") or []))
    else:
        result["regression"] = regression(y, p, _seed(bundle))
    result["importance"] = importance(booster, names)
    result["shap"] = shap_summary(bundle, booster, found, names, num_threads)
    return dict(json_safe(result))


def _seed(bundle: ModelBundle) -> int:
    return int((bundle.meta.get("params") or {}).get("seed") or 0)


def _rounded(values: Array) -> list[float | None]:
    rounded: Array = np.round(np.asarray(values, dtype="float64"), DIGITS)
    return [float(v) if np.isfinite(v) else None for v in rounded]


def thin(xs: Array, ys: Array, limit: int = CURVE_POINTS) -> Array:
    """Indices of at most `limit` points spread evenly along a curve's length, both ends kept."""
    if len(xs) <= limit:
        return np.arange(len(xs))
    length = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(xs), np.diff(ys)))])
    wanted = np.searchsorted(length, np.linspace(0.0, length[-1], limit))
    return np.unique(np.concatenate([[0], np.minimum(wanted, len(xs) - 1), [len(xs) - 1]]))


# ---- binary -----------------------------------------------------------------------------


def binary(y: Array, p: Array, threshold: float) -> dict[str, Any]:
    labels = y.astype(int)
    predicted = (p >= threshold).astype(int)
    tn, fp, fn, tp = (
        int(v) for v in skm.confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    )
    result: dict[str, Any] = {
        "threshold": threshold,
        "confusion": {"labels": [0, 1], "matrix": [[tn, fp], [fn, tp]]},
        "operating_point": {
            "threshold": threshold,
            "fpr": _ratio(fp, fp + tn),
            "tpr": _ratio(tp, tp + fn),
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
        },
        "calibration": calibration(labels, p),
        "score_histogram": score_histogram(labels, p),
    }
    if len(np.unique(labels)) > 1:  # curves need both classes
        result["roc"] = roc(labels, p)
        result["pr"] = precision_recall(labels, p)
    return result


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def roc(y: Array, p: Array) -> dict[str, Any]:
    fpr, tpr, thresholds = skm.roc_curve(y, p)
    keep = thin(fpr, tpr)
    return {
        "auc": float(skm.auc(fpr, tpr)),
        "fpr": _rounded(fpr[keep]),
        "tpr": _rounded(tpr[keep]),
        "thresholds": _rounded(thresholds[keep]),  # the first is +inf: null
    }


def precision_recall(y: Array, p: Array) -> dict[str, Any]:
    precision, recall, thresholds = skm.precision_recall_curve(y, p)
    keep = thin(recall, precision)
    return {
        # the step-wise area, as average_precision_score defines it
        "average_precision": float(-np.sum(np.diff(recall) * precision[:-1])),
        "precision": _rounded(precision[keep]),
        "recall": _rounded(recall[keep]),
        # one threshold fewer than points: the last point (recall 0) has none
        "thresholds": _rounded(np.append(thresholds, np.inf)[keep]),
    }


def calibration(y: Array, p: Array, bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Mean score and share of positives per equal-width score bin (empty bins left out),
    binned as sklearn's calibration_curve bins them."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], p)
    rows = np.bincount(index, minlength=bins)
    scored = np.bincount(index, weights=p, minlength=bins)
    positive = np.bincount(index, weights=y, minlength=bins)
    filled = rows > 0
    return {
        "edges": _rounded(edges),
        "predicted": _rounded(scored[filled] / rows[filled]),
        "observed": _rounded(positive[filled] / rows[filled]),
        "rows": [int(n) for n in rows[filled]],
    }


def score_histogram(y: Array, p: Array, bins: int = HISTOGRAM_BINS) -> dict[str, Any]:
    edges = np.linspace(0.0, 1.0, bins + 1)
    return {
        "edges": _rounded(edges),
        "negative": [int(n) for n in np.histogram(p[y == 0], bins=edges)[0]],
        "positive": [int(n) for n in np.histogram(p[y == 1], bins=edges)[0]],
    }


# ---- multiclass -------------------------------------------------------------------------


def multiclass(y: Array, p: Array, classes: Sequence[Any]) -> dict[str, Any]:
    count = p.shape[1]
    labels = list(range(count))
    truth, predicted = y.astype(int), p.argmax(axis=1)
    matrix = skm.confusion_matrix(truth, predicted, labels=labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a class never predicted has no precision: null
        precision, recall, f1, support = skm.precision_recall_fscore_support(
            truth, predicted, labels=labels, zero_division=np.nan
        )
    names = list(classes) if len(classes) == count else labels
    return {
        "classes": names,
        "confusion": {"labels": names, "matrix": [[int(v) for v in row] for row in matrix]},
        "per_class": [
            {
                "class": names[i],
                "precision": _finite(precision[i]),
                "recall": _finite(recall[i]),
                "f1": _finite(f1[i]),
                "support": int(support[i]),
            }
            for i in labels
        ],
    }


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


# ---- regression -------------------------------------------------------------------------


def regression(y: Array, p: Array, seed: int) -> dict[str, Any]:
    residuals = y - p
    sample = np.sort(_sample(len(y), SCATTER_ROWS, seed))
    counts, edges = np.histogram(residuals, bins=HISTOGRAM_BINS)
    return {
        "sample": {
            "rows": [int(i) for i in sample],
            "actual": _rounded(y[sample]),
            "predicted": _rounded(p[sample]),
        },
        "residuals": {
            "mean": float(residuals.mean()),
            "std": float(residuals.std()),
            "edges": _rounded(edges),
            "counts": [int(n) for n in counts],
        },
    }


def _sample(rows: int, limit: int, seed: int) -> Array:
    """A seeded sample of row positions, in the sampler's order."""
    return np.random.default_rng(seed).permutation(rows)[:limit]


# ---- importance and SHAP ----------------------------------------------------------------


def importance(booster: lgb.Booster, names: Sequence[str]) -> list[dict[str, Any]]:
    """Gain and split count per model input, largest gain first."""
    gain = booster.feature_importance(importance_type="gain")
    split = booster.feature_importance(importance_type="split")
    found = [
        {"feature": name, "gain": float(g), "split": int(s)}
        for name, g, s in zip(names, gain, split, strict=True)
    ]
    return sorted(found, key=lambda f: (-f["gain"], -f["split"], f["feature"]))


def contributions(booster: lgb.Booster, inputs: pd.DataFrame, num_threads: int = 1) -> Array:
    """SHAP values as (rows, outputs, inputs + 1): the last entry of each is the expected
    value; each output's entries sum to its raw score."""
    values = np.asarray(booster.predict(inputs, pred_contrib=True, num_threads=num_threads))
    width = len(inputs.columns) + 1
    return values.reshape(len(inputs), values.shape[1] // width, width)


def shap_summary(
    bundle: ModelBundle,
    booster: lgb.Booster,
    found: Predictions,
    names: Sequence[str],
    num_threads: int,
) -> dict[str, Any]:
    """Mean |SHAP| per input over a seeded sample of the test rows, and a beeswarm of the
    first rows of that sample over the largest inputs. A multiclass model's mean sums the
    classes' (and lists each class's); its beeswarm shows each row's predicted class."""
    order = _sample(len(found.rows), SHAP_ROWS, _seed(bundle))
    inputs = found.inputs.iloc[order]
    shap = contributions(booster, inputs, num_threads)
    per_output = np.abs(shap[:, :, :-1]).mean(axis=0)  # (outputs, inputs)
    mean_abs = per_output.sum(axis=0)
    ranked = sorted(range(len(names)), key=lambda i: (-mean_abs[i], names[i]))
    shown = ranked[:BEESWARM_FEATURES]
    swarm = min(BEESWARM_ROWS, len(order))
    outputs = shap.shape[1]
    chosen = (
        np.asarray(found.scores)[order[:swarm]].argmax(axis=1)
        if outputs > 1
        else np.zeros(swarm, dtype=int)
    )
    values = shap[np.arange(swarm), chosen]  # (rows, inputs + 1)
    hidden = [i for i in range(len(names)) if i not in set(shown)]
    result: dict[str, Any] = {
        "rows": len(order),
        "seed": _seed(bundle),
        "mean_abs": [{"feature": names[i], "value": float(mean_abs[i])} for i in ranked],
        "beeswarm": {
            "rows": [int(i) for i in order[:swarm]],
            "output": [int(c) for c in chosen],
            "expected": _rounded(values[:, -1]),
            "rest": _rounded(values[:, hidden].sum(axis=1)),
            "features": [
                {
                    "feature": names[i],
                    "shap": _rounded(values[:, i]),
                    "value": _scaled(inputs.iloc[:, i], swarm),
                }
                for i in shown
            ],
        },
    }
    if outputs > 1:
        classes = list(bundle.meta.get("classes") or range(outputs))
        result["by_class"] = {
            str(classes[c]): {names[i]: float(per_output[c, i]) for i in ranked}
            for c in range(outputs)
        }
    return result


def _scaled(column: pd.Series, rows: int) -> list[float | None]:
    """A feature's values on the first `rows` sampled rows, scaled to 0..1 over the whole
    sample (category codes for categories), for the beeswarm's colours; missing is null."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy(dtype="float64")
        codes[codes < 0] = np.nan
        values, top = codes, max(len(column.cat.categories) - 1, 1)
        scaled = values / top
    else:
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        finite = values[np.isfinite(values)]
        low, high = (finite.min(), finite.max()) if len(finite) else (0.0, 0.0)
        scaled = (
            (values - low) / (high - low) if high > low else np.where(np.isnan(values), values, 0.5)
        )
    return _rounded(scaled[:rows])
