"""The base class of backend settings models (a module of its own: it loads pydantic)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class BackendSettings(BaseModel):
    """Base for backend settings: frozen, unknown keys are errors."""

    # built on first use: a command loads only the settings model of the backend it uses
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
