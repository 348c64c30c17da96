"""Backends: the contract, discovery, templating and atomic emit, and the local backend."""

from mlcompile.backends.base import (
    ENTRY_POINT_GROUP,
    ArtifactSet,
    Backend,
    BackendSettings,
    Bundled,
    FileChecks,
    Runner,
    RunOptions,
    RunResult,
)
from mlcompile.backends.discovery import available_backends, get_backend
from mlcompile.backends.executors import Executor, ExecutorMap
from mlcompile.runtime.runrecord import RunStatus, StepOutcome, StepStatus

__all__ = [
    "ENTRY_POINT_GROUP",
    "ArtifactSet",
    "Backend",
    "BackendSettings",
    "Bundled",
    "Executor",
    "ExecutorMap",
    "FileChecks",
    "RunOptions",
    "RunResult",
    "RunStatus",
    "Runner",
    "StepOutcome",
    "StepStatus",
    "available_backends",
    "get_backend",
]
