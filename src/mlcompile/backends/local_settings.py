"""The local backend's settings model: the `backends.local` section of a spec."""

from __future__ import annotations

from pydantic import Field

from mlcompile.backends.local import LocalDefaults
from mlcompile.backends.settings import BackendSettings
from mlcompile.trust import ProjectPath


class LocalSettings(BackendSettings):
    store: ProjectPath | None = Field(
        LocalDefaults.store, description="Artifact cache folder; default settings.store."
    )
    runs: ProjectPath = Field(LocalDefaults.runs, description="Folder for run records.")
