"""Backends: the contract, discovery, templating and atomic emit, and the local backend.

The names below are imported from their modules on first use, so that importing the
package costs nothing a command does not use: a no-op run loads neither pydantic (the
settings base class) nor the entry-point scan (discovery of installed plugins).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlcompile.backends.base import (
        ENTRY_POINT_GROUP,
        ArtifactSet,
        Backend,
        Bundled,
        FileChecks,
        Runner,
        RunOptions,
        RunResult,
    )
    from mlcompile.backends.discovery import available_backends, get_backend
    from mlcompile.backends.executors import Executor, ExecutorMap
    from mlcompile.backends.settings import BackendSettings
    from mlcompile.runtime.runrecord import RunStatus, StepOutcome, StepStatus

# exported name -> the module that defines it
_HOMES = {
    "ENTRY_POINT_GROUP": "mlcompile.backends.base",
    "ArtifactSet": "mlcompile.backends.base",
    "Backend": "mlcompile.backends.base",
    "BackendSettings": "mlcompile.backends.settings",
    "Bundled": "mlcompile.backends.base",
    "Executor": "mlcompile.backends.executors",
    "ExecutorMap": "mlcompile.backends.executors",
    "FileChecks": "mlcompile.backends.base",
    "RunOptions": "mlcompile.backends.base",
    "RunResult": "mlcompile.backends.base",
    "RunStatus": "mlcompile.runtime.runrecord",
    "Runner": "mlcompile.backends.base",
    "StepOutcome": "mlcompile.runtime.runrecord",
    "StepStatus": "mlcompile.runtime.runrecord",
    "available_backends": "mlcompile.backends.discovery",
    "get_backend": "mlcompile.backends.discovery",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
