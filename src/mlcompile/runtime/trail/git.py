"""The commit a project is checked out at, for provenance facets."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit(path: Path) -> str | None:
    """The commit checked out in the repository holding `path`; None outside a repository,
    without git, or when git fails for any reason: lineage never breaks a build."""
    folder = path if path.is_dir() else path.parent
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and len(commit) == 40 else None
