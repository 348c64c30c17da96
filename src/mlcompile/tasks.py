"""What each learning task produces: the one list the spec checks and the runtime computes."""

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "pr_auc", "logloss", "accuracy", "f1", "precision", "recall"),
    "multiclass": ("accuracy", "macro_f1", "logloss"),
    "regression": ("rmse", "mae", "r2", "mape"),
}
LOWER_IS_BETTER = frozenset({"logloss", "rmse", "mae", "mape"})
# What a monitor measures per feature (and on predictions); each is worse when higher.
DRIFT_METRICS: tuple[str, ...] = ("psi", "ks", "unseen")
# The pseudo-feature a drift check names to measure the model's predictions.
PREDICTION = "prediction"
