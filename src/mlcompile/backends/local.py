"""The built-in local backend: runs the plan on this machine, cached and in parallel.

What it emits is an execution manifest: the steps in waves that may run side by side. The
runner hands the plan to the runtime's executor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, Field

from mlcompile.backends.base import ArtifactSet, BackendSettings, RunOptions, RunResult
from mlcompile.errors import Diagnostic
from mlcompile.plan import Plan
from mlcompile.trust import ProjectPath


class LocalSettings(BackendSettings):
    store: ProjectPath | None = Field(
        None, description="Artifact cache folder; default settings.store."
    )
    runs: ProjectPath = Field(".mlcompile/runs", description="Folder for run records.")


def local_folders(settings: BaseModel, plan: Plan, project_root: Path) -> tuple[Path, Path]:
    """The artifact store and the run-record folder a local run uses."""
    assert isinstance(settings, LocalSettings)
    return project_root / (
        settings.store or str(plan.settings["store"])
    ), project_root / settings.runs


class LocalBackend:
    name: ClassVar[str] = "local"
    settings_model: ClassVar[type[BaseModel]] = LocalSettings

    def check(self, plan: Plan, settings: BaseModel) -> list[Diagnostic]:
        return []

    def render(self, plan: Plan, settings: BaseModel) -> ArtifactSet:
        manifest = {
            "backend": self.name,
            "plan": plan.name,
            "settings": settings.model_dump(mode="json"),
            "waves": plan.waves(),
            "fingerprints": {n.id: n.fingerprint for n in sorted(plan.nodes, key=lambda n: n.id)},
        }
        return ArtifactSet({"pipeline.json": json.dumps(manifest, indent=2, sort_keys=True) + "\n"})

    def run(
        self, built_dir: Path, plan: Plan, settings: BaseModel, options: RunOptions
    ) -> RunResult:
        from mlcompile.runtime.executor import Executor

        store_dir, runs_dir = local_folders(settings, plan, options.project_root)
        execution = Executor(
            plan,
            project_root=options.project_root,
            store_dir=store_dir,
            runs_dir=runs_dir,
            jobs=options.jobs,
            force=options.force,
            use_cache=options.use_cache,
            keep_going=options.keep_going,
            on_event=options.on_event,
        ).run()
        record = execution.record
        error = record["error"]
        return RunResult(
            status=record["status"],
            steps=record["steps"],
            metrics=record["metrics"],
            decisions=record["decisions"],
            exit_code=execution.exit_code,
            error=f"{error['node']}: {error['message']}" if error else None,
            run_id=record["id"],
        )
