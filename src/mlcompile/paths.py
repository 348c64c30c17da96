"""Where a project keeps what mlcompile writes for it: every default folder, named once.

Each is a POSIX path relative to the project root (the spec's folder), the form the spec's
settings and plan.json hold. A spec may move the registry and the store (settings) and the
local run records (backends.local.runs); the commands that read them take these defaults
only when neither the spec nor an option says otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

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


def user_cache_dir(name: str) -> Path:
    """A cache of what mlcompile learns about the installed libraries (LightGBM's parameter
    names, say): a fact of this machine, not of a project, so every project shares it and
    only the first validate on a machine pays for learning it. `MLCOMPILE_CACHE_DIR`, else
    `$XDG_CACHE_HOME/mlcompile`, else `~/.cache/mlcompile`."""
    root = os.environ.get("MLCOMPILE_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(base) / "mlcompile")
    return Path(root) / name
