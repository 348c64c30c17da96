"""Experiment trackers mlcompile logs runs to: MLflow (the `mlcompile[mlflow]` extra).

Nothing here imports MLflow until a run is logged; what is logged comes from the plan and
the artifacts a run left, never from the spec (the CLI hands over the tracking settings).
"""

from mlcompile.tracking.mlflow_tracking import (
    MlflowConfig,
    TrackedRun,
    log_run,
    mirror_alias,
    mlflow_config,
)

__all__ = ["MlflowConfig", "TrackedRun", "log_run", "mirror_alias", "mlflow_config"]
