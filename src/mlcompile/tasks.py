"""What each learning task produces: the one list the spec checks and the runtime computes.

A metric's name may carry a scope and a bound: `validation.rmse` is measured on the
validation split (the rows early stopping holds out of training), `roc_auc.lower` is the
lower end of its bootstrap interval on the test split, and a multiclass per-class metric
names its class, `recall[class=Gentoo]`.
"""

from __future__ import annotations

import re

# name -> what it measures; the spec reference prints these tables.
METRICS: dict[str, dict[str, str]] = {
    "binary": {
        "roc_auc": "area under the ROC curve (undefined with one class)",
        "pr_auc": "average precision (undefined with one class)",
        "logloss": "log loss of P(1)",
        "brier": "mean squared error of P(1)",
        "accuracy": "share of right labels at the threshold",
        "balanced_accuracy": "mean of the recall of each class at the threshold",
        "f1": "F1 of the positive class at the threshold",
        "precision": "precision at the threshold (undefined with no predicted positives)",
        "recall": "recall at the threshold (undefined with no positive rows)",
    },
    "multiclass": {
        "accuracy": "share of right classes (the most likely one)",
        "balanced_accuracy": "mean recall over the classes",
        "macro_f1": "F1 averaged over classes",
        "weighted_f1": "F1 averaged over classes, weighted by their rows",
        "logloss": "log loss of the class probabilities",
        "precision[class=C]": "precision of class C (undefined when C is never predicted)",
        "recall[class=C]": "recall of class C (undefined with no rows of C)",
    },
    "regression": {
        "rmse": "root mean squared error",
        "mse": "mean squared error",
        "mae": "mean absolute error",
        "median_ae": "median absolute error",
        "max_error": "largest absolute error",
        "r2": "coefficient of determination (undefined on a constant target)",
        "mape": "mean absolute percentage error",
    },
}
# Metrics measured once per class; the plain name lists every class.
PER_CLASS: dict[str, tuple[str, ...]] = {"multiclass": ("precision", "recall")}
TASK_METRICS: dict[str, tuple[str, ...]] = {
    task: tuple(name.split("[", 1)[0] for name in names) for task, names in METRICS.items()
}
LOWER_IS_BETTER = frozenset(
    {"logloss", "brier", "rmse", "mse", "mae", "median_ae", "max_error", "mape"}
)
VALIDATION = "validation."
BOUNDS = (".lower", ".upper")
_CLASS = re.compile(r"^(?P<base>\w+)\[class=(?P<cls>[^\]]+)\]$")
# What a monitor measures per feature (and on predictions); each is worse when higher.
DRIFT_METRICS: tuple[str, ...] = ("psi", "ks", "unseen")
# The pseudo-feature a drift check names to measure the model's predictions.
PREDICTION = "prediction"


def base_metric(name: str) -> str:
    """`validation.recall[class=a].lower` -> `recall`: the metric a scoped name measures."""
    name = name.removeprefix(VALIDATION)
    for bound in BOUNDS:
        name = name.removesuffix(bound)
    match = _CLASS.match(name)
    return match["base"] if match else name


def scoped_metric(metric: str, bracket: str | None) -> tuple[str, str | None]:
    """(metric, slice column) of a check's `metric[bracket]`: `[class=C]` names a class of
    the metric, any other bracket a slice column."""
    if bracket is not None and bracket.startswith("class="):
        return f"{metric}[class={bracket.removeprefix('class=').strip()}]", None
    return metric, bracket


def lower_is_better(name: str) -> bool:
    return base_metric(name) in LOWER_IS_BETTER


def metric_problem(
    name: str,
    task: str,
    produced: list[str] | tuple[str, ...],
    has_validation: bool,
    has_intervals: bool = False,
) -> tuple[str, str | None] | None:
    """(why a model of `task` computing `produced` has no metric `name`, hint), or None.
    No hint: the metric is unknown, and the caller suggests the closest one."""
    base = base_metric(name)
    if name.endswith(BOUNDS) and (name.startswith(VALIDATION) or "[" in name):
        return (
            f"'{name}': intervals are measured for the test split's overall metrics only",
            f"bound '{base}.lower' or '{base}.upper'",
        )
    if name.endswith(BOUNDS) and not has_intervals:
        return (
            f"'{name}' needs bootstrap intervals, and this model computes none",
            "add 'bootstrap: {resamples: 200}' to the model",
        )
    if name.startswith(VALIDATION) and not has_validation:
        return (
            f"'{name}' needs a validation split, and this model has none (early_stopping: null)",
            "set early_stopping: its validation_size of the training rows is the validation split",
        )
    bare = name.removeprefix(VALIDATION)
    for bound in BOUNDS:
        bare = bare.removesuffix(bound)
    if base not in produced:
        return f"a {task} model does not produce '{base}'", None
    if bare != base and base not in PER_CLASS.get(task, ()):
        per_class = [f"{t}: {', '.join(m)}" for t, m in PER_CLASS.items()]
        return (
            f"'{base}' of a {task} model is not measured per class",
            f"per-class metrics: {'; '.join(per_class)}",
        )
    return None
