"""Training with `lightgbm.train`, and prediction from a model bundle.

The same rows and params must give a byte-identical `model.txt`: training is seeded and
deterministic, the text is cut at the best iteration, and the one machine-dependent line
LightGBM writes into the text, the thread count, is normalized.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from mlcompile.errors import DataValidationError, StepError, UsageError

from .artifacts import ModelBundle, json_safe
from .features import apply_features, model_frame, refuse_infinities, value_sort_key
from .threshold import THRESHOLD, choose_threshold

OBJECTIVES = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}
FloatArray = np.ndarray[Any, np.dtype[np.float64]]
_THREADS_LINE = re.compile(r"^\[num_threads: \d+\]$", re.MULTILINE)


def target_classes(target: Any) -> list[Any]:
    """The sorted distinct values of a multiclass target; a class is its index here."""
    return sorted((json_safe(v) for v in target.dropna().unique().tolist()), key=value_sort_key)


def encode_target(
    target: Any,
    task: str,
    classes: Sequence[Any] | None,
    model: str,
    positive: str | int | bool | None = None,
) -> FloatArray:
    """The target as LightGBM labels (float, NaN where missing). A binary target with a
    named positive class is 1 where it has that value, 0 where it has the other one."""
    where = f"model '{model}': target '{target.name}'"
    refuse_infinities(target.to_frame(), [target.name], where)
    if task == "binary" and positive is not None:
        values = sorted({json_safe(v) for v in target.dropna().tolist()}, key=value_sort_key)
        if len(values) > 2:
            raise StepError(
                f"{where} has {len(values)} values ({values[:5]}); a binary model's target "
                "has two: use task: multiclass, or map the values in the source's SQL"
            )
        positives = target.map(lambda v: json_safe(v) == positive)
        return np.where(target.isna(), np.nan, positives.astype("float64")).astype(np.float64)
    if task == "multiclass":
        index = {value: i for i, value in enumerate(classes or [])}
        unseen = sorted({v for v in target.dropna().tolist() if v not in index}, key=str)
        if unseen:
            raise StepError(f"{where} has classes unseen in training: {unseen[:5]}")
        return np.asarray(target.map(index).to_numpy(dtype="float64", na_value=np.nan))
    name_it = (
        "; name the positive class with the model's positive_class" if task == "binary" else ""
    )
    if not pd.api.types.is_numeric_dtype(target.dtype):
        raise StepError(
            f"{where} must be numeric or bool for a {task} model, not {target.dtype}{name_it}"
        )
    labels = np.asarray(target.to_numpy(dtype="float64", na_value=np.nan), dtype=np.float64)
    if task == "binary" and not np.isin(labels[~np.isnan(labels)], (0.0, 1.0)).all():
        raise StepError(f"{where} must be 0/1 or bool for a binary model{name_it}")
    return labels


def lightgbm_params(
    params: Mapping[str, Any], classes: Sequence[Any] | None, num_threads: int
) -> dict[str, Any]:
    task = str(params["task"])
    if task not in OBJECTIVES:
        raise UsageError(f"model '{params.get('model')}': unknown task '{task}'")
    merged: dict[str, Any] = {"objective": OBJECTIVES[task], "verbosity": -1}
    merged.update(params.get("params") or {})
    # Reproducibility is not negotiable: these override whatever the spec's params say.
    merged.update(
        seed=int(params.get("seed") or 0),
        deterministic=True,
        force_col_wise=True,
        num_threads=num_threads,
    )
    if task == "multiclass":
        merged["num_class"] = len(classes or [])
    return merged


def _validation_mask(rows: int, fraction: float, seed: int, model: str) -> Any:
    count = math.ceil(rows * fraction)
    if not 0 < count < rows:
        raise StepError(
            f"model '{model}': validation_size={fraction} of {rows} training rows leaves no rows "
            "to train or to validate on"
        )
    mask = np.zeros(rows, dtype=bool)
    mask[np.random.default_rng(seed).permutation(rows)[:count]] = True
    return mask


def model_text(booster: lgb.Booster, num_iteration: int) -> str:
    """LightGBM's text model, identical whatever thread count trained it."""
    text = booster.model_to_string(num_iteration=num_iteration)
    return _THREADS_LINE.sub("[num_threads: 0]", text)


@dataclass(frozen=True)
class TrainingRows:
    """A model's transformed training rows as LightGBM reads them, checked once."""

    features: pd.DataFrame
    labels: FloatArray
    classes: list[Any] | None
    positive: str | int | bool | None


def training_rows(
    train_df: pd.DataFrame, state: Mapping[str, Any], params: Mapping[str, Any]
) -> TrainingRows:
    """The labelled model inputs of the transformed rows; a target LightGBM could learn
    nothing from is refused here, with the reason."""
    model, task, target = str(params.get("model")), str(params["task"]), str(params["target"])
    if target not in train_df.columns:
        raise StepError(f"model '{model}': target column '{target}' is not in the training rows")
    classes = target_classes(train_df[target]) if task == "multiclass" else None
    expected = params.get("num_class")
    if classes is not None and expected is not None and len(classes) != int(expected):
        raise StepError(
            f"model '{model}': num_class is {expected} but the training rows of '{target}' have "
            f"{len(classes)} classes: {classes[:10]}"
        )
    positive = params.get("positive_class")
    features, labels = _labelled(train_df, state, task, classes, model, target, positive)
    if not len(labels):
        raise DataValidationError(f"model '{model}': no training rows have a value for '{target}'")
    if positive is not None and not (labels == 1).any():
        values = target_classes(train_df[target])
        raise DataValidationError(
            f"model '{model}': positive_class {positive!r} is not a value of '{target}' in the "
            f"training rows, which has {values[:10]}"
        )
    if len(np.unique(labels)) < 2:
        first = train_df[target].dropna().iloc[0]
        value = first.item() if hasattr(first, "item") else first
        needs = (
            "learns nothing from a constant: its predictions would score perfectly and pass "
            "every gate"
            if task == "regression"
            else "needs at least two classes"
        )
        raise DataValidationError(
            f"model '{model}': every training row has {target} = {value!r}; a {task} model "
            f"{needs} (check the source's filters and the split)"
        )
    return TrainingRows(features, labels, classes, positive)


@dataclass(frozen=True)
class Fitted:
    booster: lgb.Booster
    best: int  # the iteration the model is cut at
    held_out: tuple[pd.DataFrame, FloatArray] | None  # the validation rows, with early stopping


def fit(
    rows: TrainingRows,
    params: Mapping[str, Any],
    lgb_params: Mapping[str, Any],
    callbacks: Sequence[Callable[[Any], None]] = (),
) -> Fitted:
    """`lightgbm.train` on the rows, early stopping on the validation split when the params
    set it; `callbacks` see each round (a search's pruning)."""
    rounds = int(params.get("num_boost_round") or 100)
    stopping = params.get("early_stopping_rounds")
    features, labels = rows.features, rows.labels
    if not stopping:
        booster = lgb.train(
            dict(lgb_params),
            lgb.Dataset(features, labels),
            num_boost_round=rounds,
            callbacks=list(callbacks),
        )
        return Fitted(booster, booster.best_iteration or booster.current_iteration(), None)
    fraction = float(params.get("validation_size") or 0.1)
    held = _validation_mask(len(labels), fraction, int(lgb_params["seed"]), str(params["model"]))
    fitted = lgb.Dataset(features[~held], labels[~held])
    check = lgb.Dataset(features[held], labels[held], reference=fitted)
    booster = lgb.train(
        dict(lgb_params),
        fitted,
        num_boost_round=rounds,
        valid_sets=[check],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(int(stopping), verbose=False), *callbacks],
    )
    best = booster.best_iteration or booster.current_iteration()
    return Fitted(booster, best, (features[held], labels[held]))


def with_tuned(params: Mapping[str, Any], tuned: Mapping[str, Any]) -> dict[str, Any]:
    """Train params with a search's parameters merged over the fixed ones."""
    return {**params, "params": {**(params.get("params") or {}), **tuned}}


def train_model(
    train_df: pd.DataFrame,
    state: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    num_threads: int = 1,
    training_data: Mapping[str, Any] | None = None,
    tuning: Mapping[str, Any] | None = None,
) -> tuple[lgb.Booster, ModelBundle]:
    """Train on transformed rows (model inputs + target); returns the booster and the bundle.

    `training_data` (the train dataset's sha256 and sources) is recorded in the bundle; with
    `tuning` (a search's record), its best parameters are merged over the fixed ones and
    the search is recorded with the model."""
    if tuning is not None:
        params = with_tuned(params, tuning["best"]["params"])
    model, task, target = str(params.get("model")), str(params["task"]), str(params["target"])
    rows = training_rows(train_df, state, params)
    classes, positive = rows.classes, rows.positive
    lgb_params = lightgbm_params(params, classes, num_threads)
    rounds = int(params.get("num_boost_round") or 100)
    stopping = params.get("early_stopping_rounds")
    found = fit(rows, params, lgb_params)
    booster, best = found.booster, found.best
    recorded = {k: v for k, v in lgb_params.items() if k != "num_threads"}
    meta: dict[str, Any] = {
        "model": model,
        "task": task,
        "target": target,
        "best_iteration": best,
        "num_boost_round": rounds,
        "early_stopping_rounds": stopping,
        "params": recorded,
        "feature_state": dict(state),
        "feature_names": list(state["output_columns"]),
        "input_signature": dict(state["input_signature"]),
        "training_data": {**(training_data or {}), "rows": len(rows.labels)},
        "validation": {
            "rows": 0 if found.held_out is None else len(found.held_out[1]),
            "size": float(params.get("validation_size") or 0.1) if stopping else None,
            "best_score": dict(booster.best_score.get("validation", {})),
        },
    }
    if tuning is not None:
        meta["tuning"] = tuned_summary(tuning)
    if classes is not None:
        meta["classes"] = classes
    if positive is not None:
        meta["positive_class"] = positive
    if task == "binary":
        meta["threshold"] = threshold_of(params, found)
    if params.get("serving"):
        meta["serving"] = dict(params["serving"])
    return booster, ModelBundle(text=model_text(booster, best), meta=json_safe(meta))


def tuned_summary(tuning: Mapping[str, Any]) -> dict[str, Any]:
    """What a model (and its registry entry) keeps of the search that chose its parameters."""
    best = tuning["best"]
    return {
        "metric": tuning["metric"],
        "direction": tuning["direction"],
        "value": best["value"],
        "trial": best["number"],
        "params": best["params"],
        "trials": tuning["finished"],
        "study": tuning["study"],
    }


def threshold_of(params: Mapping[str, Any], found: Fitted) -> dict[str, Any]:
    """A binary model's threshold: the spec's number, or its rule applied on the validation
    rows."""
    rule = params.get("threshold")
    if rule is None or isinstance(rule, int | float):
        return choose_threshold(THRESHOLD if rule is None else float(rule), [], [])
    if found.held_out is None:
        raise UsageError(
            f"model '{params.get('model')}': a threshold chosen on the validation split needs "
            "early_stopping"
        )
    inputs, labels = found.held_out
    return choose_threshold(rule, labels, found.booster.predict(inputs, num_iteration=found.best))


def _labelled(
    df: pd.DataFrame,
    state: Mapping[str, Any],
    task: str,
    classes: Sequence[Any] | None,
    model: str,
    target: str,
    positive: str | int | bool | None = None,
) -> tuple[pd.DataFrame, FloatArray]:
    """Model inputs and labels of the transformed rows whose target is known."""
    labels = encode_target(df[target], task, classes, model, positive)
    known = ~np.isnan(labels)
    return model_frame(df, state)[known], labels[known]


def validation_rows(train_df: pd.DataFrame, meta: Mapping[str, Any]) -> Any:
    """(model inputs, labels) of the rows training held out for early stopping, from the
    same transformed train split, picked again the same way; None without early stopping."""
    held_out = meta.get("validation") or {}
    if not meta.get("early_stopping_rounds") or not held_out.get("size"):
        return None
    model, task = str(meta["model"]), str(meta["task"])
    features, labels = _labelled(
        train_df,
        meta["feature_state"],
        task,
        meta.get("classes"),
        model,
        str(meta["target"]),
        meta.get("positive_class"),
    )
    seed = int((meta.get("params") or {}).get("seed") or 0)
    held = _validation_mask(len(labels), float(held_out["size"]), seed, model)
    return features[held], labels[held]


def model_inputs(bundle: ModelBundle, df: pd.DataFrame) -> pd.DataFrame:
    """Raw rows as the model reads them: the bundle's fitted features applied."""
    state = bundle.meta["feature_state"]
    return model_frame(apply_features(df, state), state)


def predict(bundle: ModelBundle, df: pd.DataFrame, num_threads: int = 1) -> Any:
    """Raw predictions for raw rows: P(1) for binary, an (n, classes) matrix for multiclass,
    values for regression."""
    return booster(bundle).predict(model_inputs(bundle, df), num_threads=num_threads)


def booster(bundle: ModelBundle) -> Any:
    """The bundle's LightGBM model, parsed from its text (milliseconds: a server keeps it)."""
    return lgb.Booster(model_str=bundle.text)
