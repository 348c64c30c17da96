"""Which metric names a model produces, and hints for names it does not: suggestions come
only from valid names, and the names scikit-learn and MLflow use map to ours."""

from __future__ import annotations

from mlcompile.errors import did_you_mean
from mlcompile.spec.models import Model
from mlcompile.tasks import TASK_METRICS

# scikit-learn's function names and MLflow's logged metric names, by the metric they mean.
FOREIGN_NAMES: dict[str, tuple[str, ...]] = {
    "roc_auc": ("auc", "roc_auc_score", "auroc"),
    "pr_auc": ("average_precision", "average_precision_score", "auprc"),
    "logloss": ("log_loss", "cross_entropy"),
    "accuracy": ("accuracy_score",),
    "f1": ("f1_score",),
    "macro_f1": ("f1_score", "f1_macro"),
    "precision": ("precision_score",),
    "recall": ("recall_score",),
    "rmse": ("root_mean_squared_error",),
    "mae": ("mean_absolute_error",),
    "r2": ("r2_score",),
    "mape": ("mean_absolute_percentage_error",),
}


def produced(model: Model) -> list[str]:
    """The metrics the model computes: its valid `metrics:` entries (custom ones too), or its
    task's all. An invalid entry is reported once, where it is written, and is not a known
    name elsewhere."""
    valid = TASK_METRICS[model.task]
    custom = [m.name for m in model.custom_metrics]
    chosen = [m for m in model.builtin_metrics if m in valid]
    if model.metrics is None or not (chosen or custom):
        chosen = list(valid)
    return [*chosen, *custom]


def metric_hint(name: str, valid: list[str] | tuple[str, ...]) -> str | None:
    for ours, theirs in FOREIGN_NAMES.items():
        if name.lower() in theirs and ours in valid:
            return f"did you mean '{ours}'? ('{name}' is what scikit-learn or MLflow call it)"
    return did_you_mean(name, valid)
