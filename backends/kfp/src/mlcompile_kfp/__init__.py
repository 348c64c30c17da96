"""mlcompile's Kubeflow Pipelines backend: emits a KFP v2 pipeline module and its IR."""

from mlcompile_kfp.backend import KfpBackend
from mlcompile_kfp.settings import KfpSettings

__all__ = ["KfpBackend", "KfpSettings"]
