"""Backends: the contract, discovery, templating and atomic emit, and the local backend."""

from mlcompile.backends.base import (
    ENTRY_POINT_GROUP,
    ArtifactSet,
    Backend,
    BackendSettings,
    RecordsLineage,
    Runner,
    RunOptions,
    RunResult,
)
from mlcompile.backends.discovery import available_backends, get_backend
from mlcompile.backends.executors import Executor, ExecutorMap

__all__ = [
    "ENTRY_POINT_GROUP",
    "ArtifactSet",
    "Backend",
    "BackendSettings",
    "Executor",
    "ExecutorMap",
    "RecordsLineage",
    "RunOptions",
    "RunResult",
    "Runner",
    "available_backends",
    "get_backend",
]
