"""Where a project keeps what mlcompile writes for it: every default folder, named once.

Each is a POSIX path relative to the project root (the spec's folder), the form the spec's
settings and plan.json hold. A spec may move the registry and the store (settings) and the
local run records (backends.local.runs); the commands that read them take these defaults
only when neither the spec nor an option says otherwise.
"""

from __future__ import annotations

from pathlib import PurePosixPath

PROJECT_DIR = ".mlcompile"
REGISTRY = f"{PROJECT_DIR}/registry"  # the local model registry (settings.registry)
STORE = f"{PROJECT_DIR}/store"  # the artifact cache (settings.store)
RUNS = f"{PROJECT_DIR}/runs"  # local run records (backends.local.runs)
LINEAGE = f"{PROJECT_DIR}/lineage"  # OpenLineage events of local runs
MONITORING = f"{PROJECT_DIR}/monitoring"  # monitors' reports, one JSON file per monitor
PREDICTIONS = f"{PROJECT_DIR}/predictions"  # prediction logs of `serve`, one folder per model
CACHE = f"{PROJECT_DIR}/cache"  # what the compiler learned and may forget


def cache_dir(name: str) -> PurePosixPath:
    """One compiler cache's folder (compose, expr, lineage)."""
    return PurePosixPath(CACHE) / name
